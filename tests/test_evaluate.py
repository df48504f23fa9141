"""``python -m cvplay evaluate`` and :mod:`cvplay.evaluate` (LiteRT only, no TensorFlow)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvplay import evaluate
from cvplay.cli import main
from model_factory import solid

ROOT = Path(__file__).resolve().parents[1]


def colour_folder(root: Path, classes: dict[str, tuple[int, int, int]], per_class: int = 5) -> Path:
    for name, colour in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(solid(colour)).save(root / name / f"{i}.png")
    return root


def test_metrics_helpers():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    targets = np.array([0, 1, 1])
    report = evaluate.classification_report(probabilities, targets, ["a", "b", "c"])
    assert report.top1 == pytest.approx(1 / 3) and report.top5 == 1.0 and report.n == 3
    assert report.confusion.tolist() == [[1, 0, 0], [1, 0, 1], [0, 0, 0]]
    assert report.per_class[0] == {"class": "a", "precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}
    assert evaluate.topk_accuracy(probabilities, targets, 2) == 1.0


def test_evaluate_json_matches_labels_by_name(tmp_path, colour_models, capsys):
    # "Red" and "BLUE" match the model's red/blue; "purple" is unknown and left out.
    data = colour_folder(tmp_path / "data", {"Red": (250, 0, 0), "BLUE": (0, 0, 250), "purple": (128, 0, 128)})
    code = main(["evaluate", "--model", str(colour_models / "colour.json"), "--data", str(data),
                 "--split", "all", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["top1"] == 1.0 and report["top5"] == 1.0 and report["n"] == 10
    assert report["skipped_classes"] == ["purple"] and report["skipped_images"] == 5
    assert report["labels"] == ["red", "blue"] and report["confusion"] == [[5, 0], [0, 5]]
    assert {row["class"] for row in report["per_class"]} == {"red", "blue"}


def test_evaluate_val_split_and_table(tmp_path, colour_models, capsys):
    data = colour_folder(tmp_path / "data", {"red": (250, 0, 0), "green": (0, 250, 0), "blue": (0, 0, 250)})
    assert main(["evaluate", "--model", str(colour_models / "colour.json"), "--data", str(data), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "top-1 1.0000" in out and "n 3" in out and "confusion matrix" in out
    assert "scored 3 images: the validation split (validation 0.2, test 0, seed 0); --split val" in out


def test_separate_test_data_is_scored_whole_by_default(tmp_path, colour_models, capsys):
    # Issue 12: a separate test folder of 100 images used to be scored on a 20% split (n=20).
    data = colour_folder(tmp_path / "test-data", {"red": (250, 0, 0), "green": (0, 250, 0)}, per_class=50)
    assert main(["evaluate", "--model", str(colour_models / "colour.json"), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "n 100" in out and "split all" in out
    assert "scored 100 images: every image; the card does not record the model's training data" in out


def card_with_training_data(colour_models: Path, directory: Path, data: Path, **split) -> Path:
    """The colour model with a card that records ``data`` as its training data (fingerprint, split)."""
    from cvplay.datasets import fingerprint, load_dataset

    dataset = load_dataset(str(data), min_images_per_class=1)
    record = {"val_fraction": 0.25, "test_fraction": 0.25, "seed": 3, "images": len(dataset),
              "data_fingerprint": fingerprint(dataset), **split}
    card = json.loads((colour_models / "colour.json").read_text())
    card.update(name="trained-colour", file="colour.tflite", provenance={"split": record, "training_data": str(data)})
    directory.mkdir(parents=True)
    shutil.copy(colour_models / "colour.tflite", directory / "colour.tflite")
    (directory / "trained-colour.json").write_text(json.dumps(card))
    return directory / "trained-colour.json"


def test_the_models_own_training_data_is_scored_on_its_held_out_split(tmp_path, colour_models, capsys):
    data = colour_folder(tmp_path / "train-data", {"red": (250, 0, 0), "blue": (0, 0, 250)}, per_class=8)
    card = card_with_training_data(colour_models, tmp_path / "models", data)
    copy = shutil.copytree(data, tmp_path / "same-images-elsewhere")  # same fingerprint, other path
    assert main(["evaluate", "--model", str(card), "--data", str(copy), "--format", "json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    from cvplay.datasets import load_dataset

    expected = evaluate.split_indices(load_dataset(str(copy)).labels, "test", 0.25, 3, 0.25)
    assert report["split"] == "test" and report["n"] == len(expected) == 4
    assert report["split_description"] == captured.err.strip()
    assert captured.err.startswith("scored 4 images: the held-out test split (validation 0.25, test 0.25, seed 3); "
                                   "this is the model's training data (its data fingerprint matches the card's)")


def test_other_data_than_the_cards_is_scored_whole(tmp_path, colour_models, capsys):
    data = colour_folder(tmp_path / "train-data", {"red": (250, 0, 0), "blue": (0, 0, 250)}, per_class=8)
    card = card_with_training_data(colour_models, tmp_path / "models", data)
    other = colour_folder(tmp_path / "new-photos", {"red": (240, 10, 10), "blue": (10, 10, 240)}, per_class=5)
    assert main(["evaluate", "--model", str(card), "--data", str(other)]) == 0
    out = capsys.readouterr().out
    assert "n 10" in out
    assert ("scored 10 images: every image; this is not the model's training data "
            "(its data fingerprint differs from the card's), so every image is scored") in out


def test_without_a_test_split_on_the_card_the_validation_split_is_scored(tmp_path, colour_models, capsys):
    data = colour_folder(tmp_path / "train-data", {"red": (250, 0, 0), "blue": (0, 0, 250)}, per_class=8)
    card = card_with_training_data(colour_models, tmp_path / "models", data, test_fraction=0.0, val_fraction=0.5)
    assert main(["evaluate", "--model", str(card), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "split val" in out and "n 8" in out and "scored 8 images: the validation split (validation 0.5, test 0, seed 3)" in out


def test_no_matching_class_is_one_clear_error(tmp_path, colour_models, capsys):
    data = colour_folder(tmp_path / "data", {"cat": (250, 0, 0), "dog": (0, 0, 250)})
    code = main(["evaluate", "--model", str(colour_models / "colour.json"), "--data", str(data)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "match the model's labels" in err


def test_bad_dataset_is_one_clear_error(tmp_path, colour_models, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["evaluate", "--model", str(colour_models / "colour.json"), "--data", str(tmp_path / "empty")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "empty" in err


def test_evaluate_does_not_import_tensorflow(tmp_path, colour_models):
    data = colour_folder(tmp_path / "data", {"red": (250, 0, 0), "blue": (0, 0, 250)}, per_class=2)
    code = (
        "import sys; from cvplay.cli import main; "
        f"rc = main(['evaluate', '--model', {str(colour_models / 'colour.json')!r}, '--data', {str(data)!r}, "
        "'--split', 'all', '--format', 'json']); "
        "assert rc == 0; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["n"] == 4
