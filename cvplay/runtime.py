"""LiteRT runtime: run ``.tflite`` classifiers as their model cards say.

No TensorFlow here: only ``ai_edge_litert``. A :class:`Classifier` owns one interpreter and a
lock, so one instance can be shared by every Streamlit session (``st.cache_resource``) and
called from several threads at once.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cvplay.preprocess import prepare_batch
from cvplay.registry import ModelCard, get_card

DEFAULT_TOP_K = 5


def _max_batch() -> int:
    configured = os.environ.get("CVPLAY_MAX_BATCH", "").strip()
    return int(configured) if configured.isdigit() and int(configured) > 0 else 1


# Images per LiteRT invoke. LiteRT sizes its tensor arena for the largest batch it has run and
# keeps it: with imagenet-lite0 (224 px, fp16) loaded, a process's RSS was 98 MB after a batch of
# 1, 161 MB after 8 and 327 MB after 32, for no faster inference per image on a CPU (README: 3.76
# ms one at a time, 4.0 ms/image in batches of 32). Batch 1 keeps every model at its smallest for
# every visitor; CVPLAY_MAX_BATCH raises it where memory is plentiful.
MAX_BATCH = _max_batch()


class ModelLoadError(RuntimeError):
    """A model file could not be loaded by LiteRT, or does not match its card."""


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "index": self.index, "score": self.score}


def default_num_threads() -> int:
    configured = os.environ.get("CVPLAY_NUM_THREADS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(4, os.cpu_count() or 1))


def load_interpreter(model_path: str | os.PathLike[str], num_threads: int | None = None):
    """A LiteRT interpreter with tensors allocated; :class:`ModelLoadError` if the file is bad."""
    from ai_edge_litert.interpreter import Interpreter

    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelLoadError(f"{model_path}: no such model file")
    try:
        content = model_path.read_bytes()
    except OSError as error:
        raise ModelLoadError(f"{model_path}: cannot read the model file ({error.strerror})") from None
    # A .tflite file is a FlatBuffer whose identifier "TFL3" sits at bytes 4..8.
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ModelLoadError(f"{model_path.name} is not a TFLite model file (no TFL3 identifier)")
    try:
        interpreter = Interpreter(model_content=content, num_threads=num_threads or default_num_threads())
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f"{model_path.name} could not be loaded by LiteRT: {first_line}") from None
    return interpreter


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def quantize_input(batch: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Cast a float batch to the input tensor's dtype, quantizing when it is an integer type."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return batch.astype(dtype, copy=False)
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if scale:
        batch = batch / scale + zero_point
    info = np.iinfo(dtype)
    return np.clip(np.round(batch), info.min, info.max).astype(dtype)


def dequantize_output(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if np.issubdtype(values.dtype, np.floating):
        return values.astype(np.float32, copy=False)
    scale, zero_point = detail.get("quantization", (0.0, 0))
    values = values.astype(np.float32)
    return (values - zero_point) * scale if scale else values


def top_k(probabilities: np.ndarray, labels: Sequence[str], k: int) -> list[Prediction]:
    k = max(1, min(int(k), probabilities.shape[-1]))
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [
        Prediction(label=labels[i] if i < len(labels) else str(i), index=int(i), score=float(probabilities[i]))
        for i in order
    ]


class Classifier:
    """A LiteRT image classifier configured by its model card."""

    def __init__(self, card: ModelCard, num_threads: int | None = None):
        if card.task != "classify":
            raise ModelLoadError(f"{card.name} is a {card.task} model, not a classifier")
        self.card = card
        self._lock = threading.Lock()
        self._interpreter = load_interpreter(card.model_path, num_threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        shape = list(self._input["shape"])
        if len(shape) != 4 or shape[3] != 3:
            raise ModelLoadError(f"{card.name}: expected an input of shape (N, H, W, 3), the model has {shape}")
        if tuple(shape[1:3]) != tuple(card.input.size):
            raise ModelLoadError(
                f"{card.name}: the card says input size {list(card.input.size)}, the model takes {shape[1:3]}"
            )
        classes = int(self._output["shape"][-1])
        if classes != card.num_classes:
            raise ModelLoadError(f"{card.name}: the card lists {card.num_classes} labels, the model outputs {classes}")
        self._batch_size = int(shape[0])

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.labels

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        """Run one prepared batch (caller holds the lock)."""
        count = batch.shape[0]
        if count != self._batch_size:
            try:
                self._interpreter.resize_tensor_input(self._input["index"], [count, *batch.shape[1:]], strict=False)
                self._interpreter.allocate_tensors()
            except (ValueError, RuntimeError):
                # A model with a fixed batch of one: run the images one at a time.
                return np.concatenate([self._invoke(batch[i : i + 1]) for i in range(count)])
            self._input = self._interpreter.get_input_details()[0]
            self._output = self._interpreter.get_output_details()[0]
            self._batch_size = count
        self._interpreter.set_tensor(self._input["index"], quantize_input(batch, self._input))
        self._interpreter.invoke()
        values = dequantize_output(self._interpreter.get_tensor(self._output["index"]), self._output)
        return values.reshape(count, -1)

    def _probabilities(self, outputs: np.ndarray) -> np.ndarray:
        return softmax(outputs) if self.card.output == "logits" else outputs

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(N, num_classes)`` for RGB uint8 images of any size (averaged
        with each image's mirror image when the card's ``input.average_flip`` says so)."""
        results = [
            self.predict_prepared(prepare_batch(images[start : start + MAX_BATCH], self.card.input))
            for start in range(0, len(images), MAX_BATCH)
        ]
        if not results:
            return np.zeros((0, self.card.num_classes), dtype=np.float32)
        return np.concatenate(results)

    def predict_prepared(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities for an already prepared float32 ``(N, H, W, 3)`` batch (see
        :func:`cvplay.preprocess.prepare_batch`), flip-averaged when the card says so."""
        if len(batch) > MAX_BATCH:
            return np.concatenate([self.predict_prepared(batch[i : i + MAX_BATCH]) for i in range(0, len(batch), MAX_BATCH)])
        with self._lock:
            outputs = self._invoke(batch)
            mirrored = self._invoke(np.ascontiguousarray(batch[:, :, ::-1])) if self.card.input.average_flip else None
        probabilities = self._probabilities(outputs)
        if mirrored is not None:
            probabilities = (probabilities + self._probabilities(mirrored)) / 2
        return probabilities

    def predict(self, image: np.ndarray, k: int = DEFAULT_TOP_K) -> list[Prediction]:
        """Top-k predictions for one image."""
        return top_k(self.predict_proba([image])[0], self.labels, k)

    def predict_batch(self, images: Sequence[np.ndarray], k: int = DEFAULT_TOP_K) -> list[list[Prediction]]:
        """Top-k predictions for each of several images."""
        return [top_k(row, self.labels, k) for row in self.predict_proba(images)]

    def coarse_probabilities(self, probabilities: np.ndarray) -> np.ndarray:
        """Superclass probabilities: the sum of each superclass's fine-class probabilities."""
        if not self.card.coarse_labels:
            raise ValueError(f"{self.card.name} has no coarse labels")
        index = np.asarray(self.card.fine_to_coarse)
        coarse = np.zeros((*probabilities.shape[:-1], len(self.card.coarse_labels)), dtype=np.float32)
        for fine, parent in enumerate(index):
            coarse[..., parent] += probabilities[..., fine]
        return coarse


def create_classifier(name_or_path: str | os.PathLike[str], num_threads: int | None = None) -> Classifier:
    """A :class:`Classifier` for a registered model name or a card/model path."""
    return Classifier(get_card(name_or_path), num_threads=num_threads)
