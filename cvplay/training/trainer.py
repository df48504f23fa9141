"""Transfer learning: train a classifier on a labelled image dataset and export it for serving.

:func:`train` runs a :class:`TrainConfig` as named stages that hand one :class:`RunContext` on
(the recipe is :func:`_train_locked`; each stage can be called, and tested, on its own):

1. :func:`plan_run` checks the config and decides the stages before any work;
   :func:`plan_outputs` names the model, its folder and its input spec;
2. data, :func:`load_data`: loads the data (:func:`cvplay.datasets.load_dataset`: a folder of
   class folders, a ``.zip``, CIFAR-100 sources, ``.npz``), reports validation warnings, splits
   it stratified with a fixed seed (:func:`split_dataset`), and decodes every image ONCE into a
   uint8 array at the model's input size with :func:`cvplay.preprocess.resize_for_model` -- the
   very function serving uses, so the model card's ``input`` is exactly what the model was fed;
3. backbone, :func:`build_model`: a frozen pretrained backbone and a new head (global average
   pooling, dropout, dense softmax); :func:`open_outputs` opens the run folder and tracking;
   with ``cache_blocks``, :func:`cache_lower_blocks` computes the frozen lower blocks' outputs once;
4. head, :func:`train_head` (stage 1): trains the head on the frozen backbone. FAST PATH: without
   augmentation (or with ``cache_features``) the backbone's pooled features are computed once in
   batches and the head is trained on them (seconds on a CPU);
5. fine-tune, :func:`fine_tune` (stage 2): the top ``fine_tune_blocks`` blocks are unfrozen
   (:func:`unfreeze_top_blocks`, batch norm kept frozen: the backbone is called with
   ``training=False``) and trained on the (augmented) images at a low learning rate;
6. export, :func:`export_model`: ``model.keras``, ``<name>.tflite`` and its card;
7. measure, :func:`measure_model`: the ``.tflite`` on the validation (and test) split through the
   serving runtime, the figures on the card;
8. reports, :func:`write_reports`: ``history.csv``, ``curves.png``, ``confusion_matrix.csv/.png``
   and ``per_class.csv``, and the :class:`TrainResult`.

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
LR_SCHEDULES = ("plateau", "cosine")
MONITORS = ("val_loss", "val_accuracy")
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
    #: Fine-tune on cached outputs of the frozen lower blocks (see block_cache); stage 1 too.
    cache_blocks: bool = False
    #: With cache_blocks: shift the cached maps by up to this many cells (0: no shift).
    feature_shift: int = 0
    #: Serve (and measure) each image averaged with its mirror image; the card says so.
    average_flip: bool = False
    seed: int = 0
    val_fraction: float = 0.2
    #: A held-out test split, never used for training or model selection (0: none).
    test_fraction: float = 0.0
    #: Centre-crop share of the shorter side (default: the backbone's; 1.0 keeps whole squares).
    crop_fraction: float | None = None
    max_per_class: int | None = None
    name: str | None = None
    weights: str | None = None  # local weights file (efficientnet-b0 offline)
    precision: str = "fp32"
    patience: int = 3
    #: "plateau": constant rate, cut by 0.3 when val_loss stalls; "cosine": cosine decay to 0 over each stage.
    lr_schedule: str = "plateau"
    #: What picks the best epoch (early stopping restores it): "val_loss" or "val_accuracy".
    monitor: str = "val_loss"
    dropout: float = 0.2
    #: TensorBoard logs: True (the run folder's tensorboard/) or a folder (see tracking.py).
    tensorboard: bool | str = False
    #: MLflow: True (MLFLOW_TRACKING_URI, else a local file store) or a tracking URI.
    mlflow: bool | str = False
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
        if self.fine_tune_learning_rate:
            parts += ["--fine-tune-learning-rate", f"{self.fine_tune_learning_rate:g}"]
        if self.lr_schedule != "plateau":
            parts += ["--lr-schedule", self.lr_schedule]
        if self.monitor != "val_loss":
            parts += ["--monitor", self.monitor]
        if isinstance(self.augment, str) or self.augment is None:
            parts += ["--augment", str(self.augment or "none")]
        else:
            parts += ["--augment", "<policy JSON>"]
        if self.cache_features:
            parts += ["--cache-features"]
        if self.cache_blocks:
            parts += ["--cache-blocks"]
        if self.feature_shift:
            parts += ["--feature-shift", str(self.feature_shift)]
        if self.average_flip:
            parts += ["--average-flip"]
        parts += ["--seed", str(self.seed), "--val-fraction", f"{self.val_fraction:g}"]
        if self.test_fraction:
            parts += ["--test-fraction", f"{self.test_fraction:g}"]
        if self.crop_fraction is not None:
            parts += ["--crop-fraction", f"{self.crop_fraction:g}"]
        if self.max_per_class:
            parts += ["--max-per-class", str(self.max_per_class)]
        if self.name:
            parts += ["--name", self.name]
        if self.weights:
            parts += ["--weights", str(self.weights)]
        for flag, value in (("--tensorboard", self.tensorboard), ("--mlflow", self.mlflow)):
            if value:
                parts += [flag] if value is True else [flag, str(value)]
        return shlex.join(parts)


@dataclass
class TrainResult:
    name: str
    out_dir: Path
    model_path: Path  # the .tflite
    card_path: Path
    keras_path: Path
    labels: list[str]
    metrics: dict[str, float]  # top1, top5 of the .tflite on ``metrics_split``
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
    n_test: int = 0
    #: Which split ``metrics``, the confusion matrix and the misclassified images come from:
    #: "test" (held out, never used for training or model selection) when there is one, else "val".
    metrics_split: str = "val"
    val_metrics: dict[str, float] = field(default_factory=dict)


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
    if not 0 <= config.test_fraction < 1 or config.val_fraction + config.test_fraction >= 1:
        raise TrainError(f"--test-fraction must be at least 0 and leave images for training "
                         f"(--val-fraction {config.val_fraction:g} + --test-fraction {config.test_fraction:g} >= 1)")
    if config.feature_shift < 0:
        raise TrainError(f"--feature-shift must not be negative, got {config.feature_shift}")
    if config.feature_shift and not config.cache_blocks:
        raise TrainError("--feature-shift shifts the cached feature maps: it needs --cache-blocks")
    if config.crop_fraction is not None and not 0 < config.crop_fraction <= 1:
        raise TrainError(f"--crop-fraction must lie in (0, 1], got {config.crop_fraction}")
    if config.image_size is not None and not 16 <= config.image_size <= 1024:
        raise TrainError(f"--image-size must lie between 16 and 1024, got {config.image_size}")
    if config.max_per_class is not None and config.max_per_class < 2:
        raise TrainError("--max-per-class must be at least 2 (one training and one validation image)")
    if config.monitor not in MONITORS:
        raise TrainError(f"--monitor must be one of {', '.join(MONITORS)}, got {config.monitor!r}")
    if config.lr_schedule not in LR_SCHEDULES:
        raise TrainError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {config.lr_schedule!r}")
    if config.precision not in ("fp32", "fp16", "int8"):
        raise TrainError(f"--precision must be fp32, fp16 or int8, got {config.precision!r}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_description() -> str:
    text = f"{os.cpu_count()} CPU core(s) {_cpu_name()}".strip()
    try:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            text += f", {len(gpus)} GPU(s)"
    except Exception:  # pragma: no cover - informational only
        pass
    return text


# --- keras pieces ----------------------------------------------------------------------------


def _fit(keras, model, *args, config, stage: str, append: bool, csv_path: Path, reporter, stop_event,
         class_weight, **kwargs) -> None:
    """``model.fit`` quietly, with the class weights and the run's callbacks (early stopping on
    ``config.monitor``, the learning-rate plateau cut, CSV log, progress)."""
    model.fit(*args, class_weight=class_weight, verbose=0, **kwargs,
              callbacks=_callbacks(keras, csv_path=csv_path, append=append, patience=config.patience, stage=stage,
                                   reporter=reporter, stop_event=stop_event, schedule=config.lr_schedule,
                                   monitor=config.monitor))


def _optimizer(keras, learning_rate: float, schedule: str, epochs: int, steps_per_epoch: int):
    """Adam at ``learning_rate``, constant (``plateau``: the callback lowers it) or cosine-decayed
    to zero over ``epochs`` epochs."""
    if schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, epochs * steps_per_epoch))
    return keras.optimizers.Adam(learning_rate)


def _callbacks(keras, *, csv_path: Path, append: bool, patience: int, stage: str, reporter, stop_event,
               schedule: str = "plateau", monitor: str = "val_loss"):
    mode = "max" if monitor.endswith("accuracy") else "min"
    callbacks = [keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True)]
    if schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.3,
                                                           patience=max(1, patience - 1), min_lr=1e-6))
    tracking = reporter.tracking.callbacks(keras, stage) if reporter.tracking is not None else []
    return callbacks + [keras.callbacks.CSVLogger(str(csv_path), append=append), reporter.callback(keras, stage, stop_event),
                        *tracking]


# The steps after the last epoch, in order (progress events carry ``step`` = 1-based index).
FINISH_STEPS = ("save", "convert", "measure", "reports")


class _Reporter:
    """Collects the history, times training steps and forwards progress events."""

    def __init__(self, progress: Progress | None, total_epochs: int):
        self.progress = progress
        self.total_epochs = max(1, total_epochs)
        self.history: list[dict[str, Any]] = []
        self.step_seconds: dict[str, float] = {}
        self.tracking = None  # a tracking.Tracking when TensorBoard or MLflow is asked for

    def emit(self, event: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(event)

    def message(self, stage: str, text: str, **extra: Any) -> None:
        self.emit({"stage": stage, "message": text, **extra})

    def step(self, number: int, text: str, done: int | None = None, total: int | None = None) -> None:
        """Progress of the steps after the last epoch (saving, converting, measuring, reports):
        ``step`` of ``FINISH_STEPS``, and ``done``/``total`` within it when it can count."""
        event: dict[str, Any] = {"stage": "finish", "message": text, "step": number, "steps": len(FINISH_STEPS),
                                 "step_name": FINISH_STEPS[number - 1]}
        if done is not None and total:
            event["step_fraction"] = min(1.0, done / total)
        self.emit(event)

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


# --- the run context -------------------------------------------------------------------------


@dataclass
class RunData:
    """What the data stage gives: the dataset, its stratified split and the decoded images."""

    dataset: Any  # a cvplay.datasets.Dataset
    warnings: list[str]
    labels: list[str]
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    weights_by_class: dict[int, float]
    y_train: np.ndarray
    y_val: np.ndarray
    #: uint8 images at the model's input size; None with --cache-blocks (decoded batch by batch).
    x_train: np.ndarray | None = None
    x_val: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.labels)


@dataclass
class Network:
    """What the backbone stage builds: the backbone, the new head's layers and the whole model."""

    keras: Any
    tf: Any
    strategy: Any
    backbone: Any
    inputs: Any
    pooled: Any  # the backbone's pooled features (a symbolic tensor)
    pool: Any
    dropout: Any
    dense: Any
    model: Any


@dataclass
class BlockMaps:
    """Cached outputs of the frozen lower blocks (``--cache-blocks``) and the upper part trained on them."""

    upper: Any
    cached_model: Any
    train_data: Any
    val_data: Any
    cut: str
    trained_blocks: list[str]
    views: int
    shape: list[int]
    megabytes: float
    seconds: float
    steps_per_epoch: int

    def card_info(self, config: TrainConfig) -> dict[str, Any]:
        """What the card records about the cache (``policy``: the augmentation really applied)."""
        flips = self.views == 2
        applied = augment_module.Policy.build({"hflip": True}) if flips else augment_module.preset("none")
        return {"cut": self.cut, "trained_blocks": list(self.trained_blocks), "views": self.views,
                "shape": list(self.shape), "shift_cells": config.feature_shift,
                "megabytes": round(self.megabytes, 1), "seconds": round(self.seconds, 1), "policy": applied.to_dict()}


@dataclass
class Exported:
    """What the export stage wrote."""

    keras_path: Path
    tflite_path: Path
    card_path: Path
    card: dict[str, Any]
    fine_to_coarse: list[int] | None


@dataclass
class Measured:
    """The exported model's predictions on the validation (and held-out test) split."""

    #: split name -> (sorted indices, probabilities, classification report)
    splits: dict[str, tuple[np.ndarray, np.ndarray, Any]]

    @property
    def final_split(self) -> str:
        """The split whose figures speak for the model: the held-out test split when there is one
        (never used for training or model selection), else the validation split (which also
        picked the epoch)."""
        return "test" if "test" in self.splits else "val"


@dataclass
class RunContext:
    """One training run, handed from stage to stage: what was asked (config and what follows
    from it), where things go, and what each stage adds (``data``, ``net``, ``block_maps``,
    ``exported``, ``measured``)."""

    config: TrainConfig
    spec: BackboneSpec
    policy: augment_module.Policy
    pretrained: bool
    cache: bool  # features (pooled, or lower blocks with --cache-blocks) are computed once
    stage1_epochs: int
    stage2_epochs: int
    reporter: _Reporter
    stop_event: threading.Event | None = None
    started: float = field(default_factory=time.perf_counter)
    # where and as what (filled in by plan_outputs)
    name: str = ""
    out_dir: Path = Path()
    command: str = ""
    size: tuple[int, int] = (0, 0)
    input_dict: dict[str, Any] = field(default_factory=dict)
    input_spec: Any = None  # a cvplay.registry.InputSpec
    # what the stages add
    data: RunData | None = None
    net: Network | None = None
    csv_path: Path = Path()
    throughput: dict[str, float] = field(default_factory=dict)
    block_maps: BlockMaps | None = None
    done_epochs: int = 0
    train_seconds: float = 0.0
    exported: Exported | None = None
    measured: Measured | None = None

    def stopped(self) -> bool:
        return self.stop_event is not None and self.stop_event.is_set()

    def fit(self, model, *args, stage: str, append: bool, **kwargs) -> None:
        """``model.fit`` with this run's callbacks and class weights (see :func:`_fit`)."""
        _fit(self.net.keras, model, *args, config=self.config, stage=stage, append=append, csv_path=self.csv_path,
             reporter=self.reporter, stop_event=self.stop_event, class_weight=self.data.weights_by_class, **kwargs)

    def compile(self, model, learning_rate: float, epochs: int, steps_per_epoch: int) -> None:
        """Compile ``model`` (in the distribution strategy's scope) with Adam on this run's schedule."""
        keras = self.net.keras
        with self.net.strategy.scope():
            model.compile(optimizer=_optimizer(keras, learning_rate, self.config.lr_schedule, epochs, steps_per_epoch),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    @property
    def image_steps(self) -> int:
        return -(-len(self.data.train_idx) // self.config.batch_size)

    @property
    def fine_tune_learning_rate(self) -> float:
        return self.config.fine_tune_learning_rate or self.config.learning_rate / 10


# --- the run ---------------------------------------------------------------------------------


def train(config: TrainConfig, progress: Progress | None = None,
          stop_event: threading.Event | None = None) -> TrainResult:
    """Train as ``config`` says; see the module docstring. ``progress`` receives dict events
    (``stage``, ``message``, and per epoch ``epoch``, ``epochs``, ``fraction``, ``logs``);
    setting ``stop_event`` ends training early and still exports the best weights so far."""
    run = plan_run(config, progress, stop_event)
    if _RUN_LOCK.locked():
        run.reporter.message("queue", "another training run is in progress in this process; waiting for it")
    with _RUN_LOCK:
        try:
            return _train_locked(run)
        finally:
            if run.reporter.tracking is not None:
                run.reporter.tracking.close()  # ends an MLflow run that did not get to the end


def _train_locked(run: RunContext) -> TrainResult:
    """The recipe, one stage after the other."""
    plan_outputs(run)
    load_data(run)
    build_model(run)
    open_outputs(run)
    if run.config.cache_blocks:
        cache_lower_blocks(run)
    train_head(run)
    fine_tune(run)
    run.train_seconds = time.perf_counter() - run.started
    export_model(run)
    measure_model(run)
    return write_reports(run)


def plan_run(config: TrainConfig, progress: Progress | None = None,
             stop_event: threading.Event | None = None) -> RunContext:
    """Check ``config`` and decide what the run does (stages, epochs, caching) before any work;
    a :class:`TrainError` here means nothing was touched."""
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
    if config.cache_blocks and not pretrained:
        raise TrainError(f"--cache-blocks needs a pretrained backbone; {spec.name} is trained whole from scratch")
    if config.cache_blocks and config.fine_tune_blocks < 0:
        raise TrainError("--cache-blocks needs frozen lower blocks to cache: --fine-tune-blocks must not be negative")
    if config.cache_blocks:
        cache = True
    reporter = _Reporter(progress, stage1_epochs + stage2_epochs)
    return RunContext(config=config, spec=spec, policy=policy, pretrained=pretrained, cache=cache,
                      stage1_epochs=stage1_epochs, stage2_epochs=stage2_epochs, reporter=reporter,
                      stop_event=stop_event)


def plan_outputs(run: RunContext) -> None:
    """The model's name, run folder, card command and input spec (size, crop, flip averaging)."""
    from cvplay.registry import parse_input_spec, user_models_dir

    config, spec = run.config, run.spec
    run.started = time.perf_counter()
    run.size = (config.image_size, config.image_size) if config.image_size else tuple(spec.default_size)
    run.input_dict = spec.input_spec(run.size)
    if config.crop_fraction is not None:
        run.input_dict["crop_fraction"] = float(config.crop_fraction)
    if config.average_flip:
        run.input_dict["average_flip"] = True
    run.input_spec = parse_input_spec(run.input_dict)
    run.name = slug(config.name) if config.name else default_name(config.data, spec.name)
    run.out_dir = Path(config.out).expanduser() if config.out else user_models_dir() / run.name
    run.command = config.command or config.to_command()


# --- stage: data


def load_data(run: RunContext) -> None:
    """Data stage: load and check the dataset, split it stratified with the run's seed, weigh the
    classes and decode every image once at the model's input size (not with --cache-blocks)."""
    from cvplay.datasets import DatasetError, class_weights, load_dataset, validate_for_training
    from cvplay.registry import parse_input_spec

    config, reporter = run.config, run.reporter
    reporter.message("load", f"loading {config.data}")
    dataset = load_dataset(config.data, max_images_per_class=config.max_per_class, min_images_per_class=2)
    warnings = validate_for_training(dataset, min_images_per_class=2)
    if dataset.in_memory and dataset.images.shape[1] < run.size[0] and dataset.images.shape[2] < run.size[1]:
        # Small in-memory images (CIFAR's 32x32): serving shrinks photos to the same thumbnail
        # size first, so the model sees at serving time the kind of image it learned from.
        run.input_dict["thumbnail_size"] = [int(dataset.images.shape[1]), int(dataset.images.shape[2])]
        run.input_spec = parse_input_spec(run.input_dict)
    for text in warnings:
        reporter.message("load", f"warning: {text}", warning=text)
    train_idx, val_idx, test_idx = split_dataset(dataset.labels, config)
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise DatasetError("The dataset is too small to hold out a validation split: add images.")
    labels = list(dataset.class_names)
    num_classes = len(labels)
    reporter.message("load", f"{len(dataset)} images, {num_classes} classes ({', '.join(labels[:8])}"
                     f"{', ...' if num_classes > 8 else ''}); {len(train_idx)} for training, {len(val_idx)} for validation"
                     + (f", {len(test_idx)} held out for the final test" if len(test_idx) else ""))
    y_all = dataset.labels.astype(np.int32)
    run.data = RunData(dataset=dataset, warnings=warnings, labels=labels, train_idx=train_idx, val_idx=val_idx,
                       test_idx=test_idx, weights_by_class=class_weights(dataset.labels[train_idx], num_classes),
                       y_train=y_all[train_idx], y_val=y_all[val_idx])
    if not config.cache_blocks:  # with it, images are decoded batch by batch while the cache is computed
        x_all = _decode(dataset, run.input_spec, reporter, run.stop_event)
        run.data.x_train, run.data.x_val = x_all[train_idx], x_all[val_idx]
        del x_all


def split_dataset(labels: np.ndarray, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified training, validation and (with ``test_fraction``) held-out test indices, seeded
    by ``config.seed`` (what ``cvplay.evaluate.split_indices`` rebuilds from a card)."""
    from cvplay.datasets import DatasetError, stratified_split

    if config.test_fraction:
        fractions = (1 - config.val_fraction - config.test_fraction, config.val_fraction, config.test_fraction)
        train_idx, val_idx, test_idx = stratified_split(labels, fractions, seed=config.seed)
        if len(test_idx) == 0:
            raise DatasetError("The dataset is too small to hold out a test split: add images or drop --test-fraction.")
    else:
        train_idx, val_idx = stratified_split(labels, (1 - config.val_fraction, config.val_fraction), seed=config.seed)
        test_idx = np.zeros(0, dtype=np.int64)
    return train_idx, val_idx, test_idx


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


# --- stage: backbone (and the new head's layers)


def build_model(run: RunContext) -> None:
    """Backbone stage: import TensorFlow, seed it, pick the distribution strategy and build the
    backbone (frozen when pretrained) with a new head: pooling, dropout, dense softmax."""
    config, spec, reporter = run.config, run.spec, run.reporter
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
    height, width = run.size
    weights = (config.weights or "imagenet") if run.pretrained else config.weights
    from cvplay.training.backbones import create_backbone

    with strategy.scope():
        backbone = create_backbone(spec.name, input_shape=(height, width, 3), weights=weights, pooling=None)
        inputs = keras.Input(shape=(height, width, 3), name="image")
        feature_map = backbone(inputs, training=False) if run.pretrained else backbone(inputs)
        pool = keras.layers.GlobalAveragePooling2D(name="head_pool")
        dropout = keras.layers.Dropout(config.dropout, name="head_dropout")
        dense = keras.layers.Dense(run.data.num_classes, activation="softmax", dtype="float32", name="head_predictions")
        pooled = pool(feature_map)
        model = keras.Model(inputs, dense(dropout(pooled)), name=slug(run.name).replace("-", "_").replace(".", "_"))
    if run.pretrained:
        backbone.trainable = False
    run.net = Network(keras=keras, tf=tf, strategy=strategy, backbone=backbone, inputs=inputs, pooled=pooled,
                      pool=pool, dropout=dropout, dense=dense, model=model)


def open_outputs(run: RunContext) -> None:
    """The run folder, the TensorBoard/MLflow tracking asked for, and a fresh ``history.csv``."""
    from cvplay.training.tracking import Tracking, TrackingError

    run.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        run.reporter.tracking = Tracking.create(run.config, run.out_dir, run.name)
    except TrackingError as error:
        raise TrainError(str(error)) from None
    run.csv_path = run.out_dir / "history.csv"
    if run.csv_path.exists():
        run.csv_path.unlink()


def cache_lower_blocks(run: RunContext) -> None:
    """With --cache-blocks: compute the outputs of the frozen lower blocks once (:mod:`block_cache`),
    a mirrored view too when the policy flips, and build the upper part with the head on them;
    each epoch then costs only the upper part's forward and backward passes."""
    from cvplay.preprocess import prepare_batch
    from cvplay.training import block_cache
    from cvplay.training.backbones import unfreeze_top_blocks

    config, reporter, policy, data, net = run.config, run.reporter, run.policy, run.data, run.net
    keras, tf = net.keras, net.tf
    chosen = unfreeze_top_blocks(net.backbone, config.fine_tune_blocks)
    try:
        lower, upper, cut_name = block_cache.split_at_trainable_blocks(net.backbone, chosen)
    except block_cache.BlockCacheError as error:
        raise TrainError(str(error)) from None
    map_side = min(int(d) for d in lower.output.shape[1:3])
    if config.feature_shift and 2 * config.feature_shift >= map_side:
        raise TrainError(f"--feature-shift {config.feature_shift} is too large for the {map_side}x{map_side} maps "
                         f"at {cut_name}: at most {(map_side - 1) // 2}")
    flips = any(transform.name == "hflip" for transform, _, _ in policy.enabled())
    views = 2 if flips else 1
    ignored = [transform.name for transform, _, _ in policy.enabled() if transform.name != "hflip"]
    if ignored:
        reporter.message("features", f"note: with --cache-blocks only horizontal flips are applied (as a cached "
                         f"mirror view); {', '.join(ignored)} from the augmentation policy are not",
                         warning="cache-blocks ignores augmentations other than horizontal flips")
    train_idx, val_idx = data.train_idx, data.val_idx
    megabytes = block_cache.cache_nbytes(lower, len(train_idx), views) / 2**20
    megabytes += block_cache.cache_nbytes(lower, len(val_idx), 1) / 2**20
    reporter.message("features", f"caching the output of {cut_name} {tuple(lower.output.shape[1:])} for "
                     f"{len(train_idx)} training images x {views} view(s) and {len(val_idx)} validation images "
                     f"({megabytes:.0f} MB in float16); blocks {', '.join(chosen) or '(none)'} and the top are trained on it")

    def load_batch(indices: np.ndarray) -> np.ndarray:
        return prepare_batch(data.dataset.load_batch(indices), run.input_spec)

    total_images = len(train_idx) * views + len(val_idx)
    counted = {"done": 0, "last": 0.0}

    def progress(done: int, total: int, base: int = 0) -> None:
        now = time.perf_counter()
        if now - counted["last"] >= 2.0 or done == total:
            counted["last"] = now
            reporter.emit({"stage": "features", "fraction": (base + done) / total_images,
                           "message": f"cached {base + done}/{total_images} feature maps"})

    started = time.perf_counter()
    maps_train = block_cache.compute_feature_maps(lower, load_batch, train_idx, views=views, batch_size=FEATURE_BATCH,
                                                  progress=progress, should_stop=run.stopped)
    maps_val = block_cache.compute_feature_maps(
        lower, load_batch, val_idx, views=1, batch_size=FEATURE_BATCH,
        progress=lambda done, total: progress(done, total, base=len(train_idx) * views), should_stop=run.stopped)
    seconds = time.perf_counter() - started
    run.throughput["feature_extraction"] = total_images / seconds
    reporter.message("features", f"feature maps: {run.throughput['feature_extraction']:.1f} images/s ({seconds:.1f} s)",
                     images_per_second=run.throughput["feature_extraction"])
    if run.stopped():
        raise TrainError("training was stopped while the feature maps were computed")

    with net.strategy.scope():
        feature_input = keras.Input(shape=tuple(maps_train.shape[2:]), name="feature_map")
        cached_model = keras.Model(feature_input, net.dense(net.dropout(net.pool(upper(feature_input, training=False)))),
                                   name="cached_upper")
    try:
        train_data = block_cache.feature_map_pipeline(tf, maps_train, data.y_train, batch_size=config.batch_size,
                                                      shuffle=True, seed=config.seed, max_shift=config.feature_shift)
    except ValueError as error:
        raise TrainError(f"--feature-shift {config.feature_shift}: {error}") from None
    val_data = block_cache.feature_map_pipeline(tf, maps_val, data.y_val, batch_size=config.batch_size,
                                                shuffle=False, seed=config.seed)
    run.block_maps = BlockMaps(upper=upper, cached_model=cached_model, train_data=train_data, val_data=val_data,
                               cut=cut_name, trained_blocks=list(chosen), views=views, shape=list(maps_train.shape[2:]),
                               megabytes=megabytes, seconds=seconds,
                               steps_per_epoch=-(-len(train_idx) // config.batch_size))


# --- stage: head (stage 1)


def train_head(run: RunContext) -> None:
    """Head stage (stage 1): the new head on the frozen backbone -- on cached lower-block maps,
    on pooled features computed once, or on the (augmented) images; a backbone without
    pretrained weights is trained whole here."""
    if run.stage1_epochs <= 0:
        return
    if run.block_maps is not None:
        _head_on_block_maps(run)
    elif run.cache:
        _head_on_pooled_features(run)
    else:
        _head_on_images(run)
    run.done_epochs = len(run.reporter.history)


def _head_on_block_maps(run: RunContext) -> None:
    maps = run.block_maps
    maps.upper.trainable = False
    run.compile(maps.cached_model, run.config.learning_rate, run.stage1_epochs, maps.steps_per_epoch)
    run.reporter.message("head", f"stage 1: training the head on the cached maps ({run.stage1_epochs} epochs)")
    run.fit(maps.cached_model, maps.train_data, validation_data=maps.val_data, shuffle=False, epochs=run.stage1_epochs,
            stage="head", append=False)
    rate = _steps_rate(run.reporter, "head", len(run.data.train_idx))
    if rate:
        run.throughput["training_steps"] = rate


def _head_on_pooled_features(run: RunContext) -> None:
    """The backbone's pooled features are computed once in batches; the head trains on them."""
    keras, net, data, reporter = run.net.keras, run.net, run.data, run.reporter
    mean, std = run.input_spec.mean, run.input_spec.std
    x_train, x_val = data.x_train, data.x_val
    with net.strategy.scope():
        feature_model = keras.Model(net.inputs, net.pooled)
    reporter.message("features", f"computing {run.spec.name} features once for {len(x_train) + len(x_val)} images")
    t0 = time.perf_counter()
    feats = []
    for part in (x_train, x_val):
        chunks = []
        for start in range(0, len(part), FEATURE_BATCH):
            batch = (part[start : start + FEATURE_BATCH].astype(np.float32) - np.float32(mean)) / np.float32(std)
            chunks.append(np.asarray(feature_model.predict_on_batch(batch), dtype=np.float32))
            if run.stopped():
                break
        feats.append(np.concatenate(chunks) if chunks else np.zeros((0, net.pooled.shape[-1]), np.float32))
    seconds = time.perf_counter() - t0
    run.throughput["feature_extraction"] = (len(x_train) + len(x_val)) / seconds
    reporter.message("features", f"feature extraction: {run.throughput['feature_extraction']:.1f} images/s "
                     f"({seconds:.1f} s, feature size {feats[0].shape[-1]})",
                     images_per_second=run.throughput["feature_extraction"])
    if run.stopped():
        return
    with net.strategy.scope():
        feature_input = keras.Input(shape=(int(net.pooled.shape[-1]),), name="features")
        head = keras.Model(feature_input, net.dense(net.dropout(feature_input)), name="head")
    run.compile(head, run.config.learning_rate, run.stage1_epochs, run.image_steps)
    reporter.message("head", f"stage 1: training the head on cached features ({run.stage1_epochs} epochs)")
    run.fit(head, feats[0], data.y_train, validation_data=(feats[1], data.y_val), epochs=run.stage1_epochs,
            batch_size=run.config.batch_size, stage="head", append=False)


def _head_on_images(run: RunContext) -> None:
    stage = "head" if run.pretrained else "train"
    run.compile(run.net.model, run.config.learning_rate, run.stage1_epochs, run.image_steps)
    what = "the head on a frozen backbone" if run.pretrained else f"{run.spec.name} from scratch"
    run.reporter.message(stage, f"stage 1: training {what} ({run.stage1_epochs} epochs, augmentation "
                         f"{'on' if run.policy.enabled() else 'off'})")
    train_data, val_data = _image_data(run)
    run.fit(run.net.model, train_data, validation_data=val_data, shuffle=False, epochs=run.stage1_epochs,
            stage=stage, append=False)
    rate = _steps_rate(run.reporter, stage, len(run.data.x_train))
    if rate:
        run.throughput["training_steps"] = rate
        run.reporter.message(stage, f"training steps: {rate:.1f} images/s", images_per_second=rate)


def _image_data(run: RunContext) -> tuple[Any, Any]:
    """Fresh training (augmented, shuffled) and validation pipelines over the decoded images."""
    config, data = run.config, run.data

    def pipeline(x, y, shuffle, use_policy):
        return _image_pipeline(run.net.tf, x, y, batch_size=config.batch_size, shuffle=shuffle,
                               policy=run.policy if use_policy else None, seed=config.seed,
                               mean=run.input_spec.mean, std=run.input_spec.std)

    return pipeline(data.x_train, data.y_train, True, True), pipeline(data.x_val, data.y_val, False, False)


# --- stage: fine-tune (stage 2)


def fine_tune(run: RunContext) -> None:
    """Fine-tune stage (stage 2): unfreeze the top ``fine_tune_blocks`` blocks (batch norm stays
    frozen) and train them with the head at a low learning rate; skipped when stopped."""
    if run.stage2_epochs <= 0 or run.stopped():
        return
    from cvplay.training.backbones import unfreeze_top_blocks

    config, reporter, net = run.config, run.reporter, run.net
    ft_lr = run.fine_tune_learning_rate
    epochs = {"initial_epoch": run.done_epochs, "epochs": run.done_epochs + run.stage2_epochs}
    maps = run.block_maps
    if maps is not None:
        chosen = unfreeze_top_blocks(net.backbone, config.fine_tune_blocks)
        maps.trained_blocks = list(chosen)
        run.compile(maps.cached_model, ft_lr, run.stage2_epochs, maps.steps_per_epoch)
        reporter.message("fine_tune", f"stage 2: fine-tuning blocks {', '.join(chosen) or '(top only)'} and the head "
                         f"on the cached maps at learning rate {ft_lr:g} ({run.stage2_epochs} epochs, batch norm frozen)")
        run.fit(maps.cached_model, maps.train_data, validation_data=maps.val_data, shuffle=False, **epochs,
                stage="fine_tune", append=run.stage1_epochs > 0)
    else:
        with net.strategy.scope():
            chosen = unfreeze_top_blocks(net.backbone, config.fine_tune_blocks)
        run.compile(net.model, ft_lr, run.stage2_epochs, run.image_steps)
        reporter.message("fine_tune", f"stage 2: fine-tuning blocks {', '.join(chosen) or '(top only)'} and the head "
                         f"at learning rate {ft_lr:g} ({run.stage2_epochs} epochs, batch norm frozen)")
        train_data, val_data = _image_data(run)
        run.fit(net.model, train_data, validation_data=val_data, shuffle=False, **epochs,
                stage="fine_tune", append=True)
    rate = _steps_rate(reporter, "fine_tune", len(run.data.train_idx))
    if rate:
        run.throughput["fine_tune_steps"] = rate
        reporter.message("fine_tune", f"fine-tuning steps: {rate:.1f} images/s", images_per_second=rate)


# --- stage: export


def export_model(run: RunContext) -> None:
    """Export stage: ``model.keras``, ``<name>.tflite`` (int8 calibrated on training images) and
    its card, with the provenance; the metrics are added by :func:`measure_model`."""
    from cvplay.datasets import fingerprint
    from cvplay.registry import write_card
    from cvplay.training.export import export_classifier, representative_sample

    config, spec, reporter, data, out_dir, name = run.config, run.spec, run.reporter, run.data, run.out_dir, run.name
    reporter.step(1, f"saving the Keras model to {out_dir}")
    keras_path = out_dir / "model.keras"
    run.net.model.save(keras_path)

    reporter.step(2, f"converting to {name}.tflite ({config.precision})")
    # int8 is calibrated on training images, prepared exactly as serving will prepare photos.
    representative = (representative_sample(data.dataset, data.train_idx, run.input_spec)
                      if config.precision == "int8" else None)
    tflite_path, output_kind = export_classifier(run.net.model, out_dir / f"{name}.tflite", config.precision,
                                                 representative)
    card_path = out_dir / f"{name}.json"
    history = run.reporter.history
    block_cache_info = run.block_maps.card_info(config) if run.block_maps is not None else None
    provenance = {
        "backbone": spec.name,
        "backbone_title": spec.title,
        "pretrained_weights": ((str(config.weights) if config.weights else spec.weights_source) if run.pretrained
                               else "none (from scratch)"),
        "weights_licence": spec.weights_licence,
        "training_data": str(config.data),
        "data_source": data.dataset.source,
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "training_time_s": round(run.train_seconds, 1),
        "hardware": hardware_description(),
        "epochs": {"head" if run.pretrained else "train": sum(1 for r in history if r["stage"] != "fine_tune"),
                   "fine_tune": sum(1 for r in history if r["stage"] == "fine_tune")},
        "fine_tune_blocks": config.fine_tune_blocks if run.stage2_epochs else 0,
        "feature_cache": run.cache,
        "block_cache": {k: v for k, v in block_cache_info.items() if k != "policy"} if block_cache_info else None,
        "lr_schedule": config.lr_schedule,
        "best_epoch_by": config.monitor,
        "images": {"train": int(len(data.train_idx)), "validation": int(len(data.val_idx)),
                   "test": int(len(data.test_idx)),
                   "per_class": {label: int(c) for label, c in zip(data.labels, data.dataset.class_counts())}},
        "precision": config.precision,
        "throughput_images_per_s": {k: round(v, 1) for k, v in run.throughput.items()},
        "seed": config.seed,
        # Enough to rebuild every split: cvplay.evaluate.split_indices(labels, split, **split).
        "split": {"val_fraction": config.val_fraction, "test_fraction": config.test_fraction, "seed": config.seed,
                  "images": int(len(data.dataset)), "data_fingerprint": fingerprint(data.dataset)},
        "command": run.command,
    }
    card: dict[str, Any] = {
        "name": name,
        "task": "classify",
        "file": tflite_path.name,
        "title": f"{name} ({spec.name}, {data.num_classes} classes)",
        "description": f"Trained by cvplay on {config.data} with {spec.title}.",
        "input": run.input_dict,
        "output": output_kind,
        "labels": data.labels,
        "metrics": [],
        "provenance": provenance,
        "augmentation": (block_cache_info["policy"] if block_cache_info else run.policy.to_dict()),
    }
    fine_to_coarse = _fine_to_coarse(data.dataset)
    if fine_to_coarse is not None:
        card["coarse_labels"] = list(data.dataset.coarse_names)
        card["fine_to_coarse"] = fine_to_coarse
    write_card(card, card_path)
    run.exported = Exported(keras_path=keras_path, tflite_path=tflite_path, card_path=card_path, card=card,
                            fine_to_coarse=fine_to_coarse)


# --- stage: measure


def measure_model(run: RunContext) -> None:
    """Measure stage: the exported ``.tflite`` through the serving runtime on the validation and
    held-out test splits; the figures go on the card with the command that reproduces them."""
    from cvplay.evaluate import classification_report, predict_dataset
    from cvplay.registry import read_card, write_card
    from cvplay.runtime import Classifier

    config, reporter, data, exported = run.config, run.reporter, run.data, run.exported
    dataset, tflite_path = data.dataset, exported.tflite_path
    classifier = Classifier(read_card(exported.card_path))
    split_args = f"--val-fraction {config.val_fraction:g} --seed {config.seed}"
    if len(data.test_idx):
        split_args += f" --test-fraction {config.test_fraction:g}"
    evaluate_command = f"python -m cvplay evaluate --model {tflite_path} --data {shlex.quote(str(config.data))} {split_args}"
    measured = {}
    for split_name, indices in (("val", data.val_idx), ("test", data.test_idx)):
        if not len(indices):
            continue
        text = f"measuring {tflite_path.name} on the {len(indices)} {split_name} images"
        reporter.step(3, text, 0, len(indices))
        chosen_sorted = np.sort(np.asarray(indices))
        probabilities = predict_dataset(
            classifier, dataset, chosen_sorted,
            progress=lambda done, total, text=text: reporter.step(3, f"{text}: {done}/{total}", done, total))
        measured[split_name] = (chosen_sorted, probabilities,
                                classification_report(probabilities, dataset.labels[chosen_sorted], data.labels))
    run.measured = Measured(measured)
    final_split = run.measured.final_split
    metrics = []
    for split_name, (indices, probabilities, split_report) in measured.items():
        if split_name == "test":
            data_text = (f"held-out test split of {config.data}: {len(indices)} images, stratified "
                         f"{config.test_fraction:g} with seed {config.seed}, never used for training or model selection")
        else:
            data_text = (f"validation split of {config.data}: {len(indices)} images, stratified "
                         f"{config.val_fraction:g} with seed {config.seed} (also picked the best epoch)")
        data_text += f"; {evaluate_command} --split {split_name}"
        prefix = "" if split_name == final_split else f"{split_name}_"
        command = run.command
        metrics += [{"name": f"{prefix}top1", "value": round(split_report.top1, 4), "data": data_text, "command": command},
                    {"name": f"{prefix}top5", "value": round(split_report.top5, 4), "data": data_text, "command": command}]
        if exported.fine_to_coarse is not None and dataset.coarse_labels is not None:
            coarse_top1 = float(np.mean(np.argmax(classifier.coarse_probabilities(probabilities), axis=1)
                                        == dataset.coarse_labels[indices]))
            metrics.append({"name": f"{prefix}coarse_top1", "value": round(coarse_top1, 4),
                            "data": data_text + " (super-class = sum of its fine classes' probabilities)",
                            "command": command})
    exported.card["metrics"] = metrics
    write_card(exported.card, exported.card_path)
    read_card(exported.card_path)


# --- stage: reports


def write_reports(run: RunContext) -> TrainResult:
    """Reports stage: curves, confusion matrix and per-class table of the final split, the first
    misclassified images, the tracking's last word, and the :class:`TrainResult`."""
    from cvplay.augment import downscale_to
    from cvplay.training import reports

    reporter, data, exported, out_dir, name = run.reporter, run.data, run.exported, run.out_dir, run.name
    final_split = run.measured.final_split
    report_indices, _, report = run.measured.splits[final_split]
    val_report = run.measured.splits["val"][2]
    labels, csv_path = data.labels, run.csv_path
    reporter.step(4, "writing the reports (curves, confusion matrix, per-class table)")
    files = {"keras": exported.keras_path, "tflite": exported.tflite_path, "card": exported.card_path, "history": csv_path}
    if not csv_path.exists():
        reports.write_history_csv(reporter.history, csv_path)
    files["curves"] = reports.plot_curves(reporter.history, out_dir / "curves.png", title=name)
    files["confusion_csv"] = reports.write_confusion_csv(report.confusion, labels, out_dir / "confusion_matrix.csv")
    files["confusion_png"] = reports.plot_confusion(report.confusion, labels, out_dir / "confusion_matrix.png",
                                                    title=f"{name}: {final_split} top-1 {report.top1:.1%}")
    files["per_class"] = reports.write_per_class_csv(report.per_class, out_dir / "per_class.csv")
    misclassified = []
    for position in np.flatnonzero(report.predictions != report.targets)[:MAX_MISCLASSIFIED]:
        index = int(report_indices[position])
        misclassified.append({
            "index": index,
            "file": str(data.dataset.images[index]) if not data.dataset.in_memory else None,
            "true": labels[int(report.targets[position])],
            "predicted": labels[int(report.predictions[position])],
            "confidence": float(report.confidences[position]),
            "image": downscale_to(data.dataset.load(index), 160),
        })
    seconds = time.perf_counter() - run.started
    if reporter.tracking is not None:
        reporter.tracking.finish(files, {"top1": report.top1, "top5": report.top5, "val_top1": val_report.top1,
                                         "training_time_s": run.train_seconds})
    reporter.message("done", f"{'held-out test' if final_split == 'test' else 'validation'} top-1 {report.top1:.4f}, "
                     f"top-5 {report.top5:.4f} on {report.n} images; "
                     f"{seconds:.1f} s in all; wrote {exported.tflite_path}", fraction=1.0)
    return TrainResult(
        name=name, out_dir=out_dir, model_path=exported.tflite_path, card_path=exported.card_path,
        keras_path=exported.keras_path, labels=labels, metrics={"top1": report.top1, "top5": report.top5},
        history=list(reporter.history), confusion=report.confusion, per_class=report.per_class,
        misclassified=misclassified, feature_cache=run.cache, throughput=run.throughput, seconds=seconds,
        warnings=list(data.warnings), stopped=run.stopped(), files=files, n_train=int(len(data.train_idx)),
        n_val=int(len(data.val_idx)), n_test=int(len(data.test_idx)), metrics_split=final_split,
        val_metrics={"top1": val_report.top1, "top5": val_report.top5},
    )


def _fine_to_coarse(dataset) -> list[int] | None:
    """Each class's super-class index when every image of a class has one and the same super-class
    (CIFAR-100's fine -> coarse map), else None."""
    if dataset.coarse_labels is None or not dataset.coarse_names:
        return None
    mapping = []
    for cls in range(dataset.num_classes):
        parents = np.unique(dataset.coarse_labels[dataset.labels == cls])
        if len(parents) != 1:
            return None
        mapping.append(int(parents[0]))
    return mapping


def _steps_rate(reporter: _Reporter, stage: str, n_train: int) -> float | None:
    """Training images per second of the optimisation steps of one stage (data waits included)."""
    seconds = reporter.step_seconds.get(stage)
    epochs = sum(1 for row in reporter.history if row["stage"] == stage)
    if not seconds or epochs <= 0:
        return None
    return n_train * epochs / seconds
