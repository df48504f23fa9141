"""Build tiny, exactly-known .tflite classifiers for the tests (needs the dev extra's TensorFlow).

The "colour" model averages each RGB channel and scales it, so a red image is "red", a green
one "green", a blue one "blue": the answer is known without training anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

COLOUR_LABELS = ["red", "green", "blue"]


def build_colour_tflite(path: Path, size: int = 8, output: str = "probabilities") -> Path:
    import tensorflow as tf

    keras = tf.keras
    inputs = keras.Input(shape=(size, size, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(3, use_bias=False, name="colour")
    logits = dense(pooled)
    outputs = keras.layers.Softmax()(logits) if output == "probabilities" else logits
    model = keras.Model(inputs, outputs)
    dense.set_weights([np.eye(3, dtype=np.float32) * 8.0])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    path.write_bytes(converter.convert())
    return path


def write_colour_model(directory: Path, name: str = "colour", size: int = 8, output: str = "probabilities", **card_overrides) -> Path:
    """Write ``name.tflite`` + ``name.json`` into ``directory``; returns the card path."""
    directory.mkdir(parents=True, exist_ok=True)
    build_colour_tflite(directory / f"{name}.tflite", size=size, output=output)
    card = {
        "name": name,
        "task": "classify",
        "title": f"Colour test model ({name})",
        "input": {"size": [size, size], "resize": "stretch", "mean": 0.0, "std": 255.0},
        "output": output,
        "labels": COLOUR_LABELS,
    }
    card.update(card_overrides)
    card_path = directory / f"{name}.json"
    card_path.write_text(json.dumps(card))
    return card_path


def solid(colour: tuple[int, int, int], height: int = 20, width: int = 30) -> np.ndarray:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:] = colour
    return image


SPOT_LABELS = ["spot", "anything else"]


def build_spot_tflite(path: Path, size: int, region: tuple[int, int, int, int], strength: float = 12.0) -> Path:
    """A ``size`` x ``size`` classifier whose class depends on ONE known region of its input.

    ``region`` is (top, left, height, width) in input pixels. The "spot" logit is ``strength``
    times the region's mean value (inputs 0..1), "anything else" is a constant ``strength / 2``:
    a bright region says "spot", hiding it (a black patch) says "anything else", and no other
    pixel matters.
    """
    import tensorflow as tf

    keras = tf.keras
    top, left, height, width = region
    mask = np.zeros((size, size, 3), dtype=np.float32)
    mask[top : top + height, left : left + width] = 1.0
    inputs = keras.Input(shape=(size, size, 3), name="image")
    flat = keras.layers.Flatten()(inputs)
    dense = keras.layers.Dense(2, name="spot")
    outputs = keras.layers.Softmax()(dense(flat))
    model = keras.Model(inputs, outputs)
    weights = np.zeros((size * size * 3, 2), dtype=np.float32)
    weights[:, 0] = mask.reshape(-1) / mask.sum() * strength
    dense.set_weights([weights, np.array([0.0, strength / 2], dtype=np.float32)])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    path.write_bytes(converter.convert())
    return path


def write_spot_model(directory: Path, name: str, size: int, region: tuple[int, int, int, int], **input_overrides) -> Path:
    """``name.tflite`` + card (inputs x / 255, ``input_overrides`` for resize, crop, thumbnail,
    flip-averaging); returns the card path."""
    directory.mkdir(parents=True, exist_ok=True)
    build_spot_tflite(directory / f"{name}.tflite", size, region)
    card = {
        "name": name,
        "task": "classify",
        "title": f"Spot test model ({name})",
        "input": {"size": [size, size], "resize": "stretch", "mean": 0.0, "std": 255.0, **input_overrides},
        "output": "probabilities",
        "labels": SPOT_LABELS,
    }
    card_path = directory / f"{name}.json"
    card_path.write_text(json.dumps(card))
    return card_path
