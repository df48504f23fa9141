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
