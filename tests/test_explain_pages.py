"""The heatmap toggles (Classify, CIFAR-100), the Augmentation page's model captions and the Train
page's robustness panel, under Streamlit's AppTest with the tiny colour models."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from model_factory import solid, write_colour_model

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120


def png(colour, size=(40, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(solid(colour, *size)).save(buffer, format="PNG")
    return buffer.getvalue()


def image_captions(at: AppTest) -> list[str]:
    captions = []
    for element in at.get("image"):
        captions += element.captions
    return captions


def test_classify_heatmap_toggle_and_class_picker(user_models):
    at = AppTest.from_file(str(ROOT / "app_pages" / "classify.py"), default_timeout=TIMEOUT).run()
    at.selectbox(key="classify-model").set_value("colour").run()
    at.file_uploader(key="classify-upload").set_value(
        [("red.png", png((240, 5, 5)), "image/png"), ("blue.png", png((0, 0, 250)), "image/png")]).run()
    assert not at.exception
    assert len(image_captions(at)) == 2 and not any(c.startswith("Heatmap") for c in image_captions(at))
    at.toggle(key="classify-heatmaps").set_value(True).run()
    assert not at.exception
    pickers = [at.selectbox(key=f"classify-heatmap-{i}") for i in range(2)]
    assert [picker.value for picker in pickers] == [0, 2]  # the top class by default: red, blue
    assert pickers[0].options[0].startswith("red (")
    heatmaps = [c for c in image_captions(at) if c.startswith("Heatmap")]
    assert heatmaps[0].startswith("Heatmap for red") and heatmaps[1].startswith("Heatmap for blue")
    pickers[0].set_value(1).run()
    assert not at.exception
    assert [c for c in image_captions(at) if c.startswith("Heatmap")][0].startswith("Heatmap for green")
    at.toggle(key="classify-heatmaps").set_value(False).run()
    assert not any(c.startswith("Heatmap") for c in image_captions(at))


def test_cifar_heatmap_toggle(user_models):
    write_colour_model(user_models, "cifar-thumbs", input={"size": [8, 8], "resize": "center_crop", "mean": 0.0,
                                                          "std": 255.0, "thumbnail_size": [4, 4]},
                       coarse_labels=["warm", "cool"], fine_to_coarse=[0, 1, 1])
    at = AppTest.from_file(str(ROOT / "app_pages" / "cifar100.py"), default_timeout=TIMEOUT).run()
    at.selectbox(key="cifar-model").set_value("cifar-thumbs").run()
    at.file_uploader(key="cifar-upload").set_value([("green.png", png((5, 240, 5)), "image/png")]).run()
    at.toggle(key="cifar-heatmaps").set_value(True).run()
    assert not at.exception
    assert at.selectbox(key="cifar-heatmap-0").value == 1
    assert any(c.startswith("Heatmap for green") for c in image_captions(at))


def test_augmentation_page_labels_each_sample(user_models):
    at = AppTest.from_file(str(ROOT / "app_pages" / "augment.py"), default_timeout=TIMEOUT).run()
    at.toggle(key="augment-model-says").set_value(True).run()
    at.selectbox(key="augment-model-says-model").set_value("colour").run()
    assert not at.exception
    captions = image_captions(at)
    assert captions[0].startswith("Original: ")
    samples = [c for c in captions if c.startswith("Sample ")]
    count = at.slider(key="augment-count").value
    assert len(samples) == count and all(c.endswith(("same)", "changed)")) for c in samples)
    assert any("changes its answer on" in str(c.value) for c in at.caption)


@pytest.fixture
def colour_folder(tmp_path):
    rng = np.random.default_rng(1)
    for channel, name in enumerate(["red", "green", "blue"]):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(5):
            colour = np.full(3, 60) + rng.integers(0, 40, 3)
            colour[channel] = 230
            Image.fromarray(solid(tuple(int(c) for c in colour), 24, 24)).save(tmp_path / "data" / name / f"{i}.png")
    return tmp_path / "data"


def robustness_panel_app(card_path: str, data: str) -> None:
    from types import SimpleNamespace

    from cvplay_ui.robustness import robustness_panel

    robustness_panel(SimpleNamespace(card_path=card_path, metrics_split="val"), data)


def test_train_page_robustness_panel(user_models, colour_folder):
    at = AppTest.from_function(robustness_panel_app, args=(str(user_models / "colour.json"), str(colour_folder)),
                               default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.metric[0].label == "Clean top-1"
    table = at.dataframe[0].value
    assert len(table) == 7 and "Darker" in list(table["distortion"])
    assert at.get("download_button")[0].label == "Robustness report (CSV)"


def test_train_page_robustness_panel_without_data(user_models):
    at = AppTest.from_function(robustness_panel_app, args=(str(user_models / "colour.json"), ""),
                               default_timeout=TIMEOUT).run()
    assert not at.exception and "training images again" in str(at.info[0].value)
