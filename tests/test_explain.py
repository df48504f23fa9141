"""cvplay.explain: occlusion heatmaps mapped back through the card's preprocessing.

The synthetic "spot" models (tests/model_factory.py) answer from ONE known region of their
input, so the region the heatmap must light up is known exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cvplay import explain as E
from cvplay.registry import InputSpec, read_card
from cvplay.runtime import Classifier
from model_factory import write_spot_model

REGION = (4, 0, 4, 4)  # input rows 4..8, columns 0..4 of a 16 x 16 input


@pytest.fixture(scope="module")
def spot_cards(tmp_path_factory):
    directory = tmp_path_factory.mktemp("spot-models")
    write_spot_model(directory, "spot", 16, REGION)
    variants = {
        "stretch": {},
        "crop": {"resize": "center_crop", "crop_fraction": 0.5},
        "thumbnail": {"resize": "center_crop", "crop_fraction": 1.0, "thumbnail_size": [8, 8]},
        "pad": {"resize": "pad"},
        "flip": {"average_flip": True},
    }
    cards = {}
    for name, overrides in variants.items():
        card = json.loads((directory / "spot.json").read_text())
        card.update(name=f"spot-{name}", file="spot.tflite")
        card["input"].update(overrides)
        path = directory / f"spot-{name}.json"
        path.write_text(json.dumps(card))
        cards[name] = path
    return cards


def classifier(cards, name) -> Classifier:
    return Classifier(read_card(cards[name]))


def white(height, width):
    return np.full((height, width, 3), 255, np.uint8)


def cell_centres(grid_shape, image_shape):
    rows, cols = grid_shape
    height, width = image_shape
    return (np.arange(rows) + 0.5) * height / rows, (np.arange(cols) + 0.5) * width / cols


def assert_lights_box(explanation, image_shape, boxes):
    """The hottest cell lies in one of the photo boxes (top, bottom, left, right); cells whose
    centres are more than a patch away from every box stay cold."""
    grid = explanation.grid
    ys, xs = cell_centres(grid.shape, image_shape)
    row, col = explanation.hottest
    assert any(top <= ys[row] < bottom and left <= xs[col] < right for top, bottom, left, right in boxes), (
        explanation.hottest, grid.round(2))
    cell_height, cell_width = image_shape[0] / grid.shape[0], image_shape[1] / grid.shape[1]
    far = np.ones(grid.shape, bool)
    for top, bottom, left, right in boxes:
        near_y = (ys > top - 2.5 * cell_height) & (ys < bottom + 2.5 * cell_height)
        near_x = (xs > left - 2.5 * cell_width) & (xs < right + 2.5 * cell_width)
        far &= ~(near_y[:, None] & near_x[None, :])
    assert far.any()
    assert grid[far].max() <= 0.02 * grid.max(), grid.round(3)


def test_stretch_lights_the_region(spot_cards):
    explanation = E.explain(classifier(spot_cards, "stretch"), white(40, 60))
    assert explanation.label == "spot" and explanation.score > 0.99
    assert explanation.grid.max() > 0.2  # hiding the region (half its brightness) costs "spot" a lot
    # input rows 4..8 of 16 -> photo rows 10..20 of 40; columns 0..4 of 16 -> 0..15 of 60
    assert_lights_box(explanation, (40, 60), [(10, 20, 0, 15)])
    assert (explanation.seen == 1).all()


def test_centre_crop_is_mapped_back_and_the_rest_marked_unseen(spot_cards):
    image = white(64, 96)
    explanation = E.explain(classifier(spot_cards, "crop"), image)
    # the model sees the centred 32 x 32 box at (16, 32), enlarged twice: the region is photo
    # rows 16 + 8..16 + 16, columns 32..40
    assert_lights_box(explanation, image.shape[:2], [(24, 32, 32, 40)])
    ys, xs = cell_centres(explanation.grid.shape, image.shape[:2])
    outside = ~(((ys >= 16) & (ys < 48))[:, None] & ((xs >= 32) & (xs < 64))[None, :])
    assert (explanation.seen[outside] < 1).all() and (explanation.seen[~outside] > 0).all()
    fully_out = explanation.seen == 0
    assert fully_out.sum() > explanation.grid.size / 2
    assert (explanation.grid[fully_out] == 0).all()
    assert "/" in "".join(E.text_grid(explanation))


def test_thumbnail_is_mapped_back(spot_cards):
    image = white(40, 80)
    explanation = E.explain(classifier(spot_cards, "thumbnail"), image)
    # centre crop 40 x 40 at column 20 -> 8 x 8 thumbnail (x5) -> 16 x 16 input (x2.5):
    # input region rows 4..8, columns 0..4 -> photo rows 10..20, columns 20..30
    assert_lights_box(explanation, image.shape[:2], [(10, 20, 20, 30)])
    assert explanation.geometry.view_size == (8, 8)


def test_pad_is_mapped_back(spot_cards):
    image = white(16, 32)
    explanation = E.explain(classifier(spot_cards, "pad"), image)
    # 16 x 32 shrunk to 8 x 16 at input row 4: input rows 4..8, columns 0..4 -> photo rows 0..8, columns 0..8
    assert_lights_box(explanation, image.shape[:2], [(0, 8, 0, 8)])
    assert (explanation.seen == 1).all()


def test_flip_averaging_lights_the_region_and_its_mirror(spot_cards):
    explanation = E.explain(classifier(spot_cards, "flip"), white(40, 60))
    # the mirrored pass reads the region from the other side of the photo
    assert_lights_box(explanation, (40, 60), [(10, 20, 0, 15), (10, 20, 45, 60)])
    np.testing.assert_allclose(explanation.grid, explanation.grid[:, ::-1], atol=1e-3)


def test_another_class_on_request(spot_cards):
    model = classifier(spot_cards, "stretch")
    explanation = E.explain(model, white(40, 60), E.resolve_class(model.labels, "Anything_Else"))
    assert explanation.index == 1 and explanation.label == "anything else"
    assert explanation.score < 0.01
    # hiding the region RAISES "anything else": no drop anywhere
    assert explanation.grid.max() == 0
    # a blurred patch keeps the region's mean, which is all this model reads: no heat at all;
    # the default fill (blur mixed with grey) hides brightness too, so it sees the region
    assert E.explain(model, white(40, 60), fill="blur").grid.max() == 0


@pytest.mark.parametrize(
    "spec",
    [
        InputSpec(size=(32, 32), resize="center_crop", crop_fraction=0.75),
        InputSpec(size=(24, 40), resize="center_crop", crop_fraction=1.0),
        InputSpec(size=(32, 32), resize="center_crop", crop_fraction=0.875, thumbnail_size=(16, 16)),
        InputSpec(size=(32, 32), resize="pad"),
        InputSpec(size=(32, 48), resize="stretch"),
    ],
    ids=["crop", "crop-wide", "thumbnail", "pad", "stretch"],
)
def test_view_geometry_matches_the_preprocessing(spec):
    """A bright square in the photo shows up in the model's view where the geometry says."""
    image = np.zeros((90, 120, 3), np.uint8)
    image[40:50, 50:62] = 255
    view = E.model_view(image, spec).astype(float).sum(axis=2)
    geometry = E.view_geometry(spec, *image.shape[:2])
    assert view.shape == geometry.view_size
    rows, cols = np.indices(view.shape)
    centre = ((rows + 0.5) * view).sum() / view.sum(), ((cols + 0.5) * view).sum() / view.sum()
    photo_row, photo_col = geometry.to_photo(*centre)
    assert abs(photo_row - 45) < 1.5 and abs(photo_col - 56) < 1.5


def test_resolve_class():
    labels = ["great white shark", "tiger_shark", "goldfish"]
    assert E.resolve_class(labels, "Tiger Shark") == 1
    assert E.resolve_class(labels, "2") == 2
    with pytest.raises(E.ExplainError, match="out of range"):
        E.resolve_class(labels, "3")
    with pytest.raises(E.ExplainError, match="did you mean 'goldfish'"):
        E.resolve_class(labels, "goldfsh")


def test_overlay_covers_the_photo_with_a_legend(spot_cards):
    image = white(64, 96)
    explanation = E.explain(classifier(spot_cards, "crop"), image)
    overlay = E.render_overlay(image, explanation)
    assert overlay.dtype == np.uint8 and overlay.shape[1] >= 96 and overlay.shape[0] > 64  # legend band below
    photo = overlay[:64, :96].astype(int)
    # unseen corners darkened (hatched), the hot region coloured, not plain white
    assert photo[2:14, 2:28].mean() < 150
    assert np.abs(photo[26:30, 33:39] - 255).max() > 50


def test_core_imports_no_tensorflow_streamlit_or_matplotlib():
    code = ("import sys, cvplay.explain, cvplay.robustness; "
            "print([m for m in ('tensorflow', 'streamlit', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- command line ----------------------------------------------------------------------------


def run_cli(*argv):
    return subprocess.run([sys.executable, "-m", "cvplay", "explain", *argv], capture_output=True, text=True)


def test_cli_json_contract_and_bad_inputs(spot_cards, tmp_path):
    good = tmp_path / "photo.png"
    Image.fromarray(white(64, 96)).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    out_dir = tmp_path / "overlays"
    result = run_cli("--model", str(spot_cards["crop"]), "--format", "json", "--out", str(out_dir),
                     str(good), str(broken), str(text), str(tmp_path / "missing.png"))
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["input"] for line in lines] == [str(good), str(broken), str(text), str(tmp_path / "missing.png")]
    first = lines[0]
    assert list(first) == ["input", "label", "index", "score", "grid", "error"]
    assert first["error"] is None and first["label"] == "spot" and first["index"] == 0 and first["score"] > 0.99
    grid = np.array(first["grid"])
    assert grid.ndim == 2 and grid.shape == (16, 24)  # cells of 32 / 8 = 4 photo pixels over 64 x 96
    assert grid.min() >= 0 and grid.max() <= 1
    for line in lines[1:]:
        assert line["error"] and line["grid"] is None and line["label"] is None
    assert "not a" in lines[2]["error"].lower() or "text" in lines[2]["error"].lower()
    assert sorted(p.name for p in out_dir.iterdir()) == ["photo-heatmap.png"]


def test_cli_grid_follows_exif_orientation(spot_cards, tmp_path):
    photo = Image.fromarray(white(20, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    path = tmp_path / "rotated.jpg"
    photo.save(path, exif=exif)
    result = run_cli("--model", str(spot_cards["crop"]), "--format", "json", str(path))
    assert result.returncode == 0, result.stderr
    grid = np.array(json.loads(result.stdout)["grid"])
    assert grid.shape[0] > grid.shape[1]  # shown 40 high and 20 wide


def test_cli_class_option_and_usage_errors(spot_cards, tmp_path):
    good = tmp_path / "photo.png"
    Image.fromarray(white(40, 60)).save(good)
    by_label = run_cli("--model", str(spot_cards["stretch"]), "--class", "anything else", "--format", "json", str(good))
    assert by_label.returncode == 0 and json.loads(by_label.stdout)["index"] == 1
    table = run_cli("--model", str(spot_cards["stretch"]), str(good))
    assert table.returncode == 0 and "spot" in table.stdout and "@" in table.stdout
    unknown = run_cli("--model", str(spot_cards["stretch"]), "--class", "sopt", str(good))
    assert unknown.returncode == 2 and "did you mean 'spot'" in unknown.stderr and "Traceback" not in unknown.stderr
    missing_model = run_cli("--model", str(tmp_path / "nothing.tflite"), str(good))
    assert missing_model.returncode == 2 and "Traceback" not in missing_model.stderr


@pytest.mark.shared
@pytest.mark.slow
def test_pointing_game_on_pasted_photos(shared, capsys):
    """The 200 shared photos pasted on plain canvases at seeded places: the hottest cell of the
    true class's heatmap falls inside the photo at least 80% of the time."""
    from cvplay.runtime import create_classifier
    from pointing_game import play, shared_photos

    if not (shared / "data" / "imagenet-samples" / "labels.json").is_file():
        pytest.skip("../shared/data/imagenet-samples is absent")
    result = play(create_classifier("imagenet-lite0"), shared_photos(shared), seed=0)
    with capsys.disabled():
        print(f"\npointing game: {result['hits']}/{result['n']} = {result['rate']:.1%} hits "
              f"(chance {result['chance']:.1%}), median {result['median_s']:.2f} s per canvas")
    assert result["rate"] >= 0.8
