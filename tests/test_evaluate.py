"""``python -m cvplay evaluate`` and :mod:`cvplay.evaluate` (LiteRT only, no TensorFlow)."""

from __future__ import annotations

import json
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
    assert main(["evaluate", "--model", str(colour_models / "colour.json"), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "top-1 1.0000" in out and "n 3" in out and "confusion matrix" in out


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
