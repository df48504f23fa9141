"""Training runs on disk: find them, tabulate them, compare them.

A run is a folder the trainer wrote: a classifier's model card (``NAME.json`` beside
``NAME.tflite``) whose ``provenance`` names a backbone, usually with ``history.csv``,
``confusion_matrix.csv``, ``per_class.csv``, ``curves.png`` and ``model.keras`` beside it.
:func:`discover_runs` looks in the model folders (shipped and user, as the registry does) and in
the runs folder (``$CVPLAY_RUNS``, else ``runs`` beside the user models folder), where
comparison runs such as "a CNN from scratch on the same data" are written so that they do not
crowd the app's model pickers.

Pure pandas/NumPy: no Streamlit, no TensorFlow.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

ENV_RUNS = "CVPLAY_RUNS"
SCRATCH_BACKBONE = "small-cnn"
SCRATCH_SUFFIX = "-vs-scratch-cnn"
COMPARISON_FILE = "comparison.json"
MAX_CARD_BYTES = 20 * 1024 * 1024


class RunError(ValueError):
    """A run cannot be read or compared as asked; the message is one sentence for a person."""


def runs_dir() -> Path:
    """Where comparison runs go: ``$CVPLAY_RUNS``, else ``runs`` beside the user models folder."""
    configured = os.environ.get(ENV_RUNS)
    if configured:
        return Path(configured).expanduser()
    from cvplay.registry import user_models_dir

    return user_models_dir().parent / "runs"


def search_dirs() -> list[Path]:
    from cvplay.registry import model_dirs

    dirs: list[Path] = []
    for directory in [*model_dirs(), runs_dir()]:
        if directory not in dirs:
            dirs.append(directory)
    return dirs


@dataclass
class Run:
    name: str
    folder: Path
    card_path: Path
    card: dict[str, Any] = field(repr=False)

    # --- what the card says

    @property
    def provenance(self) -> dict[str, Any]:
        return self.card.get("provenance") or {}

    @property
    def backbone(self) -> str:
        return str(self.provenance.get("backbone", "?"))

    @property
    def data(self) -> str:
        return str(self.provenance.get("training_data", ""))

    @property
    def labels(self) -> list[str]:
        return [str(label) for label in self.card.get("labels", [])]

    @property
    def image_size(self) -> int | None:
        size = (self.card.get("input") or {}).get("size")
        return int(size[0]) if isinstance(size, list) and size else None

    @property
    def epochs(self) -> int | None:
        epochs = self.provenance.get("epochs")
        if isinstance(epochs, dict):
            return int(sum(int(v) for v in epochs.values() if isinstance(v, (int, float))))
        return int(epochs) if isinstance(epochs, (int, float)) else None

    @property
    def seconds(self) -> float | None:
        value = self.provenance.get("training_time_s")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def date(self) -> str:
        return str(self.provenance.get("date", ""))

    def metric(self, name: str) -> float | None:
        for entry in self.card.get("metrics", []):
            if isinstance(entry, dict) and entry.get("name") == name and isinstance(entry.get("value"), (int, float)):
                return float(entry["value"])
        return None

    @property
    def top1_split(self) -> str:
        """"test" when ``top1`` comes from a held-out split (the card then also has ``val_top1``)."""
        return "test" if self.metric("val_top1") is not None else "val"

    @property
    def val_top1(self) -> float | None:
        return self.metric("val_top1") if self.top1_split == "test" else self.metric("top1")

    @property
    def test_top1(self) -> float | None:
        return self.metric("top1") if self.top1_split == "test" else None

    @property
    def split(self) -> dict[str, Any]:
        return self.provenance.get("split") or {}

    @property
    def model_path(self) -> Path:
        return self.folder / str(self.card.get("file", f"{self.name}.tflite"))

    def file(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.is_file() else None

    # --- the files beside the card

    def history(self) -> pd.DataFrame:
        """Per-epoch metrics (``epoch``, ``stage``, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``...)."""
        path = self.file("history.csv")
        if path is None:
            return pd.DataFrame()
        frame = pd.read_csv(path)
        if "epoch" in frame and len(frame) and frame["epoch"].min() == 0:  # Keras' CSVLogger counts from 0
            frame["epoch"] = frame["epoch"] + 1
        elif "epoch" not in frame:
            frame.insert(0, "epoch", range(1, len(frame) + 1))
        return frame

    def confusion(self) -> pd.DataFrame | None:
        path = self.file("confusion_matrix.csv")
        if path is None:
            return None
        frame = pd.read_csv(path, index_col=0)
        frame.index.name = "true \\ predicted"
        return frame

    def per_class(self) -> pd.DataFrame | None:
        path = self.file("per_class.csv")
        return pd.read_csv(path) if path is not None else None

    def comparison(self) -> dict[str, Any] | None:
        """For a "CNN from scratch" run: which transfer run it was trained beside."""
        path = self.file(COMPARISON_FILE)
        if path is None:
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def read_run(card_path: str | os.PathLike[str]) -> Run | None:
    """The run whose card is ``card_path``, or None when the file is not a trained classifier's card."""
    path = Path(card_path)
    try:
        if path.stat().st_size > MAX_CARD_BYTES:
            return None
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(card, dict) or card.get("task") != "classify":
        return None
    provenance = card.get("provenance")
    if not isinstance(provenance, dict) or not provenance.get("backbone") or "training_time_s" not in provenance:
        return None
    model_file = card.get("file")
    if not isinstance(model_file, str) or not (path.parent / model_file).is_file():
        return None
    return Run(name=str(card.get("name") or path.stem), folder=path.parent, card_path=path, card=card)


def discover_runs(dirs: Iterable[str | os.PathLike[str]] | None = None) -> list[Run]:
    """Every run in ``dirs`` (default: :func:`search_dirs`), a card at most two folders down,
    newest first; a folder's unreadable or foreign JSON files are skipped."""
    seen: set[Path] = set()
    runs: list[Run] = []
    for directory in (search_dirs() if dirs is None else [Path(d).expanduser() for d in dirs]):
        if not directory.is_dir():
            continue
        candidates = [*directory.glob("*.json"), *directory.glob("*/*.json"), *directory.glob("*/*/*.json")]
        for card_path in sorted(candidates):
            resolved = card_path.resolve()
            if resolved in seen or card_path.name == COMPARISON_FILE:
                continue
            run = read_run(card_path)
            if run is not None:
                seen.add(resolved)
                runs.append(run)
    runs.sort(key=lambda run: run.date, reverse=True)
    return runs


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: what it was trained on and how, and how well it did."""
    rows = []
    for run in runs:
        rows.append({
            "run": run.name,
            "data": Path(run.data.rstrip("/\\")).name if run.data else "",
            "backbone": run.backbone,
            "image size": run.image_size,
            "epochs": run.epochs,
            "time (s)": run.seconds,
            "val top-1": run.val_top1,
            "held-out top-1": run.test_top1,
            "classes": len(run.labels),
            "date": run.date,
            "folder": str(run.folder),
        })
    columns = ["run", "data", "backbone", "image size", "epochs", "time (s)", "val top-1", "held-out top-1",
               "classes", "date", "folder"]
    return pd.DataFrame(rows, columns=columns)


def curves(runs: Sequence[Run], metrics: Sequence[str] = ("val_accuracy", "val_loss", "accuracy", "loss")) -> pd.DataFrame:
    """Long form (``run``, ``epoch``, ``metric``, ``value``) of every run's per-epoch metrics."""
    parts = []
    for run in runs:
        history = run.history()
        for metric in metrics:
            if metric in history:
                parts.append(pd.DataFrame({"run": run.name, "epoch": history["epoch"].astype(int),
                                           "metric": metric, "value": history[metric].astype(float)}))
    if not parts:
        return pd.DataFrame(columns=["run", "epoch", "metric", "value"])
    return pd.concat(parts, ignore_index=True)


def per_class_side_by_side(runs: Sequence[Run], score: str = "f1") -> pd.DataFrame:
    """Classes as rows, one column per run with its ``score`` (precision, recall, f1) for the class."""
    frame: pd.DataFrame | None = None
    for run in runs:
        table = run.per_class()
        if table is None or score not in table:
            continue
        column = table[["class", score]].rename(columns={score: run.name}).set_index("class")
        frame = column if frame is None else frame.join(column, how="outer")
    if frame is None:
        return pd.DataFrame()
    return frame


def comparable(runs: Sequence[Run]) -> list[str]:
    """Why these runs' per-class scores and confusion matrices do not line up (empty when they do)."""
    notes = []
    label_sets = {tuple(run.labels) for run in runs}
    if len(label_sets) > 1:
        notes.append("The runs have different classes: their per-class scores share only the common classes.")
    fingerprints = {run.split.get("data_fingerprint") for run in runs}
    if len(fingerprints) > 1 or None in fingerprints:
        notes.append("The runs were not all measured on the same data and split.")
    return notes


# --- "Compare with a CNN from scratch" -------------------------------------------------------


def scratch_run_name(run: Run) -> str:
    return f"{run.name}{SCRATCH_SUFFIX}"


def scratch_partner(run: Run, runs: Sequence[Run]) -> Run | None:
    """The finished "CNN from scratch" run trained beside ``run``, if any."""
    for other in runs:
        info = other.comparison()
        if info and info.get("transfer_run") == run.name and Path(info.get("transfer_card", "")) == run.card_path:
            return other
    return None


def _command_option(command: str, option: str) -> str | None:
    try:
        parts = shlex.split(command or "")
    except ValueError:
        return None
    for i, part in enumerate(parts[:-1]):
        if part == option:
            return parts[i + 1]
    return None


def scratch_config_kwargs(run: Run, out_root: Path | None = None, epochs: int = 30,
                          image_size: int = 64) -> dict[str, Any]:
    """:class:`cvplay.training.trainer.TrainConfig` arguments that train the small CNN from
    scratch on the same data, with the same split (fractions and seed) and augmentation as ``run``.

    Raises :class:`RunError` when the run is not a transfer-learning run or its data is gone.
    """
    if run.backbone == SCRATCH_BACKBONE:
        raise RunError(f"{run.name} is a CNN trained from scratch already; pick a transfer-learning run.")
    split = run.split
    if not run.data or not split:
        raise RunError(f"{run.name}'s card does not record its data and split, so a fair comparison cannot be set up.")
    if not Path(run.data).expanduser().exists():
        raise RunError(f"The data {run.name} was trained on ({run.data}) is no longer on this machine "
                       "(an uploaded .zip is deleted after training): train from a folder or a collected dataset "
                       "to compare.")
    max_per_class = _command_option(run.provenance.get("command", ""), "--max-per-class")
    root = Path(out_root) if out_root is not None else runs_dir()
    name = scratch_run_name(run)
    return {
        "data": run.data,
        "out": str(root / name),
        "name": name,
        "backbone": SCRATCH_BACKBONE,
        "epochs": int(epochs),
        "fine_tune_epochs": 0,
        "image_size": int(image_size),
        "seed": int(split.get("seed", 0)),
        "val_fraction": float(split.get("val_fraction", 0.2)),
        "test_fraction": float(split.get("test_fraction", 0.0)),
        "max_per_class": int(max_per_class) if max_per_class and max_per_class.isdigit() else None,
        "augment": run.card.get("augmentation") or "none",
        "patience": 5,
    }


def check_same_data(run: Run, max_per_class: int | None = None) -> None:
    """Raise :class:`RunError` unless the run's data still fingerprints as it did when it was trained."""
    from cvplay.datasets import DatasetError, fingerprint, load_dataset

    expected = run.split.get("data_fingerprint")
    try:
        dataset = load_dataset(run.data, max_images_per_class=max_per_class, min_images_per_class=2)
    except DatasetError as error:
        raise RunError(f"The data of {run.name} cannot be read any more: {error}") from None
    if expected and fingerprint(dataset) != expected:
        raise RunError(f"The data at {run.data} has changed since {run.name} was trained "
                       f"({run.split.get('images', '?')} images then, {len(dataset)} now), so the scratch CNN would "
                       "not see the same images: train a new transfer run first.")


def write_comparison_note(run: Run, scratch_folder: Path) -> Path:
    Path(scratch_folder).mkdir(parents=True, exist_ok=True)
    path = Path(scratch_folder) / COMPARISON_FILE
    path.write_text(json.dumps({"transfer_run": run.name, "transfer_card": str(run.card_path)}, indent=2),
                    encoding="utf-8")
    return path

