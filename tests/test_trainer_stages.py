"""The trainer's stages one at a time, on tiny self-made data (see cvplay/training/trainer.py).

The plan and data stages need no TensorFlow; the others build a tiny model (small-cnn at 16x16)
or Lite0 at 32x32 (slow).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_trainer import write_folder


def _run(tmp_path, **overrides):
    from cvplay.training.trainer import TrainConfig, plan_outputs, plan_run

    data = write_folder(tmp_path / "colours", per_class=10, size=20)
    config = TrainConfig(**{"data": str(data), "out": str(tmp_path / "run"), "name": "stages",
                            "backbone": "small-cnn", "image_size": 16, "epochs": 2, "augment": "none", **overrides})
    events = []
    run = plan_run(config, progress=events.append)
    plan_outputs(run)
    return run, events


# --- plan and data: no TensorFlow


@pytest.mark.parametrize(
    "overrides, expected",
    [({"backbone": "small-cnn", "fine_tune_epochs": 3}, (False, False, 2, 0)),  # whole, one stage
     ({"backbone": "efficientnet-lite0", "augment": "none"}, (True, True, 2, 3)),  # pooled-feature cache
     ({"backbone": "efficientnet-lite0", "augment": "light"}, (True, False, 2, 3)),  # images, augmented
     ({"backbone": "efficientnet-lite0", "augment": "light", "cache_blocks": True}, (True, True, 2, 3))],
)
def test_plan_decides_the_stages_before_any_work(tmp_path, overrides, expected):
    run, _ = _run(tmp_path, **overrides)
    assert (run.pretrained, run.cache, run.stage1_epochs, run.stage2_epochs) == expected
    assert run.reporter.total_epochs == expected[2] + expected[3]
    assert run.name == "stages" and run.out_dir == tmp_path / "run" and not run.out_dir.exists()
    assert run.input_spec.size == (16, 16) and "--image-size 16" in run.command


def test_plan_refuses_a_small_cnn_with_no_epochs(tmp_path):
    from cvplay.training.trainer import TrainError

    with pytest.raises(TrainError, match="from scratch"):
        _run(tmp_path, epochs=0, fine_tune_epochs=1)


def test_data_stage_splits_stratified_and_decodes_once(tmp_path):
    from cvplay.evaluate import split_indices
    from cvplay.training.trainer import load_data

    run, events = _run(tmp_path, val_fraction=0.2, test_fraction=0.2)
    load_data(run)
    data = run.data
    assert data.labels == ["blue", "green", "red"] and data.num_classes == 3
    parts = [data.train_idx, data.val_idx, data.test_idx]
    assert [len(p) for p in parts] == [18, 6, 6]
    assert len(set(np.concatenate(parts))) == 30  # disjoint and complete
    for part in parts:
        assert np.bincount(data.dataset.labels[part]).tolist() == [len(part) // 3] * 3  # stratified
    # the very splits that evaluate rebuilds from the card's fractions and seed
    assert set(data.val_idx) == set(split_indices(data.dataset.labels, "val", 0.2, 0, test_fraction=0.2))
    assert set(data.test_idx) == set(split_indices(data.dataset.labels, "test", 0.2, 0, test_fraction=0.2))
    assert data.x_train.shape == (18, 16, 16, 3) and data.x_train.dtype == np.uint8 and data.x_val.shape[0] == 6
    assert np.array_equal(data.y_train, data.dataset.labels[data.train_idx])
    assert data.weights_by_class == {0: 1.0, 1: 1.0, 2: 1.0}
    assert any("18 for training, 6 for validation, 6 held out" in e.get("message", "") for e in events)


def test_data_stage_split_depends_on_the_seed_only(tmp_path):
    from cvplay.training.trainer import TrainConfig, split_dataset

    labels = np.repeat(np.arange(4), 10)
    first = split_dataset(labels, TrainConfig(data="x", seed=1))
    assert all(np.array_equal(a, b) for a, b in zip(first, split_dataset(labels, TrainConfig(data="y", seed=1))))
    assert not np.array_equal(first[1], split_dataset(labels, TrainConfig(data="x", seed=2))[1])
    assert len(first[2]) == 0 and len(first[0]) == 32


def test_data_stage_leaves_decoding_to_the_block_cache(tmp_path):
    from cvplay.training.trainer import load_data

    run, _ = _run(tmp_path, backbone="efficientnet-lite0", image_size=32, cache_blocks=True)
    load_data(run)
    assert run.data.x_train is None and run.data.x_val is None and len(run.data.train_idx) == 24


def test_data_stage_refuses_a_test_split_it_cannot_fill(tmp_path):
    from cvplay.datasets import DatasetError
    from cvplay.training.trainer import TrainConfig, plan_outputs, plan_run, load_data

    data = write_folder(tmp_path / "colours", per_class=2, size=8)
    run = plan_run(TrainConfig(data=str(data), out=str(tmp_path / "o"), backbone="small-cnn", image_size=16,
                               epochs=1, augment="none", val_fraction=0.3, test_fraction=0.1))
    plan_outputs(run)
    with pytest.raises(DatasetError, match="test split"):
        load_data(run)


# --- head, export, measure, reports on a tiny model


def test_head_export_measure_and_report_stages_on_a_small_cnn(tmp_path):
    pytest.importorskip("tensorflow")
    from cvplay.registry import read_card
    from cvplay.training.trainer import (build_model, export_model, fine_tune, load_data, measure_model, open_outputs,
                                         train_head, write_reports)

    run, events = _run(tmp_path, epochs=3, test_fraction=0.2)
    load_data(run)
    build_model(run)
    before = [w.copy() for w in run.net.model.get_weights()]
    open_outputs(run)
    assert run.reporter.tracking is None and run.csv_path == tmp_path / "run" / "history.csv"

    train_head(run)
    assert [row["stage"] for row in run.reporter.history] == ["train"] * 3 and run.done_epochs == 3
    assert all(not np.array_equal(a, b) for a, b in zip(before, run.net.model.get_weights()) if a.size > 1)
    assert run.csv_path.read_text().count("\n") == 4 and run.throughput["training_steps"] > 0
    fine_tune(run)  # a backbone trained from scratch has no second stage
    assert len(run.reporter.history) == 3

    export_model(run)
    card = json.loads(run.exported.card_path.read_text())
    assert read_card(run.exported.card_path).labels == ("blue", "green", "red")
    assert run.exported.tflite_path.is_file() and run.exported.keras_path.is_file()
    assert card["metrics"] == [] and card["provenance"]["epochs"] == {"train": 3, "fine_tune": 0}

    measure_model(run)
    assert run.measured.final_split == "test" and set(run.measured.splits) == {"val", "test"}
    indices, probabilities, report = run.measured.splits["test"]
    assert probabilities.shape == (6, 3) and np.array_equal(indices, np.sort(run.data.test_idx))
    card = json.loads(run.exported.card_path.read_text())
    values = {m["name"]: m["value"] for m in card["metrics"]}
    assert values["top1"] == round(report.top1, 4) and "val_top1" in values

    result = write_reports(run)
    assert result.metrics["top1"] == report.top1 and result.n_test == 6 and result.metrics_split == "test"
    assert all(path.is_file() for path in result.files.values())
    steps = [e["step_name"] for e in events if e.get("stage") == "finish"]
    assert steps[:2] == ["save", "convert"] and steps[-1] == "reports" and "measure" in steps
    assert events[-1]["stage"] == "done"


@pytest.mark.slow
def test_head_stage_on_pooled_features_leaves_the_backbone_alone(tmp_path):
    pytest.importorskip("tensorflow")
    from cvplay.training.trainer import build_model, load_data, open_outputs, train_head

    run, events = _run(tmp_path, backbone="efficientnet-lite0", image_size=32, epochs=2, fine_tune_epochs=1)
    load_data(run)
    build_model(run)
    open_outputs(run)
    backbone_before = [w.copy() for w in run.net.backbone.get_weights()]
    head_before = [w.copy() for w in run.net.dense.get_weights()]
    train_head(run)
    assert all(np.array_equal(a, b) for a, b in zip(backbone_before, run.net.backbone.get_weights()))
    assert not np.array_equal(head_before[0], run.net.dense.get_weights()[0])
    assert [row["stage"] for row in run.reporter.history] == ["head", "head"]
    assert run.throughput["feature_extraction"] > 0
    assert any(e.get("message", "").startswith("stage 1: training the head on cached features") for e in events)


@pytest.mark.slow
def test_fine_tune_stage_trains_only_the_top_blocks(tmp_path):
    pytest.importorskip("tensorflow")
    from cvplay.training.trainer import build_model, fine_tune, load_data, open_outputs, train_head

    run, _ = _run(tmp_path, backbone="efficientnet-lite0", image_size=32, epochs=0, fine_tune_epochs=1,
                  fine_tune_blocks=1, augment="light")
    load_data(run)
    build_model(run)
    open_outputs(run)
    backbone = run.net.backbone

    def weights(name):
        return [w.copy() for w in backbone.get_layer(name).get_weights()]

    low, top = weights("block1a_dwconv"), weights("top_conv")
    train_head(run)  # no head epochs: nothing happens
    assert run.reporter.history == []
    fine_tune(run)
    assert [row["stage"] for row in run.reporter.history] == ["fine_tune"]
    assert all(np.array_equal(a, b) for a, b in zip(low, weights("block1a_dwconv")))
    assert not all(np.array_equal(a, b) for a, b in zip(top, weights("top_conv")))
    assert run.throughput["fine_tune_steps"] > 0


def test_a_stopped_run_skips_the_fine_tune_stage(tmp_path):
    import threading

    from cvplay.training.trainer import fine_tune

    run, _ = _run(tmp_path, backbone="efficientnet-lite0", fine_tune_epochs=2)
    run.stop_event = threading.Event()
    run.stop_event.set()
    fine_tune(run)  # returns before touching TensorFlow or the (absent) model
    assert run.reporter.history == [] and run.net is None
