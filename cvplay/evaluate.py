"""Evaluate a ``.tflite`` classifier on a labelled dataset, without TensorFlow.

``python -m cvplay evaluate --model NAME_OR_PATH --data PATH [--split auto|val|test|all] [--format table|json]``
runs the model through :class:`cvplay.runtime.Classifier` (LiteRT) and reports top-1, top-5, the
number of images, a per-class report (precision, recall, F1, support) and the confusion matrix.

The dataset's classes are matched to the model's labels by name (case-insensitive); images of
classes the model does not know are left out and counted.

Which images are scored (``--split``, :func:`choose_split`): by default (``auto``) every image,
unless the card says the data *is* the model's training data (its recorded data fingerprint, or
else its training path, matches). Then only the split the trainer held out is scored (the test
split when the run had one, else the validation split), rebuilt with the card's fractions and
seed, which reproduces the figures on the card. ``val``, ``test`` and ``all`` choose explicitly.
The output always says which split was scored and how many images.

This module must not import TensorFlow: it serves where only LiteRT is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

DEFAULT_VAL_FRACTION = 0.2
DEFAULT_SEED = 0
SPLITS = ("val", "test", "all")
AUTO = "auto"


class EvaluateError(ValueError):
    """The evaluation cannot be done as asked (no class of the data is known to the model...)."""


# --- metrics ---------------------------------------------------------------------------------


def topk_accuracy(probabilities: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Share of rows whose target is among the ``k`` highest scores (k capped at the classes)."""
    if len(targets) == 0:
        return float("nan")
    k = max(1, min(int(k), probabilities.shape[1]))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(order == np.asarray(targets)[:, None], axis=1)))


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(targets, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def per_class_report(matrix: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class, from a confusion matrix."""
    rows = []
    for i, label in enumerate(labels):
        tp = float(matrix[i, i])
        predicted = float(matrix[:, i].sum())
        support = int(matrix[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {"class": str(label), "precision": round(precision, 4), "recall": round(recall, 4),
             "f1": round(f1, 4), "support": support}
        )
    return rows


@dataclass
class ClassificationReport:
    """Figures for predictions over ``labels`` (the classes of the confusion matrix)."""

    top1: float
    top5: float
    n: int
    labels: list[str]
    confusion: np.ndarray
    per_class: list[dict[str, Any]]
    predictions: np.ndarray  # index into ``labels`` of each image's top-1
    targets: np.ndarray  # index into ``labels`` of each image's true class
    confidences: np.ndarray  # top-1 probability per image

    def to_dict(self) -> dict[str, Any]:
        return {
            "top1": self.top1,
            "top5": self.top5,
            "n": self.n,
            "labels": list(self.labels),
            "per_class": self.per_class,
            "confusion": self.confusion.tolist(),
        }


def classification_report(probabilities: np.ndarray, targets: np.ndarray, labels: Sequence[str]) -> ClassificationReport:
    """Top-1/top-5, confusion matrix and per-class report; ``targets`` index into ``labels``."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    predictions = probabilities.argmax(axis=1) if len(targets) else np.zeros(0, dtype=np.int64)
    matrix = confusion_matrix(targets, predictions, len(labels))
    return ClassificationReport(
        top1=topk_accuracy(probabilities, targets, 1),
        top5=topk_accuracy(probabilities, targets, 5),
        n=int(len(targets)),
        labels=[str(label) for label in labels],
        confusion=matrix,
        per_class=per_class_report(matrix, labels),
        predictions=predictions.astype(np.int64),
        targets=targets,
        confidences=probabilities.max(axis=1) if len(targets) else np.zeros(0, dtype=np.float32),
    )


def compact(report: ClassificationReport) -> ClassificationReport:
    """The report restricted to classes that occur as a target or a prediction (so a 1000-class
    model evaluated on five classes gives a small confusion matrix)."""
    used = np.union1d(np.unique(report.targets), np.unique(report.predictions)).astype(np.int64)
    if len(used) == len(report.labels):
        return report
    remap = {int(old): new for new, old in enumerate(used)}
    matrix = report.confusion[np.ix_(used, used)]
    labels = [report.labels[i] for i in used]
    return ClassificationReport(
        top1=report.top1, top5=report.top5, n=report.n, labels=labels, confusion=matrix,
        per_class=per_class_report(matrix, labels),
        predictions=np.array([remap[int(p)] for p in report.predictions], dtype=np.int64),
        targets=np.array([remap[int(t)] for t in report.targets], dtype=np.int64),
        confidences=report.confidences,
    )


# --- evaluation of a model -------------------------------------------------------------------


def match_labels(data_classes: Sequence[str], model_labels: Sequence[str]) -> dict[int, int]:
    """``{data class index: model label index}`` for classes whose names match (case-insensitive,
    ``_``/``-``/space alike). Raises :class:`EvaluateError` when none match."""

    def key(name: str) -> str:
        return " ".join(str(name).replace("_", " ").replace("-", " ").casefold().split())

    by_name = {}
    for index, label in enumerate(model_labels):
        by_name.setdefault(key(label), index)
    mapping = {i: by_name[key(name)] for i, name in enumerate(data_classes) if key(name) in by_name}
    if not mapping:
        shown = ", ".join(list(data_classes)[:5])
        known = ", ".join(list(model_labels)[:5])
        raise EvaluateError(
            f"none of the dataset's classes ({shown}{', ...' if len(data_classes) > 5 else ''}) is a label "
            f"of the model ({known}{', ...' if len(model_labels) > 5 else ''}): the class folder names must "
            "match the model's labels"
        )
    return mapping


def split_indices(labels: np.ndarray, split: str, val_fraction: float, seed: int,
                  test_fraction: float = 0.0) -> np.ndarray:
    """Indices of ``split``: ``all``, or the trainer's stratified validation or held-out test
    part (the same ``val_fraction``, ``test_fraction`` and ``seed`` as the training run)."""
    from cvplay.datasets import stratified_split

    if split == "all":
        return np.arange(len(labels), dtype=np.int64)
    if split not in SPLITS:
        raise EvaluateError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not 0 < val_fraction < 1:
        raise EvaluateError(f"the validation fraction must lie between 0 and 1, got {val_fraction}")
    if not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise EvaluateError(f"the test fraction must be at least 0 and leave room for training, got {test_fraction}")
    if split == "test" and not test_fraction:
        raise EvaluateError("--split test needs the --test-fraction the model was trained with")
    if test_fraction:
        parts = stratified_split(labels, (1 - val_fraction - test_fraction, val_fraction, test_fraction), seed=seed)
        return np.sort(parts[2] if split == "test" else parts[1])
    return np.sort(stratified_split(labels, (1 - val_fraction, val_fraction), seed=seed)[1])


def recorded_split(card) -> dict[str, Any] | None:
    """The split a cvplay training run recorded on its card (``provenance.split``), or ``None``."""
    provenance = getattr(card, "provenance", None)
    split = provenance.get("split") if isinstance(provenance, dict) else None
    if not isinstance(split, dict):
        return None
    try:
        return {"val_fraction": float(split["val_fraction"]), "test_fraction": float(split.get("test_fraction", 0.0)),
                "seed": int(split["seed"]), "images": int(split["images"]),
                "data_fingerprint": str(split.get("data_fingerprint") or "")}
    except (KeyError, TypeError, ValueError):
        return None


def training_data_match(card, dataset, source: str | Path) -> tuple[bool | None, str]:
    """Is ``dataset`` (read from ``source``) the model's training data, and how do we know?

    By the data fingerprint on the card when it has one (the same images and labels read from any
    path), else by the training data path it records; ``None`` when the card records neither.
    """
    from cvplay.datasets import fingerprint

    split = recorded_split(card) or {}
    recorded = split.get("data_fingerprint")
    if recorded:
        same = fingerprint(dataset) == recorded
        return same, "its data fingerprint " + ("matches the card's" if same else "differs from the card's")
    provenance = getattr(card, "provenance", None)
    trained_on = str(provenance.get("training_data", "")) if isinstance(provenance, dict) else ""
    if not trained_on:
        return None, "the card does not record the model's training data"
    try:
        same = Path(trained_on).expanduser().resolve() == Path(source).expanduser().resolve()
    except OSError:
        same = False
    return same, "the card names " + ("this path" if same else "another path") + " as its training data"


@dataclass(frozen=True)
class SplitChoice:
    """Which images of a dataset to score, and a sentence saying why."""

    split: str  # one of SPLITS
    val_fraction: float
    test_fraction: float
    seed: int
    reason: str


def choose_split(card, dataset, source: str | Path, split: str = AUTO, val_fraction: float | None = None,
                 test_fraction: float | None = None, seed: int | None = None) -> SplitChoice:
    """The split to score (see the module docstring). Fractions and seed left ``None`` come from
    the card when the data is its training data, else from the trainer's defaults."""
    if split not in (AUTO, *SPLITS):
        raise EvaluateError(f"split must be one of {AUTO}, {', '.join(SPLITS)}, got {split!r}")
    same, how = training_data_match(card, dataset, source)
    recorded = recorded_split(card) if same else None
    defaults = recorded or {"val_fraction": DEFAULT_VAL_FRACTION, "test_fraction": 0.0, "seed": DEFAULT_SEED}

    def pick(given, name):
        return defaults[name] if given is None else given

    fractions = (float(pick(val_fraction, "val_fraction")), float(pick(test_fraction, "test_fraction")), int(pick(seed, "seed")))
    if split != AUTO:
        return SplitChoice(split, *fractions, reason=f"--split {split} ({how})")
    if same:
        chosen = "test" if fractions[1] > 0 else "val"
        return SplitChoice(chosen, *fractions, reason=f"this is the model's training data ({how}), so only the "
                           f"{'held-out test' if chosen == 'test' else 'validation'} split the trainer kept apart is scored")
    if same is False:
        return SplitChoice("all", *fractions, reason=f"this is not the model's training data ({how}), so every image is scored")
    return SplitChoice("all", *fractions, reason=f"{how}, so every image is scored")


def describe_split(choice: SplitChoice, n: int) -> str:
    """``scored 100 images: all (...)``: the line every evaluation prints."""
    if choice.split == "all":
        what = "every image"
    else:
        what = (f"the {'held-out test' if choice.split == 'test' else 'validation'} split (validation "
                f"{choice.val_fraction:g}, test {choice.test_fraction:g}, seed {choice.seed})")
    return f"scored {n} image{'s' if n != 1 else ''}: {what}; {choice.reason}"


@dataclass
class EvaluationResult:
    model: str
    data: str
    split: str
    report: ClassificationReport
    skipped_classes: list[str] = field(default_factory=list)
    skipped_images: int = 0
    seconds: float = 0.0
    indices: np.ndarray | None = None  # dataset indices of the evaluated images
    split_description: str = ""  # "scored N images: ...": which split, how many, why

    def to_dict(self) -> dict[str, Any]:
        data = {"model": self.model, "data": self.data, "split": self.split,
                "split_description": self.split_description}
        data.update(self.report.to_dict())
        data["skipped_classes"] = list(self.skipped_classes)
        data["skipped_images"] = self.skipped_images
        data["seconds"] = round(self.seconds, 3)
        return data


def predict_dataset(classifier, dataset, indices: Sequence[int], batch_size: int = 64,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Probabilities of the classifier for the dataset's images at ``indices``."""
    outputs = []
    indices = list(indices)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        outputs.append(classifier.predict_proba(dataset.load_batch(chunk)))
        if progress is not None:
            progress(min(start + batch_size, len(indices)), len(indices))
    if not outputs:
        return np.zeros((0, classifier.card.num_classes), dtype=np.float32)
    return np.concatenate(outputs)


def evaluate_classifier(classifier, dataset, *, split: str = AUTO, val_fraction: float | None = None,
                        seed: int | None = None, data_name: str = "", test_fraction: float | None = None) -> EvaluationResult:
    """Evaluate a :class:`~cvplay.runtime.Classifier` on an :class:`~cvplay.datasets.ImageDataset`;
    ``split`` and the fractions as in :func:`choose_split`."""
    started = time.perf_counter()
    mapping = match_labels(dataset.class_names, classifier.labels)
    choice = choose_split(classifier.card, dataset, data_name or dataset.source, split, val_fraction, test_fraction, seed)
    indices = split_indices(dataset.labels, choice.split, choice.val_fraction, choice.seed, choice.test_fraction)
    known = np.array([int(dataset.labels[i]) in mapping for i in indices], dtype=bool)
    chosen = indices[known]
    probabilities = predict_dataset(classifier, dataset, chosen)
    targets = np.array([mapping[int(dataset.labels[i])] for i in chosen], dtype=np.int64)
    report = compact(classification_report(probabilities, targets, classifier.labels))
    return EvaluationResult(
        model=classifier.card.name,
        data=data_name or dataset.source,
        split=choice.split,
        report=report,
        skipped_classes=[name for i, name in enumerate(dataset.class_names) if i not in mapping],
        skipped_images=int((~known).sum()),
        seconds=time.perf_counter() - started,
        indices=chosen,
        split_description=describe_split(choice, int(len(chosen))),
    )


def evaluate(model: str, data: str, *, split: str = AUTO, val_fraction: float | None = None,
             seed: int | None = None, max_per_class: int | None = None, test_fraction: float | None = None) -> EvaluationResult:
    """Load the model (name or path) and the dataset (any :func:`cvplay.datasets.load_dataset`
    source) and evaluate; see :func:`evaluate_classifier`."""
    from cvplay.datasets import load_dataset
    from cvplay.runtime import create_classifier

    classifier = create_classifier(model)
    dataset = load_dataset(data, max_images_per_class=max_per_class, min_images_per_class=1)
    return evaluate_classifier(classifier, dataset, split=split, val_fraction=val_fraction, seed=seed,
                               data_name=str(data), test_fraction=test_fraction)


# --- command line ----------------------------------------------------------------------------


def format_table(result: EvaluationResult) -> str:
    report = result.report
    lines = [
        f"model {result.model}  data {result.data}  split {result.split}",
        f"top-1 {report.top1:.4f}  top-5 {report.top5:.4f}  n {report.n}  ({result.seconds:.1f} s)",
    ]
    if result.split_description:
        lines.insert(1, result.split_description)
    if result.skipped_classes:
        lines.append(
            f"left out {result.skipped_images} image(s) of {len(result.skipped_classes)} class(es) the model "
            f"does not know: {', '.join(result.skipped_classes[:10])}"
        )
    width = max([len("class")] + [len(row["class"]) for row in report.per_class])
    lines.append("")
    lines.append(f"{'class':<{width}}  precision  recall      f1  support")
    for row in report.per_class:
        lines.append(
            f"{row['class']:<{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  {row['f1']:6.3f}  {row['support']:7d}"
        )
    if len(report.labels) <= 20:
        lines.append("")
        lines.append("confusion matrix (rows: true class, columns: predicted class)")
        short = [label[:8] for label in report.labels]
        lines.append(f"{'':<{width}}  " + " ".join(f"{s:>8}" for s in short))
        for label, row in zip(report.labels, report.confusion):
            lines.append(f"{label:<{width}}  " + " ".join(f"{int(v):>8d}" for v in row))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cvplay.errors import CommandError

    try:
        result = evaluate(args.model, args.data, split=args.split, val_fraction=args.val_fraction,
                          seed=args.seed, max_per_class=args.max_per_class, test_fraction=args.test_fraction)
    except EvaluateError as error:
        raise CommandError(str(error)) from None
    if args.format == "json":
        print(result.split_description, file=sys.stderr)  # stdout stays one JSON object
        print(json.dumps(result.to_dict()))
    else:
        print(format_table(result))
    return 0


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``evaluate`` on the CLI's sub-command parsers."""
    parser = subparsers.add_parser("evaluate", help="measure a classifier on a labelled dataset (top-1, top-5, confusion)")
    parser.add_argument("--model", required=True, help="model name or path to its .tflite / card")
    parser.add_argument("--data", required=True, help="folder of class folders, .zip, CIFAR-100 source or .npz")
    parser.add_argument("--split", choices=(AUTO, *SPLITS), default=AUTO,
                        help="auto (default): every image, unless the card says this is the model's training data, "
                        "then the split the trainer held out (test, else val); val / test: the trainer's "
                        "validation / held-out test split; all: every image")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help=f"validation share, as when training (default: the card's, else {DEFAULT_VAL_FRACTION})")
    parser.add_argument("--test-fraction", type=float, default=None,
                        help="held-out test share, as when training (default: the card's, else 0)")
    parser.add_argument("--seed", type=int, default=None, help=f"split seed, as when training (default: the card's, else {DEFAULT_SEED})")
    parser.add_argument("--max-per-class", type=int, default=None, help="use at most this many images per class")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.set_defaults(handler=cmd_evaluate)
    return parser
