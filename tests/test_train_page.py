"""The Train page under Streamlit's AppTest."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app_pages" / "train.py")
TIMEOUT = 60


def texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "code")
    return "\n".join(str(element.value) for kind in kinds for element in getattr(at, kind))


def test_page_shows_install_instructions_without_tensorflow(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args, **kwargs: None if name == "tensorflow" else real(name, *args, **kwargs))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert 'pip install -e ".[train]"' in texts(at)
    assert not at.button  # no Start button


def test_page_trains_from_a_folder_path(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    models = tmp_path / "models"
    monkeypatch.setenv("CVPLAY_MODELS", str(models))
    rng = np.random.default_rng(0)
    data = tmp_path / "colours"
    for name, colour in {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}.items():
        (data / name).mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(np.array(colour) + rng.integers(-30, 30, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(data / name / f"{i}.png")

    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.button(key="train-start") and at.selectbox(key="train-backbone")
    at.radio(key="train-source").set_value("Local folder path").run()
    at.text_input(key="train-path").input(str(data))
    at.selectbox(key="train-backbone").set_value("small-cnn").run()
    at.selectbox(key="train-size-small-cnn").set_value(32)
    at.number_input(key="train-epochs").set_value(3)
    at.selectbox(key="train-augment").set_value("none")
    at.button(key="train-start").click().run()
    assert not at.exception
    deadline = time.time() + 240  # the run's own process imports TensorFlow first
    while "Validation top-1" not in [m.label for m in at.metric] and time.time() < deadline:
        time.sleep(1)
        at.run()
        assert not at.exception
    assert not at.error, texts(at)
    labels = [m.label for m in at.metric]
    assert "Validation top-1" in labels
    assert "colours-small-cnn" in texts(at)
    assert (models / "colours-small-cnn" / "colours-small-cnn.tflite").is_file()
    download_labels = sorted(button.label for button in at.get("download_button"))
    assert download_labels == sorted([
        "Model (.tflite)", "Keras model (.keras)", "Model card (JSON)", "Download everything (.zip)",
        "Robustness report (CSV)",
    ]), download_labels
    assert "Clean top-1" in labels  # the new model's robustness report, after the results
    from cvplay.registry import list_models

    assert "colours-small-cnn" in [card.name for card in list_models()]


def test_page_start_without_data_says_what_is_missing():
    pytest.importorskip("tensorflow")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.button(key="train-start").click().run()
    assert not at.exception
    assert any("Give the images first" in str(e.value) for e in at.error)


def test_a_run_from_another_tab_is_listed_and_can_be_stopped(monkeypatch):
    """Closing the tab must not orphan a run: a page opened later shows it and stops it."""
    pytest.importorskip("tensorflow")
    from test_jobs import fake_train

    from cvplay.training import jobs

    run = jobs.start_run({"epochs": 600, "epoch_s": 0.1}, target=fake_train, label="from-a-closed-tab")
    try:
        at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
        assert not at.exception
        assert "Training in progress on this server" in [s.value for s in at.subheader]
        assert "from-a-closed-tab" in texts(at)
        assert at.button(key="train-start").disabled  # one run at a time on this server
        at.button(key=f"train-stop-{run.id}").click().run()
        assert not at.exception
        assert run.wait(60)
        assert run.snapshot()["state"] == "stopped" and run.snapshot()["result"].stopped
        at.run()
        assert not at.button(key="train-start").disabled
    finally:
        run.kill()
        run.wait(60)


def test_steps_after_the_last_epoch_have_their_own_progress():
    """Issue 12, item 5: saving, converting and measuring show which step runs and for how long."""
    pytest.importorskip("tensorflow")
    from test_jobs import finishing_train

    from cvplay.training import jobs

    run = jobs.start_run({}, target=finishing_train, label="finishing")
    try:
        deadline = time.time() + 60
        while (run.snapshot()["step"] is None) and time.time() < deadline:
            time.sleep(0.1)
        at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
        assert not at.exception
        bars = [element.proto.text for element in at.get("progress")]
        assert "training done" in bars
        assert any(text.startswith("After training, step 2 of 4: converting to demo.tflite (fp32)") for text in bars), bars
        values = [element.proto.value for element in at.get("progress")]
        assert 25 in values  # one of four steps done
    finally:
        run.stop()
        run.wait(60)
