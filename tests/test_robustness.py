"""cvplay.robustness: the clean figure is evaluate's, distortions come from the declared list."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cvplay import augment, samples
from cvplay import robustness as R
from cvplay.datasets import load_dataset
from cvplay.evaluate import evaluate_classifier
from cvplay.registry import InputSpec
from cvplay.runtime import create_classifier


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory):
    """Class folders red/green/blue of tinted photos, some of them hard (near grey), so top-1 < 1."""
    root = tmp_path_factory.mktemp("colour-data")
    rng = np.random.default_rng(3)
    scene = samples.load("scene")
    for channel, name in enumerate(["red", "green", "blue"]):
        folder = root / name
        folder.mkdir()
        for i in range(8):
            tint = np.ones(3) * (0.8 if i % 3 == 0 else 0.3)
            tint[channel] = 1.0
            image = (scene[:40, :60] * tint + rng.normal(0, 4, (40, 60, 3))).clip(0, 255).astype(np.uint8)
            Image.fromarray(image).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def colour_model(colour_models):
    return create_classifier(colour_models / "colour.json")


@pytest.mark.parametrize("split", ["val", "all"])
def test_clean_figure_equals_evaluate(colour_model, colour_data, split):
    dataset = load_dataset(colour_data, min_images_per_class=1)
    evaluated = evaluate_classifier(colour_model, dataset, split=split, val_fraction=0.5)
    report = R.robustness_report(colour_model, dataset, split=split, val_fraction=0.5, distortions=R.get_distortions("jpeg rotation"))
    assert report.clean_top1 == evaluated.report.top1
    assert report.n == evaluated.report.n
    assert 0 < report.clean_top1 < 1
    assert [(row["transform"], row["strength"]) for row in report.rows] == [
        ("jpeg", 1), ("jpeg", 2), ("jpeg", 3), ("rotation", 1), ("rotation", 2), ("rotation", 3)]
    assert all(0 <= row["top1"] <= 1 and row["n"] == report.n for row in report.rows)


def test_default_split_is_evaluates_default(colour_model, colour_data):
    """Data the card does not name as the model's training data: every image, as evaluate does."""
    dataset = load_dataset(colour_data, min_images_per_class=1)
    evaluated = evaluate_classifier(colour_model, dataset)
    report = R.robustness_report(colour_model, dataset, distortions=R.get_distortions("jpeg"))
    assert evaluated.split == report.split == "all"
    assert report.n == evaluated.report.n == 24
    assert report.clean_top1 == evaluated.report.top1


def test_seeded_and_independent_of_batching(colour_model, colour_data):
    dataset = load_dataset(colour_data, min_images_per_class=1)
    first = R.robustness_report(colour_model, dataset, split="all", batch_size=32)
    second = R.robustness_report(colour_model, dataset, split="all", batch_size=5)
    assert [row["top1"] for row in first.rows] == [row["top1"] for row in second.rows]
    assert len(first.rows) == 3 * len(R.DISTORTIONS)
    assert any(row["top1"] < first.clean_top1 for row in first.rows)  # some distortion hurts


def test_required_distortions_are_declared():
    assert {"brightness", "blur", "noise", "rotation", "crop", "jpeg", "downscale"} <= {d.name for d in R.DISTORTIONS}


@pytest.mark.parametrize("distortion", R.DISTORTIONS, ids=[d.name for d in R.DISTORTIONS])
def test_each_distortion_is_a_declared_transform_growing_with_strength(distortion):
    assert distortion.transform in {t.name for t in augment.TRANSFORMS}
    assert len(distortion.strengths) == len(distortion.labels) == 3
    image = samples.load("scene")
    changes = []
    for strength in range(3):
        policy = distortion.policy(strength, min(image.shape[:2]), seed=0)
        assert [t.name for t, _, _ in policy.enabled()] == [distortion.transform]
        first = policy.apply(image, np.random.default_rng([0, strength]))
        again = policy.apply(image, np.random.default_rng([0, strength]))
        np.testing.assert_array_equal(first, again)
        changes.append(np.abs(first.astype(float) - image).mean())
    assert 0 < changes[0] < changes[1] < changes[2], changes


def test_get_distortions():
    assert R.get_distortions(None) == list(R.DISTORTIONS)
    assert [d.name for d in R.get_distortions("jpeg, blur jpeg")] == ["jpeg", "blur"]
    with pytest.raises(R.RobustnessError, match="unknown distortion.*sharpen"):
        R.get_distortions(["sharpen"])


def test_working_copy_matches_what_the_card_takes():
    assert R.working_side(InputSpec(size=(224, 224), crop_fraction=0.875)) == 256
    assert R.working_side(InputSpec(size=(224, 224), crop_fraction=1.0, thumbnail_size=(32, 32))) == 32
    big = np.zeros((1000, 1500, 3), np.uint8)
    assert R.working_copy(big, 256).shape == (256, 384, 3)
    small = np.zeros((100, 150, 3), np.uint8)
    assert R.working_copy(small, 256) is small


def run_cli(*argv):
    return subprocess.run([sys.executable, "-m", "cvplay", *argv], capture_output=True, text=True)


def test_cli_json_matches_evaluate_and_writes_csv_and_plot(colour_models, colour_data, tmp_path):
    model = str(colour_models / "colour.json")
    out = tmp_path / "report"
    result = run_cli("robustness", "--model", model, "--data", str(colour_data), "--split", "all",
                     "--transforms", "blur", "downscale", "--format", "json", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    evaluated = json.loads(run_cli("evaluate", "--model", model, "--data", str(colour_data), "--split", "all",
                                   "--format", "json").stdout)
    assert report["clean_top1"] == evaluated["top1"] and report["n"] == evaluated["n"] == 24
    assert [(row["transform"], row["strength"]) for row in report["rows"]] == [
        ("blur", 1), ("blur", 2), ("blur", 3), ("downscale", 1), ("downscale", 2), ("downscale", 3)]
    rows = list(csv.DictReader(io.StringIO((out / "robustness.csv").read_text())))
    assert [row["transform"] for row in rows] == ["clean"] + ["blur"] * 3 + ["downscale"] * 3
    assert float(rows[0]["top1"]) == pytest.approx(report["clean_top1"], abs=1e-4)
    plot = np.asarray(Image.open(out / "robustness.png"))
    assert plot.ndim == 3 and plot.shape[0] > 200 and len(np.unique(plot.reshape(-1, 3), axis=0)) > 5


def test_cli_bad_inputs(colour_models, colour_data, tmp_path):
    model = str(colour_models / "colour.json")
    unknown = run_cli("robustness", "--model", model, "--data", str(colour_data), "--transforms", "sharpen")
    assert unknown.returncode == 2 and "unknown distortion" in unknown.stderr and "Traceback" not in unknown.stderr
    missing = run_cli("robustness", "--model", model, "--data", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name / "a.png")
    no_match = run_cli("robustness", "--model", model, "--data", str(tmp_path), "--split", "all")
    assert no_match.returncode == 2 and "none of the dataset's classes" in no_match.stderr


@pytest.mark.shared
@pytest.mark.slow
def test_imagenet_samples_clean_equals_evaluate(shared, tmp_path):
    """The 200 shared photos as class folders: the report's clean top-1 is evaluate's (0.885)."""
    import shutil

    source = shared / "data" / "imagenet-samples"
    if not (source / "labels.json").is_file():
        pytest.skip(f"{source} is absent")
    for entry in json.loads((source / "labels.json").read_text()):
        folder = tmp_path / entry["name"]
        folder.mkdir(exist_ok=True)
        shutil.copyfile(source / entry["file"], folder / entry["file"])
    classifier = create_classifier("imagenet-lite0")
    dataset = load_dataset(tmp_path, min_images_per_class=1)
    report = R.robustness_report(classifier, dataset, split="all", distortions=R.get_distortions("jpeg"))
    assert report.n == 200
    assert report.clean_top1 == evaluate_classifier(classifier, dataset, split="all").report.top1
    assert report.rows[0]["top1"] < report.clean_top1
