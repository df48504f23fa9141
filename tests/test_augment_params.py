"""Drawn augmentation parameters as readable text: titles, rounded values, one line a transform."""

from cvplay import augment, samples
from cvplay.augment_params import NOTHING_APPLIED, drawn_table, readable_lines, readable_params, readable_value


def test_values_are_rounded_and_short():
    assert readable_value(0.7821770123928726) == "0.78"
    assert readable_value(-19.08291573686281) == "\N{MINUS SIGN}19.1"
    assert readable_value(127) == "127" and readable_value(True) == "yes"
    assert readable_value([0.124, 0.6706]) == "(0.12, 0.67)"


def test_one_titled_line_per_transform():
    drawn = [("rotate", {"angle": 14.390609893608229}), ("hflip", {}),
             ("cutout", {"holes": [[0.1243, 0.6706, 0.1845, 0.1057], [0.3837, 0.9972, 0.2294, 0.2231]], "fill_value": 127})]
    assert readable_lines(drawn) == [
        "Rotation: angle 14.4",
        "Horizontal flip",
        "Cutout / random erasing: 2 holes (0.12, 0.67, 0.18, 0.11) (0.38, 1.00, 0.23, 0.22), fill value 127",
    ]
    assert readable_lines([]) == [NOTHING_APPLIED]


def test_an_unknown_transform_is_shown_by_its_name():
    assert readable_lines([("my_new_warp", {"strength_x": 0.123456})]) == ["My new warp: strength x 0.12"]


def test_every_declared_transform_draws_readable_text():
    everything = {t.name: {"enabled": True, "probability": 1.0} for t in augment.TRANSFORMS}
    policy = augment.Policy.from_dict({"seed": 3, "transforms": everything})
    image = samples.load("scene")
    previews = policy.preview(image, 6, 3)
    assert {name for _, drawn in previews for name, _ in drawn} == set(everything)
    for _, drawn in previews:
        for name, params in drawn:
            text = readable_params(params)
            assert "=" not in text and "e-0" not in text  # no key=value dumps, no scientific notation
            for value in params.values():
                if isinstance(value, float) and abs(value) < 10:
                    assert len(f"{abs(value):.2f}") <= 5


def test_table_has_one_row_per_sample_and_transform():
    samples_drawn = [[("rotate", {"angle": 1.234}), ("zoom", {"scale_x": 1.05, "scale_y": 0.95})], []]
    table = drawn_table(samples_drawn)
    assert table.to_dict("records") == [
        {"sample": 1, "transform": "Rotation", "drawn values": "angle 1.23"},
        {"sample": 1, "transform": "Zoom", "drawn values": "scale x 1.05, scale y 0.95"},
        {"sample": 2, "transform": "", "drawn values": NOTHING_APPLIED},
    ]
