"""The Train page's "Collect with the camera" mode under Streamlit's AppTest.

AppTest cannot drive a camera or an upload widget: photos are added through the same store the
widgets write to (the browser test, tests/test_collect_browser.py, takes them with a fake camera).
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import streamlit_webrtc  # isort: skip  (before TensorFlow: aiortc's pylibsrtp segfaults when loaded after it)

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cvplay.datastore import DatasetStore

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app_pages" / "train.py")
TIMEOUT = 60
COLLECT = "Collect with the camera"


def texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "code")
    return "\n".join(str(element.value) for kind in kinds for element in getattr(at, kind))


class StreamerStub:
    """Stands in for streamlit_webrtc.webrtc_streamer (AppTest has no browser): records the
    frame callback, and says the stream is playing when told so."""

    def __init__(self):
        self.callback = None
        self.playing = False

    def __call__(self, **kwargs):
        self.callback = kwargs["video_frame_callback"]
        return SimpleNamespace(state=SimpleNamespace(playing=self.playing, signalling=False))


class FakeFrame:
    def __init__(self, value: int):
        self.pixels = np.full((48, 64, 3), value, dtype=np.uint8)

    def to_ndarray(self, format: str):
        assert format == "rgb24"
        return self.pixels


@pytest.fixture
def streamer(monkeypatch) -> StreamerStub:
    stub = StreamerStub()
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", stub)
    return stub


@pytest.fixture
def folders(tmp_path, monkeypatch, streamer) -> Path:
    monkeypatch.setenv("CVPLAY_MODELS", str(tmp_path / "models"))
    monkeypatch.delenv("CVPLAY_DATASETS", raising=False)
    return tmp_path


def open_collect(at: AppTest) -> AppTest:
    pytest.importorskip("tensorflow")
    at.run()
    assert not at.exception
    at.radio(key="train-source").set_value(COLLECT).run()
    assert not at.exception
    return at


def test_create_a_dataset_add_and_delete_photos_and_survive_a_restart(folders, streamer):
    at = open_collect(AppTest.from_file(PAGE, default_timeout=TIMEOUT))
    assert at.selectbox(key="train-collect-dataset").value == "New dataset…"
    at.text_input(key="train-collect-new-name").input("desk")
    at.text_input(key="train-collect-new-classes").input("mug, pen, ../evil")
    at.button[[b.label for b in at.button].index("Create the dataset")].click().run()
    assert not at.exception
    assert "cannot be a folder name" in texts(at)  # nothing created
    assert DatasetStore().names() == []
    at.text_input(key="train-collect-new-classes").input("mug, pen")
    at.button[[b.label for b in at.button].index("Create the dataset")].click().run()
    assert not at.exception
    store = DatasetStore()
    assert store.root == folders / "datasets" and store.names() == ["desk"]
    assert at.selectbox(key="train-collect-dataset").value == "desk"
    assert "Add at least 2 photos to mug, pen" in texts(at)
    assert at.radio(key="train-collect-target").options == ["mug", "pen"]

    dataset = store.open("desk")
    rng = np.random.default_rng(0)
    for name in ("mug", "pen"):
        for _ in range(3):
            dataset.add_photo(name, rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    at.run()
    assert "desk: 6 photo(s) in 2 class(es)" in texts(at)
    assert "ready to train" in texts(at)
    deletes = [b for b in at.button if b.label == ":material/delete:"]
    assert len(deletes) == 6
    deletes[0].click().run()
    assert not at.exception
    assert dataset.counts() == {"mug": 2, "pen": 3}

    at.text_input(key="train-collect-add-class-name").input("phone")
    at.button(key="train-collect-add-class").click().run()
    assert dataset.classes() == ["mug", "pen", "phone"]
    assert at.radio(key="train-collect-target").value == "phone"
    assert "Add at least 2 photos to phone" in texts(at)
    at.button(key="train-collect-delclass-phone").click().run()
    [b for b in at.button if b.label == "Delete"][0].click().run()
    assert dataset.classes() == ["mug", "pen"]

    # A burst: the live stream's frames go to the chosen class while it runs.
    at.radio(key="train-collect-target").set_value("pen").run()
    assert at.button(key="train-collect-burst-start").disabled  # camera off
    streamer.playing = True
    at.run()
    at.number_input(key="train-collect-burst-count").set_value(4)
    at.slider(key="train-collect-burst-rate").set_value(15.0)
    at.button(key="train-collect-burst-start").click().run()
    assert not at.exception
    for value in range(200):
        streamer.callback(FakeFrame(value))
        if dataset.counts()["pen"] == 7:
            break
        time.sleep(0.01)
    assert dataset.counts() == {"mug": 2, "pen": 7}
    at.run()
    assert "done: 4 photos of pen saved" in texts(at)

    # A restart: a brand-new session (and process state) finds the dataset as it was.
    again = open_collect(AppTest.from_file(PAGE, default_timeout=TIMEOUT))
    assert again.selectbox(key="train-collect-dataset").value == "desk"
    assert "desk: 9 photo(s) in 2 class(es)" in texts(again)


def test_train_on_a_collected_dataset_then_try_it_live(folders):
    dataset = DatasetStore().create("colours", ["red", "blue"])
    rng = np.random.default_rng(1)
    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 40, 220))):
        for _ in range(6):
            pixels = np.clip(np.array(colour) + rng.integers(-30, 30, (24, 24, 3)), 0, 255).astype(np.uint8)
            dataset.add_photo(name, pixels)
    at = open_collect(AppTest.from_file(PAGE, default_timeout=TIMEOUT))
    assert at.selectbox(key="train-collect-dataset").value == "colours"
    at.selectbox(key="train-backbone").set_value("small-cnn").run()
    at.selectbox(key="train-size-small-cnn").set_value(32)
    at.number_input(key="train-epochs").set_value(2)
    at.selectbox(key="train-augment").set_value("none")
    at.button(key="train-start").click().run()
    assert not at.exception
    deadline = time.time() + 120
    while "Validation top-1" not in [m.label for m in at.metric] and time.time() < deadline:
        time.sleep(1)
        at.run()
        assert not at.exception
    assert not at.error, texts(at)
    assert (folders / "models" / "colours-small-cnn" / "colours-small-cnn.tflite").is_file()
    assert "webcam?classifier=colours-small-cnn" in texts(at)
