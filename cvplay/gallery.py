"""Labelled test images for a classifier: random draws, predictions and a running score.

The CIFAR-100 page shows random test images with their true and predicted labels. Which
images are fair to show depends on the model: a model trained by cvplay records in its card how
its data was split (``provenance.split``), so when the local test source is the very data it
was trained on (the ``../shared`` pool in development), only its held-out test split is drawn
from. An official test set (Keras' cache, ``$CVPLAY_CIFAR100``) is used whole, with a caveat
when the model's card says its training data was another source that may contain those images.

No Streamlit here; the page caches :func:`load_gallery_source`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvplay.registry import ModelCard


@dataclass
class GallerySource:
    """The images a gallery may draw from, for one model."""

    dataset: Any  # cvplay.datasets.ImageDataset: only the images that may be shown
    targets: np.ndarray  # the model's label index for each image of ``dataset``
    description: str  # one sentence for people: what these images are
    held_out: bool  # True when the model never saw these images in training or model selection
    caveat: str = ""


@dataclass
class GalleryItem:
    index: int  # position in the source's images
    image: np.ndarray
    true_label: str
    predicted_label: str
    score: float

    @property
    def correct(self) -> bool:
        return self.true_label == self.predicted_label


@dataclass
class RunningScore:
    """Correct answers over every image shown so far (kept in the page's session state)."""

    seen: int = 0
    correct: int = 0
    shown: set[int] = field(default_factory=set)

    def add(self, items: list[GalleryItem]) -> None:
        for item in items:
            self.seen += 1
            self.correct += int(item.correct)
            self.shown.add(item.index)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.seen if self.seen else None


def _split_from_card(card: ModelCard) -> dict[str, Any] | None:
    from cvplay.evaluate import recorded_split

    return recorded_split(card)


def _same_data(card: ModelCard, split: dict[str, Any], dataset, source: Path) -> bool:
    """Is ``dataset`` the model's training data? By its fingerprint when the card has one, else by path."""
    from cvplay.evaluate import training_data_match

    return bool(training_data_match(card, dataset, source)[0])


def gallery_source(card: ModelCard, dataset, source: str | Path) -> GallerySource:
    """What the gallery may show of ``dataset`` (read from ``source``) for ``card``'s model.

    Raises ``ValueError`` with a sentence for people when none of the dataset's classes are the
    model's labels.
    """
    from cvplay.evaluate import EvaluateError, match_labels, split_indices

    try:
        mapping = match_labels(dataset.class_names, card.labels)
    except EvaluateError as error:
        raise ValueError(str(error)) from None
    split = _split_from_card(card)
    held_out = False
    caveat = ""
    if split is not None and _same_data(card, split, dataset, Path(source)):
        if split["images"] != len(dataset) or not split["test_fraction"]:
            what = ("holds a different number of images than when the model was trained"
                    if split["images"] != len(dataset) else "had no held-out test split when the model was trained")
            raise ValueError(f"{source} is the model's training data and {what}, so no image in it is unseen")
        indices = split_indices(dataset.labels, "test", split["val_fraction"], split["seed"], split["test_fraction"])
        description = (f"the model's held-out test split of {source} ({len(indices)} images, never used for "
                       "training or model selection)")
        held_out = True
    else:
        indices = np.arange(len(dataset), dtype=np.int64)
        kind = {"test": "the official CIFAR-100 test set", "train": "the official CIFAR-100 training set"}.get(
            dataset.split or "", "labelled images")
        description = f"{kind} from {source} ({len(indices)} images)"
        caveat = ("These images may include some the model was trained on, so the running accuracy can "
                  "overstate how it does on new photos.")
        held_out = False
    known = np.array([int(dataset.labels[i]) in mapping for i in indices], dtype=bool)
    indices = np.asarray(indices, dtype=np.int64)[known]
    if not len(indices):
        raise ValueError(f"{source} has no image of a class this model knows")
    targets = np.array([mapping[int(dataset.labels[i])] for i in indices], dtype=np.int64)
    # Keep only the images that may be shown (a few MB), not the whole source.
    return GallerySource(dataset=dataset.subset(indices), targets=targets, description=description,
                         held_out=held_out, caveat=caveat)


def draw(source: GallerySource, classifier, count: int, seed: int, exclude: set[int] | None = None) -> list[GalleryItem]:
    """``count`` random images of ``source`` (none in ``exclude``, a set of earlier
    :attr:`GalleryItem.index` values, while there are others), predicted by ``classifier``."""
    rng = np.random.default_rng(seed)
    positions = np.arange(len(source.dataset))
    if exclude:
        fresh = positions[~np.isin(positions, list(exclude))]
        positions = fresh if len(fresh) else positions
    count = max(0, min(int(count), len(positions)))
    chosen = rng.choice(positions, size=count, replace=False) if count else np.zeros(0, np.int64)
    images = [source.dataset.load(int(p)) for p in chosen]
    probabilities = classifier.predict_proba(images) if images else np.zeros((0, len(classifier.labels)))
    items = []
    for position, image, row in zip(chosen, images, probabilities):
        predicted = int(np.argmax(row))
        items.append(GalleryItem(
            index=int(position),
            image=image,
            true_label=classifier.labels[int(source.targets[position])],
            predicted_label=classifier.labels[predicted],
            score=float(row[predicted]),
        ))
    return items


def load_gallery_dataset(source: str | Path):
    """The labelled dataset at ``source`` (official CIFAR-100 test set where the source has one)."""
    from cvplay.datasets import load_cifar100

    return load_cifar100(source, subset="test")
