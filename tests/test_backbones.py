"""The backbone registry: every registered backbone builds, names its blocks and has a valid
card input; keras.applications backbones fail offline with one sentence and load local weights."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("tensorflow")

import keras  # noqa: E402

from cvplay.registry import parse_input_spec  # noqa: E402
from cvplay.training import backbones  # noqa: E402
from cvplay.training import small_cnn  # noqa: E402,F401  (registers small-cnn)

KERAS_APPLICATIONS = ["efficientnet-b0", "resnet50", "inception-v3", "mobilenet-v2"]
#: (blocks, first, last) of each family as Keras / cvplay name them.
EXPECTED_BLOCKS = {
    "efficientnet-lite0": (16, "block1a", "block7a"),
    "efficientnet-lite2": (21, "block1a", "block7a"),
    "efficientnet-b0": (16, "block1a", "block7a"),
    "resnet50": (16, "conv2_block1", "conv5_block3"),
    "inception-v3": (11, "mixed0", "mixed10"),
    "mobilenet-v2": (17, "expanded_conv", "block_16"),
}


#: Larger Keras models: tens of seconds each to build on a shared 2-core CPU.
HEAVY = {"resnet50", "inception-v3"}


def _params(names):
    return [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name for name in names]


def _offline(*args, **kwargs):  # what Keras raises when a download fails without internet
    raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -2] Name or service not known")


@pytest.mark.parametrize("name", _params(spec.name for spec in backbones.list_backbones()))
def test_every_registered_backbone_builds_and_names_its_blocks(name):
    spec = backbones.get_backbone(name)
    size = 75 if name == "inception-v3" else 64  # InceptionV3's smallest input
    model = backbones.create_backbone(name, (size, size, 3), weights=None)
    assert len(model.output.shape) == 2 and model.output.shape[-1] > 0
    card_input = parse_input_spec(spec.input_spec())
    assert card_input.size == spec.default_size
    assert spec.to_dict()["offline_weights"] == spec.offline_weights
    if name in EXPECTED_BLOCKS:
        count, first, last = EXPECTED_BLOCKS[name]
        prefixes = backbones.block_prefixes(model)
        assert (len(prefixes), prefixes[0], prefixes[-1]) == (count, first, last)


@pytest.mark.parametrize("name", _params(["resnet50", "inception-v3", "mobilenet-v2"]))
def test_unfreeze_top_blocks_of_keras_applications(name):
    size = 75 if name == "inception-v3" else 64
    model = backbones.create_backbone(name, (size, size, 3), weights=None)
    blocks = backbones.layer_blocks(model)
    chosen = backbones.unfreeze_top_blocks(model, 2)
    prefixes = backbones.block_prefixes(model)
    assert chosen == prefixes[-2:]
    for layer, block in zip(model.layers, blocks):
        if isinstance(layer, keras.layers.BatchNormalization):
            assert not layer.trainable, layer.name
        elif block in chosen and layer.weights:
            assert layer.trainable, layer.name
        elif block is not None and block not in chosen:
            assert not layer.trainable, layer.name
    trainable_convs = [layer.name for layer in model.layers if layer.trainable and isinstance(layer, keras.layers.Conv2D)]
    assert trainable_convs and all(blocks[[l.name for l in model.layers].index(n)] in chosen or
                                   blocks[[l.name for l in model.layers].index(n)] is None for n in trainable_convs)
    assert backbones.unfreeze_top_blocks(model, -1) == prefixes


@pytest.mark.parametrize("name", _params(KERAS_APPLICATIONS))
def test_keras_applications_fail_offline_with_one_sentence(monkeypatch, name):
    from keras.src.utils import file_utils

    monkeypatch.setattr(file_utils, "get_file", _offline)
    size = 75 if name == "inception-v3" else 64
    with pytest.raises(backbones.BackboneError) as raised:
        backbones.create_backbone(name, (size, size, 3), weights="imagenet")
    message = str(raised.value)
    assert "not reachable" in message and "--weights PATH" in message and "\n" not in message
    with pytest.raises(backbones.BackboneError, match="no such weights file"):
        backbones.create_backbone(name, (size, size, 3), weights="/nonexistent/weights.h5")


@pytest.mark.slow
def test_local_weights_file_loads_and_resnet_takes_rgb(tmp_path):
    source = backbones.build_mobilenet_v2(include_top=False, weights=None, input_shape=(64, 64, 3), pooling="avg")
    path = tmp_path / "mobilenet_v2_notop.weights.h5"
    source.save_weights(path)
    loaded = backbones.create_backbone("mobilenet-v2", (64, 64, 3), weights=str(path))
    for expected, got in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(expected, got)
    batch = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(source.predict(batch, verbose=0), loaded.predict(batch, verbose=0), atol=1e-6)

    # ResNet50's Keras weights expect BGR; the builder flips the first kernel so the model takes RGB:
    # RGB into the loaded model equals BGR into the original.
    resnet = backbones.build_resnet50(include_top=False, weights=None, input_shape=(64, 64, 3), pooling="avg")
    resnet_path = tmp_path / "resnet50_notop.weights.h5"
    resnet.save_weights(resnet_path)
    rgb = backbones.create_backbone("resnet50", (64, 64, 3), weights=str(resnet_path))
    np.testing.assert_array_equal(rgb.get_layer("conv1_conv").get_weights()[0],
                                  resnet.get_layer("conv1_conv").get_weights()[0][:, :, ::-1, :])
    pixels = np.random.default_rng(1).uniform(-120, 130, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(rgb.predict(pixels, verbose=0), resnet.predict(pixels[..., ::-1], verbose=0),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_a_weights_file_of_another_model_is_one_clear_error(tmp_path):
    other = backbones.build_mobilenet_v2(include_top=False, weights=None, input_shape=(64, 64, 3))
    path = tmp_path / "not_resnet.weights.h5"
    other.save_weights(path)
    with pytest.raises(backbones.BackboneError, match="not a weights file of ResNet50"):
        backbones.create_backbone("resnet50", (64, 64, 3), weights=str(path))


def test_the_train_command_offers_every_registered_backbone():
    from cvplay.cli import build_parser
    from cvplay.training.cli_train import BACKBONE_CHOICES

    assert set(BACKBONE_CHOICES) == {spec.name for spec in backbones.list_backbones()}
    args = build_parser().parse_args(["train", "--data", "photos/", "--backbone", "efficientnet-lite2"])
    assert args.backbone == "efficientnet-lite2"
