"""The trainer's CIFAR-100 recipe on tiny self-made data: fine-tuning on cached lower blocks,
a held-out test split, super-classes and thumbnails on the card (training extra)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cvplay.cli import main  # noqa: E402
from test_trainer import write_folder  # noqa: E402


@pytest.fixture(scope="module")
def cached_run(tmp_path_factory):
    from cvplay.training.trainer import TrainConfig, train

    root = tmp_path_factory.mktemp("cached")
    data = write_folder(root / "colours", per_class=10)
    events = []
    result = train(
        TrainConfig(data=str(data), out=str(root / "run"), backbone="efficientnet-lite0", image_size=32,
                    epochs=1, fine_tune_epochs=2, fine_tune_blocks=2, cache_blocks=True, augment="classic",
                    val_fraction=0.2, test_fraction=0.2, crop_fraction=1.0, lr_schedule="cosine", monitor="val_accuracy",
                    fine_tune_learning_rate=1e-3, name="cached"),
        progress=events.append,
    )
    return data, result, events


def test_cached_blocks_run_holds_out_a_test_split(cached_run):
    data, result, events = cached_run
    assert (result.n_train, result.n_val, result.n_test) == (18, 6, 6)
    assert result.metrics_split == "test" and result.confusion.sum() == 6
    assert set(result.val_metrics) == {"top1", "top5"}
    card = json.loads(result.card_path.read_text())
    names = [m["name"] for m in card["metrics"]]
    assert names == ["val_top1", "val_top5", "top1", "top5"]
    test_metric = next(m for m in card["metrics"] if m["name"] == "top1")
    assert "held-out test split" in test_metric["data"] and "never used for training or model selection" in test_metric["data"]
    assert "--split test" in test_metric["data"] and "--cache-blocks" in test_metric["command"]
    assert "--monitor val_accuracy" in test_metric["command"] and card["provenance"]["best_epoch_by"] == "val_accuracy"
    split = card["provenance"]["split"]
    assert len(split.pop("data_fingerprint")) == 16
    assert split == {"val_fraction": 0.2, "test_fraction": 0.2, "seed": 0, "images": 30}
    assert card["provenance"]["images"]["test"] == 6
    assert card["input"]["crop_fraction"] == 1.0 and "thumbnail_size" not in card["input"]  # files are not in memory


def test_cached_blocks_run_caches_both_views_and_records_the_flip_only_policy(cached_run):
    _, result, events = cached_run
    card = json.loads(result.card_path.read_text())
    info = card["provenance"]["block_cache"]
    assert info["cut"] == "block6c_add" and info["trained_blocks"] == ["block6d", "block7a"]
    assert info["views"] == 2 and info["shape"] == [1, 1, 192]
    enabled = [name for name, t in card["augmentation"]["transforms"].items() if t["enabled"]]
    assert enabled == ["hflip"]
    messages = [e.get("message", "") for e in events]
    assert any("only horizontal flips are applied" in m and "rotate" in m for m in messages)
    assert any(m.startswith("caching the output of block6c_add") for m in messages)
    assert [row["stage"] for row in result.history] == ["head", "fine_tune", "fine_tune"]
    assert result.throughput["feature_extraction"] > 0 and result.throughput["fine_tune_steps"] > 0


def test_cached_blocks_run_trains_only_the_top_blocks(cached_run):
    import keras

    from cvplay.training.efficientnet_lite import build_efficientnet_lite0

    _, result, _ = cached_run
    trained = keras.models.load_model(result.keras_path)
    pretrained = build_efficientnet_lite0(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    backbone = next(layer for layer in trained.layers if isinstance(layer, keras.Model))

    def same(name):
        return all(np.array_equal(a, b) for a, b in zip(backbone.get_layer(name).get_weights(),
                                                         pretrained.get_layer(name).get_weights()))

    assert same("block6c_project_conv") and same("block1a_dwconv")  # frozen below the cut
    assert not same("block7a_project_conv") and not same("top_conv")  # fine-tuned
    assert same("block7a_project_bn")  # batch norm stays frozen


def test_evaluate_rebuilds_the_same_test_split(cached_run, capsys):
    data, result, _ = cached_run
    code = main(["evaluate", "--model", str(result.model_path), "--data", str(data), "--val-fraction", "0.2",
                 "--test-fraction", "0.2", "--split", "test", "--format", "json"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and report["n"] == 6 and report["top1"] == pytest.approx(result.metrics["top1"])
    # On the model's own training data the card supplies the fractions and seed: the same split.
    assert main(["evaluate", "--model", str(result.model_path), "--data", str(data), "--format", "json"]) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out.strip().splitlines()[-1])
    assert again["split"] == "test" and again["n"] == 6 and again["top1"] == pytest.approx(report["top1"])
    assert "this is the model's training data (its data fingerprint matches the card's)" in captured.err
    # Other data (here fewer images per class): a test split needs the fractions spelled out.
    assert main(["evaluate", "--model", str(result.model_path), "--data", str(data), "--split", "test",
                 "--max-per-class", "5"]) == 2
    assert "--test-fraction" in capsys.readouterr().err


def test_split_parts_are_disjoint_and_stratified():
    from cvplay.evaluate import split_indices

    labels = np.repeat(np.arange(5), 20)
    val = split_indices(labels, "val", 0.2, 3, test_fraction=0.1)
    test = split_indices(labels, "test", 0.2, 3, test_fraction=0.1)
    assert len(val) == 20 and len(test) == 10 and not set(val) & set(test)
    assert np.bincount(labels[test]).tolist() == [2] * 5
    assert np.array_equal(test, split_indices(labels, "test", 0.2, 3, test_fraction=0.1))
    assert not np.array_equal(test, split_indices(labels, "test", 0.2, 4, test_fraction=0.1))


@pytest.mark.parametrize(
    "overrides, expected",
    [({"backbone": "small-cnn"}, "needs a pretrained backbone"),
     ({"fine_tune_blocks": -1}, "must not be negative"),
     ({"val_fraction": 0.5, "test_fraction": 0.5}, "--test-fraction"),
     ({"crop_fraction": 0.0}, "--crop-fraction"),
     ({"lr_schedule": "linear"}, "--lr-schedule"),
     ({"feature_shift": -1}, "--feature-shift"),
     ({"monitor": "accuracy"}, "--monitor"),
     ({"feature_shift": 1, "cache_blocks": False}, "needs --cache-blocks")],
)
def test_bad_cached_options_are_refused_before_any_work(tmp_path, overrides, expected):
    from cvplay.training.trainer import TrainConfig, TrainError, train

    config = TrainConfig(**{"data": str(tmp_path / "missing"), "out": str(tmp_path / "o"), "cache_blocks": True, **overrides})
    with pytest.raises(TrainError, match=expected.replace("-", r"\-")):
        train(config)
    assert not (tmp_path / "o").exists()


def test_cifar_like_npz_gives_superclasses_and_a_thumbnail_size(tmp_path):
    """An in-memory dataset with coarse labels: the card gets the super-classes, the fine -> coarse
    map, a super-class metric and the thumbnail size that serving shrinks photos to."""
    from cvplay.datasets import CIFAR100_COARSE_LABELS
    from cvplay.evaluate import split_indices
    from cvplay.runtime import create_classifier
    from cvplay.training.trainer import TrainConfig, train

    rng = np.random.default_rng(0)
    colours = np.array([(230, 20, 20), (240, 140, 20), (20, 40, 230), (20, 200, 200)])
    fine = np.repeat(np.arange(4), 10)
    coarse = np.array([0, 0, 1, 1])[fine]  # two warm and two cool colours
    x = np.clip(colours[fine][:, None, None, :] + rng.integers(-20, 20, (40, 16, 16, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "colours.npz"
    np.savez(path, x=x, fine=fine, coarse=coarse, class_names=np.array(["red", "orange", "blue", "cyan"]))
    result = train(TrainConfig(data=str(path), out=str(tmp_path / "run"), backbone="small-cnn", image_size=32,
                               epochs=6, augment="none", test_fraction=0.25, val_fraction=0.25, name="npz"))
    card = json.loads(result.card_path.read_text())
    assert card["coarse_labels"] == list(CIFAR100_COARSE_LABELS) and card["fine_to_coarse"] == [0, 0, 1, 1]
    assert card["input"]["thumbnail_size"] == [16, 16]
    assert {"coarse_top1", "val_coarse_top1"} <= {m["name"] for m in card["metrics"]}
    classifier = create_classifier(str(result.card_path))
    test = split_indices(fine, "test", 0.25, 0, test_fraction=0.25)
    predicted = classifier.coarse_probabilities(classifier.predict_proba(list(x[test]))).argmax(axis=1)
    coarse_top1 = next(m["value"] for m in card["metrics"] if m["name"] == "coarse_top1")
    assert coarse_top1 == pytest.approx(np.mean(predicted == coarse[test]), abs=1e-4)
    probabilities = classifier.predict_proba([np.full((300, 200, 3), (235, 25, 25), np.uint8)])
    superclasses = classifier.coarse_probabilities(probabilities)
    assert superclasses.shape == (1, 20) and superclasses[0].sum() == pytest.approx(1.0, abs=1e-5)
    assert superclasses[0, 2:].sum() == pytest.approx(0.0, abs=1e-6)  # only the two super-classes in use


def test_shifted_maps_and_flip_averaging_are_on_the_card_and_in_the_figures(tmp_path):
    from cvplay.evaluate import evaluate
    from cvplay.training.trainer import TrainConfig, TrainError, train

    data = write_folder(tmp_path / "colours", per_class=8)
    config = dict(data=str(data), backbone="efficientnet-lite0", image_size=64, epochs=1, fine_tune_epochs=1,
                  fine_tune_blocks=5, cache_blocks=True, augment="none", val_fraction=0.25, test_fraction=0.25)
    result = train(TrainConfig(**config, out=str(tmp_path / "run"), feature_shift=1, average_flip=True, name="shifted"))
    card = json.loads(result.card_path.read_text())
    assert card["provenance"]["block_cache"]["shift_cells"] == 1 and card["provenance"]["block_cache"]["shape"][:2] == [4, 4]
    assert card["input"]["average_flip"] is True
    assert "--feature-shift 1" in card["provenance"]["command"] and "--average-flip" in card["provenance"]["command"]
    # the card's figure is measured the way the model is served: flip-averaged
    again = evaluate(str(result.card_path), str(data), split="test", val_fraction=0.25, test_fraction=0.25)
    assert again.report.top1 == pytest.approx(result.metrics["top1"])
    with pytest.raises(TrainError, match="--feature-shift 2"):
        train(TrainConfig(**config, out=str(tmp_path / "run2"), feature_shift=2))
