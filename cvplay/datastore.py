"""Datasets collected in the app: a folder of class folders on disk, under the user's data folder.

A collected dataset is plain files: ``<datasets dir>/<dataset>/<class>/<photo>.jpg``. Every
photo is written at once (atomically: a temporary file, then a rename), so a page refresh, a
closed tab or a server restart loses nothing, and the folder trains as it is
(``python -m cvplay train --data <datasets dir>/<dataset>``).

The datasets folder is ``$CVPLAY_DATASETS`` when set, else ``datasets`` beside the user models
folder (``~/.cvplay/datasets`` next to ``~/.cvplay/models``; with ``CVPLAY_MODELS=/x/models``
it is ``/x/datasets``).

Every photo added is decoded with :func:`cvplay.images.decode_image` (so a corrupt or huge file
is refused with its one-sentence reason), turned upright, shrunk to at most
:attr:`Limits.max_side` pixels and re-encoded as JPEG: what is stored is always a small, clean
image. :class:`Limits` caps the classes, photos per class and total bytes of one dataset, with
messages that say what to do. A ``.zip`` goes out with :meth:`CollectedDataset.to_zip_bytes`
and comes back with :meth:`DatasetStore.import_zip`, through
:func:`cvplay.datasets.extract_zip_safely` (no path traversal, links or zip bombs), each photo
re-checked as above.

No Streamlit or TensorFlow here.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

ENV_DATASETS = "CVPLAY_DATASETS"
JPEG_QUALITY = 90
PHOTO_SUFFIX = ".jpg"
#: Fewest photos per class the trainer accepts (one for training, one for validation) ...
MIN_PHOTOS_TO_TRAIN = 2
#: ... and how many a useful first model wants.
RECOMMENDED_PHOTOS = 10
_NAME = re.compile(r"^[\w][\w .+()-]*$", re.UNICODE)
_MAX_NAME = 40
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class DataStoreError(ValueError):
    """A collected-dataset operation cannot be done; the message is one sentence for a person."""


@dataclass(frozen=True)
class Limits:
    """What one collected dataset may hold."""

    max_classes: int = 20
    max_photos_per_class: int = 300
    max_total_bytes: int = 200 * 1024 * 1024
    #: Longer side of a stored photo, in pixels (larger photos are shrunk, never enlarged).
    max_side: int = 640


DEFAULT_LIMITS = Limits()


def datasets_dir() -> Path:
    """Where collected datasets live: ``$CVPLAY_DATASETS``, else ``datasets`` beside the user models folder."""
    configured = os.environ.get(ENV_DATASETS)
    if configured:
        return Path(configured).expanduser()
    from cvplay.registry import user_models_dir

    return user_models_dir().parent / "datasets"


def clean_name(text: str, what: str = "name") -> str:
    """``text`` stripped, if it is usable as a folder name; else :class:`DataStoreError`.

    Letters (any script), digits, spaces and ``_ - . + ( )``; it must start with a letter, a digit
    or ``_``, and hold at most 40 characters.
    """
    name = " ".join(str(text or "").split())
    if not name:
        raise DataStoreError(f"Give the {what} first.")
    if len(name) > _MAX_NAME:
        raise DataStoreError(f"The {what} {name[:20]!r}... is too long: at most {_MAX_NAME} characters.")
    if not _NAME.match(name):
        raise DataStoreError(
            f"The {what} {name!r} cannot be a folder name: use letters, digits, spaces and _ - . + ( ), "
            "starting with a letter or a digit."
        )
    return name


def _lock_for(path: Path) -> threading.Lock:
    key = str(path.resolve())
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def encode_photo(pixels: np.ndarray, max_side: int = DEFAULT_LIMITS.max_side) -> bytes:
    """An RGB uint8 image as JPEG bytes, shrunk so that its longer side is at most ``max_side``."""
    from PIL import Image

    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise DataStoreError(f"Expected an RGB image (H, W, 3) of uint8, got {pixels.shape} {pixels.dtype}.")
    image = Image.fromarray(pixels)
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _atomic_write(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    with open(temporary, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class CollectedDataset:
    """One dataset folder: class folders of JPEG photos."""

    def __init__(self, root: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS):
        self.root = Path(root)
        self.limits = limits

    @property
    def name(self) -> str:
        return self.root.name

    def __repr__(self) -> str:
        return f"CollectedDataset({str(self.root)!r})"

    # --- classes

    def classes(self) -> list[str]:
        """Class names (the sub-folders), sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _class_dir(self, class_name: str) -> Path:
        name = clean_name(class_name, "class name")
        folder = self.root / name
        if not folder.is_dir():
            raise DataStoreError(f"There is no class {name!r} in {self.name}.")
        return folder

    def add_class(self, class_name: str) -> str:
        name = clean_name(class_name, "class name")
        existing = self.classes()
        if any(c.casefold() == name.casefold() for c in existing):
            raise DataStoreError(f"{self.name} already has a class {name!r}.")
        if len(existing) >= self.limits.max_classes:
            raise DataStoreError(f"{self.name} already has {len(existing)} classes, the most a collected dataset "
                                 f"may hold; delete one first.")
        (self.root / name).mkdir(parents=True)
        return name

    def rename_class(self, old: str, new: str) -> str:
        folder = self._class_dir(old)
        name = clean_name(new, "class name")
        if name == folder.name:
            return name
        if any(c.casefold() == name.casefold() for c in self.classes() if c != folder.name):
            raise DataStoreError(f"{self.name} already has a class {name!r}.")
        folder.rename(self.root / name)
        return name

    def delete_class(self, class_name: str) -> int:
        """Remove a class and its photos; returns how many photos went with it."""
        folder = self._class_dir(class_name)
        count = len(self.photos(folder.name))
        shutil.rmtree(folder)
        return count

    # --- photos

    def photos(self, class_name: str) -> list[Path]:
        """The class's photos, oldest first (file names start with the time they were taken)."""
        folder = self._class_dir(class_name)
        return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                      and p.suffix.lower() == PHOTO_SUFFIX)

    def counts(self) -> dict[str, int]:
        return {name: len(self.photos(name)) for name in self.classes()}

    def total_bytes(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def add_photo(self, class_name: str, image: bytes | bytearray | memoryview | np.ndarray) -> Path:
        """Store one photo (an encoded image file's bytes, or an RGB uint8 array) in a class.

        Raises :class:`DataStoreError` (an undecodable file, a full class or dataset) and stores
        nothing then.
        """
        folder = self._class_dir(class_name)
        if isinstance(image, np.ndarray):
            pixels = image
        else:
            from cvplay.images import ImageError, decode_image

            try:
                pixels = decode_image(bytes(image))
            except ImageError as error:
                raise DataStoreError(str(error)) from None
        content = encode_photo(pixels, self.limits.max_side)
        with _lock_for(self.root):
            count = len(self.photos(folder.name))
            if count >= self.limits.max_photos_per_class:
                raise DataStoreError(f"{folder.name} already holds {count} photos, the most one class may hold; "
                                     "delete some first.")
            total = self.total_bytes()
            if total + len(content) > self.limits.max_total_bytes:
                from cvplay.datasets import human_size

                raise DataStoreError(f"{self.name} would grow past {human_size(self.limits.max_total_bytes)} "
                                     f"(it holds {human_size(total)}); delete photos first.")
            path = folder / f"{time.time_ns():020d}-{secrets.token_hex(3)}{PHOTO_SUFFIX}"
            _atomic_write(path, content)
        return path

    def add_photos(self, class_name: str, items: Iterable[tuple[str, bytes]]) -> tuple[list[Path], list[str]]:
        """Store several ``(file name, bytes)``; returns the paths stored and one message per
        file refused. Stops at the first limit reached (the rest would be refused too)."""
        added: list[Path] = []
        problems: list[str] = []
        for file_name, content in items:
            try:
                added.append(self.add_photo(class_name, content))
            except DataStoreError as error:
                problems.append(f"{file_name}: {error}")
                if "the most" in str(error) or "would grow past" in str(error):
                    break
        return added, problems

    def delete_photo(self, class_name: str, photo_name: str) -> None:
        folder = self._class_dir(class_name)
        name = Path(photo_name).name
        path = folder / name
        if name != photo_name or not name.endswith(PHOTO_SUFFIX) or not path.is_file():
            raise DataStoreError(f"There is no photo {photo_name!r} in {folder.name}.")
        path.unlink()

    # --- training and export

    def problems_for_training(self) -> list[str]:
        """Why this dataset cannot be trained on yet (empty when it can)."""
        counts = self.counts()
        problems = []
        if len(counts) < 2:
            problems.append(f"Add at least 2 classes (there {'is' if len(counts) == 1 else 'are'} {len(counts)}).")
        short = [name for name, n in counts.items() if n < MIN_PHOTOS_TO_TRAIN]
        if short:
            problems.append(f"Add at least {MIN_PHOTOS_TO_TRAIN} photos to {', '.join(short)}.")
        return problems

    def advice(self) -> list[str]:
        """Hints for a better model that do not block training."""
        counts = self.counts()
        few = [name for name, n in counts.items() if MIN_PHOTOS_TO_TRAIN <= n < RECOMMENDED_PHOTOS]
        hints = []
        if few:
            hints.append(f"{', '.join(few)} {'has' if len(few) == 1 else 'have'} fewer than {RECOMMENDED_PHOTOS} photos: "
                         "more photos, from several angles and distances, make a better model.")
        if counts and max(counts.values()) > 3 * max(1, min(counts.values())):
            hints.append("The classes are unbalanced; the trainer weighs them, but similar counts work best.")
        return hints

    def to_zip_bytes(self) -> bytes:
        """The dataset as a ``.zip`` holding ``<dataset>/<class>/<photo>.jpg``."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:  # JPEGs do not compress
            for name in self.classes():
                archive.writestr(zipfile.ZipInfo(f"{self.name}/{name}/"), b"")
                for photo in self.photos(name):
                    archive.write(photo, f"{self.name}/{name}/{photo.name}")
        return buffer.getvalue()


class DatasetStore:
    """The collected datasets under one folder (default: :func:`datasets_dir`)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, limits: Limits = DEFAULT_LIMITS):
        self.root = Path(root) if root is not None else datasets_dir()
        self.limits = limits

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def open(self, name: str) -> CollectedDataset:
        clean = clean_name(name, "dataset name")
        folder = self.root / clean
        if not folder.is_dir():
            raise DataStoreError(f"There is no collected dataset {clean!r}.")
        return CollectedDataset(folder, self.limits)

    def create(self, name: str, classes: Iterable[str] = ()) -> CollectedDataset:
        clean = clean_name(name, "dataset name")
        if any(n.casefold() == clean.casefold() for n in self.names()):
            raise DataStoreError(f"A dataset named {clean!r} exists already: open it, or choose another name.")
        wanted = [clean_name(c, "class name") for c in classes]
        folder = self.root / clean
        folder.mkdir(parents=True)
        dataset = CollectedDataset(folder, self.limits)
        try:
            for class_name in wanted:
                dataset.add_class(class_name)
        except DataStoreError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return dataset

    def delete(self, name: str) -> None:
        shutil.rmtree(self.open(name).root)

    def free_name(self, name: str) -> str:
        """``name``, or ``name-2``, ``name-3``... whichever is not taken."""
        base = clean_name(name, "dataset name")[: _MAX_NAME - 4]
        taken = {n.casefold() for n in self.names()}
        candidate, number = base, 2
        while candidate.casefold() in taken:
            candidate, number = f"{base}-{number}", number + 1
        return candidate

    def import_zip(self, zip_file: str | os.PathLike[str] | bytes, name: str | None = None
                   ) -> tuple[CollectedDataset, list[str]]:
        """A new dataset from a ``.zip`` of class folders (one this module wrote, or any other).

        The archive is unpacked by :func:`cvplay.datasets.extract_zip_safely` into a temporary
        folder, then every image is stored as :meth:`CollectedDataset.add_photo` does. Returns the
        dataset and one message per file left out. Nothing is kept when the zip cannot be used.
        """
        from cvplay.datasets import DatasetError, IMAGE_EXTENSIONS, extract_zip_safely

        with tempfile.TemporaryDirectory(prefix="cvplay-import-") as scratch:
            scratch_path = Path(scratch)
            if isinstance(zip_file, (bytes, bytearray)):
                archive_path = scratch_path / "upload.zip"
                archive_path.write_bytes(bytes(zip_file))
                default_name = "imported"
            else:
                archive_path = Path(zip_file)
                default_name = archive_path.stem
            limit = self.limits.max_total_bytes + 16 * 1024 * 1024
            try:
                class_root = extract_zip_safely(archive_path, scratch_path / "files", max_total_bytes=limit,
                                                max_files=self.limits.max_classes * self.limits.max_photos_per_class + 100)
            except DatasetError as error:
                raise DataStoreError(str(error)) from None
            class_dirs = sorted(p for p in class_root.iterdir() if p.is_dir() and not p.name.startswith("."))
            if not class_dirs:
                raise DataStoreError("The zip file holds no class folders: put each class's photos in a folder "
                                     "named after the class.")
            if len(class_dirs) > self.limits.max_classes:
                raise DataStoreError(f"The zip file holds {len(class_dirs)} class folders; a collected dataset may "
                                     f"hold {self.limits.max_classes}.")
            wanted = name or (class_root.name if class_root != scratch_path / "files" else default_name)
            # A file name such as "My photos (2).zip" becomes a usable folder name.
            wanted = re.sub(r"[^\w .+()-]+", "-", wanted).lstrip(" .+()-").rstrip(" .-")[:_MAX_NAME - 4] or "imported"
            dataset = self.create(self.free_name(wanted))
            problems: list[str] = []
            try:
                for class_dir in class_dirs:
                    try:
                        class_name = dataset.add_class(class_dir.name)
                    except DataStoreError as error:
                        problems.append(f"{class_dir.name}/: {error}")
                        continue
                    files = sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
                    items = []
                    for path in files:
                        if path.suffix.lower() not in IMAGE_EXTENSIONS:
                            problems.append(f"{class_dir.name}/{path.name}: not an image file; left out.")
                            continue
                        items.append((f"{class_dir.name}/{path.name}", path.read_bytes()))
                    _, refused = dataset.add_photos(class_name, items)
                    problems += refused
            except BaseException:
                shutil.rmtree(dataset.root, ignore_errors=True)
                raise
            if not any(dataset.counts().values()):
                shutil.rmtree(dataset.root, ignore_errors=True)
                raise DataStoreError("The zip file holds no usable photos"
                                     + (f" ({problems[0]})" if problems else "") + ".")
            return dataset, problems
