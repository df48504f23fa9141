"""Tests for cvplay.datasets on tiny files the tests write themselves (plus ../shared when present)."""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvplay import datasets as ds
from cvplay.datasets import (
    CIFAR100_COARSE_LABELS,
    CIFAR100_FINE_LABELS,
    CIFAR100_FINE_TO_COARSE,
    DatasetError,
    ImageDataset,
    class_weights,
    extract_zip_safely,
    load_cifar100,
    load_dataset,
    load_image_folder,
    stratified_split,
    validate_for_training,
)

SHARED = ds.shared_dir()
SHARED_CIFAR = SHARED / "data" / "cifar100" if SHARED is not None else None


# ------------------------------------------------------------------------------------------
# Helpers that write data in the official formats
# ------------------------------------------------------------------------------------------


def _cifar_images(n: int, offset: int) -> np.ndarray:
    """(n, 32, 32, 3) uint8 with a distinct value per image, row, column and channel."""
    rng = np.random.default_rng(offset)
    return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _official_part(x: np.ndarray, fine: list[int], coarse: list[int], name: bytes) -> dict:
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)  # channel-first rows, as published
    return {
        b"filenames": [b"img_%d.png" % i for i in range(len(x))],
        b"batch_label": name,
        b"fine_labels": list(fine),
        b"coarse_labels": list(coarse),
        b"data": rows,
    }


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """An official-format ``cifar-100-python`` folder (protocol-2 pickles, bytes keys) and its .tar.gz."""
    base = tmp_path_factory.mktemp("cifar")
    folder = base / "cifar-100-python"
    folder.mkdir()
    x_train, x_test = _cifar_images(6, 1), _cifar_images(4, 2)
    fine_train, fine_test = [0, 1, 2, 99, 0, 1], [3, 4, 5, 99]
    coarse_train = [CIFAR100_FINE_TO_COARSE[f] for f in fine_train]
    coarse_test = [CIFAR100_FINE_TO_COARSE[f] for f in fine_test]
    meta = {
        b"fine_label_names": [n.encode() for n in CIFAR100_FINE_LABELS],
        b"coarse_label_names": [n.encode() for n in CIFAR100_COARSE_LABELS],
    }
    parts = {
        "train": _official_part(x_train, fine_train, coarse_train, b"training batch 1 of 1"),
        "test": _official_part(x_test, fine_test, coarse_test, b"testing batch 1 of 1"),
        "meta": meta,
    }
    for name, obj in parts.items():
        blob = pickle.dumps(obj, protocol=2)
        if name == "train":  # the published file (NumPy 1, Python 2) names the old module
            blob = blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
            assert b"numpy.core.multiarray\n_reconstruct" in blob
        (folder / name).write_bytes(blob)
    (folder / "file.txt~").write_text("official archives carry this stray file\n")
    archive = base / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-100-python")
    return types.SimpleNamespace(
        folder=folder, archive=archive, x_train=x_train, x_test=x_test,
        fine_train=fine_train, fine_test=fine_test, coarse_train=coarse_train,
    )


def _write_image(path: Path, size=(8, 6), mode="RGB", color=(200, 30, 10), fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    value = color if mode == "RGB" else color[0]
    Image.new(mode, size, value).save(path, format=fmt)
    return path


def _two_classes(root: Path, n: int = 2) -> Path:
    for cls in ("cat", "dog"):
        for i in range(n):
            _write_image(root / cls / f"{i}.png")
    return root


def _zip(path: Path, entries: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def _png_bytes(size=(4, 4)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------
# Label constants
# ------------------------------------------------------------------------------------------


def test_cifar100_constants_are_consistent():
    assert len(CIFAR100_FINE_LABELS) == 100 and len(set(CIFAR100_FINE_LABELS)) == 100
    assert len(CIFAR100_COARSE_LABELS) == 20
    assert len(CIFAR100_FINE_TO_COARSE) == 100
    assert np.bincount(CIFAR100_FINE_TO_COARSE).tolist() == [5] * 20
    assert CIFAR100_FINE_LABELS[:3] == ("apple", "aquarium_fish", "baby")
    assert CIFAR100_COARSE_LABELS[CIFAR100_FINE_TO_COARSE[CIFAR100_FINE_LABELS.index("whale")]] == "aquatic_mammals"


@pytest.mark.skipif(SHARED_CIFAR is None or not (SHARED_CIFAR / "meta.json").is_file(),
                    reason="../shared/data/cifar100/meta.json is absent (it lives beside the checkout in development only)")
def test_cifar100_constants_match_shared_meta():
    meta = json.loads((SHARED_CIFAR / "meta.json").read_text())
    assert list(CIFAR100_FINE_LABELS) == meta["fine_label_names"]
    assert list(CIFAR100_COARSE_LABELS) == meta["coarse_label_names"]
    assert list(CIFAR100_FINE_TO_COARSE) == meta["fine_to_coarse"]


# ------------------------------------------------------------------------------------------
# CIFAR-100 readers
# ------------------------------------------------------------------------------------------


def test_official_pickle_folder(official):
    train = load_cifar100(official.folder, subset="train")
    assert train.images.shape == (6, 32, 32, 3) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.images, official.x_train)  # channel-first rows -> HWC
    assert train.labels.tolist() == official.fine_train
    assert train.coarse_labels.tolist() == official.coarse_train
    assert train.class_names == list(CIFAR100_FINE_LABELS)
    assert train.coarse_names == list(CIFAR100_COARSE_LABELS)
    assert train.split == "train" and len(train) == 6

    test = load_cifar100(official.folder.parent, subset="test")  # the parent folder works too
    np.testing.assert_array_equal(test.images, official.x_test)
    assert test.labels.tolist() == official.fine_test

    both = load_cifar100(official.folder, subset="all", label_mode="coarse")
    assert len(both) == 10 and both.class_names == list(CIFAR100_COARSE_LABELS)
    assert both.labels.tolist()[:6] == official.coarse_train
    np.testing.assert_array_equal(both.load(7), official.x_test[1])


def test_official_tar_gz(official):
    from_tar = load_cifar100(official.archive, subset="train")
    from_dir = load_cifar100(official.folder, subset="train")
    np.testing.assert_array_equal(from_tar.images, from_dir.images)
    assert from_tar.labels.tolist() == from_dir.labels.tolist()
    via_dispatch = load_dataset(official.archive, subset="test")
    assert len(via_dispatch) == 4 and via_dispatch.split == "test"
    assert len(load_dataset(official.folder)) == 6


def test_tar_without_cifar_parts_is_refused(tmp_path):
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(DatasetError, match="not the CIFAR-100 archive"):
        load_cifar100(other)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(official, tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "meta").write_bytes((official.folder / "meta").read_bytes())
    marker = tmp_path / "pwned"
    (folder / "train").write_bytes(pickle.dumps({b"data": _Evil(marker)}, protocol=2))
    with pytest.raises(DatasetError, match="Refused to read .*system"):
        load_cifar100(folder, subset="train")
    assert not marker.exists()
    # A global hidden in the meta file is refused the same way.
    (folder / "meta").write_bytes(pickle.dumps(_Evil(marker), protocol=0))
    (folder / "train").write_bytes((official.folder / "train").read_bytes())
    with pytest.raises(DatasetError, match="Refused"):
        load_dataset(folder)
    assert not marker.exists()


def test_npz_file_and_parts(tmp_path):
    x = _cifar_images(5, 3)
    np.savez(tmp_path / "pool-0.npz", x=x, fine=np.array([0, 1, 2, 3, 4], np.uint8),
             coarse=np.array([CIFAR100_FINE_TO_COARSE[i] for i in range(5)], np.uint8))
    np.savez(tmp_path / "pool-1.npz", x=x[:2], fine=np.array([5, 6], np.uint8),
             coarse=np.array([CIFAR100_FINE_TO_COARSE[5], CIFAR100_FINE_TO_COARSE[6]], np.uint8))
    one = load_cifar100(tmp_path / "pool-0.npz")
    assert one.images.shape == (5, 32, 32, 3) and one.labels.tolist() == [0, 1, 2, 3, 4]
    assert one.split is None and one.class_names[0] == "apple"
    assert load_dataset(tmp_path / "pool-1.npz", label_mode="coarse").class_names == list(CIFAR100_COARSE_LABELS)

    names = [f"fine{i}" for i in range(100)]
    (tmp_path / "meta.json").write_text(json.dumps({
        "fine_label_names": names, "coarse_label_names": [f"c{i}" for i in range(20)]}))
    parts = load_dataset(tmp_path)
    assert len(parts) == 7 and parts.labels.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert parts.class_names == names

    np.savez(tmp_path / "bad.npz", pixels=x)
    with pytest.raises(DatasetError, match="'x'"):
        load_cifar100(tmp_path / "bad.npz")


def test_keras_download_offline_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path))
    monkeypatch.setattr(ds.tempfile, "gettempdir", lambda: str(tmp_path))

    def offline(label_mode="fine"):
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/: [Errno -3] name resolution")

    fake = types.ModuleType("keras")
    fake.datasets = types.SimpleNamespace(cifar100=types.SimpleNamespace(load_data=offline))
    monkeypatch.setitem(sys.modules, "keras", fake)
    with pytest.raises(DatasetError, match="local path"):
        load_cifar100(None)
    with pytest.raises(DatasetError, match="offline"):
        load_dataset("keras")


def test_keras_cache_is_read_without_keras(official, tmp_path, monkeypatch):
    cache = tmp_path / "keras-home" / "datasets" / "cifar-100-python-target"
    cache.mkdir(parents=True)
    os.symlink(official.folder, cache / "cifar-100-python")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setitem(sys.modules, "keras", None)  # importing keras would fail
    monkeypatch.delenv("CVPLAY_CIFAR100", raising=False)
    assert len(load_cifar100(subset="test")) == 4
    assert ds.cifar100_test_source() == cache / "cifar-100-python"
    monkeypatch.setenv("CVPLAY_CIFAR100", str(official.archive))
    assert ds.cifar100_test_source() == official.archive


# ------------------------------------------------------------------------------------------
# Image folders
# ------------------------------------------------------------------------------------------


@pytest.fixture
def messy_folder(tmp_path):
    root = tmp_path / "pets"
    _write_image(root / "cat" / "a.png", size=(10, 8))
    _write_image(root / "cat" / "B.JPG", size=(12, 9), fmt="JPEG")
    _write_image(root / "cat" / "nested" / "c.jpeg", size=(10, 8), fmt="JPEG")
    _write_image(root / "dog" / "gray.png", size=(5, 5), mode="L")
    _write_image(root / "dog" / "d.bmp", size=(10, 8))
    _write_image(root / "dog" / "e.webp", size=(10, 8))
    (root / "dog" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff this is not really a jpeg")
    (root / "dog" / "empty.png").write_bytes(b"")
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(root / "dog" / "cut.jpg", format="JPEG")
    whole = (root / "dog" / "cut.jpg").read_bytes()
    (root / "dog" / "cut.jpg").write_bytes(whole[: len(whole) * 3 // 4])  # pixels cut short
    with Image.open(root / "dog" / "cut.jpg") as im:
        im.verify()  # Pillow's verify() does not notice; the loader must
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".DS_Store").write_bytes(b"\0\0")
    (root / ".hidden").mkdir()
    _write_image(root / ".hidden" / "x.png")
    return root


def test_image_folder_with_odd_files(messy_folder):
    data = load_dataset(messy_folder)
    assert data.class_names == ["cat", "dog"]
    assert data.class_counts().tolist() == [3, 3]
    assert not data.in_memory and all(isinstance(p, Path) for p in data.images)
    skipped = dict(data.skipped)
    assert set(skipped) == {os.path.join("dog", n) for n in ("corrupt.jpg", "empty.png", "cut.jpg")}
    assert "not a readable image" in skipped[os.path.join("dog", "corrupt.jpg")]
    assert "damaged" in skipped[os.path.join("dog", "cut.jpg")] or "truncated" in skipped[os.path.join("dog", "cut.jpg")].lower()
    assert skipped[os.path.join("dog", "empty.png")] == "empty file"
    assert data.ignored == [os.path.join("dog", "notes.txt")]
    assert data.image_modes == {"RGB": 5, "L": 1}
    warnings = validate_for_training(data)
    text = " ".join(warnings)
    assert "3 image file(s) could not be read" in text
    assert "different sizes" in text and "colour modes" in text and "ignored" in text

    full = load_image_folder(messy_folder, verify="full")
    assert len(full) == 6 and dict(full.skipped).keys() == skipped.keys()

    limited = load_image_folder(messy_folder, max_pixels=80, max_bytes=10_000, min_images_per_class=1)
    assert limited.class_counts().tolist() == [2, 3]  # B.JPG (12x9) has too many pixels
    assert "too many pixels" in dict(limited.skipped)[os.path.join("cat", "B.JPG")]
    assert limited.read_options == {"max_bytes": 10_000, "max_pixels": 80}


def test_image_folder_decodes_lazily_to_rgb(messy_folder):
    data = load_image_folder(messy_folder)
    images = data.load_batch(range(len(data)))
    assert all(im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 for im in images)
    gray = data.images.index(messy_folder / "dog" / "gray.png")
    assert images[gray].shape == (5, 5, 3)
    small = data.subset([gray])
    assert len(small) == 1 and small.labels.tolist() == [1] and small.load(0).shape == (5, 5, 3)
    # A file that becomes unreadable after loading is named in the error.
    broken = data.images.index(messy_folder / "cat" / "a.png")
    (messy_folder / "cat" / "a.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="a.png"):
        data.load(broken)


def test_max_images_per_class(messy_folder, official):
    capped = load_dataset(messy_folder, max_images_per_class=2)
    assert capped.class_counts().tolist() == [2, 2]
    cifar = load_dataset(official.folder, max_images_per_class=1)
    assert sorted(cifar.labels.tolist()) == [0, 1, 2, 99]


def test_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match="is empty"):
        load_dataset(tmp_path)


def test_images_without_class_folders(tmp_path):
    _write_image(tmp_path / "a.png")
    with pytest.raises(DatasetError, match="no class folders"):
        load_dataset(tmp_path)


def test_one_class_only(tmp_path):
    for i in range(3):
        _write_image(tmp_path / "data" / "cat" / f"{i}.png")
    with pytest.raises(DatasetError, match="at least two classes.*'cat'"):
        load_dataset(tmp_path / "data")


def test_too_few_images(tmp_path):
    _two_classes(tmp_path, n=3)
    _write_image(tmp_path / "bird" / "0.png")
    with pytest.raises(DatasetError, match=r"at least 2 images.*'bird' \(1\)"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match=r"at least 4 images"):
        load_dataset(tmp_path, min_images_per_class=4)
    assert len(load_dataset(tmp_path, min_images_per_class=1)) == 7


def test_only_unreadable_images(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "x.png").write_bytes(b"nope")
    with pytest.raises(DatasetError, match="None of the 2 image files"):
        load_dataset(tmp_path)


def test_duplicate_class_names_differing_by_case(tmp_path):
    _two_classes(tmp_path)
    _write_image(tmp_path / "Cat" / "0.png")
    _write_image(tmp_path / "Cat" / "1.png")
    if len({p.name for p in tmp_path.iterdir()}) < 3:
        pytest.skip("case-insensitive file system")
    with pytest.raises(DatasetError, match="'Cat' and 'cat'.*differ only by case"):
        load_dataset(tmp_path)


def test_missing_path_and_unknown_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DatasetError, match="Cannot read data.csv"):
        load_dataset(tmp_path / "data.csv")


def test_imbalance_warning_and_in_memory_subset():
    x = np.zeros((12, 4, 4, 3), np.uint8)
    labels = np.array([0] * 10 + [1] * 2)
    data = ImageDataset(images=x, labels=labels, class_names=["a", "b"])
    assert any("imbalanced" in w for w in validate_for_training(data))
    part = data.subset([0, 11])
    assert part.images.shape == (2, 4, 4, 3) and part.labels.tolist() == [0, 1]
    with pytest.raises(DatasetError, match="labels"):
        ImageDataset(images=x, labels=labels[:3], class_names=["a", "b"])


# ------------------------------------------------------------------------------------------
# Zip extraction
# ------------------------------------------------------------------------------------------


def test_zip_plain_and_nested_root(tmp_path):
    png = _png_bytes()
    flat = _zip(tmp_path / "flat.zip", {"cat/0.png": png, "cat/1.png": png, "dog/0.png": png, "dog/1.png": png})
    assert extract_zip_safely(flat, tmp_path / "out1") == (tmp_path / "out1").resolve()

    nested = _zip(tmp_path / "nested.zip", {
        "pets/": b"", "pets/cat/0.png": png, "pets/cat/1.png": png, "pets/dog/0.png": png,
        "pets/dog/1.png": png, "__MACOSX/pets/._cat": b"junk", "pets/.DS_Store": b"junk",
        "pets/dog/._0.png": b"junk",
    })
    root = extract_zip_safely(nested, tmp_path / "out2")
    assert root == (tmp_path / "out2" / "pets").resolve()
    assert not (tmp_path / "out2" / "__MACOSX").exists()
    assert not (root / ".DS_Store").exists() and not (root / "dog" / "._0.png").exists()

    data = load_dataset(nested)
    assert data.class_names == ["cat", "dog"] and len(data) == 4
    assert data.images[0].is_file()  # the extraction folder lives as long as the dataset


@pytest.mark.parametrize("name, message", [
    ("../evil.txt", "leaves its folder"),
    ("cat/../../evil.txt", "leaves its folder"),
    ("/tmp/evil.txt", "absolute path"),
    ("C:/evil.txt", "absolute path"),
    ("..\\evil.txt", "leaves its folder"),
])
def test_zip_path_traversal_is_refused(tmp_path, name, message):
    bad = _zip(tmp_path / "bad.zip", {"cat/0.png": _png_bytes(), name: b"owned"})
    dest = tmp_path / "a" / "b"
    with pytest.raises(DatasetError, match=message):
        extract_zip_safely(bad, dest)
    assert not (tmp_path / "a" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not dest.exists()  # refused before anything was written


def test_zip_symlink_is_refused(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cat/0.png", _png_bytes())
        info = zipfile.ZipInfo("cat/link.png")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DatasetError, match="symbolic link"):
        extract_zip_safely(path, tmp_path / "out")


def test_zip_caps(tmp_path):
    png = _png_bytes()
    many = _zip(tmp_path / "many.zip", {f"c{i % 2}/{i}.png": png for i in range(5)})
    with pytest.raises(DatasetError, match="more than 3 files"):
        extract_zip_safely(many, tmp_path / "o1", max_files=3)
    assert extract_zip_safely(many, tmp_path / "o2", max_files=5).is_dir()

    big = _zip(tmp_path / "big.zip", {"a/0.bin": os.urandom(3000), "b/0.bin": os.urandom(3000)},
               compression=zipfile.ZIP_STORED)
    with pytest.raises(DatasetError, match="unpacks to more than 5.0 KiB"):
        extract_zip_safely(big, tmp_path / "o3", max_total_bytes=5 * 1024)

    bomb = _zip(tmp_path / "bomb.zip", {"a/zeros.png": bytes(4 * 1024 * 1024), "b/0.png": png})
    with pytest.raises(DatasetError, match="zip bomb"):
        extract_zip_safely(bomb, tmp_path / "o4")

    (tmp_path / "junk.zip").write_bytes(b"PK not really")
    with pytest.raises(DatasetError, match="not a readable zip"):
        load_dataset(tmp_path / "junk.zip")


# ------------------------------------------------------------------------------------------
# Splits and weights
# ------------------------------------------------------------------------------------------


def test_stratified_split_is_deterministic_and_stratified():
    labels = np.repeat(np.arange(5), [40, 20, 10, 5, 3])
    train, val = stratified_split(labels, (0.8, 0.2), seed=7)
    again = stratified_split(labels, (0.8, 0.2), seed=7)
    assert all(np.array_equal(a, b) for a, b in zip((train, val), again))
    other = stratified_split(labels, (0.8, 0.2), seed=8)
    assert not np.array_equal(np.sort(val), np.sort(other[1]))
    assert len(np.intersect1d(train, val)) == 0
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(labels)))
    assert np.bincount(labels[val], minlength=5).tolist() == [8, 4, 2, 1, 1]
    assert train.dtype == np.int64

    parts = stratified_split(labels, (0.7, 0.15, 0.15), seed=0)
    assert sum(len(p) for p in parts) == len(labels)
    for part in parts:  # every class, even the one with 3 images, is in every part
        assert set(labels[part].tolist()) == set(range(5))
    assert np.bincount(labels[parts[0]], minlength=5)[0] == 28

    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(labels, (0.5, 0.2))


def test_class_weights_balanced():
    weights = class_weights([0, 0, 0, 1], 2)
    assert weights == pytest.approx({0: 4 / 6, 1: 2.0})
    assert class_weights([0, 1, 2], 4)[3] == 1.0
    with pytest.raises(ValueError):
        class_weights([0, 5], 2)


# ------------------------------------------------------------------------------------------
# Real data in ../shared (development machines and CI only)
# ------------------------------------------------------------------------------------------


@pytest.mark.skipif(SHARED_CIFAR is None or not (SHARED_CIFAR / "pool-0.npz").is_file(),
                    reason="../shared/data/cifar100/pool-0.npz is absent (it lives beside the checkout in development only)")
def test_shared_cifar100_pool_part():
    part = load_cifar100(SHARED_CIFAR / "pool-0.npz")
    meta = json.loads((SHARED_CIFAR / "meta.json").read_text())
    assert part.images.dtype == np.uint8 and part.images.shape[1:] == (32, 32, 3)
    assert len(part) > 10_000 and part.labels.shape == (len(part),)
    assert part.labels.min() >= 0 and part.labels.max() == 99
    assert part.class_names == meta["fine_label_names"]
    assert part.coarse_names == meta["coarse_label_names"]
    np.testing.assert_array_equal(np.asarray(meta["fine_to_coarse"])[part.labels], part.coarse_labels)
    assert ds.cifar100_test_source() is not None
