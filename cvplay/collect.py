"""Burst capture: keep a few frames a second of a live video stream as photos of one class.

A browser cannot take a burst with a snapshot widget (each snapshot is a click and a page
rerun); a live stream can. The Train page's collect mode streams the camera over WebRTC
(streamlit-webrtc) and hands every frame to :meth:`BurstRecorder.offer` from the stream's
worker thread. While a burst runs, the recorder keeps one frame every ``1 / rate`` seconds and
stores it with :meth:`cvplay.datastore.CollectedDataset.add_photo`, until the burst has its
``count`` photos, the class or dataset is full, or :meth:`BurstRecorder.stop` is called.

Pure Python: no Streamlit, no WebRTC; the clock is injectable, so tests drive it frame by frame.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from cvplay.datastore import CollectedDataset, DataStoreError

DEFAULT_RATE = 5.0  # photos per second
DEFAULT_COUNT = 15
MAX_RATE = 15.0


@dataclass
class BurstStatus:
    active: bool
    class_name: str | None
    saved: int
    target: int
    message: str


class BurstRecorder:
    """Thread-safe: :meth:`offer` runs on the video thread, the rest on the page's thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._dataset: CollectedDataset | None = None
        self._class_name: str | None = None
        self._interval = 1.0 / DEFAULT_RATE
        self._target = 0
        self._saved = 0
        self._last: float | None = None
        self._active = False
        self._message = "ready"
        self.frames_seen = 0

    def start(self, dataset: CollectedDataset, class_name: str, count: int = DEFAULT_COUNT,
              rate: float = DEFAULT_RATE) -> None:
        if class_name not in dataset.classes():
            raise DataStoreError(f"There is no class {class_name!r} in {dataset.name}.")
        if not 0 < rate <= MAX_RATE:
            raise DataStoreError(f"The burst rate must lie between 0 and {MAX_RATE:g} photos a second.")
        if count < 1:
            raise DataStoreError("A burst takes at least one photo.")
        with self._lock:
            self._dataset, self._class_name = dataset, class_name
            self._interval, self._target = 1.0 / rate, int(count)
            self._saved, self._last, self._active = 0, None, True
            self._message = f"recording {count} photos of {class_name} at {rate:g} a second"

    def stop(self, message: str | None = None) -> None:
        with self._lock:
            self._stop_locked(message)

    def _stop_locked(self, message: str | None) -> None:
        if self._active:
            self._active = False
            self._message = message or f"stopped: {self._saved} photo(s) of {self._class_name} saved"

    def status(self) -> BurstStatus:
        with self._lock:
            return BurstStatus(self._active, self._class_name, self._saved, self._target, self._message)

    def offer(self, frame: np.ndarray) -> bool:
        """A frame of the stream (RGB uint8); returns whether it was stored."""
        with self._lock:
            self.frames_seen += 1
            if not self._active:
                return False
            now = self._clock()
            if self._last is not None and now - self._last < self._interval:
                return False
            # Keep the cadence even when a frame arrives a little late.
            self._last = now if self._last is None or now - self._last > 2 * self._interval else self._last + self._interval
            dataset, class_name = self._dataset, self._class_name
            try:
                dataset.add_photo(class_name, np.ascontiguousarray(frame))
            except DataStoreError as error:
                self._stop_locked(f"stopped after {self._saved} photo(s): {error}")
                return False
            self._saved += 1
            if self._saved >= self._target:
                self._stop_locked(f"done: {self._saved} photos of {class_name} saved")
            else:
                self._message = f"recording {class_name}: {self._saved}/{self._target}"
            return True
