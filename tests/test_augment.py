"""cvplay.augment: every declared transform, policies, the Keras mapping and the tf.data bridge.

Parametrized over the ONE declared list, ``cvplay.augment.TRANSFORMS``: a new transform is
tested by these tests as soon as it is declared.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types

import cv2
import numpy as np
import pytest

from cvplay import augment as A
from cvplay import samples
from cvplay.augment import TRANSFORMS, Policy

IDS = [t.name for t in TRANSFORMS]
WITH_IDENTITY = [t for t in TRANSFORMS if t.identity is not None]
RANDOM = [t for t in TRANSFORMS if t.random]


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A non-square (48 x 64) image with structure everywhere, so every transform changes it."""
    scene = cv2.resize(samples.load("scene"), (64, 64), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(scene[8:56])


def flat(value) -> list[float]:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in flat(v)]
    return [float(value)]


# ---- the declarations ---------------------------------------------------------------


def test_declared_list_is_well_formed():
    assert len(set(IDS)) == len(IDS)
    kinds = [t.kind for t in TRANSFORMS]
    assert set(kinds) <= {"geometric", "colour"}
    assert kinds == sorted(kinds, key=lambda k: k != "geometric"), "geometric first: they share one warp"
    for t in TRANSFORMS:
        assert t.title and t.help
        assert 0.0 <= t.probability <= 1.0
        assert (t.matrix is not None) == (t.kind == "geometric")
        assert (t.apply_fn is not None) == (t.kind == "colour")
        assert t.random == (t.bounds is not None), f"{t.name}: random transforms declare the bounds of their draws"
        for p in t.params:
            assert p.help, f"{t.name}.{p.name} needs help text"
            assert p.validate(p.default, t.name) is not None
            if p.type != "bool":
                assert p.min is not None and p.max is not None and p.step is not None
        if t.identity is not None:
            assert set(t.identity) <= {p.name for p in t.params}
            t.validate(t.identity)


def test_required_transforms_are_declared():
    assert {
        "hflip", "vflip", "rotate", "shift", "zoom", "shear", "brightness", "contrast", "saturation", "hue",
        "grayscale", "gaussian_blur", "gaussian_noise", "cutout", "random_resized_crop", "jpeg", "downscale",
    } <= set(IDS)


# ---- each transform -------------------------------------------------------------------


@pytest.mark.parametrize("t", TRANSFORMS, ids=IDS)
def test_shape_dtype_kept_and_input_untouched(t, image):
    before = image.copy()
    for seed in range(3):
        out = t.apply(image, t.sample(np.random.default_rng(seed)))
        assert out.shape == image.shape and out.dtype == np.uint8
        assert out is not image
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("t", TRANSFORMS, ids=IDS)
def test_extreme_settings_stay_valid(t, image):
    """Every range setting pinned at its declared min and at its max still gives a valid image."""
    for p in t.params:
        if p.type not in ("range", "int_range"):
            continue
        for end in (p.min, p.max):
            settings = t.validate({p.name: (end, end)})
            for fill_mode in ("nearest", "constant"):
                out = t.apply(image, t.sample(np.random.default_rng(0), settings), fill_mode=fill_mode, fill_value=9)
                assert out.shape == image.shape and out.dtype == np.uint8


@pytest.mark.parametrize("t", WITH_IDENTITY, ids=[t.name for t in WITH_IDENTITY])
def test_zero_strength_is_identity(t, image):
    settings = t.validate(t.identity)
    for seed in range(3):
        np.testing.assert_array_equal(t.apply(image, t.sample(np.random.default_rng(seed), settings)), image)


@pytest.mark.parametrize("name", ["hflip", "vflip"])
def test_flip_twice_is_identity(name, image):
    t = A.get_transform(name)
    once = t.apply(image, {})
    assert not np.array_equal(once, image)
    np.testing.assert_array_equal(t.apply(once, {}), image)
    expected = image[:, ::-1] if name == "hflip" else image[::-1]
    np.testing.assert_array_equal(once, expected)


@pytest.mark.parametrize("t", TRANSFORMS, ids=IDS)
def test_same_seed_same_output(t, image):
    first = t.sample(np.random.default_rng(7))
    second = t.sample(np.random.default_rng(7))
    assert first == second
    np.testing.assert_array_equal(t.apply(image, first), t.apply(image, second))


@pytest.mark.parametrize("t", RANDOM, ids=[t.name for t in RANDOM])
def test_different_seeds_differ(t, image):
    drawn = [t.sample(np.random.default_rng(seed)) for seed in range(5)]
    assert len({json.dumps(d, sort_keys=True) for d in drawn}) == 5
    outputs = {t.apply(image, d).tobytes() for d in drawn}
    assert len(outputs) > 1


@pytest.mark.parametrize("t", RANDOM, ids=[t.name for t in RANDOM])
def test_drawn_params_lie_within_declared_ranges(t):
    settings = t.validate()
    rng = np.random.default_rng(0)
    for _ in range(200):
        params = t.sample(rng, settings)
        json.dumps(params)  # plain, JSON-able values
        for key, (low, high) in t.bounds(settings).items():
            for value in flat(params[key]):
                assert low - 1e-9 <= value <= high + 1e-9, (t.name, key, value, (low, high))


def test_lower_jpeg_quality_loses_more(image):
    jpeg = A.get_transform("jpeg")
    errors = [np.abs(jpeg.apply(image, {"quality": q}).astype(int) - image).mean() for q in (95, 50, 5)]
    assert 0 < errors[0] < errors[1] < errors[2]


def test_downscale_keeps_size_and_loses_detail():
    board = np.kron((np.indices((8, 8)).sum(axis=0) % 2).astype(np.uint8) * 255, np.ones((4, 4), np.uint8))
    board = np.repeat(board[:, :, None], 3, axis=2)  # 32 x 32 checkerboard of 4-pixel squares
    out = A.get_transform("downscale").apply(board, {"factor": 8.0})
    assert out.shape == board.shape
    assert np.abs(out.astype(int) - 127).max() <= 2  # 4 x 4 pixels per square: averaged to grey
    mild = A.get_transform("downscale").apply(board, {"factor": 2.0})
    assert np.abs(mild.astype(int) - board).mean() < np.abs(out.astype(int) - board).mean()


# ---- geometric conventions ----------------------------------------------------------


def marker(size: int, y: int, x: int) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    img[y, x] = 255
    return img


def peak(img: np.ndarray) -> tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(np.argmax(img[..., 0]), img.shape[:2]))


def test_positive_rotation_is_counter_clockwise():
    out = A.get_transform("rotate").apply(marker(9, 1, 4), {"angle": 90.0})
    assert peak(out) == (4, 1)  # top-centre goes to left-centre


def test_shift_moves_content_right_and_down():
    out = A.get_transform("shift").apply(marker(8, 2, 2), {"x": 0.25, "y": 0.5}, fill_mode="constant")
    assert peak(out) == (6, 4)


def test_zoom_above_one_magnifies_about_the_centre():
    out = A.get_transform("zoom").apply(marker(9, 4, 6), {"scale_x": 2.0, "scale_y": 2.0}, fill_mode="constant")
    assert peak(out) == (4, 8)


def test_random_resized_crop_is_a_crop_resized_back(image):
    params = {"area": 0.25, "ratio": 1.0, "top": 0.5, "left": 0.5, "height": 0.5, "width": 0.5}
    out = A.get_transform("random_resized_crop").apply(image, params)
    expected = cv2.resize(image[24:, 32:], (64, 48), interpolation=cv2.INTER_LINEAR)
    # The first row/column differ: the warp blends in the real pixels just outside the
    # crop where cv2.resize repeats the crop's edge.
    assert np.abs(out.astype(int) - expected)[1:, 1:].max() <= 1


def test_fill_modes(image):
    shift = A.get_transform("shift")
    params = {"x": 0.25, "y": 0.0}  # 16 columns uncovered on the left
    constant = shift.apply(image, params, fill_mode="constant", fill_value=77)
    assert (constant[:, :16] == 77).all()
    np.testing.assert_array_equal(constant[:, 16:], image[:, :48])
    nearest = shift.apply(image, params, fill_mode="nearest")
    np.testing.assert_array_equal(nearest[:, :16], np.repeat(image[:, :1], 16, axis=1))
    reflect = shift.apply(image, params, fill_mode="reflect")
    np.testing.assert_array_equal(reflect[:, :16], image[:, 15::-1])
    wrap = shift.apply(image, params, fill_mode="wrap")
    np.testing.assert_array_equal(wrap[:, :16], image[:, 48:])
    with pytest.raises(ValueError, match="fill mode"):
        shift.apply(image, params, fill_mode="mirror")


def test_geometric_transforms_compose_into_one_warp(image):
    both_flips = Policy.build({"hflip": True, "vflip": True}, probabilities={"hflip": 1, "vflip": 1})
    np.testing.assert_array_equal(both_flips.apply(image, 0), image[::-1, ::-1])
    rotate_180 = A.get_transform("rotate").apply(image, {"angle": 180.0})
    assert np.abs(rotate_180.astype(int) - image[::-1, ::-1]).max() <= 1
    drawn = [("rotate", {"angle": 30.0}), ("shift", {"x": 0.1, "y": -0.05})]
    once = Policy().replay(image, drawn)
    r, s = A.get_transform("rotate"), A.get_transform("shift")
    expected = r.matrix(drawn[0][1], 48, 64)
    expected = s.matrix(drawn[1][1], 48, 64) @ expected
    centre = np.array([31.5, 23.5, 1.0])
    moved = expected @ centre
    assert moved[0] == pytest.approx(31.5 + 6.4) and moved[1] == pytest.approx(23.5 - 2.4)
    # One warp, not two: sharper than warping twice.
    twice = s.apply(r.apply(image, drawn[0][1]), drawn[1][1])
    assert not np.array_equal(once, twice)
    assert np.abs(once.astype(int) - twice.astype(int))[12:36, 16:48].mean() < 12


def test_rejects_non_uint8_rgb():
    t = A.get_transform("brightness")
    for bad in (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8)):
        with pytest.raises(ValueError, match="uint8 RGB"):
            t.apply(bad, {"factor": 1.2})
        with pytest.raises(ValueError, match="uint8 RGB"):
            A.DEFAULT_POLICY.apply(bad, 0)


# ---- policies -----------------------------------------------------------------------


def test_presets_and_default():
    assert A.PRESETS == ("none", "light", "classic", "strong")
    assert A.DEFAULT_PRESET == "classic" and A.DEFAULT_POLICY == A.preset("classic")
    assert A.preset("none").enabled() == []
    assert A.preset("classic") is not A.preset("classic")
    with pytest.raises(ValueError, match="unknown preset"):
        A.preset("medium")


def test_none_policy_is_identity(image):
    out = A.preset("none").apply(image, 0)
    np.testing.assert_array_equal(out, image)
    assert out is not image


@pytest.mark.parametrize("name", A.PRESETS)
def test_policy_json_round_trip(name):
    policy = A.preset(name).replace(seed=123, fill_mode="constant", fill_value=40)
    text = policy.to_json()
    assert json.loads(text)["format"] == A.FORMAT
    assert Policy.from_json(text) == policy
    assert Policy.from_dict(policy.to_dict()) == policy
    assert Policy.from_json(text).to_json() == text


def test_from_dict_defaults_and_listed_means_enabled():
    policy = Policy.from_dict({"transforms": {"rotate": {"angle": [-5, 5]}, "hflip": {}}})
    assert [t.name for t, _, _ in policy.enabled()] == ["hflip", "rotate"]
    assert policy.transforms["rotate"].settings["angle"] == (-5.0, 5.0)
    assert policy.transforms["hflip"].probability == 0.5  # the declared default
    assert policy.transforms["zoom"].enabled is False
    assert policy.fill_mode == "nearest" and policy.seed == 0


@pytest.mark.parametrize(
    "data, message",
    [
        ({"transforms": {"sharpen": {}}}, "unknown transform 'sharpen'"),
        ({"transforms": {"rotate": {"degrees": 5}}}, r"rotate: unknown setting\(s\) \['degrees'\]"),
        ({"transforms": {"rotate": {"angle": [-200, 5]}}}, "rotate.angle: -200.0 is below the minimum -180"),
        ({"transforms": {"rotate": {"angle": [5, -5]}}}, "rotate.angle: low 5.0 is above high -5.0"),
        ({"transforms": {"rotate": {"angle": 5}}}, r"rotate.angle: expected a \[low, high\] pair"),
        ({"transforms": {"hflip": {"probability": 1.5}}}, "hflip.probability: 1.5 is above the maximum 1.0"),
        ({"transforms": {"cutout": {"count": [1.5, 2]}}}, "cutout.count: expected an integer"),
        ({"transforms": {"zoom": {"independent": "yes"}}}, "zoom.independent: expected true/false"),
        ({"fill_mode": "mirror"}, "fill_mode: unknown 'mirror'"),
        ({"fill_value": 300}, "fill_value: 300 is above the maximum 255"),
        ({"seed": -1}, "seed: -1 is below the minimum 0"),
        ({"colour": 1}, r"unknown policy key\(s\) \['colour'\]"),
        ({"format": "albumentations"}, "unsupported policy format"),
        ([], "must be a JSON object"),
    ],
)
def test_from_dict_rejects_bad_input_clearly(data, message):
    with pytest.raises(ValueError, match=message):
        Policy.from_dict(data)


def test_from_json_rejects_invalid_json():
    with pytest.raises(ValueError, match="not valid JSON"):
        Policy.from_json("{nope")


def test_policy_sample_apply_and_params(image):
    policy = A.preset("strong")
    drawn = policy.sample(np.random.default_rng(5))
    assert drawn == policy.sample(5)
    assert all(name in IDS for name, _ in drawn)
    out, params = policy.apply_with_params(image, np.random.default_rng(5))
    assert params == drawn
    np.testing.assert_array_equal(out, policy.replay(image, drawn))
    np.testing.assert_array_equal(out, policy.apply(image, 5))
    assert A.format_params(drawn).count("\n") == len(drawn) - 1
    assert A.format_params([]) == "(no transform)"


def test_probabilities_are_respected():
    policy = Policy.build({"hflip": True, "rotate": True}, probabilities={"hflip": 0.3, "rotate": 1.0})
    rng = np.random.default_rng(0)
    draws = [dict(policy.sample(rng)) for _ in range(2000)]
    assert all("rotate" in d for d in draws)
    assert 0.26 < sum("hflip" in d for d in draws) / 2000 < 0.34


def test_apply_batch_is_deterministic_under_a_seed(image):
    images = np.stack([image, image[::-1], 255 - image, image])
    before = images.copy()
    policy = A.preset("strong")
    first = policy.apply_batch(images, seed=11)
    assert first.shape == images.shape and first.dtype == np.uint8
    np.testing.assert_array_equal(first, policy.apply_batch(images, seed=11))
    assert not np.array_equal(first, policy.apply_batch(images, seed=12))
    assert not np.array_equal(first[0], first[3])  # same input, own generator per image
    for i in range(len(images)):
        np.testing.assert_array_equal(first[i], policy.apply(images[i], policy.image_rng(i, 11)))
    np.testing.assert_array_equal(images, before)
    np.testing.assert_array_equal(policy.replace(seed=11).apply_batch(images), first)
    np.testing.assert_array_equal(A.preset("none").apply_batch(images, 0), images)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\) uint8"):
        policy.apply_batch(images[0], 0)


def test_preview_matches_apply_batch(image):
    policy = A.DEFAULT_POLICY
    batch = policy.apply_batch(np.stack([image] * 3), seed=4)
    for i, (out, drawn) in enumerate(policy.preview(image, 3, seed=4)):
        np.testing.assert_array_equal(out, batch[i])
        assert drawn


def test_downscale_to():
    big = np.zeros((1000, 2000, 3), np.uint8)
    assert A.downscale_to(big, 512).shape == (256, 512, 3)
    small = np.zeros((100, 50, 3), np.uint8)
    assert A.downscale_to(small, 512) is small


def test_core_imports_neither_streamlit_nor_tensorflow():
    code = (
        "import sys, cvplay.augment, cvplay.samples; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('streamlit', 'tensorflow', 'keras')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_samples():
    assert set(A.FILL_MODES) == {"nearest", "reflect", "wrap", "constant"}
    for name in samples.SAMPLES:
        img = samples.load(name, 64)
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and img.std() > 20
        img[:] = 0  # a copy: the cache is not touched
        assert samples.load(name, 64).std() > 20
    with pytest.raises(ValueError, match="unknown sample"):
        samples.load("lena")


# ---- Keras ImageDataGenerator mapping -----------------------------------------------


def test_classic_is_the_seed_projects_image_data_generator():
    policy = A.preset("classic")
    on = {t.name: (p, s) for t, p, s in policy.enabled()}
    assert list(on) == ["hflip", "rotate", "shift", "shear", "zoom"]
    assert on["hflip"] == (0.5, {})
    assert on["rotate"] == (1.0, {"angle": (-15.0, 15.0)})
    assert on["shift"] == (1.0, {"x": (-0.1, 0.1), "y": (-0.1, 0.1)})
    assert on["shear"] == (1.0, {"angle": (-0.1, 0.1)})  # Keras 3 shear_range is in degrees
    assert on["zoom"][0] == 1.0
    assert on["zoom"][1]["scale"] == pytest.approx((1 / 1.1, 1 / 0.9))
    assert on["zoom"][1]["independent"] is True
    assert policy.fill_mode == "nearest"


def test_image_data_generator_mapping_numbers():
    policy = Policy.from_image_data_generator(
        zoom_range=[0.8, 1.25], vertical_flip=True, fill_mode="constant", cval=30,
        brightness_range=[0.5, 1.5], channel_shift_range=12.0, width_shift_range=0.2, seed=9,
        rescale=None, data_format="channels_last",
    )
    on = {t.name: (p, s) for t, p, s in policy.enabled()}
    assert list(on) == ["vflip", "shift", "zoom", "channel_shift", "brightness"]
    assert on["vflip"] == (0.5, {})
    assert on["shift"][1] == {"x": (-0.2, 0.2), "y": (-0.0, 0.0)}
    assert on["zoom"][1]["scale"] == pytest.approx((0.8, 1.25))
    assert on["brightness"] == (1.0, {"factor": (0.5, 1.5)})
    assert on["channel_shift"] == (1.0, {"intensity": (-12.0, 12.0)})
    assert (policy.fill_mode, policy.fill_value, policy.seed) == ("constant", 30, 9)
    assert Policy.from_image_data_generator().enabled() == []


def test_zoom_draws_follow_keras_distribution():
    """Keras draws its factor z uniformly in [1-r, 1+r]; our scale is 1/z."""
    policy = Policy.from_image_data_generator(zoom_range=0.2)
    rng = np.random.default_rng(1)
    inverse = np.array([1 / dict(policy.sample(rng))["zoom"]["scale_x"] for _ in range(4000)])
    assert inverse.min() >= 0.8 - 1e-9 and inverse.max() <= 1.2 + 1e-9
    assert np.histogram(inverse, bins=4, range=(0.8, 1.2))[0] == pytest.approx([1000] * 4, rel=0.12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width_shift_range": 5}, "pixel shifts"),
        ({"height_shift_range": 1.5}, "pixel shifts"),
        ({"width_shift_range": [0.1, 0.2]}, "only a single number"),
        ({"zoom_range": [1.2]}, "zoom_range"),
        ({"zoom_range": 1.5}, "0 < low"),
        ({"fill_mode": "mirror"}, "fill_mode='mirror'"),
        ({"cval": 0.5}, "cval"),
        ({"featurewise_center": True}, "featurewise_center=True is not supported"),
        ({"rescale": 1 / 255}, r"ignore=\('rescale',\)"),
        ({"zca_whitening": True}, "zca_whitening"),
        ({"interpolation_order": 0}, "interpolation_order"),
        ({"rotation_range": 400}, "rotation_range"),
        ({"colour_jitter": 0.1}, "unknown ImageDataGenerator setting 'colour_jitter'"),
    ],
)
def test_image_data_generator_unsupported_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Policy.from_image_data_generator(**kwargs)


def test_image_data_generator_ignore_skips_preprocessing():
    policy = Policy.from_image_data_generator(ignore=("rescale",), rescale=1 / 255, rotation_range=10)
    assert [t.name for t, _, _ in policy.enabled()] == ["rotate"]


def _scipy_affine_transform(input, matrix, offset=0.0, order=1, mode="nearest", cval=0.0, **_):
    """scipy.ndimage.affine_transform's documented semantics (order 1, mode 'nearest'), in
    NumPy: output[o] = input at ``matrix @ o + offset``, bilinear, edges extended."""
    assert order == 1 and mode == "nearest"
    h, w = input.shape
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ci = matrix[0, 0] * ii + matrix[0, 1] * jj + offset[0]
    cj = matrix[1, 0] * ii + matrix[1, 1] * jj + offset[1]
    i0, j0 = np.floor(ci).astype(int), np.floor(cj).astype(int)
    fi, fj = ci - i0, cj - j0

    def at(i, j):
        return input[np.clip(i, 0, h - 1), np.clip(j, 0, w - 1)]

    return (
        at(i0, j0) * (1 - fi) * (1 - fj) + at(i0 + 1, j0) * fi * (1 - fj)
        + at(i0, j0 + 1) * (1 - fi) * fj + at(i0 + 1, j0 + 1) * fi * fj
    )


@pytest.fixture(scope="module")
def keras_image():
    """Keras 3's legacy ImageDataGenerator module; its scipy warp falls back to a NumPy
    reference of scipy's semantics when scipy is not installed."""
    kimg = pytest.importorskip("keras.src.legacy.preprocessing.image", reason="needs keras (the train extra)")
    try:
        import scipy.ndimage  # noqa: F401
    except ImportError:
        stub = types.SimpleNamespace(affine_transform=_scipy_affine_transform)
        original = kimg.scipy
        kimg.scipy = types.SimpleNamespace(ndimage=types.SimpleNamespace(interpolation=stub))
        yield kimg
        kimg.scipy = original
        return
    yield kimg


@pytest.fixture(scope="module")
def square() -> np.ndarray:
    """Keras centres x on (H-1)/2 (its offset helper swaps axes), so compare on a square image."""
    return cv2.resize(samples.load("scene"), (40, 40), interpolation=cv2.INTER_AREA)


KERAS_CASES = {
    "rotation": ({"theta": 12.0}, [("rotate", {"angle": 12.0})]),
    "tx_moves_columns": ({"tx": 3.5}, [("shift", {"x": -3.5 / 40, "y": 0.0})]),
    "ty_moves_rows": ({"ty": -2.0}, [("shift", {"x": 0.0, "y": 2.0 / 40})]),
    "shear": ({"shear": 10.0}, [("shear", {"angle": 10.0})]),
    "zoom": ({"zx": 1.2, "zy": 0.9}, [("zoom", {"scale_x": 1 / 1.2, "scale_y": 1 / 0.9})]),
    "composed_in_keras_order": (
        {"theta": 10.0, "tx": 2.0, "ty": -3.0, "shear": 5.0, "zx": 1.1, "zy": 0.95},
        [
            ("rotate", {"angle": 10.0}),
            ("shift", {"x": -2.0 / 40, "y": 3.0 / 40}),
            ("shear", {"angle": 5.0}),
            ("zoom", {"scale_x": 1 / 1.1, "scale_y": 1 / 0.95}),
        ],
    ),
    "flip_and_brightness": (
        {"flip_horizontal": True, "brightness": 1.3},
        [("hflip", {}), ("brightness", {"factor": 1.3})],
    ),
}


@pytest.mark.parametrize("case", KERAS_CASES)
def test_matches_keras_apply_transform(case, keras_image, square):
    keras_params, drawn = KERAS_CASES[case]
    generator = keras_image.ImageDataGenerator(data_format="channels_last", fill_mode="nearest")
    expected = generator.apply_transform(square.astype(np.float32), keras_params)
    ours = Policy().replay(square, drawn).astype(np.float32)
    difference = np.abs(ours - np.clip(expected, 0, 255))
    assert difference.mean() < 0.6 and np.percentile(difference, 99) <= 3.0, (difference.mean(), difference.max())


def test_keras_channel_shift_matches(keras_image, square):
    expected = keras_image.apply_channel_shift(square.astype(np.float32), 40.0, channel_axis=2)
    ours = A.get_transform("channel_shift").apply(square, {"intensity": 40.0})
    assert np.abs(ours - expected).max() <= 0.5


def test_keras_height_shift_quirk_is_pinned(keras_image):
    """Keras 3 draws ``tx`` from height_shift_range * rows but applies it along columns
    (documented in Policy.from_image_data_generator). If this starts failing, Keras fixed
    the quirk: revisit the mapping note."""
    generator = keras_image.ImageDataGenerator(height_shift_range=0.25)
    params = generator.get_random_transform((8, 40, 1), seed=3)
    assert params["ty"] == 0 and 0 < abs(params["tx"]) <= 2.0  # 0.25 * 8 rows
    img = np.zeros((8, 40, 1), np.float32)
    img[:, 20] = 1.0
    moved = generator.apply_transform(img, {"tx": 2.0})
    assert moved[:, 18].min() == 1.0  # the column moved left: a horizontal shift


# ---- tf.data ------------------------------------------------------------------------


def test_make_tf_augment_in_a_tf_data_pipeline(image):
    tf = pytest.importorskip("tensorflow", reason="needs tensorflow (the train extra)")
    images = np.stack([image, image[::-1], image[:, ::-1], 255 - image])
    policy = A.preset("strong")
    augment = A.make_tf_augment(policy, seed=3)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(4))).batch(2)
    dataset = dataset.map(lambda x, y: (augment(x), y))
    assert dataset.element_spec[0].shape.as_list() == [None, 48, 64, 3]
    epoch1 = [(x.numpy(), y.numpy()) for x, y in dataset]
    np.testing.assert_array_equal(epoch1[0][0], policy.apply_batch(images[:2], [3, 0]))
    np.testing.assert_array_equal(epoch1[1][0], policy.apply_batch(images[2:], [3, 1]))
    assert epoch1[1][1].tolist() == [2, 3]
    epoch2 = [x.numpy() for x, _ in dataset]
    assert not np.array_equal(epoch2[0], epoch1[0][0])  # a fresh seed per call
    # One float image (0..255) keeps its dtype and shape.
    single = policy.tf_map_fn(seed=1)(tf.constant(image, tf.float32))
    assert single.dtype == tf.float32 and single.shape == image.shape
    np.testing.assert_array_equal(single.numpy(), policy.apply_batch(image[None], [1, 0])[0].astype(np.float32))
