"""Class names shipped with cvplay.

``imagenet_classes.txt`` lists the 1,000 ImageNet-1k classes in index order as
``WNID<TAB>name`` lines (two names repeat in ImageNet itself: "crane" the bird and the machine,
"maillot" twice).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

IMAGENET_CLASSES_FILE = Path(__file__).resolve().parent / "imagenet_classes.txt"
IMAGENET_NUM_CLASSES = 1000


@lru_cache(maxsize=1)
def _imagenet_rows() -> tuple[tuple[str, str], ...]:
    rows = []
    for number, line in enumerate(IMAGENET_CLASSES_FILE.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        wnid, sep, name = line.partition("\t")
        if not sep or not name.strip():
            raise ValueError(f"{IMAGENET_CLASSES_FILE.name} line {number}: expected WNID<TAB>name")
        rows.append((wnid.strip(), name.strip()))
    if len(rows) != IMAGENET_NUM_CLASSES:
        raise ValueError(f"{IMAGENET_CLASSES_FILE.name} lists {len(rows)} classes, expected {IMAGENET_NUM_CLASSES}")
    return tuple(rows)


def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet-1k class names in index order (0 "tench", 1 "goldfish", ...)."""
    return [name for _, name in _imagenet_rows()]


def imagenet_wnids() -> list[str]:
    """The 1,000 ImageNet-1k WordNet ids in index order (0 "n01440764", ...)."""
    return [wnid for wnid, _ in _imagenet_rows()]
