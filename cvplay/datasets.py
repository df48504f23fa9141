"""Datasets for training and evaluation: image folders (or a .zip of one) and CIFAR-100.

Pure NumPy/Pillow: nothing here imports TensorFlow or Keras at import time. Keras is imported
only inside :func:`load_cifar100` when it is asked to download the dataset.

Sources that :func:`load_dataset` understands:

* a folder with one sub-folder per class (images are decoded lazily with
  :func:`cvplay.images.read_image`), or a ``.zip`` of such a folder (extracted safely);
* the official ``cifar-100-python.tar.gz`` or its extracted folder (``train``, ``test``,
  ``meta`` pickles, read with a restricted unpickler);
* an ``.npz`` with ``x`` (N, H, W, 3) uint8 and ``fine`` (and optionally ``coarse``) labels, or a
  folder of such parts (``pool-*.npz``) with an optional ``meta.json`` of label names;
* ``"keras"`` / ``"cifar100"``: Keras' download of CIFAR-100 (needs internet once).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import stat
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "CIFAR100_COARSE_LABELS",
    "CIFAR100_FINE_LABELS",
    "CIFAR100_FINE_TO_COARSE",
    "DatasetError",
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "cifar100_test_source",
    "class_weights",
    "extract_zip_safely",
    "load_cifar100",
    "load_dataset",
    "load_image_folder",
    "shared_dir",
    "fingerprint",
    "stratified_split",
    "validate_for_training",
]


class DatasetError(ValueError):
    """A dataset cannot be used; the message is one clear sentence for a person."""


# --------------------------------------------------------------------------------------------
# CIFAR-100 label facts (official order, as in the dataset's ``meta`` file and on
# https://www.cs.toronto.edu/~kriz/cifar.html).
# --------------------------------------------------------------------------------------------

CIFAR100_FINE_LABELS: tuple[str, ...] = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)

# The 20 superclasses and their five members each, as listed on Krizhevsky's CIFAR page.
_CIFAR100_SUPERCLASSES: dict[str, tuple[str, ...]] = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}

CIFAR100_COARSE_LABELS: tuple[str, ...] = tuple(_CIFAR100_SUPERCLASSES)

_COARSE_OF_FINE = {
    fine: index for index, members in enumerate(_CIFAR100_SUPERCLASSES.values()) for fine in members
}
CIFAR100_FINE_TO_COARSE: tuple[int, ...] = tuple(_COARSE_OF_FINE[name] for name in CIFAR100_FINE_LABELS)

#: Extensions the folder loader treats as images (compared case-insensitively).
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
)

# Files that operating systems leave behind; never data, never worth a warning.
_JUNK_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}


# --------------------------------------------------------------------------------------------
# The dataset object
# --------------------------------------------------------------------------------------------


@dataclass
class ImageDataset:
    """Labelled images, either in memory or as file paths decoded on demand.

    ``images`` is a uint8 array ``(N, H, W, 3)`` (CIFAR-100, npz) or a list of file paths
    (image folders), decoded with :func:`cvplay.images.read_image` by :meth:`load`.
    """

    images: list[Path] | np.ndarray
    labels: np.ndarray
    class_names: list[str]
    coarse_labels: np.ndarray | None = None
    coarse_names: list[str] | None = None
    #: ``(file, reason)`` for image files that could not be read; they are not in ``images``.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Where the data came from, in words (a path and its kind).
    source: str = ""
    #: ``"train"``, ``"test"``, ``"all"`` (official CIFAR-100 splits) or ``None`` when the
    #: source has no official split (image folders, npz pools).
    split: str | None = None
    #: Folder that holds the class folders (image folders only).
    root: Path | None = None
    #: Non-image files that were ignored (relative paths), and loose images outside a class folder.
    ignored: list[str] = field(default_factory=list)
    #: ``{(width, height): count}`` and ``{mode: count}`` seen while scanning (image folders).
    image_sizes: dict[tuple[int, int], int] | None = None
    image_modes: dict[str, int] | None = None
    #: The minimum number of images per class :func:`validate_for_training` asks for.
    min_images_per_class: int = 2
    #: Keyword arguments passed on to ``read_image`` (``max_bytes``, ``max_pixels``).
    read_options: dict[str, Any] = field(default_factory=dict)
    # Keeps a temporary extraction folder (a zip's) alive as long as a dataset uses it.
    _keepalive: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if self.coarse_labels is not None:
            self.coarse_labels = np.asarray(self.coarse_labels, dtype=np.int64).reshape(-1)
        self.class_names = [str(name) for name in self.class_names]
        if isinstance(self.images, np.ndarray):
            if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
                raise DatasetError(
                    f"In-memory images must be a uint8 array of shape (N, H, W, 3), "
                    f"got {self.images.dtype} {self.images.shape}."
                )
        else:
            self.images = [Path(p) for p in self.images]
        if len(self.images) != len(self.labels):
            raise DatasetError(
                f"The dataset has {len(self.images)} images but {len(self.labels)} labels."
            )
        if self.coarse_labels is not None and len(self.coarse_labels) != len(self.labels):
            raise DatasetError(
                f"The dataset has {len(self.labels)} labels but {len(self.coarse_labels)} coarse labels."
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        """True when ``images`` is a decoded array, False when it is a list of files."""
        return isinstance(self.images, np.ndarray)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> np.ndarray:
        """Images per class, indexed like ``class_names``."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as an RGB uint8 array ``(H, W, 3)`` (a copy)."""
        if isinstance(self.images, np.ndarray):
            return np.array(self.images[index], dtype=np.uint8, copy=True)
        path = self.images[index]
        from cvplay.images import read_image  # decoded lazily; the images module does the checks

        try:
            return read_image(path, **self.read_options)
        except Exception as exc:  # ImageError or an OS error: name the file
            raise DatasetError(f"Could not read image {path}: {_reason(exc)}") from exc

    def load_batch(self, indices: Iterable[int]) -> list[np.ndarray]:
        """Images at ``indices`` (sizes may differ for image folders)."""
        return [self.load(int(i)) for i in indices]

    def subset(self, indices: Sequence[int] | np.ndarray) -> "ImageDataset":
        """A dataset with the images at ``indices``, the same classes and the same source."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if isinstance(self.images, np.ndarray):
            images: list[Path] | np.ndarray = self.images[idx]
        else:
            images = [self.images[i] for i in idx]
        return replace(
            self,
            images=images,
            labels=self.labels[idx],
            coarse_labels=None if self.coarse_labels is None else self.coarse_labels[idx],
            class_names=list(self.class_names),
            coarse_names=None if self.coarse_names is None else list(self.coarse_names),
            skipped=list(self.skipped),
            ignored=list(self.ignored),
        )


def fingerprint(dataset: ImageDataset) -> str:
    """A short hash of a dataset's images (pixels in memory, file names relative to the root
    otherwise) and labels, in order: the same data read from another path has the same one."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(dataset.labels, dtype=np.int64).tobytes())
    if isinstance(dataset.images, np.ndarray):
        digest.update(str(dataset.images.shape).encode())
        digest.update(np.ascontiguousarray(dataset.images).tobytes())
    else:
        for path in dataset.images:
            name = path.relative_to(dataset.root) if dataset.root and path.is_relative_to(dataset.root) else path.name
            digest.update(str(name).encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------

_KERAS_NAMES = {"keras", "cifar100", "cifar-100", "keras:cifar100"}


def load_dataset(
    path: str | Path,
    *,
    min_images_per_class: int = 2,
    max_images_per_class: int | None = None,
    subset: str = "train",
    label_mode: str = "fine",
) -> ImageDataset:
    """Load a dataset from ``path``, whatever its kind (see the module docstring).

    ``subset`` and ``label_mode`` apply to CIFAR-100 sources only. Image folders are checked with
    :func:`validate_for_training` (so an unusable folder raises :class:`DatasetError`).
    """
    if isinstance(path, str) and path.strip().lower() in _KERAS_NAMES:
        dataset = load_cifar100(None, subset=subset, label_mode=label_mode)
        return _cap_per_class(dataset, max_images_per_class, min_images_per_class)
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"No dataset at {p}: the path does not exist.")
    if p.is_file():
        name = p.name.lower()
        if name.endswith(".zip"):
            tmp = tempfile.TemporaryDirectory(prefix="cvplay-zip-")
            root = extract_zip_safely(p, tmp.name)
            dataset = load_image_folder(
                root,
                min_images_per_class=min_images_per_class,
                max_images_per_class=max_images_per_class,
            )
            dataset.source = f"zip {p} (image folders)"
            dataset._keepalive = tmp
            return dataset
        if name.endswith((".tar.gz", ".tgz", ".tar")) or name.endswith(".npz"):
            dataset = load_cifar100(p, subset=subset, label_mode=label_mode)
            return _cap_per_class(dataset, max_images_per_class, min_images_per_class)
        raise DatasetError(
            f"Cannot read {p.name} as a dataset: give a folder of class folders, a .zip of one, "
            "the CIFAR-100 archive (cifar-100-python.tar.gz) or an .npz file."
        )
    if not p.is_dir():
        raise DatasetError(f"{p} is neither a file nor a folder.")
    if _cifar_pickle_dir(p) is not None or _npz_parts(p):
        dataset = load_cifar100(p, subset=subset, label_mode=label_mode)
        return _cap_per_class(dataset, max_images_per_class, min_images_per_class)
    return load_image_folder(
        p,
        min_images_per_class=min_images_per_class,
        max_images_per_class=max_images_per_class,
    )


def _cap_per_class(dataset: ImageDataset, max_per_class: int | None, min_per_class: int) -> ImageDataset:
    dataset.min_images_per_class = min_per_class
    if max_per_class is None:
        return dataset
    if max_per_class < 1:
        raise DatasetError(f"max_images_per_class must be at least 1, got {max_per_class}.")
    keep = _first_per_class(dataset.labels, max_per_class)
    if len(keep) == len(dataset):
        return dataset
    return dataset.subset(keep)


def _first_per_class(labels: np.ndarray, cap: int) -> np.ndarray:
    """Indices of the first ``cap`` items of every class, in their original order."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.arange(len(labels)) - starts
    return np.sort(order[rank < cap])


# --------------------------------------------------------------------------------------------
# Image folders
# --------------------------------------------------------------------------------------------


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in _JUNK_NAMES


def _is_image_name(name: str, extensions: Sequence[str]) -> bool:
    return name.lower().endswith(tuple(e.lower() for e in extensions))


def _visible_children(folder: Path) -> tuple[list[Path], list[Path]]:
    """(sub-folders, files) of ``folder``, without hidden and system entries, sorted by name."""
    dirs, files = [], []
    for child in sorted(folder.iterdir(), key=lambda c: c.name):
        if _is_hidden(child.name) or child.is_symlink():
            continue
        if child.is_dir():
            dirs.append(child)
        elif child.is_file():
            files.append(child)
    return dirs, files


def _class_root(folder: Path) -> Path:
    """Descend through single wrapping folders (``data.zip`` -> ``data/`` -> class folders)."""
    current = folder
    for _ in range(8):
        dirs, files = _visible_children(current)
        if len(dirs) != 1 or files:
            return current
        inner_dirs, _ = _visible_children(dirs[0])
        if not inner_dirs:  # the single folder is itself a class folder
            return current
        current = dirs[0]
    return current


def _check_image_file(path: Path, mode: str, max_bytes: int | None, max_pixels: int | None,
                      read_options: dict[str, Any]) -> tuple[tuple[int, int], str] | str:
    """``((width, height), mode)`` for a readable image, or the reason it is not readable."""
    try:
        size_bytes = path.stat().st_size
    except OSError as exc:
        return f"cannot be opened ({_reason(exc)})"
    if size_bytes == 0:
        return "empty file"
    if max_bytes is not None and size_bytes > max_bytes:
        return f"file too large ({size_bytes} bytes; the limit is {max_bytes})"
    if mode == "full":
        from cvplay.images import read_image

        try:
            image = read_image(path, **read_options)
        except Exception as exc:
            return f"not a readable image ({_reason(exc)})"
        return (int(image.shape[1]), int(image.shape[0])), "RGB"
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                size, image_mode, image_format = im.size, im.mode, im.format
                if max_pixels is not None and size[0] * size[1] > max_pixels:
                    return f"too many pixels ({size[0]}x{size[1]}; the limit is {max_pixels})"
                im.verify()
    except Exception as exc:
        return f"not a readable image ({_reason(exc)})"
    if image_format in ("JPEG", "MPO") and not _has_jpeg_end(path):
        # verify() does not read JPEG data: a file cut short passes it. Decode that one fully.
        return _check_image_file(path, "full", max_bytes, max_pixels, read_options)
    return (int(size[0]), int(size[1])), str(image_mode)


def _has_jpeg_end(path: Path) -> bool:
    """Whether the file's last kilobyte holds a JPEG end-of-image marker (a cheap truncation test)."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 1024))
        return b"\xff\xd9" in f.read()


def load_image_folder(
    path: str | Path,
    *,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    min_images_per_class: int = 2,
    max_images_per_class: int | None = None,
    verify: str = "header",
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    validate: bool = True,
) -> ImageDataset:
    """A folder with one sub-folder per class (images may sit in nested folders of a class).

    Class names are the sub-folder names, sorted. Every image file is checked when the folder is
    loaded: ``verify="header"`` opens it with Pillow and runs ``verify()`` (cheap: it reads the
    file but does not decode pixels), ``verify="full"`` decodes it with ``read_image``. Files that
    fail go to ``skipped`` with the reason; files with other extensions go to ``ignored``.
    (A JPEG without its end marker is decoded fully, since ``verify()`` cannot see truncation.)
    ``max_bytes``/``max_pixels`` (default: ``cvplay.images``' limits) are checked at load and
    passed on to ``read_image``.
    With ``validate`` (the default) the result goes through :func:`validate_for_training`.
    """
    if verify not in ("header", "full"):
        raise ValueError(f"verify must be 'header' or 'full', got {verify!r}")
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DatasetError(f"No image folder at {folder}: the path does not exist.")
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder.")
    root = _class_root(folder)
    class_dirs, loose_files = _visible_children(root)
    loose_images = [f for f in loose_files if _is_image_name(f.name, extensions)]
    if not class_dirs:
        if loose_images:
            raise DatasetError(
                f"{folder} has {len(loose_images)} images but no class folders: put each class's "
                "images in a sub-folder named after the class."
            )
        raise DatasetError(f"{folder} is empty: it has no class folders and no images.")

    # The limits read_image applies later are checked now, so a file that would fail is skipped.
    from cvplay.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

    max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    read_options: dict[str, Any] = {"max_bytes": max_bytes, "max_pixels": max_pixels}

    files: list[Path] = []
    labels: list[int] = []
    skipped: list[tuple[str, str]] = []
    ignored: list[str] = [str(f.relative_to(root)) for f in loose_files]
    sizes: dict[tuple[int, int], int] = {}
    modes: dict[str, int] = {}
    class_names = [d.name for d in class_dirs]
    for label, class_dir in enumerate(class_dirs):
        kept = 0
        for candidate in _walk_files(class_dir):
            rel = str(candidate.relative_to(root))
            if not _is_image_name(candidate.name, extensions):
                ignored.append(rel)
                continue
            if max_images_per_class is not None and kept >= max_images_per_class:
                break
            result = _check_image_file(candidate, verify, max_bytes, max_pixels, read_options)
            if isinstance(result, str):
                skipped.append((rel, result))
                continue
            size, mode = result
            sizes[size] = sizes.get(size, 0) + 1
            modes[mode] = modes.get(mode, 0) + 1
            files.append(candidate)
            labels.append(label)
            kept += 1

    dataset = ImageDataset(
        images=files,
        labels=np.asarray(labels, dtype=np.int64),
        class_names=class_names,
        skipped=skipped,
        source=f"image folders {root}",
        root=root,
        ignored=ignored,
        image_sizes=sizes,
        image_modes=modes,
        min_images_per_class=min_images_per_class,
        read_options=read_options,
    )
    if validate:
        validate_for_training(dataset)
    return dataset


def _walk_files(folder: Path) -> list[Path]:
    """Files under ``folder`` (recursively), skipping hidden entries and symlinks, sorted."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for name in sorted(filenames):
            if _is_hidden(name):
                continue
            full = Path(dirpath) / name
            if full.is_symlink() or not full.is_file():
                continue
            out.append(full)
    return out


# --------------------------------------------------------------------------------------------
# Validation, splits, weights
# --------------------------------------------------------------------------------------------


def validate_for_training(dataset: ImageDataset, *, min_images_per_class: int | None = None) -> list[str]:
    """Raise :class:`DatasetError` when ``dataset`` cannot be trained on; else return warnings.

    Errors: no images, fewer than two classes, a class with fewer than
    ``min_images_per_class`` images (default: the dataset's own), class names that differ only
    by case. Warnings: class imbalance, skipped or ignored files, mixed image sizes or modes.
    """
    minimum = dataset.min_images_per_class if min_images_per_class is None else min_images_per_class
    names = list(dataset.class_names)
    where = f" in {dataset.root}" if dataset.root is not None else ""

    seen: dict[str, str] = {}
    for name in names:
        key = name.casefold()
        if key in seen:
            raise DatasetError(
                f"Class names '{seen[key]}' and '{name}'{where} differ only by case: "
                "merge or rename one of the folders."
            )
        seen[key] = name

    if len(dataset) == 0:
        if dataset.skipped:
            raise DatasetError(
                f"None of the {len(dataset.skipped)} image files{where} could be read "
                f"(for example {dataset.skipped[0][0]}: {dataset.skipped[0][1]})."
            )
        raise DatasetError(f"The dataset{where} has no images: add images to the class folders.")
    if len(names) < 2:
        only = f" ('{names[0]}')" if names else ""
        raise DatasetError(
            f"Training needs at least two classes, but the dataset{where} has only one{only}."
        )
    counts = np.bincount(dataset.labels, minlength=len(names))
    if len(counts) > len(names) or dataset.labels.min() < 0:
        raise DatasetError(
            f"Labels run from {dataset.labels.min()} to {dataset.labels.max()} but there are only "
            f"{len(names)} class names."
        )
    small = [(names[i], int(c)) for i, c in enumerate(counts) if c < minimum]
    if small:
        listed = ", ".join(f"'{n}' ({c})" for n, c in small[:5])
        more = f" and {len(small) - 5} more" if len(small) > 5 else ""
        raise DatasetError(
            f"Every class needs at least {minimum} images, but these have fewer: {listed}{more}."
        )

    messages: list[str] = []
    lo, hi = int(counts.min()), int(counts.max())
    if hi >= 2 * lo:
        messages.append(
            f"Classes are imbalanced: '{names[int(counts.argmax())]}' has {hi} images and "
            f"'{names[int(counts.argmin())]}' has {lo} ({hi / lo:.1f}x); consider class weights."
        )
    if dataset.skipped:
        file, reason = dataset.skipped[0]
        messages.append(
            f"{len(dataset.skipped)} image file(s) could not be read and were skipped "
            f"(for example {file}: {reason})."
        )
    if dataset.ignored:
        messages.append(
            f"{len(dataset.ignored)} file(s) that are not images or not in a class folder were "
            f"ignored (for example {dataset.ignored[0]})."
        )
    if dataset.image_sizes and len(dataset.image_sizes) > 1:
        by_area = sorted(dataset.image_sizes, key=lambda s: s[0] * s[1])
        messages.append(
            f"Images come in {len(dataset.image_sizes)} different sizes (from "
            f"{by_area[0][0]}x{by_area[0][1]} to {by_area[-1][0]}x{by_area[-1][1]}); "
            "they are resized to the model's input size."
        )
    if dataset.image_modes and len(dataset.image_modes) > 1:
        messages.append(
            f"Images use several colour modes ({', '.join(sorted(dataset.image_modes))}); "
            "they are converted to RGB."
        )
    return messages


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    fractions: Sequence[float] = (0.8, 0.2),
    seed: int = 0,
) -> tuple[np.ndarray, ...]:
    """Split indices into ``len(fractions)`` parts with each class spread in proportion.

    Every class with at least as many items as there are parts appears in every part. Each part
    is an int64 index array in a seeded random order; the result depends only on ``labels``,
    ``fractions`` and ``seed``.
    """
    labels = np.asarray(labels).reshape(-1)
    fracs = np.asarray(fractions, dtype=np.float64)
    if fracs.ndim != 1 or len(fracs) < 1 or np.any(fracs <= 0) or abs(fracs.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must be positive and sum to 1, got {tuple(fractions)}")
    k = len(fracs)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(k)]
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        members = members[rng.permutation(len(members))]
        counts = _allocate(len(members), fracs)
        start = 0
        for part, count in zip(parts, counts):
            part.append(members[start : start + count])
            start += count
    out = []
    for part in parts:
        joined = np.concatenate(part) if part else np.zeros(0, dtype=np.int64)
        out.append(joined[rng.permutation(len(joined))].astype(np.int64))
    return tuple(out)


def _allocate(n: int, fracs: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``n``, close to ``n * fracs``, at least 1 each when ``n >= k``."""
    exact = n * fracs
    counts = np.floor(exact).astype(np.int64)
    remainder = n - int(counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:remainder]] += 1
    if n >= len(fracs):
        while np.any(counts == 0):
            counts[int(np.argmax(counts))] -= 1
            counts[int(np.flatnonzero(counts == 0)[0])] += 1
    return counts


def class_weights(labels: Sequence[int] | np.ndarray, num_classes: int) -> dict[int, float]:
    """Balanced weights ``n / (num_classes * count)``; a class with no items gets 1.0."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    counts = np.bincount(labels, minlength=num_classes)
    n = len(labels)
    return {
        i: (float(n) / (num_classes * int(c)) if c else 1.0) for i, c in enumerate(counts)
    }


# --------------------------------------------------------------------------------------------
# Safe zip extraction
# --------------------------------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")


def _zip_member_path(name: str) -> PurePosixPath | None:
    """The safe relative path of a member, None for entries to ignore; raise for unsafe ones."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or _DRIVE.match(clean):
        raise DatasetError(f"The zip file holds an absolute path ({name!r}); it was not extracted.")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise DatasetError(
            f"The zip file holds a path that leaves its folder ({name!r}); it was not extracted."
        )
    if not parts or any(_is_hidden(p) for p in parts):
        return None
    return PurePosixPath(*parts)


def extract_zip_safely(
    zip_path: str | Path,
    dest: str | Path,
    *,
    max_files: int = 20_000,
    max_total_bytes: int = 2 * 1024**3,
    max_ratio: float = 200,
) -> Path:
    """Extract ``zip_path`` into ``dest`` and return the folder that holds the class folders.

    Refuses (with :class:`DatasetError`, before writing anything) archives with absolute paths,
    drive letters, ``..`` components, symbolic links or encrypted members; more than
    ``max_files`` files; more than ``max_total_bytes`` uncompressed; or a member (or the whole)
    that inflates more than ``max_ratio`` times (a zip bomb). ``__MACOSX/`` and dotfiles are
    skipped. Sizes are also counted while writing, so a lying header cannot exceed the caps.
    """
    zip_path = Path(zip_path)
    dest = Path(dest)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"{zip_path.name} is not a readable zip file ({_reason(exc)}).") from exc
    with archive:
        plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        total = 0
        total_compressed = 0
        for info in archive.infolist():
            rel = _zip_member_path(info.filename)
            mode = (info.external_attr >> 16) & 0o170000
            if mode == stat.S_IFLNK:
                raise DatasetError(
                    f"The zip file holds a symbolic link ({info.filename!r}); it was not extracted."
                )
            if rel is None or info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise DatasetError(f"The zip file is encrypted ({info.filename!r}); unpack it yourself.")
            plan.append((info, rel))
            if len(plan) > max_files:
                raise DatasetError(
                    f"The zip file holds more than {max_files} files; use a smaller dataset."
                )
            total += info.file_size
            total_compressed += info.compress_size
            if total > max_total_bytes:
                raise DatasetError(
                    f"The zip file unpacks to more than {human_size(max_total_bytes)}; use a smaller dataset."
                )
            if info.file_size > max_ratio * max(info.compress_size, 1) and info.file_size > 1024 * 1024:
                raise DatasetError(
                    f"The zip file looks like a zip bomb: {info.filename!r} inflates "
                    f"{info.file_size / max(info.compress_size, 1):.0f} times."
                )
        if total > 1024 * 1024 and total > max_ratio * max(total_compressed, 1):
            raise DatasetError(
                f"The zip file looks like a zip bomb: it inflates "
                f"{total / max(total_compressed, 1):.0f} times."
            )

        dest.mkdir(parents=True, exist_ok=True)
        dest_resolved = dest.resolve()
        written = 0
        for info, rel in plan:
            target = dest_resolved.joinpath(*rel.parts)
            if not target.resolve().is_relative_to(dest_resolved):
                raise DatasetError(
                    f"The zip file holds a path that leaves its folder ({info.filename!r})."
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(target, "wb") as out:
                    member_written = 0
                    while chunk := src.read(1024 * 1024):
                        member_written += len(chunk)
                        written += len(chunk)
                        if member_written > info.file_size or written > max_total_bytes:
                            raise DatasetError(
                                f"The zip file unpacks to more than it declares ({info.filename!r})."
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                raise DatasetError(
                    f"The zip file is damaged: {info.filename!r} could not be unpacked ({_reason(exc)})."
                ) from exc
    return _class_root(dest)


def human_size(n: int) -> str:
    """A byte count for a message: ``512 bytes``, ``3.4 MiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


# --------------------------------------------------------------------------------------------
# CIFAR-100
# --------------------------------------------------------------------------------------------

_CIFAR_PARTS = ("train", "test", "meta")
_MAX_PICKLE_BYTES = 1024**3  # the official train pickle is ~155 MB


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # NumPy 2
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 writes bytes into protocol-2 pickles as ``_codecs.encode(str, 'latin1')``.
    if str(encoding).lower().replace("-", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"refused codec {encoding!r}")
    return str(text).encode("latin-1")


class _CifarUnpickler(pickle.Unpickler):
    """Rebuilds only dicts, lists, bytes and NumPy arrays; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def _unpickle(data: bytes, what: str) -> dict:
    try:
        obj = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise DatasetError(
            f"Refused to read {what}: it is not a CIFAR-100 pickle ({_reason(exc)})."
        ) from exc
    except Exception as exc:
        raise DatasetError(f"Could not read {what}: {_reason(exc)}.") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"{what} is not a CIFAR-100 pickle (it holds a {type(obj).__name__}).")
    return {(k.decode("latin-1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _decode_names(values: Any, expected: int, what: str) -> list[str]:
    if not isinstance(values, (list, tuple)) or len(values) != expected:
        raise DatasetError(f"{what} should list {expected} label names.")
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _parse_cifar_part(part: dict, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        data = part["data"]
        fine = np.asarray(part["fine_labels"], dtype=np.int64).reshape(-1)
        coarse = np.asarray(part["coarse_labels"], dtype=np.int64).reshape(-1)
    except KeyError as exc:
        raise DatasetError(f"{what} lacks the key {exc.args[0]!r} of a CIFAR-100 pickle.") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise DatasetError(f"{what}: the labels are not lists of integers ({_reason(exc)}).") from None
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
    ):
        raise DatasetError(f"{what}: 'data' should be a uint8 (N, 3072) array.")
    n = data.shape[0]
    if len(fine) != n or len(coarse) != n:
        raise DatasetError(f"{what}: {n} images but {len(fine)} fine and {len(coarse)} coarse labels.")
    images = data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), fine, coarse


def _cifar_pickle_dir(folder: Path) -> Path | None:
    """The folder holding CIFAR-100 ``meta`` and ``train``/``test`` pickles, if any."""
    for candidate in (folder, folder / "cifar-100-python"):
        if (candidate / "meta").is_file() and (
            (candidate / "train").is_file() or (candidate / "test").is_file()
        ):
            return candidate
    return None


def _npz_parts(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.npz") if p.is_file() and not _is_hidden(p.name))


def _read_tar_parts(archive_path: Path, wanted: Sequence[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive_path, "r:*") as tar:
            for member in tar:
                base = PurePosixPath(member.name).name
                if base not in wanted or base in found or not member.isfile():
                    continue
                if member.size > _MAX_PICKLE_BYTES:
                    raise DatasetError(f"{archive_path.name}: {member.name} is too large for CIFAR-100.")
                handle = tar.extractfile(member)
                if handle is not None:
                    found[base] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(f"{archive_path.name} is not a readable archive ({_reason(exc)}).") from exc
    missing = [w for w in wanted if w not in found]
    if missing:
        raise DatasetError(
            f"{archive_path.name} is not the CIFAR-100 archive: it lacks {', '.join(missing)}."
        )
    return found


def _wanted_parts(subset: str) -> list[str]:
    return {"train": ["train"], "test": ["test"], "all": ["train", "test"]}[subset]


def _from_official(read: dict[str, bytes], subset: str, label_mode: str, source: str) -> ImageDataset:
    meta = _unpickle(read["meta"], f"{source} (meta)")
    fine_names = _decode_names(meta.get("fine_label_names"), 100, f"{source} (meta)")
    coarse_names = _decode_names(meta.get("coarse_label_names"), 20, f"{source} (meta)")
    xs, fines, coarses = [], [], []
    for part in _wanted_parts(subset):
        x, fine, coarse = _parse_cifar_part(_unpickle(read[part], f"{source} ({part})"), f"{source} ({part})")
        xs.append(x)
        fines.append(fine)
        coarses.append(coarse)
    return _cifar_dataset(
        np.concatenate(xs) if len(xs) > 1 else xs[0],
        np.concatenate(fines),
        np.concatenate(coarses),
        fine_names,
        coarse_names,
        label_mode,
        source=f"CIFAR-100 {subset} from {source}",
        split=subset,
    )


def _cifar_dataset(x, fine, coarse, fine_names, coarse_names, label_mode, *, source, split) -> ImageDataset:
    fine = np.asarray(fine, dtype=np.int64).reshape(-1)
    coarse = None if coarse is None else np.asarray(coarse, dtype=np.int64).reshape(-1)
    if len(fine) and (fine.min() < 0 or fine.max() >= len(fine_names)):
        raise DatasetError(f"{source}: fine labels must lie in 0..{len(fine_names) - 1}.")
    if coarse is not None and len(coarse) and (coarse.min() < 0 or coarse.max() >= len(coarse_names)):
        raise DatasetError(f"{source}: coarse labels must lie in 0..{len(coarse_names) - 1}.")
    if label_mode == "coarse":
        if coarse is None:
            raise DatasetError(f"{source} has no coarse labels; use label_mode='fine'.")
        labels, names = coarse, coarse_names
    else:
        labels, names = fine, fine_names
    return ImageDataset(
        images=x,
        labels=labels,
        class_names=list(names),
        coarse_labels=coarse,
        coarse_names=None if coarse is None else list(coarse_names),
        source=source,
        split=split,
    )


def _read_meta_json(folder: Path) -> tuple[list[str], list[str]]:
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            fine = [str(n) for n in meta["fine_label_names"]]
            coarse = [str(n) for n in meta["coarse_label_names"]]
            if len(fine) == 100 and len(coarse) == 20:
                return fine, coarse
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return list(CIFAR100_FINE_LABELS), list(CIFAR100_COARSE_LABELS)


def _load_npz(paths: Sequence[Path], label_mode: str, source: str) -> ImageDataset:
    xs, fines, coarses = [], [], []
    class_names: list[str] | None = None
    for p in paths:
        try:
            with np.load(p, allow_pickle=False) as npz:
                keys = set(npz.files)
                x_key = next((k for k in ("x", "images") if k in keys), None)
                y_key = next((k for k in ("fine", "y", "labels") if k in keys), None)
                if x_key is None or y_key is None:
                    raise DatasetError(
                        f"{p.name} should hold an image array 'x' and labels 'fine' (it has "
                        f"{', '.join(sorted(keys)) or 'nothing'})."
                    )
                x = npz[x_key]
                y = npz[y_key].reshape(-1)
                coarse = npz["coarse"].reshape(-1) if "coarse" in keys else None
                if "class_names" in keys:
                    class_names = [str(n) for n in npz["class_names"].tolist()]
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(f"{p.name} is not a readable .npz file ({_reason(exc)}).") from exc
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
            raise DatasetError(f"{p.name}: 'x' should be uint8 (N, H, W, 3), got {x.dtype} {x.shape}.")
        if len(y) != len(x) or (coarse is not None and len(coarse) != len(x)):
            raise DatasetError(f"{p.name}: {len(x)} images but {len(y)} labels.")
        if xs and x.shape[1:] != xs[0].shape[1:]:
            raise DatasetError(f"{p.name}: image size {x.shape[1:3]} differs from {xs[0].shape[1:3]}.")
        xs.append(x)
        fines.append(y)
        coarses.append(coarse)
    has_coarse = all(c is not None for c in coarses)
    if class_names is not None:
        fine_names, coarse_names = class_names, list(CIFAR100_COARSE_LABELS)
    else:
        fine_names, coarse_names = _read_meta_json(paths[0].parent)
    return _cifar_dataset(
        np.concatenate(xs) if len(xs) > 1 else xs[0],
        np.concatenate(fines),
        np.concatenate(coarses) if has_coarse else None,
        fine_names,
        coarse_names if has_coarse else None,
        label_mode,
        source=source,
        split=None,
    )


def _keras_cache_dirs() -> list[Path]:
    homes = []
    if os.environ.get("KERAS_HOME"):
        homes.append(Path(os.environ["KERAS_HOME"]).expanduser())
    homes += [Path.home() / ".keras", Path(tempfile.gettempdir()) / ".keras"]
    out = []
    for home in homes:
        datasets = home / "datasets"
        out += [datasets / "cifar-100-python-target" / "cifar-100-python", datasets / "cifar-100-python"]
    return out


def _cifar_from_keras(subset: str, label_mode: str) -> ImageDataset:
    from cvplay.download import CIFAR100, default_data_dir

    downloaded = default_data_dir() / CIFAR100.filename  # python -m cvplay data cifar100
    if downloaded.is_file():
        return load_cifar100(downloaded, subset=subset, label_mode=label_mode)
    for cached in _keras_cache_dirs():
        if _cifar_pickle_dir(cached) is not None:
            return load_cifar100(cached, subset=subset, label_mode=label_mode)
    try:
        import keras  # lazily: heavy, and only for this download
    except Exception as exc:
        raise DatasetError(
            "Keras is not installed, so CIFAR-100 cannot be downloaded; give a local path to "
            "cifar-100-python.tar.gz (or its extracted folder) instead."
        ) from exc
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar100.load_data(label_mode="fine")
        (_, c_train), (_, c_test) = keras.datasets.cifar100.load_data(label_mode="coarse")
    except Exception as exc:
        raise DatasetError(
            "Could not download CIFAR-100 with Keras (are you offline?); give a local path to "
            "cifar-100-python.tar.gz or its extracted folder instead, or set CVPLAY_CIFAR100 "
            f"({_reason(exc)})."
        ) from exc
    parts = {"train": [(x_train, y_train, c_train)], "test": [(x_test, y_test, c_test)]}
    parts["all"] = parts["train"] + parts["test"]
    chosen = parts[subset]
    return _cifar_dataset(
        np.concatenate([np.asarray(p[0], dtype=np.uint8) for p in chosen]),
        np.concatenate([np.asarray(p[1]).reshape(-1) for p in chosen]),
        np.concatenate([np.asarray(p[2]).reshape(-1) for p in chosen]),
        list(CIFAR100_FINE_LABELS),
        list(CIFAR100_COARSE_LABELS),
        label_mode,
        source=f"CIFAR-100 {subset} from Keras",
        split=subset,
    )


def load_cifar100(
    source: str | Path | None = None,
    *,
    subset: str = "train",
    label_mode: str = "fine",
) -> ImageDataset:
    """CIFAR-100 as an in-memory dataset of (N, 32, 32, 3) uint8 RGB images.

    ``source``: the official ``cifar-100-python.tar.gz``, its extracted folder, an ``.npz`` with
    ``x``/``fine``/``coarse`` (or a folder of such parts, with an optional ``meta.json``), or
    ``None``/``"keras"`` for Keras' download (a cached copy is read without importing Keras).
    ``subset`` picks the official split (``"train"``, ``"test"`` or ``"all"``); npz files have no
    official split and always give all their images (``split`` is then None).
    ``label_mode`` ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses) sets ``labels``;
    ``coarse_labels`` are kept either way when the source has them.
    """
    if subset not in ("train", "test", "all"):
        raise ValueError(f"subset must be 'train', 'test' or 'all', got {subset!r}")
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}")
    if source is None or (isinstance(source, str) and source.strip().lower() in _KERAS_NAMES):
        return _cifar_from_keras(subset, label_mode)
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"No CIFAR-100 data at {path}: the path does not exist.")
    wanted = ["meta"] + _wanted_parts(subset)
    if path.is_file():
        name = path.name.lower()
        if name.endswith(".npz"):
            return _load_npz([path], label_mode, source=f"CIFAR-100 npz {path}")
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            return _from_official(_read_tar_parts(path, wanted), subset, label_mode, str(path))
        raise DatasetError(
            f"{path.name} is not a CIFAR-100 source: give cifar-100-python.tar.gz, its extracted "
            "folder or an .npz file."
        )
    folder = _cifar_pickle_dir(path)
    if folder is not None:
        read: dict[str, bytes] = {}
        for part in wanted:
            file = folder / part
            if not file.is_file():
                raise DatasetError(f"{folder} has no '{part}' file, so the {subset} set cannot be read.")
            if file.stat().st_size > _MAX_PICKLE_BYTES:
                raise DatasetError(f"{file} is too large for CIFAR-100.")
            read[part] = file.read_bytes()
        return _from_official(read, subset, label_mode, str(folder))
    parts = _npz_parts(path)
    if parts:
        return _load_npz(parts, label_mode, source=f"CIFAR-100 npz parts in {path}")
    raise DatasetError(
        f"{path} holds no CIFAR-100 data: expected the 'meta', 'train' and 'test' pickles, "
        "cifar-100-python.tar.gz or .npz files."
    )


# --------------------------------------------------------------------------------------------
# Where local data lives
# --------------------------------------------------------------------------------------------


def shared_dir() -> Path | None:
    """``$CVPLAY_SHARED`` if set, else ``../shared`` beside the checkout; None when absent."""
    env = os.environ.get("CVPLAY_SHARED")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    import cvplay

    p = Path(cvplay.__file__).resolve().parents[2] / "shared"
    return p if p.is_dir() else None


def cifar100_test_source() -> Path | None:
    """A local CIFAR-100 source to evaluate on, or None.

    In order: ``$CVPLAY_CIFAR100``; the archive ``python -m cvplay data cifar100`` downloads
    (``$CVPLAY_DATA`` or ``~/.cvplay/data``); Keras' cache (``~/.keras/datasets/...``, official test set);
    in development the ``../shared/data/cifar100`` pool (no official split: the pool excludes the
    held-back test images, so results on it are not official test figures).
    """
    env = os.environ.get("CVPLAY_CIFAR100")
    if env and Path(env).expanduser().exists():
        return Path(env).expanduser()
    from cvplay.download import CIFAR100, default_data_dir

    downloaded = default_data_dir() / CIFAR100.filename
    if downloaded.is_file():
        return downloaded
    for cached in _keras_cache_dirs():
        if _cifar_pickle_dir(cached) is not None:
            return cached
        archive = cached.parent / "cifar-100-python.tar.gz"
        if archive.is_file():
            return archive
    shared = shared_dir()
    if shared is not None:
        pool = shared / "data" / "cifar100"
        if pool.is_dir() and _npz_parts(pool):
            return pool
    return None
