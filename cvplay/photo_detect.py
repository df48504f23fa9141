"""Object detection on photos: results as rows, tables, CSV and annotated copies.

Shared by ``python -m cvplay detect`` and the webcam page's "Detect in photos" mode. Boxes are in
pixels of the photo as decoded by :func:`cvplay.images.load_image` (EXIF orientation applied)::

    detector = create_detector("openimages-ssd")
    found = detect_photo(detector, rgb, score_threshold=0.5)
    rows = detection_rows("dog.jpg", found)          # one dict per box, for a table or CSV
    annotated = annotate(rgb, found)                   # a copy with boxes and labels drawn
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, Collection, Sequence
from urllib.parse import urlparse

import cv2
import numpy as np

from cvplay.detect import (
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_SCORE_THRESHOLD,
    Detection,
    Detector,
    as_rgb,
    draw_detections,
)

ROW_COLUMNS = ["input", "label", "score", "x1", "y1", "x2", "y2", "error"]
DEFAULT_PHOTO_DETECTOR = "openimages-ssd"


def detect_photo(
    detector: Detector,
    rgb: np.ndarray,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    max_detections: int = DEFAULT_MAX_DETECTIONS,
    classes: Collection[str] | None = None,
) -> list[Detection]:
    """The detections in one RGB photo, best first."""
    kwargs: dict[str, Any] = {"classes": classes} if classes else {}
    return detector.detect(as_rgb(rgb), score_threshold, iou_threshold, max_detections, **kwargs)


def detection_dicts(detections: Sequence[Detection]) -> list[dict[str, Any]]:
    """The JSON form: ``{"label", "score", "box": [x1, y1, x2, y2]}`` per detection."""
    return [
        {"label": d.label, "score": round(float(d.score), 6), "box": [int(v) for v in d.box] if d.box is not None else None}
        for d in detections
    ]


def detection_rows(source: str, detections: Sequence[Detection] | None, error: str | None = None) -> list[dict[str, Any]]:
    """Table/CSV rows: one per detection, or one row carrying the error (or nothing found)."""
    if error is not None or not detections:
        return [{"input": source, "label": None, "score": None, "x1": None, "y1": None, "x2": None, "y2": None, "error": error}]
    rows = []
    for d in detections:
        x1, y1, x2, y2 = d.box if d.box is not None else (None, None, None, None)
        rows.append({"input": source, "label": d.label, "score": round(float(d.score), 4), "x1": x1, "y1": y1, "x2": x2, "y2": y2, "error": None})
    return rows


def annotate(rgb: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
    """A copy of the photo with each box, label and score drawn."""
    return draw_detections(np.array(as_rgb(rgb), copy=True, order="C"), detections)


def annotated_name(source: str, index: int, used: set[str] | None = None) -> str:
    """A safe, unique file name for the annotated copy of ``source`` (a path or a URL):
    ``NAME.detections.jpg``, made unique with the input's position when needed."""
    path = urlparse(source).path if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source) else source.replace("\\", "/")
    stem = PurePosixPath(path).stem or f"input-{index + 1}"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or f"input-{index + 1}"
    name = f"{stem[:80]}.detections.jpg"
    if used is not None:
        if name in used:
            name = f"{stem[:80]}-{index + 1}.detections.jpg"
        used.add(name)
    return name


def encode_jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(as_rgb(rgb), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("OpenCV could not encode the annotated image as JPEG")
    return data.tobytes()


__all__ = [
    "DEFAULT_PHOTO_DETECTOR", "ROW_COLUMNS", "annotate", "annotated_name", "detect_photo", "detection_dicts",
    "detection_rows", "encode_jpeg",
]
