"""The Runs page under AppTest, on run folders written here (cards and reports as the trainer
writes them; the .tflite files are placeholders, which the table and comparisons do not open)."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app_pages" / "runs.py")
LABELS = ["blue", "green", "red"]


def texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "code")
    return "\n".join(str(element.value) for kind in kinds for element in getattr(at, kind))


def write_data(folder: Path, per_class: int = 10) -> Path:
    rng = np.random.default_rng(0)
    for name, colour in zip(LABELS, [(30, 40, 220), (30, 200, 40), (220, 30, 30)]):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.integers(-30, 30, (24, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    return folder


def write_run(folder: Path, name: str, backbone: str, top1: float, data: Path, date: str, epochs: int = 3) -> Path:
    from cvplay.datasets import fingerprint, load_dataset

    folder.mkdir(parents=True)
    (folder / f"{name}.tflite").write_bytes(b"placeholder")
    dataset = load_dataset(str(data), min_images_per_class=2)
    card = {
        "name": name, "task": "classify", "file": f"{name}.tflite", "labels": LABELS, "output": "probabilities",
        "input": {"size": [64, 64], "resize": "center_crop", "crop_fraction": 1.0, "mean": [0, 0, 0], "std": [1, 1, 1]},
        "metrics": [{"name": "top1", "value": top1}, {"name": "top5", "value": 1.0}],
        "provenance": {"backbone": backbone, "training_data": str(data), "training_time_s": 12.5, "date": date,
                       "epochs": {"head": epochs}, "command": f"python -m cvplay train --data {data}",
                       "split": {"val_fraction": 0.2, "test_fraction": 0.0, "seed": 0, "images": len(dataset),
                                 "data_fingerprint": fingerprint(dataset)}},
        "augmentation": "none",
    }
    (folder / f"{name}.json").write_text(json.dumps(card))
    with open(folder / "history.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "accuracy", "loss", "val_accuracy", "val_loss"])
        for epoch in range(epochs):
            writer.writerow([epoch, 0.5 + 0.1 * epoch, 1.0 - 0.2 * epoch, top1 - 0.1 * (epochs - 1 - epoch), 0.9 - 0.1 * epoch])
    with open(folder / "confusion_matrix.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *LABELS])
        for i, label in enumerate(LABELS):
            writer.writerow([label, *[2 if i == j else 0 for j in range(3)]])
    with open(folder / "per_class.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", "precision", "recall", "f1", "support"])
        for label in LABELS:
            writer.writerow([label, top1, top1, top1, 2])
    return folder


@pytest.fixture
def two_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("CVPLAY_MODELS", str(tmp_path / "models"))
    monkeypatch.delenv("CVPLAY_RUNS", raising=False)
    data = write_data(tmp_path / "colours")
    write_run(tmp_path / "models" / "colours-lite0", "colours-lite0", "efficientnet-lite0", 0.95, data,
              "2026-12-02T01:00:00")
    write_run(tmp_path / "models" / "colours-b0", "colours-b0", "efficientnet-b0", 0.85, data, "2026-12-01T01:00:00")
    return tmp_path, data


def test_no_runs_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("CVPLAY_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr("cvplay.registry.SHIPPED_MODELS_DIR", tmp_path / "none")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert "No training runs yet" in texts(at)


def test_table_comparison_and_download(two_runs):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    mine = table[table["run"].isin(["colours-lite0", "colours-b0"])].set_index("run")
    assert mine.loc["colours-lite0", "val top-1"] == 0.95 and mine.loc["colours-b0", "backbone"] == "efficientnet-b0"
    assert at.multiselect(key="runs-compare").value == ["colours-lite0", "colours-b0"]  # newest first
    assert len(at.get("vega_lite_chart")) == 2  # accuracy and loss, both runs on each
    frames = [element.value for element in at.dataframe]
    confusion = [f for f in frames if list(f.columns) == LABELS]
    assert len(confusion) == 2 and all(int(f.values.trace()) == 6 for f in confusion)
    per_class = [f for f in frames if set(f.columns) == {"colours-lite0", "colours-b0"}]
    assert per_class and per_class[0].loc["red", "colours-b0"] == 0.85
    at.multiselect(key="runs-compare").set_value(["colours-lite0"]).run()
    assert "Pick at least two runs" in texts(at)
    buttons = at.get("download_button")
    assert len(buttons) == 1


def test_scratch_comparison_refuses_changed_data_with_a_reason(two_runs):
    pytest.importorskip("tensorflow")
    tmp_path, data = two_runs
    (data / "red" / "0.png").unlink()
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.button(key="runs-scratch").click().run()
    assert not at.exception
    assert "has changed since colours-lite0 was trained" in texts(at)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_scratch_comparison_trains_the_small_cnn_and_shows_both(two_runs):
    pytest.importorskip("tensorflow")
    tmp_path, data = two_runs
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.button(key="runs-scratch").click().run()
    assert not at.exception
    deadline = time.time() + 240
    while "Trained from scratch on the same data and split" not in texts(at) and time.time() < deadline:
        time.sleep(2)
        at.run()
        assert not at.exception and not at.error, texts(at)
    assert "colours-lite0-vs-scratch-cnn" in texts(at)
    scratch_card = json.loads((tmp_path / "runs" / "colours-lite0-vs-scratch-cnn" /
                               "colours-lite0-vs-scratch-cnn.json").read_text())
    assert scratch_card["provenance"]["backbone"] == "small-cnn"
    assert scratch_card["provenance"]["split"]["data_fingerprint"] == json.loads(
        (tmp_path / "models" / "colours-lite0" / "colours-lite0.json").read_text())["provenance"]["split"]["data_fingerprint"]
    at.run()
    assert at.multiselect(key="runs-compare").value == ["colours-lite0", "colours-lite0-vs-scratch-cnn"]
    # The bundle of the new run holds its model and the script.
    from cvplay.bundle import bundle_bytes
    from cvplay.runs import read_run

    run = read_run(tmp_path / "runs" / "colours-lite0-vs-scratch-cnn" / "colours-lite0-vs-scratch-cnn.json")
    names = zipfile.ZipFile(io.BytesIO(bundle_bytes(run))).namelist()
    assert "colours-lite0-vs-scratch-cnn/predict.py" in names and "colours-lite0-vs-scratch-cnn/model.keras" in names
