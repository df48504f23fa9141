"""The trainer and ``python -m cvplay train`` on tiny self-made datasets (training extra)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")

from cvplay.cli import main  # noqa: E402

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def write_folder(root: Path, per_class: int = 12, size: int = 32, classes=COLOURS, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name, colour in classes.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-40, 40, (size, size, 3))
            Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The CLI trains small-cnn on 3 colours x 12 images (+ one unreadable file)."""
    root = tmp_path_factory.mktemp("train")
    data = write_folder(root / "colours")
    (data / "red" / "broken.png").write_bytes(b"not an image")
    out = root / "run"
    return data, out


def test_cli_train_small_cnn_outputs_predict_and_evaluate(small_run, capsys):
    data, out = small_run
    code = main(["train", "--data", str(data), "--backbone", "small-cnn", "--epochs", "4", "--image-size", "32",
                 "--augment", "none", "--out", str(out), "--name", "colours"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1 image file(s) could not be read and were skipped" in captured.out
    assert "training steps:" in captured.out and "images/s" in captured.out
    for name in ("model.keras", "colours.tflite", "colours.json", "history.csv", "curves.png",
                 "confusion_matrix.csv", "confusion_matrix.png", "per_class.csv"):
        assert (out / name).is_file(), name
    card = json.loads((out / "colours.json").read_text())
    assert card["task"] == "classify" and card["labels"] == ["blue", "green", "red"]
    assert card["input"]["size"] == [32, 32]
    assert {m["name"] for m in card["metrics"]} == {"top1", "top5"}
    assert all("train" in m["command"] and "validation split" in m["data"] for m in card["metrics"])
    assert card["provenance"]["backbone"] == "small-cnn" and card["augmentation"]["format"] == "cvplay.augment/v1"
    assert card["metrics"][0]["value"] >= 0.8  # chance is 1/3

    code = main(["predict", "--model", str(out / "colours.tflite"), "--format", "json", str(data / "blue" / "3.png")])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 0 and json.loads(line)["top"][0]["label"] == "blue"

    code = main(["evaluate", "--model", str(out / "colours.tflite"), "--data", str(data), "--format", "json"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert report["n"] == 6 and report["top1"] == card["metrics"][0]["value"]  # same split as training
    assert len(report["per_class"]) == 3 and np.array(report["confusion"]).sum() == 6


def test_lite0_uses_the_feature_cache_without_augmentation(tmp_path):
    from cvplay.training.trainer import TrainConfig, train

    data = write_folder(tmp_path / "colours", per_class=8)
    events = []
    result = train(
        TrainConfig(data=str(data), out=str(tmp_path / "run"), backbone="efficientnet-lite0", image_size=64,
                    epochs=2, fine_tune_epochs=1, fine_tune_blocks=1, augment="none", name="lite"),
        progress=events.append,
    )
    assert result.feature_cache
    assert result.throughput["feature_extraction"] > 0 and result.throughput["fine_tune_steps"] > 0
    assert any("feature extraction:" in e.get("message", "") for e in events)
    assert [row["stage"] for row in result.history] == ["head", "head", "fine_tune"]
    card = json.loads(result.card_path.read_text())
    assert card["input"]["size"] == [64, 64] and card["input"]["resize"] == "center_crop"
    assert card["provenance"]["epochs"] == {"head": 2, "fine_tune": 1}
    assert result.model_path.is_file() and result.confusion.sum() == result.n_val


def test_stop_event_ends_training_early_and_still_exports(tmp_path):
    import threading

    from cvplay.training.trainer import TrainConfig, train

    data = write_folder(tmp_path / "colours", per_class=6, size=16)
    stop = threading.Event()
    stop.set()
    result = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), backbone="small-cnn", image_size=16,
                               epochs=5, augment="light"), stop_event=stop)
    assert result.stopped and len(result.history) <= 1 and result.model_path.is_file()


def _bad(tmp_path: Path, kind: str) -> Path:
    root = tmp_path / kind
    root.mkdir()
    if kind == "one-class":
        write_folder(root, per_class=4, size=8, classes={"red": (255, 0, 0)})
    elif kind == "too-few":
        write_folder(root, per_class=4, size=8, classes={"red": (255, 0, 0)})
        write_folder(root, per_class=1, size=8, classes={"blue": (0, 0, 255)})
    elif kind == "duplicates":
        write_folder(root, per_class=3, size=8, classes={"cat": (255, 0, 0), "Cat": (0, 0, 255)})
    elif kind == "unreadable":
        for name in ("a", "b"):
            (root / name).mkdir()
            (root / name / "x.png").write_bytes(b"junk")
    return root


@pytest.mark.parametrize(
    "kind, expected",
    [("empty", "is empty"), ("one-class", "at least two classes"), ("too-few", "at least 2 images"),
     ("duplicates", "differ only by case"), ("unreadable", "could be read")],
)
def test_bad_datasets_give_one_clear_line(tmp_path, capsys, kind, expected):
    data = _bad(tmp_path, kind)
    code = main(["train", "--data", str(data), "--backbone", "small-cnn", "--epochs", "1", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error:") and expected in err and "Traceback" not in err


def test_bad_options_give_one_clear_line(tmp_path, capsys):
    data = write_folder(tmp_path / "colours", per_class=3, size=8)
    assert main(["train", "--data", str(data), "--augment", "nonsense", "--out", str(tmp_path / "o")]) == 2
    assert "neither a preset" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--backbone", "efficientnet-b0", "--weights",
                 str(tmp_path / "missing.h5"), "--epochs", "1", "--image-size", "32", "--out", str(tmp_path / "o")]) == 2
    assert "no such weights file" in capsys.readouterr().err


def test_policy_json_and_presets_resolve(tmp_path):
    from cvplay import augment
    from cvplay.training.trainer import TrainError, resolve_policy

    path = tmp_path / "policy.json"
    path.write_text(augment.preset("light").to_json())
    assert resolve_policy(str(path)).to_dict() == augment.preset("light").to_dict()
    assert resolve_policy("none").enabled() == [] and resolve_policy(None).enabled() == []
    assert resolve_policy("classic").enabled()
    bad = tmp_path / "bad.json"
    bad.write_text('{"transforms": {"nope": {}}}')
    with pytest.raises(TrainError):
        resolve_policy(str(bad))


def test_importing_the_cli_and_trainer_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, cvplay.cli, cvplay.evaluate, cvplay.training.trainer, cvplay.training.cli_train, "
            "cvplay.training.jobs; cvplay.cli.build_parser(); assert 'tensorflow' not in sys.modules, 'tf'; "
            "assert 'keras' not in sys.modules, 'keras'")
    subprocess.run([sys.executable, "-c", code], check=True)
