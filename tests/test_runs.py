"""Training runs: discovery, comparison, "CNN from scratch on the same split", tracking
(TensorBoard, MLflow) and the "Download everything" zip with its standalone predict.py.

The runs are made here: a Lite0 transfer run (with --tensorboard and, when MLflow is installed,
--mlflow) and a small CNN trained from scratch on the same data and split.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")

from cvplay import runs as runs_module  # noqa: E402
from cvplay.bundle import bundle_bytes  # noqa: E402
from cvplay.runs import (RunError, check_same_data, comparable, curves, discover_runs, per_class_side_by_side,  # noqa: E402
                         runs_table, scratch_config_kwargs, scratch_partner, write_comparison_note)

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def write_folder(root: Path, per_class: int = 12, size: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-40, 40, (size, size + 8, 3))
            Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(root / name / f"{i}.jpg")
    return root


@pytest.fixture(scope="module")
def made_runs(tmp_path_factory):
    from cvplay.training.trainer import TrainConfig, train

    home = tmp_path_factory.mktemp("home")
    data = write_folder(home / "colours")
    mlflow_installed = True
    try:
        import mlflow  # noqa: F401
    except ImportError:
        mlflow_installed = False
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CVPLAY_MODELS", str(home / "models"))
        patch.delenv("CVPLAY_RUNS", raising=False)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        transfer = train(TrainConfig(data=str(data), backbone="efficientnet-lite0", image_size=64, epochs=3,
                                     fine_tune_epochs=1, fine_tune_blocks=1, augment="none", name="colours-lite0",
                                     test_fraction=0.25, tensorboard=True, mlflow=mlflow_installed))
        run = runs_module.read_run(transfer.card_path)
        kwargs = scratch_config_kwargs(run, epochs=3, image_size=32)
        check_same_data(run)
        write_comparison_note(run, Path(kwargs["out"]))
        scratch = train(TrainConfig(**kwargs))
        yield types.SimpleNamespace(home=home, data=data, transfer=transfer, scratch=scratch,
                                    mlflow_installed=mlflow_installed, env={"CVPLAY_MODELS": str(home / "models")})


@pytest.fixture
def env(made_runs, monkeypatch):
    monkeypatch.setenv("CVPLAY_MODELS", made_runs.env["CVPLAY_MODELS"])
    monkeypatch.delenv("CVPLAY_RUNS", raising=False)
    return made_runs


def mine(runs):
    return [r for r in runs if r.name in ("colours-lite0", "colours-lite0-vs-scratch-cnn")]


@pytest.mark.slow
def test_runs_are_found_in_the_models_and_runs_folders(env):
    found = {run.name: run for run in mine(discover_runs())}
    assert set(found) == {"colours-lite0", "colours-lite0-vs-scratch-cnn"}
    assert found["colours-lite0"].folder == env.home / "models" / "colours-lite0"
    assert found["colours-lite0-vs-scratch-cnn"].folder == env.home / "runs" / "colours-lite0-vs-scratch-cnn"
    # The scratch run stays out of the app's model pickers.
    from cvplay.registry import list_models

    names = [card.name for card in list_models()]
    assert "colours-lite0" in names and "colours-lite0-vs-scratch-cnn" not in names


@pytest.mark.slow
def test_runs_table_holds_what_each_card_says(env):
    table = runs_table(mine(discover_runs())).set_index("run")
    lite = table.loc["colours-lite0"]
    assert lite["backbone"] == "efficientnet-lite0" and lite["image size"] == 64 and lite["data"] == "colours"
    assert lite["epochs"] == len(env.transfer.history)
    assert lite["held-out top-1"] == pytest.approx(env.transfer.metrics["top1"], abs=1e-4)
    assert lite["val top-1"] == pytest.approx(env.transfer.val_metrics["top1"], abs=1e-4)
    assert lite["time (s)"] > 0
    scratch = table.loc["colours-lite0-vs-scratch-cnn"]
    assert scratch["backbone"] == "small-cnn" and scratch["image size"] == 32
    assert table.sort_values("held-out top-1").index.tolist()  # sortable numbers, not strings
    assert table["held-out top-1"].dtype.kind == "f"


@pytest.mark.slow
def test_scratch_run_used_the_same_data_and_split(env):
    lite, scratch = (runs_module.read_run(p) for p in (env.transfer.card_path, env.scratch.card_path))
    for key in ("val_fraction", "test_fraction", "seed", "images", "data_fingerprint"):
        assert lite.split[key] == scratch.split[key], key
    assert env.scratch.n_test == env.transfer.n_test and env.scratch.n_val == env.transfer.n_val
    assert scratch_partner(lite, discover_runs()).name == scratch.name
    assert comparable([lite, scratch]) == []
    with pytest.raises(RunError, match="from scratch already"):
        scratch_config_kwargs(scratch)


@pytest.mark.slow
def test_comparison_tables(env):
    chosen = mine(discover_runs())
    long = curves(chosen)
    assert set(long["run"]) == {"colours-lite0", "colours-lite0-vs-scratch-cnn"}
    assert {"val_accuracy", "loss"} <= set(long["metric"])
    lite_epochs = long[(long["run"] == "colours-lite0") & (long["metric"] == "val_accuracy")]["epoch"].tolist()
    assert lite_epochs == list(range(1, len(env.transfer.history) + 1))
    side = per_class_side_by_side(chosen, "f1")
    assert sorted(side.index) == ["blue", "green", "red"] and set(side.columns) == {r.name for r in chosen}
    confusion = chosen[0].confusion()
    assert list(confusion.columns) == ["blue", "green", "red"] and confusion.values.sum() == env.transfer.n_test


@pytest.mark.slow
def test_changed_or_missing_data_is_refused_with_a_reason(env, tmp_path):
    copy = tmp_path / "colours"
    shutil.copytree(env.data, copy)
    card = json.loads(env.transfer.card_path.read_text())
    card["provenance"]["training_data"] = str(copy)
    run = runs_module.Run(name="x", folder=env.transfer.out_dir, card_path=env.transfer.card_path, card=card)
    check_same_data(run)
    (copy / "red" / "0.jpg").unlink()
    with pytest.raises(RunError, match="has changed since"):
        check_same_data(run)
    shutil.rmtree(copy)
    with pytest.raises(RunError, match="no longer on this machine"):
        scratch_config_kwargs(run)


@pytest.mark.slow
def test_tensorboard_logs_hold_every_epoch(env):
    record = json.loads((env.transfer.out_dir / "tracking.json").read_text())
    logdir = Path(record["tensorboard"])
    assert logdir == env.transfer.out_dir / "tensorboard"
    from tensorflow.core.util import event_pb2
    from tensorflow.python.lib.io import tf_record

    steps: dict[str, set[int]] = {}
    for event_file in logdir.rglob("events.out.tfevents.*"):
        for raw in tf_record.tf_record_iterator(str(event_file)):
            event = event_pb2.Event.FromString(raw)
            for value in event.summary.value:
                steps.setdefault(f"{event_file.parent.name}/{value.tag}", set()).add(event.step)
    assert steps["train/epoch_loss"] == set(range(len(env.transfer.history)))
    assert steps["validation/epoch_accuracy"] == set(range(len(env.transfer.history)))


@pytest.mark.slow
def test_mlflow_records_params_metrics_per_epoch_and_model_files(env):
    if not env.mlflow_installed:
        pytest.skip("mlflow is not installed (the mlflow extra); test_mlflow_calls_with_a_fake_module covers the calls")
    import mlflow

    record = json.loads((env.transfer.out_dir / "tracking.json").read_text())["mlflow"]
    assert record["tracking_uri"] == (env.home / "runs" / "mlruns").as_uri()
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.tracking.MlflowClient(record["tracking_uri"])
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["backbone"] == "efficientnet-lite0" and run.data.params["image_size"] == "64"
    history = client.get_metric_history(record["run_id"], "val_accuracy")
    assert sorted(m.step for m in history) == list(range(1, len(env.transfer.history) + 1))
    assert run.data.metrics["final_top1"] == pytest.approx(env.transfer.metrics["top1"])
    artifacts = {a.path for a in client.list_artifacts(record["run_id"])}
    assert {"colours-lite0.tflite", "colours-lite0.json", "model.keras", "curves.png", "per_class.csv"} <= artifacts


def test_mlflow_calls_with_a_fake_module(tmp_path, monkeypatch):
    """The MLflow path without MLflow: a stand-in module records every call."""
    from cvplay.training.trainer import TrainConfig, train

    calls = []

    def record(name):
        def call(*args, **kwargs):
            calls.append((name, args, kwargs))
            return types.SimpleNamespace(info=types.SimpleNamespace(run_id="fake-run"))
        return call

    fake = types.ModuleType("mlflow")
    for name in ("set_tracking_uri", "set_experiment", "start_run", "log_params", "set_tags", "log_metrics",
                 "log_artifact", "end_run"):
        setattr(fake, name, record(name))
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.setenv("CVPLAY_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data = write_folder(tmp_path / "colours", per_class=6, size=24)
    result = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), backbone="small-cnn", image_size=32,
                               epochs=2, augment="none", name="fake", mlflow=True))
    names = [c[0] for c in calls]
    assert calls[0] == ("set_tracking_uri", ((tmp_path / "runs" / "mlruns").as_uri(),), {})
    assert names.count("log_params") == 1 and calls[names.index("log_params")][1][0]["backbone"] == "small-cnn"
    epochs = [c for c in calls if c[0] == "log_metrics" and "step" in c[2]]
    assert [c[2]["step"] for c in epochs] == [1, 2] and "val_loss" in epochs[0][1][0]
    logged = {Path(c[1][0]).name for c in calls if c[0] == "log_artifact"}
    assert {"fake.tflite", "fake.json", "model.keras", "history.csv"} <= logged
    assert names[-1] == "end_run" and calls[-1][2] == {}  # finished, not FAILED
    assert json.loads((result.out_dir / "tracking.json").read_text())["mlflow"]["run_id"] == "fake-run"


def test_mlflow_asked_for_but_missing_is_one_clear_error(tmp_path, monkeypatch):
    from cvplay.training.trainer import TrainConfig, TrainError, train

    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    data = write_folder(tmp_path / "colours", per_class=4, size=16)
    with pytest.raises(TrainError, match="needs MLflow"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "run"), backbone="small-cnn", image_size=32, epochs=1,
                          augment="none", mlflow=True))


# --- "Download everything" --------------------------------------------------------------------


@pytest.mark.slow
def test_bundle_holds_everything_and_its_predict_py_answers_like_cvplay(env, tmp_path):
    run = runs_module.read_run(env.transfer.card_path)
    content = bundle_bytes(run)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = set(archive.namelist())
        assert {f"colours-lite0/{n}" for n in ("colours-lite0.tflite", "colours-lite0.json", "model.keras",
                                                "labels.txt", "history.csv", "curves.png", "confusion_matrix.csv",
                                                "confusion_matrix.png", "per_class.csv", "predict.py", "README.md")} <= names
        assert archive.read("colours-lite0/labels.txt").decode().split() == ["blue", "green", "red"]
        archive.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / "colours-lite0"
    photos = [env.data / "red" / "3.jpg", env.data / "blue" / "7.jpg", env.data / "green" / "1.jpg"]
    # An odd-sized photo that needs the centre crop and a shrink.
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (301, 517, 3), dtype=np.uint8)).save(big)
    photos.append(big)

    from cvplay.runtime import create_classifier
    from cvplay.images import read_image

    classifier = create_classifier(str(env.transfer.card_path))
    expected = classifier.predict_proba([read_image(p) for p in photos])

    def run_predict(prelude: str = "") -> list[dict]:
        # A fresh process in the unzipped folder in which cvplay and TensorFlow cannot be imported.
        code = ("import sys; sys.modules.update(cvplay=None, tensorflow=None, keras=None); " + prelude +
                "import runpy; sys.argv = ['predict.py', '--json', *sys.argv[1:]]; "
                "runpy.run_path('predict.py', run_name='__main__')")
        clean_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        done = subprocess.run([sys.executable, "-c", code, *map(str, photos)], cwd=folder, env=clean_env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    answers = run_predict()
    labels = classifier.labels
    for answer, row in zip(answers, expected):
        got = np.array([answer["probabilities"][label] for label in labels])
        np.testing.assert_allclose(got, row, atol=1e-5)
        assert answer["label"] == labels[int(np.argmax(row))]
    # Without OpenCV, Pillow resizes; its bicubic and box filters differ from OpenCV's, and this
    # tiny model trained on noisy 40 px images is sensitive to that: the same answer on the photos
    # (scores may move by about a tenth here), not on pure noise.
    no_cv2 = run_predict(prelude="sys.modules['cv2'] = None; ")
    for answer, row in zip(no_cv2[:-1], expected[:-1]):
        assert answer["label"] == labels[int(np.argmax(row))]
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_cli_lists_runs_and_writes_a_bundle(env, tmp_path, capsys):
    from cvplay.cli import main

    assert main(["runs", "--format", "json"]) == 0
    listed = {row["run"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["colours-lite0"]["backbone"] == "efficientnet-lite0"
    assert listed["colours-lite0-vs-scratch-cnn"]["backbone"] == "small-cnn"
    out = tmp_path / "bundle.zip"
    assert main(["runs", "--bundle", "colours-lite0", "--out", str(out)]) == 0
    assert "colours-lite0/predict.py" in zipfile.ZipFile(out).namelist()
    assert main(["runs", "--bundle", "nope"]) == 2
    assert "no training run named 'nope'" in capsys.readouterr().err
