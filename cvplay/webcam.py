"""The webcam page's per-frame work as a plain, testable class (no Streamlit here).

:class:`FrameProcessor` takes one frame (an RGB or BGR ``uint8`` array), runs the chosen
detector, draws the boxes, labels and scores, an overlay with the frame number, the
processing time of this frame and the processed frames per second, and pushes a
:class:`FrameResult` into a small thread-safe queue that drops the oldest entry when full, so
a reader (the page's detection table) always finds the latest results and never blocks the
video thread::

    processor = FrameProcessor(WebcamSettings(detector=create_detector("haar:face")))
    annotated = processor.process(rgb)              # or process(bgr, colour_order="bgr")
    result = processor.latest()                     # FrameResult or None

streamlit-webrtc calls :meth:`FrameProcessor.video_frame_callback` from its own worker thread
with an ``av.VideoFrame``. Settings come from the page through :meth:`FrameProcessor.update`,
which swaps one immutable :class:`WebcamSettings` object under a lock: the callback reads a
consistent snapshot once per frame and never touches Streamlit.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from cvplay.detect import (
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_SCORE_THRESHOLD,
    Detection,
    Detector,
    as_rgb,
    draw_detections,
    draw_overlay,
)

RESULT_QUEUE_SIZE = 4
FPS_WINDOW = 30  # frames in the moving window the processed FPS is measured over


@dataclass(frozen=True)
class WebcamSettings:
    """What the callback should do; replaced whole, never mutated."""

    detector: Detector | None = None
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    max_detections: int = DEFAULT_MAX_DETECTIONS
    show_overlay: bool = True
    #: Report only these labels (the class filter); empty: every class.
    classes: frozenset[str] = frozenset()

    @property
    def detector_name(self) -> str:
        return getattr(self.detector, "name", "none")


@dataclass(frozen=True)
class FrameResult:
    """What one processed frame found, for the page's table."""

    frame_index: int
    detector: str
    detections: tuple[Detection, ...]
    ms: float  # time spent on this frame: detection plus drawing
    fps: float  # processed frames per second over the last FPS_WINDOW frames
    width: int
    height: int
    error: str | None = None
    timestamp: float = field(default_factory=time.time)

    @property
    def boxed(self) -> bool:
        """Whether any detection has a box (False in classification mode)."""
        return any(detection.box is not None for detection in self.detections)

    def columns(self) -> list[str]:
        """The table's columns: label and score, plus the box's corners when there are boxes."""
        return ["label", "score", "x1", "y1", "x2", "y2"] if self.boxed or not self.detections else ["label", "score"]

    def rows(self) -> list[dict[str, Any]]:
        """One row per detection for a table; whole-frame labels have no box columns."""
        rows = []
        for detection in self.detections:
            row: dict[str, Any] = {"label": detection.label, "score": round(float(detection.score), 3)}
            if detection.box is not None:
                x1, y1, x2, y2 = detection.box
                row.update({"x1": x1, "y1": y1, "x2": x2, "y2": y2})
            rows.append(row)
        return rows


class LatestQueue:
    """A bounded, thread-safe queue that drops its oldest item instead of blocking."""

    def __init__(self, maxsize: int = RESULT_QUEUE_SIZE):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(maxsize)))
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._lock:  # one writer at a time, so "drop one then put" always makes room
            while True:
                try:
                    self._queue.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass

    def get(self, timeout: float | None = None) -> Any:
        """The oldest item; ``queue.Empty`` after ``timeout`` seconds (None: don't wait)."""
        if timeout is None:
            return self._queue.get_nowait()
        return self._queue.get(timeout=timeout)

    def drain(self) -> list[Any]:
        items = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def qsize(self) -> int:
        return self._queue.qsize()


class FrameProcessor:
    """Detect, draw, count and report, one frame at a time; safe to call from any thread."""

    def __init__(
        self,
        settings: WebcamSettings | None = None,
        queue_size: int = RESULT_QUEUE_SIZE,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self._settings_lock = threading.Lock()
        self._settings = settings or WebcamSettings()
        self._stats_lock = threading.Lock()
        self._clock = clock
        self._frame_count = 0
        self._times: list[float] = []
        self._last: FrameResult | None = None
        self.results = LatestQueue(queue_size)

    # -- settings, from the page's thread --
    def update(self, settings: WebcamSettings) -> None:
        with self._settings_lock:
            self._settings = settings

    @property
    def settings(self) -> WebcamSettings:
        with self._settings_lock:
            return self._settings

    # -- statistics, read from any thread --
    @property
    def frame_count(self) -> int:
        with self._stats_lock:
            return self._frame_count

    @property
    def fps(self) -> float:
        with self._stats_lock:
            return self._fps_locked()

    def _fps_locked(self) -> float:
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])

    def reset(self) -> None:
        with self._stats_lock:
            self._frame_count = 0
            self._times = []
            self._last = None
        self.results.drain()

    def latest(self) -> FrameResult | None:
        """The newest result: drains the queue; when nothing new arrived, the last one seen."""
        items = self.results.drain()
        with self._stats_lock:
            if items:
                self._last = items[-1]
            return self._last

    # -- the work --
    def process(self, frame: np.ndarray, colour_order: str = "rgb") -> np.ndarray:
        """Annotate one frame; returns a new ``(H, W, 3)`` uint8 array in the same channel
        order. Grayscale and RGBA frames are accepted (the result is 3-channel); other
        shapes and non-uint8 frames raise :class:`ValueError`."""
        if colour_order not in ("rgb", "bgr"):
            raise ValueError("colour_order must be 'rgb' or 'bgr'")
        start = self._clock()
        settings = self.settings
        image = np.array(as_rgb(frame), copy=True, order="C")  # never draw on the caller's frame
        rgb = image[:, :, ::-1] if colour_order == "bgr" else image
        detections: list[Detection] = []
        error = None
        if settings.detector is not None:
            extra = {"classes": settings.classes} if settings.classes else {}
            try:
                detections = settings.detector.detect(
                    np.ascontiguousarray(rgb),
                    score_threshold=settings.score_threshold,
                    iou_threshold=settings.iou_threshold,
                    max_detections=settings.max_detections,
                    **extra,
                )
            except Exception as exc:  # noqa: BLE001 - the video must keep flowing; the page shows it
                error = f"{type(exc).__name__}: {exc}"
        draw_detections(image, detections, colour_order=colour_order)
        with self._stats_lock:
            self._frame_count += 1
            index = self._frame_count
            self._times.append(start)
            del self._times[:-FPS_WINDOW]
            fps = self._fps_locked()
        if settings.show_overlay:
            lines = [f"{settings.detector_name}: {self._summary(detections)}"]
            if detections and getattr(settings.detector, "last_fresh", True) is False:
                lines[0] += f" (reused: classified every {getattr(settings.detector, 'every', '?')} frames)"
            lines += [f"{d.label} {d.score:.2f}" for d in detections if d.box is None]
            elapsed = (self._clock() - start) * 1000
            lines.append(f"frame {index}  {elapsed:.1f} ms  {fps:.1f} fps")
            if error:
                lines.append(error[:80])
            draw_overlay(image, lines)
        ms = (self._clock() - start) * 1000
        self.results.put(
            FrameResult(
                frame_index=index,
                detector=settings.detector_name,
                detections=tuple(detections),
                ms=ms,
                fps=fps,
                width=int(image.shape[1]),
                height=int(image.shape[0]),
                error=error,
            )
        )
        return image

    @staticmethod
    def _summary(detections: list[Detection]) -> str:
        boxed = sum(1 for d in detections if d.box is not None)
        if boxed == 0 and detections:
            return "whole frame"
        return f"{boxed} object{'s' if boxed != 1 else ''}"

    def video_frame_callback(self, frame):
        """streamlit-webrtc's ``video_frame_callback``: ``av.VideoFrame`` in, annotated out."""
        import av

        image = self.process(frame.to_ndarray(format="rgb24"))
        out = av.VideoFrame.from_ndarray(image, format="rgb24")
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out

    __call__ = video_frame_callback
