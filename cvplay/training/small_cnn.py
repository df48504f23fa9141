"""A small CNN trained from scratch: the baseline the pretrained backbones are compared with.

Registered as backbone ``small-cnn``. Four conv blocks (conv-BN-ReLU x2, then max pooling),
named ``block{n}a_*`` like EfficientNet's layers so :func:`unfreeze_top_blocks` treats it alike.
It has no pretrained weights: the trainer trains all of it in one stage.

Importing this module does not import TensorFlow or Keras; building the model does.
"""

from __future__ import annotations

import os
from typing import Any

from cvplay.training.backbones import BackboneError, BackboneSpec, register_backbone

NAME = "small-cnn"
FILTERS = (32, 64, 128, 256)
#: Pixels scaled to about -1..1; images are stretched (no crop) to the input size.
INPUT = {"resize": "stretch", "crop_fraction": 1.0, "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]}


def build_small_cnn(
    include_top: bool = False,
    weights: str | os.PathLike[str] | None = None,
    input_shape: tuple[int | None, int | None, int] = (64, 64, 3),
    pooling: str | None = "avg",
    classes: int = 10,
    filters: tuple[int, ...] = FILTERS,
    **_: Any,
):
    """The small CNN as a functional ``keras.Model`` (random weights, or a ``.weights.h5`` file)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for number, width in enumerate(filters, start=1):
        prefix = f"block{number}a"
        for part in ("conv1", "conv2"):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{prefix}_{part}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"{prefix}_{part}_bn")(x)  # few steps per epoch: fast-moving statistics
            x = layers.ReLU(name=f"{prefix}_{part}_relu")(x)
        if number < len(filters):
            x = layers.MaxPooling2D(2, name=f"{prefix}_pool")(x)
    if include_top or pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    if include_top:
        x = layers.Dense(classes, name="predictions")(x)
    model = keras.Model(inputs, x, name="small_cnn")
    if weights not in (None, "imagenet"):
        path = os.path.expanduser(os.fspath(weights))
        if not os.path.isfile(path):
            raise BackboneError(f"{path}: no such weights file for small-cnn")
        model.load_weights(path)
    return model


SPEC = register_backbone(
    BackboneSpec(
        name=NAME,
        title="Small CNN (from scratch, baseline)",
        build=build_small_cnn,
        input=dict(INPUT),
        default_size=(64, 64),
        weights_source="none: random initialisation, trained from scratch on the training data",
        weights_licence="n/a",
        offline_weights=True,
        notes={"pretrained": False},
    )
)


def is_pretrained(spec: BackboneSpec) -> bool:
    """Whether a backbone comes with pretrained weights (so it is frozen in stage 1)."""
    return bool(spec.notes.get("pretrained", True))
