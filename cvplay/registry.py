"""Model registry: model cards, discovery, list and get.

A model is a ``.tflite`` file with a JSON **model card** beside it, same stem:
``models/imagenet-lite0.tflite`` + ``models/imagenet-lite0.json``. The card says what the
model is and how to feed it::

    {
      "name": "imagenet-lite0",              # unique; how the app and CLI refer to it
      "task": "classify",                    # or "detect"
      "file": "imagenet-lite0.tflite",       # optional, relative to the card; default: same stem
      "title": "EfficientNet-Lite0 (ImageNet-1k)",   # optional, for people
      "description": "...",                  # optional
      "input": {
        "size": [224, 224],                  # height, width
        "resize": "center_crop",             # "center_crop" | "stretch" | "pad"
        "crop_fraction": 0.875,              # center_crop only: crop this share of the shorter side
        "thumbnail_size": [32, 32],          # optional: shrink to this first, then resize to size
                                             # (a model trained on small thumbnails, e.g. CIFAR)
        "average_flip": false,               # optional: average each image's and its mirror's output
        "mean": [127.0, 127.0, 127.0],       # x = (pixel - mean) / std, pixels in 0..255 RGB
        "std": [128.0, 128.0, 128.0]
      },
      "output": "probabilities",             # or "logits" (softmax is applied at serving)
      "labels": ["tench", ...],              # one per output class
      "coarse_labels": [...],                # optional (CIFAR-100 superclasses)
      "fine_to_coarse": [...],               # optional, index into coarse_labels per label
      "metrics": [{"name": "top1", "value": 0.87, "data": "...", "command": "..."}],
      "provenance": {...},                   # free-form: backbone, weights, licence, date
      "augmentation": {...}                  # optional: the policy a trained model used
    }

Models are discovered in the shipped ``models/`` folder and in the user folder
(``$CVPLAY_MODELS``, default ``~/.cvplay/models``), up to two folders deep so that a training
run folder dropped there is found. A malformed card or a missing model file gives a clear
error for that entry and does not break the listing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

TASKS = ("classify", "detect")
RESIZE_POLICIES = ("center_crop", "stretch", "pad")
OUTPUTS = ("probabilities", "logits")
SHIPPED_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_USER_MODELS_DIR = Path("~/.cvplay/models")
DEFAULT_MODEL = "imagenet-lite0"
CARD_SUFFIX = ".json"
MODEL_SUFFIX = ".tflite"
MAX_CARD_BYTES = 20 * 1024 * 1024
_SEARCH_DEPTH = 2


class ModelCardError(ValueError):
    """A model card is malformed, or its model file is missing."""


class ModelNotFoundError(LookupError):
    """No installed model has the asked-for name."""


@dataclass(frozen=True)
class InputSpec:
    """How to turn an RGB uint8 image into the model's input tensor."""

    size: tuple[int, int] = (224, 224)  # height, width
    resize: str = "center_crop"
    crop_fraction: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    #: (height, width) the image is first shrunk to, as the training images were, or None.
    thumbnail_size: tuple[int, int] | None = None
    #: Average the probabilities of each image and of its mirror image (test-time flip).
    average_flip: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "size": list(self.size),
            "resize": self.resize,
            "crop_fraction": self.crop_fraction,
            "mean": list(self.mean),
            "std": list(self.std),
        }
        if self.thumbnail_size is not None:
            data["thumbnail_size"] = list(self.thumbnail_size)
        if self.average_flip:
            data["average_flip"] = True
        return data


@dataclass(frozen=True)
class ModelCard:
    name: str
    task: str
    model_path: Path
    card_path: Path | None
    input: InputSpec
    labels: tuple[str, ...]
    output: str = "probabilities"
    title: str = ""
    description: str = ""
    coarse_labels: tuple[str, ...] = ()
    fine_to_coarse: tuple[int, ...] = ()
    metrics: tuple[dict[str, Any], ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def display_name(self) -> str:
        return self.title or self.name

    def metric(self, name: str) -> float | None:
        for entry in self.metrics:
            if entry.get("name") == name:
                return entry.get("value")
        return None

    def summary(self) -> dict[str, Any]:
        """The short description used by ``python -m cvplay models --format json``."""
        return {
            "name": self.name,
            "task": self.task,
            "num_classes": self.num_classes,
            "path": str(self.model_path),
            "card": str(self.card_path) if self.card_path else None,
            "title": self.display_name,
            "input_size": list(self.input.size),
            "top1": self.metric("top1"),
        }

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-ready data (``file`` relative to the card's folder)."""
        data: dict[str, Any] = {
            "name": self.name,
            "task": self.task,
            "file": self.model_path.name,
            "title": self.title,
            "description": self.description,
            "input": self.input.to_dict(),
            "output": self.output,
            "labels": list(self.labels),
        }
        if self.coarse_labels:
            data["coarse_labels"] = list(self.coarse_labels)
            data["fine_to_coarse"] = list(self.fine_to_coarse)
        data["metrics"] = [dict(entry) for entry in self.metrics]
        data["provenance"] = dict(self.provenance)
        data.update(self.extra)
        return data


@dataclass(frozen=True)
class RegistryEntry:
    """One discovered model: a card, or the reason it could not be read."""

    name: str
    path: Path
    card: ModelCard | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.card is not None


# --- parsing -------------------------------------------------------------------------------


def _require(condition: bool, where: Path | str, message: str) -> None:
    if not condition:
        raise ModelCardError(f"{where}: {message}")


def _float_triple(value: Any, where: Path | str, key: str) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        value = [value] * 3
    _require(
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value),
        where,
        f"input.{key} must be a number or a list of 3 numbers",
    )
    return (float(value[0]), float(value[1]), float(value[2]))


def parse_input_spec(data: Any, where: Path | str = "card") -> InputSpec:
    _require(isinstance(data, dict), where, "'input' must be an object")
    size = data.get("size", [224, 224])
    if isinstance(size, int):
        size = [size, size]
    _require(
        isinstance(size, (list, tuple))
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in size),
        where,
        "input.size must be [height, width] with whole numbers from 1 to 4096",
    )
    resize = data.get("resize", "center_crop")
    _require(resize in RESIZE_POLICIES, where, f"input.resize must be one of {', '.join(RESIZE_POLICIES)}")
    crop_fraction = data.get("crop_fraction", 1.0)
    _require(
        isinstance(crop_fraction, (int, float)) and 0.1 <= float(crop_fraction) <= 1.0,
        where,
        "input.crop_fraction must be a number from 0.1 to 1",
    )
    mean = _float_triple(data.get("mean", 0.0), where, "mean")
    std = _float_triple(data.get("std", 1.0), where, "std")
    _require(all(s > 0 for s in std), where, "input.std must be positive")
    thumbnail = data.get("thumbnail_size")
    if isinstance(thumbnail, int) and not isinstance(thumbnail, bool):
        thumbnail = [thumbnail, thumbnail]
    _require(
        thumbnail is None
        or (isinstance(thumbnail, (list, tuple)) and len(thumbnail) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in thumbnail)),
        where,
        "input.thumbnail_size must be [height, width] with whole numbers from 1 to 4096",
    )
    average_flip = data.get("average_flip", False)
    _require(isinstance(average_flip, bool), where, "input.average_flip must be true or false")
    return InputSpec(
        average_flip=average_flip,
        size=(int(size[0]), int(size[1])),
        resize=resize,
        crop_fraction=float(crop_fraction),
        mean=mean,
        std=std,
        thumbnail_size=None if thumbnail is None else (int(thumbnail[0]), int(thumbnail[1])),
    )


def _string_list(value: Any, where: Path | str, key: str) -> tuple[str, ...]:
    _require(
        isinstance(value, list) and all(isinstance(v, str) for v in value),
        where,
        f"'{key}' must be a list of strings",
    )
    return tuple(value)


_KNOWN_KEYS = {
    "name", "task", "file", "title", "description", "input", "output", "labels",
    "coarse_labels", "fine_to_coarse", "metrics", "provenance",
}


def parse_card(data: Any, card_path: Path | None = None, model_path: Path | None = None) -> ModelCard:
    """Validate card data. ``model_path`` overrides the card's ``file`` entry."""
    where: Path | str = card_path or "card"
    _require(isinstance(data, dict), where, "a model card must be a JSON object")
    name = data.get("name")
    _require(isinstance(name, str) and name.strip() != "", where, "'name' must be a non-empty string")
    task = data.get("task")
    _require(task in TASKS, where, f"'task' must be one of {', '.join(TASKS)}")
    if model_path is None:
        file_name = data.get("file")
        if file_name is None and card_path is not None:
            file_name = card_path.with_suffix(MODEL_SUFFIX).name
        _require(isinstance(file_name, str) and file_name != "", where, "'file' must name the .tflite file")
        base = card_path.parent if card_path is not None else Path.cwd()
        model_path = (base / file_name).resolve()
    _require(model_path.is_file(), where, f"model file {model_path.name} is missing")
    labels = _string_list(data.get("labels", []), where, "labels")
    _require(len(labels) > 0 or task == "detect", where, "'labels' must list at least one class")
    output = data.get("output", "probabilities")
    _require(output in OUTPUTS, where, f"'output' must be one of {', '.join(OUTPUTS)}")
    coarse = _string_list(data.get("coarse_labels", []), where, "coarse_labels")
    fine_to_coarse = data.get("fine_to_coarse", [])
    _require(
        isinstance(fine_to_coarse, list)
        and all(isinstance(v, int) and 0 <= v < max(len(coarse), 1) for v in fine_to_coarse),
        where,
        "'fine_to_coarse' must list an index into 'coarse_labels' for each label",
    )
    _require(
        not coarse or len(fine_to_coarse) == len(labels),
        where,
        "'fine_to_coarse' must have one entry per label",
    )
    metrics = data.get("metrics", [])
    _require(
        isinstance(metrics, list) and all(isinstance(m, dict) for m in metrics),
        where,
        "'metrics' must be a list of objects",
    )
    provenance = data.get("provenance", {})
    _require(isinstance(provenance, dict), where, "'provenance' must be an object")
    title = data.get("title", "")
    description = data.get("description", "")
    _require(isinstance(title, str) and isinstance(description, str), where, "'title' and 'description' must be strings")
    return ModelCard(
        name=name.strip(),
        task=task,
        model_path=model_path,
        card_path=card_path,
        input=parse_input_spec(data.get("input", {}), where),
        labels=labels,
        output=output,
        title=title,
        description=description,
        coarse_labels=coarse,
        fine_to_coarse=tuple(fine_to_coarse),
        metrics=tuple(metrics),
        provenance=provenance,
        extra={k: v for k, v in data.items() if k not in _KNOWN_KEYS},
    )


def read_card(card_path: str | os.PathLike[str]) -> ModelCard:
    """Read and validate one card file; raises :class:`ModelCardError` with a clear reason."""
    card_path = Path(card_path).expanduser().resolve()
    if not card_path.is_file():
        raise ModelCardError(f"{card_path}: no such model card")
    if card_path.stat().st_size > MAX_CARD_BYTES:
        raise ModelCardError(f"{card_path}: the card is larger than {MAX_CARD_BYTES // 2**20} MB")
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ModelCardError(f"{card_path}: the card is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ModelCardError(f"{card_path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    return parse_card(data, card_path=card_path)


def write_card(card: ModelCard | dict[str, Any], card_path: str | os.PathLike[str]) -> Path:
    """Write a card as indented JSON; returns the path."""
    card_path = Path(card_path)
    data = card.to_dict() if isinstance(card, ModelCard) else card
    card_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return card_path


# --- discovery -----------------------------------------------------------------------------


def user_models_dir() -> Path:
    return Path(os.environ.get("CVPLAY_MODELS") or DEFAULT_USER_MODELS_DIR).expanduser()


def model_dirs() -> list[Path]:
    """Where models are discovered: the shipped folder, then the user folder."""
    dirs = [SHIPPED_MODELS_DIR, user_models_dir()]
    unique: list[Path] = []
    for directory in dirs:
        if directory not in unique:
            unique.append(directory)
    return unique


def _candidate_cards(directory: Path) -> Iterable[Path]:
    """Card files up to ``_SEARCH_DEPTH`` folders down; a card is a JSON beside a .tflite or
    a JSON that says it is a card (has a "task")."""
    if not directory.is_dir():
        return
    frontier = [directory]
    for _ in range(_SEARCH_DEPTH + 1):
        next_frontier: list[Path] = []
        for folder in frontier:
            try:
                children = sorted(folder.iterdir())
            except OSError:
                continue
            for child in children:
                if child.name.startswith("."):
                    continue
                if child.is_dir():
                    next_frontier.append(child)
                elif child.suffix == MODEL_SUFFIX:
                    yield child.with_suffix(CARD_SUFFIX)
        frontier = next_frontier


def discover(dirs: Iterable[str | os.PathLike[str]] | None = None) -> list[RegistryEntry]:
    """Every model in ``dirs`` (default :func:`model_dirs`), broken ones included with a reason.

    The first folder wins when two models share a name; the later one is listed as an error.
    """
    entries: list[RegistryEntry] = []
    seen: dict[str, Path] = {}
    for directory in [Path(d).expanduser() for d in (dirs if dirs is not None else model_dirs())]:
        for card_path in _candidate_cards(directory):
            model_path = card_path.with_suffix(MODEL_SUFFIX)
            if not card_path.is_file():
                entries.append(
                    RegistryEntry(
                        name=model_path.stem,
                        path=model_path,
                        error=f"{model_path}: no model card ({card_path.name}) beside the model file",
                    )
                )
                continue
            try:
                card = read_card(card_path)
            except ModelCardError as error:
                entries.append(RegistryEntry(name=card_path.stem, path=card_path, error=str(error)))
                continue
            if card.name in seen:
                entries.append(
                    RegistryEntry(
                        name=card.name,
                        path=card_path,
                        error=f"{card_path}: the name {card.name!r} is already used by {seen[card.name]}",
                    )
                )
                continue
            seen[card.name] = card_path
            entries.append(RegistryEntry(name=card.name, path=card_path, card=card))
    return entries


def list_models(task: str | None = None, dirs: Iterable[str | os.PathLike[str]] | None = None) -> list[ModelCard]:
    """The cards of every model that loads, optionally of one task, default model first."""
    cards = [entry.card for entry in discover(dirs) if entry.card is not None]
    if task is not None:
        cards = [card for card in cards if card.task == task]
    return sorted(cards, key=lambda card: (card.name != DEFAULT_MODEL, card.name))


def get_card(name_or_path: str | os.PathLike[str], dirs: Iterable[str | os.PathLike[str]] | None = None) -> ModelCard:
    """A card by registered name, or by path to a card, a ``.tflite`` or a folder with one model."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = os.sep in text or text.endswith((CARD_SUFFIX, MODEL_SUFFIX)) or path.is_dir()
    if looks_like_path and path.exists():
        if path.is_dir():
            cards = [entry for entry in discover([path]) if entry.card is not None]
            if len(cards) != 1:
                raise ModelNotFoundError(
                    f"{path}: expected exactly one model in this folder, found {len(cards)}"
                )
            return cards[0].card  # type: ignore[return-value]
        if path.suffix == MODEL_SUFFIX:
            return read_card(path.with_suffix(CARD_SUFFIX))
        return read_card(path)
    entries = discover(dirs)
    for entry in entries:
        if entry.name == text and entry.card is not None:
            return entry.card
    for entry in entries:
        if entry.name == text and entry.error:
            raise ModelCardError(entry.error)
    if looks_like_path:
        raise ModelNotFoundError(f"{text}: no such file or folder")
    available = ", ".join(card.name for card in list_models(dirs=dirs)) or "none"
    raise ModelNotFoundError(f"no installed model is called {text!r} (installed: {available})")
