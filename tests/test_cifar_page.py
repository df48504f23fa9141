"""The CIFAR-100 page and its test-image gallery (cvplay.gallery), on tiny colour models and data."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from model_factory import solid, write_colour_model

from cvplay import gallery
from cvplay.registry import read_card
from cvplay.runtime import create_classifier

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app_pages" / "cifar100.py")
COLOURS = np.array([(230, 20, 20), (20, 220, 30), (20, 30, 230)])  # the colour model's red, green, blue
CARD_EXTRAS = {"coarse_labels": ["warm", "cool"], "fine_to_coarse": [0, 1, 1]}


def colour_npz(path: Path, per_class: int = 10, wrong_blue: int = 0) -> Path:
    """Noisy 16x16 colour squares labelled red/green/blue; the last ``wrong_blue`` blue ones are red."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), per_class)
    x = np.clip(COLOURS[labels][:, None, None, :] + rng.integers(-15, 15, (len(labels), 16, 16, 3)), 0, 255)
    if wrong_blue:
        labels = labels.copy()
        labels[-wrong_blue:] = 0
    np.savez(path, x=x.astype(np.uint8), fine=labels, coarse=np.array([0, 1, 1])[labels],
             class_names=np.array(["red", "green", "blue"]))
    return path


def png(colour, size=(40, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(solid(colour, *size)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def cifar_models(user_models):
    write_colour_model(user_models, "cifar-colour", **CARD_EXTRAS)
    write_colour_model(user_models, "cifar-thumbs", input={"size": [8, 8], "resize": "center_crop", "mean": 0.0,
                                                          "std": 255.0, "thumbnail_size": [4, 4]}, **CARD_EXTRAS)
    return user_models


# --- the gallery core ---------------------------------------------------------------------------


def test_gallery_on_another_source_uses_every_image_with_a_caveat(cifar_models, tmp_path):
    from cvplay.datasets import load_cifar100

    source = colour_npz(tmp_path / "test.npz", wrong_blue=2)
    card = read_card(cifar_models / "cifar-colour.json")
    images = gallery.gallery_source(card, load_cifar100(source, subset="test"), source)
    assert len(images.dataset) == 30 and not images.held_out and "may include" in images.caveat
    classifier = create_classifier(str(cifar_models / "cifar-colour.json"))
    score = gallery.RunningScore()
    first = gallery.draw(images, classifier, 20, seed=1)
    score.add(first)
    second = gallery.draw(images, classifier, 20, seed=2, exclude=score.shown)
    assert len(first) == 20 and len(second) == 10  # only the 10 images not shown yet
    assert not {item.index for item in first} & {item.index for item in second}
    score.add(second)
    assert score.seen == 30 and score.correct == 28 and score.accuracy == pytest.approx(28 / 30)
    wrong = [item for item in first + second if not item.correct]
    assert {(item.true_label, item.predicted_label) for item in wrong} == {("red", "blue")}


def test_gallery_on_the_training_data_keeps_to_the_held_out_split(cifar_models, tmp_path):
    from cvplay.datasets import load_cifar100
    from cvplay.evaluate import split_indices

    source = colour_npz(tmp_path / "pool.npz")
    split = {"val_fraction": 0.2, "test_fraction": 0.2, "seed": 5, "images": 30}
    write_colour_model(cifar_models, "trained", provenance={"training_data": str(source), "split": split}, **CARD_EXTRAS)
    card = read_card(cifar_models / "trained.json")
    dataset = load_cifar100(source, subset="test")
    images = gallery.gallery_source(card, dataset, source)
    assert images.held_out and not images.caveat and "held-out test split" in images.description
    expected = split_indices(dataset.labels, "test", 0.2, 5, test_fraction=0.2)
    assert np.array_equal(images.dataset.images, dataset.images[expected]) and len(images.dataset) == 6
    write_colour_model(cifar_models, "stale", provenance={"training_data": str(source), "split": {**split, "images": 31}},
                       **CARD_EXTRAS)
    with pytest.raises(ValueError, match="different number of images"):
        gallery.gallery_source(read_card(cifar_models / "stale.json"), dataset, source)


def test_gallery_recognises_the_training_data_by_fingerprint_wherever_it_lies(cifar_models, tmp_path):
    import shutil

    from cvplay.datasets import fingerprint, load_cifar100

    source = colour_npz(tmp_path / "pool.npz")
    moved = tmp_path / "elsewhere" / "copy.npz"
    moved.parent.mkdir()
    shutil.copy(source, moved)
    dataset = load_cifar100(moved, subset="test")
    split = {"val_fraction": 0.2, "test_fraction": 0.2, "seed": 5, "images": 30, "data_fingerprint": fingerprint(dataset)}
    write_colour_model(cifar_models, "printed", provenance={"training_data": "/gone/pool.npz", "split": split},
                       **CARD_EXTRAS)
    images = gallery.gallery_source(read_card(cifar_models / "printed.json"), dataset, moved)
    assert images.held_out and len(images.dataset) == 6
    other = colour_npz(tmp_path / "other.npz", per_class=11)
    assert fingerprint(load_cifar100(other)) != split["data_fingerprint"]
    assert not gallery.gallery_source(read_card(cifar_models / "printed.json"), load_cifar100(other), other).held_out


def test_gallery_needs_classes_the_model_knows(cifar_models, tmp_path):
    from cvplay.datasets import load_cifar100

    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros((4, 8, 8, 3), np.uint8), fine=np.array([0, 0, 1, 1]), class_names=np.array(["cat", "dog"]))
    with pytest.raises(ValueError, match="none of the dataset's classes"):
        gallery.gallery_source(read_card(cifar_models / "cifar-colour.json"), load_cifar100(path), path)


# --- the page -------------------------------------------------------------------------------------


@pytest.fixture
def page(cifar_models, tmp_path, monkeypatch):
    monkeypatch.setenv("CVPLAY_CIFAR100", str(colour_npz(tmp_path / "test.npz", wrong_blue=2)))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    at.selectbox(key="cifar-model").set_value("cifar-colour").run()
    assert not at.exception
    return at


def test_page_lists_only_models_with_superclasses(page):
    options = page.selectbox(key="cifar-model").options  # shown by title
    assert "Colour test model (cifar-colour)" in options and "Colour test model (cifar-thumbs)" in options
    assert "Colour test model (colour)" not in options


def test_photo_gets_classes_and_superclasses(page):
    page.file_uploader(key="cifar-upload").set_value(
        [("red.png", png((240, 10, 10)), "image/png"), ("junk.png", b"not a png", "image/png")]).run()
    assert not page.exception
    assert [str(m.value) for m in page.markdown if str(m.value).startswith("### ")] == ["### red"]
    assert any("super-class **warm**" in str(c.value) for c in page.caption)
    assert len(page.error) == 1 and "junk.png" in str(page.error[0].value)
    fine, coarse = page.dataframe[0].value, page.dataframe[1].value
    assert list(fine["class"])[0] == "red" and len(fine) == 3  # top-k is clamped to the 3 classes
    assert list(coarse["super-class"]) == ["warm", "cool"]
    assert coarse["probability"].sum() == pytest.approx(1.0, abs=1e-5)


def test_gallery_shows_true_and_predicted_labels_and_a_running_accuracy(page):
    captions = [str(c.value) for c in page.caption]
    assert any("may include some the model was trained on" in c for c in captions)
    marks = (":green[:material/check_circle:]", ":red[:material/cancel:]")
    shown = [c for c in captions if c.startswith(marks)]
    assert len(shown) == 12
    first = page.metric[0]
    assert first.label == "Running accuracy"
    page.button(key="cifar-gallery-new").click().run()
    assert not page.exception
    shown_now = [str(c.value) for c in page.caption if str(c.value).startswith(marks)]
    assert len(shown_now) == 12 and shown_now != shown
    # 24 images drawn from 30, two of which are labelled red but blue: the score counts both draws.
    assert "of 24 test images" in page.metric[0].help


def test_thumbnail_models_show_what_the_model_sees(page):
    page.selectbox(key="cifar-model").set_value("cifar-thumbs").run()
    page.file_uploader(key="cifar-upload").set_value([("blue.png", png((0, 0, 250)), "image/png")]).run()
    assert not page.exception
    assert any("4×4 thumbnails" in str(i.value) for i in page.info)
    assert "### blue" in [str(m.value) for m in page.markdown]
    captions = [caption for image in page.get("image") for caption in image.captions]
    assert captions[:2] == ["blue.png", "what the model sees"]


def test_no_test_set_says_how_to_get_one(cifar_models, monkeypatch, tmp_path):
    monkeypatch.setenv("CVPLAY_SHARED", str(tmp_path / "no-shared"))
    monkeypatch.delenv("CVPLAY_CIFAR100", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CVPLAY_DATA", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    message = next(str(c.value) for c in at.caption if "No CIFAR-100 test set is available here" in str(c.value))
    # cvplay's own command, not Keras (the app's install has none), and where it puts the archive.
    assert "`python -m cvplay data cifar100`" in message and "`~/.cvplay/data`" in message
    assert "keras" not in message.lower()


def test_a_broken_test_set_gets_a_warning_not_a_traceback(cifar_models, monkeypatch, tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    monkeypatch.setenv("CVPLAY_CIFAR100", str(broken))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="cifar-model").set_value("cifar-colour").run()
    assert not at.exception
    assert any("cannot be shown" in str(w.value) and "broken.npz" in str(w.value) for w in at.warning)
