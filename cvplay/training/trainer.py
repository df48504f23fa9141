"""Transfer learning: train a classifier on a labelled image dataset and export it for serving.

:func:`train` does, from a :class:`TrainConfig`:

1. loads the data (:func:`cvplay.datasets.load_dataset`: a folder of class folders, a ``.zip``,
   CIFAR-100 sources, ``.npz``), reports validation warnings, splits it stratified with a fixed
   seed, and decodes every image ONCE into a uint8 array at the model's input size with
   :func:`cvplay.preprocess.resize_for_model` -- the very function serving uses, so the model
   card's ``input`` is exactly what the model was fed;
2. stage 1: a frozen pretrained backbone and a new head (global average pooling, dropout, dense
   softmax). FAST PATH: without augmentation (or with ``cache_features``) the backbone's pooled
   features are computed once in batches and the head is trained on them (seconds on a CPU);
3. stage 2: the top ``fine_tune_blocks`` blocks are unfrozen (:func:`unfreeze_top_blocks`,
   batch norm kept frozen: the backbone is called with ``training=False``) and trained on the
   (augmented) images at a low learning rate;
4. exports ``model.keras``, ``<name>.tflite`` and its card, measures the ``.tflite`` on the
   validation split through the serving runtime, and writes ``history.csv``, ``curves.png``,
   ``confusion_matrix.csv/.png`` and ``per_class.csv``.

A backbone without pretrained weights (``small-cnn``) is trained whole in one stage.
TensorFlow is imported when :func:`train` runs, not when this module is imported.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cvplay import augment as augment_module
from cvplay.training import small_cnn  # noqa: F401  (registers the small-cnn backbone)
from cvplay.training.backbones import BackboneSpec, get_backbone

Progress = Callable[[dict[str, Any]], None]

DEFAULT_BACKBONE = "efficientnet-lite0"
DEFAULT_AUGMENT = augment_module.DEFAULT_PRESET
MAX_MISCLASSIFIED = 24
FEATURE_BATCH = 64
#: One training run at a time per process (two would share 2 cores and Keras' global state).
_RUN_LOCK = threading.Lock()


class TrainError(ValueError):
    """The training cannot be done as asked; the message is one sentence for a person."""


@dataclass
class TrainConfig:
    data: str
    out: str | None = None  # default: cvplay.registry.user_models_dir() / name
    backbone: str = DEFAULT_BACKBONE
    epochs: int = 10
    image_size: int | None = None  # default: the backbone's (224 for EfficientNet, 64 small-cnn)
    batch_size: int = 32
    learning_rate: float = 1e-3
    fine_tune_epochs: int = 3
    fine_tune_blocks: int = 2
    fine_tune_learning_rate: float | None = None  # default: learning_rate / 10
    augment: Any = DEFAULT_AUGMENT  # preset name, policy JSON path, dict, Policy, or "none"/None
    cache_features: bool | None = None  # None: when augmentation is off
    seed: int = 0
    val_fraction: float = 0.2
    max_per_class: int | None = None
    name: str | None = None
    weights: str | None = None  # local weights file (efficientnet-b0 offline)
    precision: str = "fp32"
    patience: int = 3
    dropout: float = 0.2
    command: str | None = None  # the exact command line, for the card; rebuilt when absent

    def to_command(self) -> str:
        parts = ["python", "-m", "cvplay", "train", "--data", str(self.data), "--backbone", self.backbone,
                 "--epochs", str(self.epochs)]
        if self.out:
            parts += ["--out", str(self.out)]
        if self.image_size:
            parts += ["--image-size", str(self.image_size)]
        parts += ["--batch-size", str(self.batch_size), "--learning-rate", f"{self.learning_rate:g}",
                  "--fine-tune-epochs", str(self.fine_tune_epochs), "--fine-tune-blocks", str(self.fine_tune_blocks)]
        if isinstance(self.augment, str) or self.augment is None:
            parts += ["--augment", str(self.augment or "none")]
        else:
            parts += ["--augment", "<policy JSON>"]
        if self.cache_features:
            parts += ["--cache-features"]
        parts += ["--seed", str(self.seed), "--val-fraction", f"{self.val_fraction:g}"]
        if self.max_per_class:
            parts += ["--max-per-class", str(self.max_per_class)]
        if self.name:
            parts += ["--name", self.name]
        if self.weights:
            parts += ["--weights", str(self.weights)]
        return shlex.join(parts)


@dataclass
class TrainResult:
    name: str
    out_dir: Path
    model_path: Path  # the .tflite
    card_path: Path
    keras_path: Path
    labels: list[str]
    metrics: dict[str, float]  # top1, top5 of the .tflite on the validation split
    history: list[dict[str, Any]]
    confusion: np.ndarray
    per_class: list[dict[str, Any]]
    misclassified: list[dict[str, Any]]  # {"index", "true", "predicted", "confidence", "image"}
    feature_cache: bool
    throughput: dict[str, float]  # images/s: "feature_extraction", "training_steps", "fine_tune_steps"
    seconds: float
    warnings: list[str] = field(default_factory=list)
    stopped: bool = False
    files: dict[str, Path] = field(default_factory=dict)
    n_train: int = 0
    n_val: int = 0


# --- configuration helpers -------------------------------------------------------------------


def resolve_policy(value: Any) -> augment_module.Policy:
    """A policy from a preset name, a path to a policy JSON file, a dict, a Policy, or none."""
    if isinstance(value, augment_module.Policy):
        return value
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
        return augment_module.preset("none")
    if isinstance(value, dict):
        try:
            return augment_module.Policy.from_dict(value)
        except ValueError as error:
            raise TrainError(f"the augmentation policy is not valid: {error}") from None
    text = str(value).strip()
    if text in augment_module.PRESETS:
        return augment_module.preset(text)
    path = Path(text).expanduser()
    if path.is_file():
        try:
            return augment_module.Policy.from_json(path.read_bytes())
        except ValueError as error:
            raise TrainError(f"{path.name} is not a valid augmentation policy: {error}") from None
    raise TrainError(
        f"--augment {text!r} is neither a preset ({', '.join(augment_module.PRESETS)}) nor a policy JSON file"
    )


def default_name(data: str, backbone: str) -> str:
    stem = Path(str(data).rstrip("/\\")).name or "data"
    for suffix in (".zip", ".npz", ".tar.gz", ".tgz"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return slug(f"{stem}-{backbone}")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "model"


def _check(config: TrainConfig) -> None:
    if config.epochs < 0 or config.fine_tune_epochs < 0:
        raise TrainError("epochs must not be negative")
    if config.epochs == 0 and config.fine_tune_epochs == 0:
        raise TrainError("nothing to train: --epochs and --fine-tune-epochs are both 0")
    if config.batch_size < 1:
        raise TrainError(f"--batch-size must be at least 1, got {config.batch_size}")
    if not config.learning_rate > 0:
        raise TrainError(f"--learning-rate must be positive, got {config.learning_rate}")
    if not 0 < config.val_fraction < 1:
        raise TrainError(f"--val-fraction must lie between 0 and 1, got {config.val_fraction}")
    if config.image_size is not None and not 16 <= config.image_size <= 1024:
        raise TrainError(f"--image-size must lie between 16 and 1024, got {config.image_size}")
    if config.max_per_class is not None and config.max_per_class < 2:
        raise TrainError("--max-per-class must be at least 2 (one training and one validation image)")
    if config.precision not in ("fp32", "fp16"):
        raise TrainError(f"--precision must be fp32 or fp16, got {config.precision!r}")


def hardware_description() -> str:
    cpu = platform.processor() or platform.machine()
    text = f"{os.cpu_count()} CPU core(s) {cpu}".strip()
    try:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            text += f", {len(gpus)} GPU(s)"
    except Exception:  # pragma: no cover - informational only
        pass
    return text


# --- keras pieces ----------------------------------------------------------------------------


def _callbacks(keras, *, csv_path: Path, append: bool, patience: int, stage: str, reporter, stop_event):
    return [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=max(1, patience - 1), min_lr=1e-6),
        keras.callbacks.CSVLogger(str(csv_path), append=append),
        reporter.callback(keras, stage, stop_event),
    ]


class _Reporter:
    """Collects the history, times training steps and forwards progress events."""

    def __init__(self, progress: Progress | None, total_epochs: int):
        self.progress = progress
        self.total_epochs = max(1, total_epochs)
        self.history: list[dict[str, Any]] = []
        self.step_seconds: dict[str, float] = {}

    def emit(self, event: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(event)

    def message(self, stage: str, text: str, **extra: Any) -> None:
        self.emit({"stage": stage, "message": text, **extra})

    def callback(self, keras, stage: str, stop_event: threading.Event | None):
        reporter = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                self._started = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                reporter.step_seconds[stage] = reporter.step_seconds.get(stage, 0.0) + time.perf_counter() - self._started
                if stop_event is not None and stop_event.is_set():
                    self.model.stop_training = True

            def on_epoch_end(self, epoch, logs=None):
                logs = {k: float(v) for k, v in (logs or {}).items()}
                row = {"epoch": len(reporter.history) + 1, "stage": stage, **logs}
                reporter.history.append(row)
                text = f"{stage} epoch {row['epoch']}/{reporter.total_epochs}: " + "  ".join(
                    f"{k} {v:.4f}" for k, v in logs.items() if k in ("loss", "accuracy", "val_loss", "val_accuracy")
                )
                reporter.emit({"stage": stage, "message": text, "epoch": row["epoch"], "epochs": reporter.total_epochs,
                               "fraction": min(1.0, row["epoch"] / reporter.total_epochs), "logs": row})
                if stop_event is not None and stop_event.is_set():
                    self.model.stop_training = True

        return Callback()


def _image_pipeline(tf, images: np.ndarray, labels: np.ndarray, *, batch_size: int, shuffle: bool,
                    policy: augment_module.Policy | None, seed: int, mean, std):
    """Batches of normalized float images from a uint8 array (augmented when ``policy`` is on)."""
    n = len(images)
    mean = tf.constant(np.asarray(mean, np.float32))
    std = tf.constant(np.asarray(std, np.float32))
    augment_fn = augment_module.make_tf_augment(policy, seed) if policy is not None and policy.enabled() else None
    height, width = images.shape[1:3]

    def gather(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images[index], labels[index].astype(np.int32)

    def load(index):
        x, y = tf.numpy_function(gather, [index], (tf.uint8, tf.int32), stateful=True)
        x.set_shape((None, height, width, 3))
        y.set_shape((None,))
        return x, y

    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(load)
    if augment_fn is not None:
        ds = ds.map(lambda x, y: (augment_fn(x), y))
    ds = ds.map(lambda x, y: ((tf.cast(x, tf.float32) - mean) / std, y))
    return ds.prefetch(2)


# --- the run ---------------------------------------------------------------------------------


def _decode(dataset, spec, reporter: _Reporter, stop_event) -> np.ndarray:
    from cvplay.preprocess import resize_for_model

    height, width = spec.size
    out = np.empty((len(dataset), height, width, 3), dtype=np.uint8)
    started = time.perf_counter()
    for i in range(len(dataset)):
        out[i] = resize_for_model(dataset.load(i), spec)
        if i % 200 == 199:
            reporter.emit({"stage": "decode", "fraction": (i + 1) / len(dataset),
                           "message": f"decoded {i + 1}/{len(dataset)} images"})
            if stop_event is not None and stop_event.is_set():
                raise TrainError("training was stopped while decoding the images")
    seconds = time.perf_counter() - started
    reporter.message("decode", f"decoded {len(dataset)} images to {height}x{width} in {seconds:.1f} s")
    return out


def train(config: TrainConfig, progress: Progress | None = None,
          stop_event: threading.Event | None = None) -> TrainResult:
    """Train as ``config`` says; see the module docstring. ``progress`` receives dict events
    (``stage``, ``message``, and per epoch ``epoch``, ``epochs``, ``fraction``, ``logs``);
    setting ``stop_event`` ends training early and still exports the best weights so far."""
    _check(config)
    spec: BackboneSpec = get_backbone(config.backbone)
    pretrained = small_cnn.is_pretrained(spec)
    policy = resolve_policy(config.augment)
    augmenting = bool(policy.enabled())
    cache = (not augmenting) if config.cache_features is None else bool(config.cache_features)
    if not pretrained:
        cache = False
    stage1_epochs = config.epochs
    stage2_epochs = config.fine_tune_epochs if pretrained else 0
    if not pretrained and config.epochs == 0:
        raise TrainError(f"{spec.name} is trained from scratch: --epochs must be at least 1")
    reporter = _Reporter(progress, stage1_epochs + stage2_epochs)
    if _RUN_LOCK.locked():
        reporter.message("queue", "another training run is in progress in this process; waiting for it")
    with _RUN_LOCK:
        return _train_locked(config, spec, pretrained, policy, cache, stage1_epochs, stage2_epochs, reporter, stop_event)


def _train_locked(config, spec, pretrained, policy, cache, stage1_epochs, stage2_epochs, reporter, stop_event):
    from cvplay.datasets import DatasetError, load_dataset, stratified_split, class_weights, validate_for_training
    from cvplay.evaluate import classification_report, predict_dataset
    from cvplay.registry import parse_input_spec, read_card, user_models_dir, write_card
    from cvplay.runtime import Classifier
    from cvplay.training import reports

    started = time.perf_counter()
    size = (config.image_size, config.image_size) if config.image_size else tuple(spec.default_size)
    input_dict = spec.input_spec(size)
    input_spec = parse_input_spec(input_dict)
    name = slug(config.name) if config.name else default_name(config.data, spec.name)
    out_dir = Path(config.out).expanduser() if config.out else user_models_dir() / name
    command = config.command or config.to_command()

    # --- data
    reporter.message("load", f"loading {config.data}")
    dataset = load_dataset(config.data, max_images_per_class=config.max_per_class, min_images_per_class=2)
    warnings = validate_for_training(dataset, min_images_per_class=2)
    for text in warnings:
        reporter.message("load", f"warning: {text}", warning=text)
    train_idx, val_idx = stratified_split(dataset.labels, (1 - config.val_fraction, config.val_fraction), seed=config.seed)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise DatasetError("The dataset is too small to hold out a validation split: add images.")
    labels = list(dataset.class_names)
    num_classes = len(labels)
    counts = dataset.class_counts()
    reporter.message("load", f"{len(dataset)} images, {num_classes} classes ({', '.join(labels[:8])}"
                     f"{', ...' if num_classes > 8 else ''}); {len(train_idx)} for training, {len(val_idx)} for validation")
    weights_by_class = class_weights(dataset.labels[train_idx], num_classes)
    x_all = _decode(dataset, input_spec, reporter, stop_event)
    y_all = dataset.labels.astype(np.int32)
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    x_val, y_val = x_all[val_idx], y_all[val_idx]
    del x_all

    # --- TensorFlow
    reporter.message("build", "importing TensorFlow and building the model")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()  # the default (CPU) strategy
    height, width = size
    weights = (config.weights or "imagenet") if pretrained else config.weights
    from cvplay.training.backbones import create_backbone, unfreeze_top_blocks

    with strategy.scope():
        backbone = create_backbone(spec.name, input_shape=(height, width, 3), weights=weights, pooling=None)
        inputs = keras.Input(shape=(height, width, 3), name="image")
        feature_map = backbone(inputs, training=False) if pretrained else backbone(inputs)
        pool = keras.layers.GlobalAveragePooling2D(name="head_pool")
        dropout = keras.layers.Dropout(config.dropout, name="head_dropout")
        dense = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="head_predictions")
        pooled = pool(feature_map)
        model = keras.Model(inputs, dense(dropout(pooled)), name=slug(name).replace("-", "_").replace(".", "_"))
    if pretrained:
        backbone.trainable = False

    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "history.csv"
    if csv_path.exists():
        csv_path.unlink()
    throughput: dict[str, float] = {}
    mean, std = input_spec.mean, input_spec.std
    loss = "sparse_categorical_crossentropy"

    def pipeline(x, y, shuffle, use_policy):
        return _image_pipeline(tf, x, y, batch_size=config.batch_size, shuffle=shuffle,
                               policy=policy if use_policy else None, seed=config.seed, mean=mean, std=std)

    done_epochs = 0
    stopped = lambda: stop_event is not None and stop_event.is_set()  # noqa: E731

    # --- stage 1
    if stage1_epochs > 0:
        stage = "head" if pretrained else "train"
        if cache:
            with strategy.scope():
                feature_model = keras.Model(inputs, pooled)
            reporter.message("features", f"computing {spec.name} features once for {len(x_train) + len(x_val)} images")
            t0 = time.perf_counter()
            feats = []
            for part in (x_train, x_val):
                chunks = []
                for start in range(0, len(part), FEATURE_BATCH):
                    batch = (part[start : start + FEATURE_BATCH].astype(np.float32) - np.float32(mean)) / np.float32(std)
                    chunks.append(np.asarray(feature_model.predict_on_batch(batch), dtype=np.float32))
                    if stopped():
                        break
                feats.append(np.concatenate(chunks) if chunks else np.zeros((0, pooled.shape[-1]), np.float32))
            seconds = time.perf_counter() - t0
            throughput["feature_extraction"] = (len(x_train) + len(x_val)) / seconds
            reporter.message("features", f"feature extraction: {throughput['feature_extraction']:.1f} images/s "
                             f"({seconds:.1f} s, feature size {feats[0].shape[-1]})",
                             images_per_second=throughput["feature_extraction"])
            if not stopped():
                with strategy.scope():
                    feature_input = keras.Input(shape=(int(pooled.shape[-1]),), name="features")
                    head = keras.Model(feature_input, dense(dropout(feature_input)), name="head")
                    head.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss, metrics=["accuracy"])
                reporter.message(stage, f"stage 1: training the head on cached features ({stage1_epochs} epochs)")
                head.fit(feats[0], y_train, validation_data=(feats[1], y_val), epochs=stage1_epochs,
                         batch_size=config.batch_size, class_weight=weights_by_class, verbose=0,
                         callbacks=_callbacks(keras, csv_path=csv_path, append=False, patience=config.patience,
                                              stage=stage, reporter=reporter, stop_event=stop_event))
        else:
            with strategy.scope():
                model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss, metrics=["accuracy"])
            what = "the head on a frozen backbone" if pretrained else f"{spec.name} from scratch"
            reporter.message(stage, f"stage 1: training {what} ({stage1_epochs} epochs, augmentation "
                             f"{'on' if policy.enabled() else 'off'})")
            model.fit(pipeline(x_train, y_train, True, True), validation_data=pipeline(x_val, y_val, False, False), shuffle=False,
                      epochs=stage1_epochs, class_weight=weights_by_class, verbose=0,
                      callbacks=_callbacks(keras, csv_path=csv_path, append=False, patience=config.patience,
                                           stage=stage, reporter=reporter, stop_event=stop_event))
            rate = _steps_rate(reporter, stage, len(x_train))
            if rate:
                throughput["training_steps"] = rate
                reporter.message(stage, f"training steps: {rate:.1f} images/s", images_per_second=rate)
        done_epochs = len(reporter.history)

    # --- stage 2
    if stage2_epochs > 0 and not stopped():
        with strategy.scope():
            chosen = unfreeze_top_blocks(backbone, config.fine_tune_blocks)
            ft_lr = config.fine_tune_learning_rate or config.learning_rate / 10
            model.compile(optimizer=keras.optimizers.Adam(ft_lr), loss=loss, metrics=["accuracy"])
        reporter.message("fine_tune", f"stage 2: fine-tuning blocks {', '.join(chosen) or '(top only)'} and the head "
                         f"at learning rate {ft_lr:g} ({stage2_epochs} epochs, batch norm frozen)")
        model.fit(pipeline(x_train, y_train, True, True), validation_data=pipeline(x_val, y_val, False, False), shuffle=False,
                  initial_epoch=done_epochs, epochs=done_epochs + stage2_epochs, class_weight=weights_by_class, verbose=0,
                  callbacks=_callbacks(keras, csv_path=csv_path, append=True, patience=config.patience,
                                       stage="fine_tune", reporter=reporter, stop_event=stop_event))
        rate = _steps_rate(reporter, "fine_tune", len(x_train))
        if rate:
            throughput["fine_tune_steps"] = rate
            reporter.message("fine_tune", f"fine-tuning steps: {rate:.1f} images/s", images_per_second=rate)
    train_seconds = time.perf_counter() - started

    # --- export
    reporter.message("export", f"saving the model to {out_dir}")
    keras_path = out_dir / "model.keras"
    model.save(keras_path)
    from cvplay.training.export import export_tflite

    tflite_path = export_tflite(model, out_dir / f"{name}.tflite", precision=config.precision)
    card_path = out_dir / f"{name}.json"
    provenance = {
        "backbone": spec.name,
        "backbone_title": spec.title,
        "pretrained_weights": (str(config.weights) if config.weights else spec.weights_source) if pretrained else "none (from scratch)",
        "weights_licence": spec.weights_licence,
        "training_data": str(config.data),
        "data_source": dataset.source,
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "training_time_s": round(train_seconds, 1),
        "hardware": hardware_description(),
        "epochs": {"head" if pretrained else "train": sum(1 for r in reporter.history if r["stage"] != "fine_tune"),
                   "fine_tune": sum(1 for r in reporter.history if r["stage"] == "fine_tune")},
        "fine_tune_blocks": config.fine_tune_blocks if stage2_epochs else 0,
        "feature_cache": cache,
        "images": {"train": int(len(train_idx)), "validation": int(len(val_idx)),
                   "per_class": {label: int(c) for label, c in zip(labels, counts)}},
        "precision": config.precision,
        "throughput_images_per_s": {k: round(v, 1) for k, v in throughput.items()},
        "seed": config.seed,
        "command": command,
    }
    card: dict[str, Any] = {
        "name": name,
        "task": "classify",
        "file": tflite_path.name,
        "title": f"{name} ({spec.name}, {num_classes} classes)",
        "description": f"Trained by cvplay on {config.data} with {spec.title}.",
        "input": input_dict,
        "output": "probabilities",
        "labels": labels,
        "metrics": [],
        "provenance": provenance,
        "augmentation": policy.to_dict(),
    }
    write_card(card, card_path)

    # --- measure the exported model through the serving runtime
    reporter.message("evaluate", f"measuring {tflite_path.name} on the {len(val_idx)} validation images")
    classifier = Classifier(read_card(card_path))
    val_sorted = np.asarray(val_idx)
    probabilities = predict_dataset(classifier, dataset, val_sorted)
    report = classification_report(probabilities, dataset.labels[val_sorted], labels)
    data_text = (f"validation split of {config.data}: {len(val_idx)} images, stratified "
                 f"{config.val_fraction:g} with seed {config.seed} (python -m cvplay evaluate --split val)")
    card["metrics"] = [
        {"name": "top1", "value": round(report.top1, 4), "data": data_text, "command": command},
        {"name": "top5", "value": round(report.top5, 4), "data": data_text, "command": command},
    ]
    write_card(card, card_path)
    read_card(card_path)

    # --- reports
    files = {"keras": keras_path, "tflite": tflite_path, "card": card_path, "history": csv_path}
    if not csv_path.exists():
        reports.write_history_csv(reporter.history, csv_path)
    files["curves"] = reports.plot_curves(reporter.history, out_dir / "curves.png", title=name)
    files["confusion_csv"] = reports.write_confusion_csv(report.confusion, labels, out_dir / "confusion_matrix.csv")
    files["confusion_png"] = reports.plot_confusion(report.confusion, labels, out_dir / "confusion_matrix.png",
                                                    title=f"{name}: validation top-1 {report.top1:.1%}")
    files["per_class"] = reports.write_per_class_csv(report.per_class, out_dir / "per_class.csv")
    misclassified = []
    from cvplay.augment import downscale_to

    for position in np.flatnonzero(report.predictions != report.targets)[:MAX_MISCLASSIFIED]:
        index = int(val_sorted[position])
        misclassified.append({
            "index": index,
            "file": str(dataset.images[index]) if not dataset.in_memory else None,
            "true": labels[int(report.targets[position])],
            "predicted": labels[int(report.predictions[position])],
            "confidence": float(report.confidences[position]),
            "image": downscale_to(dataset.load(index), 160),
        })
    seconds = time.perf_counter() - started
    reporter.message("done", f"validation top-1 {report.top1:.4f}, top-5 {report.top5:.4f} on {report.n} images; "
                     f"{seconds:.1f} s in all; wrote {tflite_path}", fraction=1.0)
    return TrainResult(
        name=name, out_dir=out_dir, model_path=tflite_path, card_path=card_path, keras_path=keras_path,
        labels=labels, metrics={"top1": report.top1, "top5": report.top5}, history=list(reporter.history),
        confusion=report.confusion, per_class=report.per_class, misclassified=misclassified,
        feature_cache=cache, throughput=throughput, seconds=seconds, warnings=list(warnings),
        stopped=stopped(), files=files, n_train=int(len(train_idx)), n_val=int(len(val_idx)),
    )


def _steps_rate(reporter: _Reporter, stage: str, n_train: int) -> float | None:
    """Training images per second of the optimisation steps of one stage (data waits included)."""
    seconds = reporter.step_seconds.get(stage)
    epochs = sum(1 for row in reporter.history if row["stage"] == stage)
    if not seconds or epochs <= 0:
        return None
    return n_train * epochs / seconds
