"""Collected datasets on disk (cvplay.datastore) and burst capture (cvplay.collect)."""

from __future__ import annotations

import io
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvplay.collect import BurstRecorder
from cvplay.datasets import load_image_folder
from cvplay.datastore import (CollectedDataset, DatasetStore, DataStoreError, Limits, clean_name,
                              datasets_dir)


def png_bytes(colour=(200, 30, 30), size=(48, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def frame(value: int = 100, shape=(120, 160, 3)) -> np.ndarray:
    return np.full(shape, value, dtype=np.uint8)


@pytest.fixture
def store(tmp_path) -> DatasetStore:
    return DatasetStore(tmp_path / "datasets")


def test_datasets_dir_sits_beside_the_models_folder_or_follows_its_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("CVPLAY_DATASETS", raising=False)
    monkeypatch.setenv("CVPLAY_MODELS", str(tmp_path / "home" / "models"))
    assert datasets_dir() == tmp_path / "home" / "datasets"
    monkeypatch.setenv("CVPLAY_DATASETS", str(tmp_path / "elsewhere"))
    assert datasets_dir() == tmp_path / "elsewhere"


@pytest.mark.parametrize("bad", ["", "   ", "../up", "a/b", "a\\b", ".hidden", "x" * 41, "-dash", "tab\tname?"])
def test_names_that_cannot_be_folders_are_refused(bad):
    with pytest.raises(DataStoreError):
        clean_name(bad)


def test_names_are_tidied():
    assert clean_name("  red   mug ") == "red mug"
    assert clean_name("café_2") == "café_2"


def test_add_list_delete_photos_and_classes(store):
    dataset = store.create("desk", ["mug", "pen"])
    assert store.names() == ["desk"]
    assert dataset.classes() == ["mug", "pen"]
    first = dataset.add_photo("mug", png_bytes())
    second = dataset.add_photo("mug", frame(50))
    dataset.add_photo("pen", png_bytes((20, 200, 20)))
    assert dataset.counts() == {"mug": 2, "pen": 1}
    assert dataset.photos("mug") == [first, second]  # oldest first
    stored = Image.open(first)
    assert stored.format == "JPEG" and stored.size == (48, 32)
    dataset.delete_photo("mug", first.name)
    assert dataset.counts() == {"mug": 1, "pen": 1}
    with pytest.raises(DataStoreError, match="no photo"):
        dataset.delete_photo("mug", first.name)
    with pytest.raises(DataStoreError, match="no photo"):
        dataset.delete_photo("mug", "../pen/" + dataset.photos("pen")[0].name)
    assert dataset.delete_class("pen") == 1
    assert dataset.classes() == ["mug"]
    with pytest.raises(DataStoreError, match="already has a class"):
        dataset.add_class("MUG")
    assert dataset.rename_class("mug", "cup") == "cup"
    assert dataset.counts() == {"cup": 1}
    store.delete("desk")
    assert store.names() == []


def test_large_photos_are_shrunk_and_bad_files_change_nothing(store):
    dataset = store.create("d", ["a"])
    path = dataset.add_photo("a", frame(10, (1200, 1600, 3)))
    assert max(Image.open(path).size) == 640
    for bad, reason in ((b"", "empty"), (b"not an image at all", "not"), (png_bytes()[:40], "damaged|truncated")):
        with pytest.raises(DataStoreError, match=reason):
            dataset.add_photo("a", bad)
    with pytest.raises(DataStoreError, match="no class"):
        dataset.add_photo("b", png_bytes())
    assert dataset.counts() == {"a": 1}
    assert [p.name for p in (store.root / "d" / "a").iterdir()] == [path.name]  # no leftovers


def test_limits_say_what_to_do(tmp_path):
    limits = Limits(max_classes=2, max_photos_per_class=3, max_total_bytes=10_000_000)
    store = DatasetStore(tmp_path, limits)
    dataset = store.create("d", ["a", "b"])
    with pytest.raises(DataStoreError, match="delete one first"):
        dataset.add_class("c")
    added, problems = dataset.add_photos("a", [(f"{i}.png", png_bytes()) for i in range(5)])
    assert len(added) == 3 and len(problems) == 1 and "3 photos, the most one class may hold" in problems[0]
    small = DatasetStore(tmp_path / "small", Limits(max_total_bytes=1500)).create("d", ["a"])
    small.add_photo("a", frame(0, (8, 8, 3)))
    with pytest.raises(DataStoreError, match="would grow past"):
        small.add_photo("a", (np.random.default_rng(0).integers(0, 255, (200, 200, 3))).astype(np.uint8))
    assert small.counts() == {"a": 1}


def test_training_readiness(store):
    dataset = store.create("d", ["a"])
    assert "at least 2 classes" in " ".join(dataset.problems_for_training())
    dataset.add_class("b")
    dataset.add_photo("a", png_bytes())
    assert "Add at least 2 photos to a, b" in " ".join(dataset.problems_for_training())
    for _ in range(2):
        dataset.add_photo("b", png_bytes())
    dataset.add_photo("a", png_bytes())
    assert dataset.problems_for_training() == []
    assert "fewer than 10 photos" in dataset.advice()[0]
    # The trainer's own reader takes the folder as it is.
    loaded = load_image_folder(dataset.root)
    assert loaded.class_names == ["a", "b"] and len(loaded) == 4


def test_zip_round_trip(store):
    dataset = store.create("desk", ["mug", "pen"])
    for value in (10, 20, 30):
        dataset.add_photo("mug", frame(value))
    dataset.add_photo("pen", frame(200))
    content = dataset.to_zip_bytes()
    names = zipfile.ZipFile(io.BytesIO(content)).namelist()
    assert "desk/mug/" in names and sum(n.startswith("desk/pen/") and n.endswith(".jpg") for n in names) == 1
    reopened, problems = store.import_zip(content)
    assert problems == []
    assert reopened.name == "desk-2"  # the original is still there
    assert reopened.counts() == {"mug": 3, "pen": 1}
    assert sorted(p.read_bytes() for p in reopened.photos("mug")) == sorted(p.read_bytes() for p in dataset.photos("mug"))


def test_import_of_a_foreign_zip_keeps_good_photos_and_says_what_was_left_out(store, tmp_path):
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("pets/cat/1.png", png_bytes())
        z.writestr("pets/cat/2.png", b"garbage")
        z.writestr("pets/cat/notes.txt", b"hello")
        z.writestr("pets/dog/nested/3.png", png_bytes((0, 0, 255)))
        z.writestr("__MACOSX/pets/._1.png", b"junk")
    dataset, problems = store.import_zip(archive)
    assert dataset.name == "pets" and dataset.counts() == {"cat": 1, "dog": 1}
    assert any("2.png" in p for p in problems) and any("notes.txt" in p for p in problems)


def _zip_with(tmp_path, name, writer) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        writer(z)
    return path


def _symlink(z):
    info = zipfile.ZipInfo("data/a/link.png")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    z.writestr(info, "/etc/passwd")


@pytest.mark.parametrize("name, writer, reason", [
    ("traversal.zip", lambda z: z.writestr("../../evil/a/1.png", png_bytes()), "leaves its folder"),
    ("absolute.zip", lambda z: z.writestr("/tmp/evil/a/1.png", png_bytes()), "absolute path"),
    ("link.zip", _symlink, "symbolic link"),
    ("bomb.zip", lambda z: z.writestr("data/a/big.png", b"\0" * (30 * 1024 * 1024)), "zip bomb"),
    ("flat.zip", lambda z: z.writestr("1.png", png_bytes()), "no class folders"),
    ("empty.zip", lambda z: z.writestr("data/a/readme.txt", b"x"), "no usable photos"),
])
def test_malicious_or_useless_zips_are_refused_and_leave_nothing(store, tmp_path, name, writer, reason):
    archive = _zip_with(tmp_path, name, writer)
    with pytest.raises(DataStoreError, match=reason):
        store.import_zip(archive)
    assert store.names() == []
    assert not (tmp_path / "evil").exists()


def test_an_odd_zip_name_becomes_a_usable_dataset_name(store):
    store.create("x", ["a"]).add_photo("a", png_bytes())
    dataset, _ = store.import_zip(store.open("x").to_zip_bytes(), name="My photos (2)/../!!")
    assert dataset.name == "My photos (2)" and dataset.counts() == {"a": 1}
    dataset, _ = store.import_zip(store.open("x").to_zip_bytes(), name="!!!")
    assert dataset.name == "imported"


def test_not_a_zip_is_refused(store):
    with pytest.raises(DataStoreError, match="not a readable zip"):
        store.import_zip(b"PK\x03\x04 but not really")


def test_collected_photos_survive_a_restart(tmp_path, monkeypatch):
    """A fresh process (a restarted server) finds every photo the first one stored."""
    monkeypatch.setenv("CVPLAY_DATASETS", str(tmp_path / "ds"))
    dataset = DatasetStore().create("desk", ["mug", "pen"])
    for value in range(4):
        dataset.add_photo("mug", frame(value * 40))
    dataset.add_photo("pen", png_bytes())
    code = ("from cvplay.datastore import DatasetStore; d = DatasetStore().open('desk'); "
            "print(sorted(d.counts().items())); d.add_photo('pen', open(d.photos('mug')[0], 'rb').read())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "CVPLAY_DATASETS": str(tmp_path / "ds")})
    assert out.stdout.strip() == "[('mug', 4), ('pen', 1)]"
    assert DatasetStore().open("desk").counts() == {"mug": 4, "pen": 2}


def test_concurrent_adds_never_pass_the_limit(tmp_path):
    dataset = DatasetStore(tmp_path, Limits(max_photos_per_class=10)).create("d", ["a"])
    errors = []

    def add():
        for _ in range(5):
            try:
                dataset.add_photo("a", frame(1, (16, 16, 3)))
            except DataStoreError as error:
                errors.append(error)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert dataset.counts() == {"a": 10} and len(errors) == 10


# --- burst capture -----------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_burst_keeps_frames_at_its_rate_and_stops_at_its_count(store):
    dataset = store.create("d", ["a", "b"])
    clock = FakeClock()
    recorder = BurstRecorder(clock=clock)
    assert not recorder.offer(frame())  # not started: nothing stored
    recorder.start(dataset, "a", count=4, rate=5.0)
    stored = []
    for tick in range(40):  # a 20 fps camera for 2 s
        clock.now = tick * 0.05
        stored.append(recorder.offer(frame(tick)))
    assert sum(stored) == 4
    assert [i for i, s in enumerate(stored) if s] == [0, 4, 8, 12]  # one frame every 0.2 s
    status = recorder.status()
    assert not status.active and status.saved == 4 and "done" in status.message
    assert dataset.counts() == {"a": 4, "b": 0}


def test_burst_stop_and_full_class(tmp_path):
    dataset = DatasetStore(tmp_path, Limits(max_photos_per_class=2)).create("d", ["a"])
    clock = FakeClock()
    recorder = BurstRecorder(clock=clock)
    recorder.start(dataset, "a", count=10, rate=10)
    for tick in range(10):
        clock.now = tick * 0.1
        recorder.offer(frame())
    status = recorder.status()
    assert not status.active and status.saved == 2 and "the most one class may hold" in status.message
    with pytest.raises(DataStoreError):
        recorder.start(dataset, "missing")
    with pytest.raises(DataStoreError):
        recorder.start(dataset, "a", rate=100)


def test_burst_can_be_stopped_early(store):
    dataset = store.create("d", ["a"])
    clock = FakeClock()
    recorder = BurstRecorder(clock=clock)
    recorder.start(dataset, "a", count=10, rate=10)
    recorder.offer(frame())
    recorder.stop()
    clock.now = 5
    assert not recorder.offer(frame())
    assert recorder.status().saved == 1 and "stopped" in recorder.status().message
    assert dataset.counts() == {"a": 1}
