"""Object detection behind one interface: Haar cascades, TFLite SSD-style models, classifiers.

Every detector takes an RGB ``uint8`` frame of shape ``(H, W, 3)`` and returns
:class:`Detection` objects with boxes in frame pixels::

    detector = create_detector("openimages-ssd")   # or "haar:face", a detect model, "classify:<model>"
    detections = detector.detect(rgb, score_threshold=0.5, iou_threshold=0.45, max_detections=20,
                                 classes=["Dog", "Cat"])   # optional class filter (None: all)
    annotated = draw_detections(rgb.copy(), detections)

:func:`list_detectors` names every detector that can be created here: every installed model whose
card says ``"task": "detect"`` (the default :data:`DEFAULT_DETECTOR`, the shipped
``openimages-ssd``, first), the Haar cascades that ship inside the OpenCV package (offline, no
model download), and every installed classifier as ``classify:<name>``.
:func:`default_detector` falls back to the frontal-face cascade when the default is missing.

The class filter (``classes``) drops other labels *before* non-maximum suppression, so a box of
an unwanted class never suppresses a wanted one.

Raw-output SSD models (a card with a ``"decoder"`` section)
    :class:`RawSSDDetector`: box encodings ``[1, N, 4]`` and class scores ``[1, N, C]`` straight
    from the network, decoded with the card's anchors, box coding and score activation by
    :mod:`cvplay.ssd` (NumPy), then thresholded and suppressed here (OpenCV NMS, class-agnostic
    when the card says so, as MediaPipe does). The shipped ``openimages-ssd`` is one.

Haar cascades (``haar:*``)
    OpenCV's ``detectMultiScale2`` runs on a grayscale copy of the frame downscaled so that its
    longer side is at most :data:`HAAR_WORK_SIDE` pixels (boxes are scaled back to the frame),
    with scale factor 1.2 and, for faces and bodies, a smallest object of 1/8 of the frame's
    shorter side (60 px at 640x480; eyes and smiles go smaller). That keeps the default
    detector near 10 ms a frame at 640x480 on two cores.
    A cascade gives no probability. The score is derived from the number of raw overlapping
    windows that OpenCV merged into the box (its "neighbours", OpenCV's own measure of how
    much support a Haar detection has): ``score = 1 - 0.5 ** (neighbours / half)``, where
    ``half`` is the neighbour count that scores 0.5 (7 for faces). It ranks detections and lets
    the score threshold prune weakly supported ones; it is not a calibrated probability. (The
    cascades' level weights from ``detectMultiScale3`` were measured too, on the ImageNet
    samples: false positives got margins as high as real faces, while real faces had 10-28
    neighbours and false positives 4-6, so the neighbour count is the more honest signal.)

TFLite detection models (task ``"detect"``, no ``"decoder"``)
    Any ``.tflite`` whose outputs are the standard SSD post-processing outputs
    (``TFLite_Detection_PostProcess``, as SSD-MobileNet and EfficientDet-Lite exports have):
    boxes ``[1, N, 4]`` (normalised ``ymin, xmin, ymax, xmax``), classes ``[1, N]``, scores
    ``[1, N]`` and count ``[1]``, in any order. The outputs are told apart by shape (boxes are the
    only 3-D output, count the only one-element output), then classes from scores by name
    (signature or tensor names containing "class"/"score"), else by the post-processing order
    (classes before scores), checked on every frame against the values (classes are whole
    numbers, scores mostly are not). The card's ``input`` section says how to feed the model
    (size, resize policy, mean/std; a ``uint8`` input is quantized with the tensor's own
    parameters), ``labels`` names the class ids, and an optional ``"label_offset"`` (default 0)
    is added to a class id before looking up its label (for label maps that start with a
    background entry). Boxes are mapped back through the resize policy into frame pixels.
    The score threshold, class-aware non-maximum suppression (``cv2.dnn.NMSBoxesBatched``)
    with the IoU threshold, and the max-detections cap are applied here.

Classification mode (``classify:<model>``)
    An installed classifier labels the whole frame: the top-3 classes as detections with
    ``box=None`` (drawn as overlay text, no boxes). The thresholds do not apply (a classifier
    always names its best guesses); ``max_detections`` caps how many are kept (at most 3).
    ``every`` (default 1) classifies every Nth call and reuses the last answer in between.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterable, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from cvplay.preprocess import center_crop_box, prepare, resize_for_model
from cvplay.registry import ModelCard, ModelCardError, ModelNotFoundError, get_card, list_models
from cvplay.runtime import Classifier, ModelLoadError, dequantize_output, load_interpreter, quantize_input
from cvplay.ssd import SSDConfigError, decode, generate_anchors, parse_decoder

Box = tuple[int, int, int, int]

DEFAULT_DETECTOR = "openimages-ssd"  # the shipped SSD-MobileNetV2 (Open Images V4, 23 objects)
FALLBACK_DETECTOR = "haar:face"  # when the default model is not installed
CLASSIFY_PREFIX = "classify:"
HAAR_PREFIX = "haar:"
HAAR_WORK_SIDE = 320  # the longer side of the grayscale frame a cascade runs on
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_IOU_THRESHOLD = 0.45
DEFAULT_MAX_DETECTIONS = 20
CLASSIFY_TOP_K = 3


@dataclass(frozen=True)
class Detection:
    """One detected object. ``box`` is ``(x1, y1, x2, y2)`` in frame pixels, or ``None`` for a
    label of the whole frame (classification mode)."""

    box: Box | None
    label: str
    score: float
    class_id: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score, "box": list(self.box) if self.box else None}


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(
        self,
        rgb: np.ndarray,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        iou_threshold: float = DEFAULT_IOU_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
        classes: Collection[str] | None = None,
    ) -> list[Detection]: ...


# --- frames ---------------------------------------------------------------------------------


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB view of ``frame``: grayscale ``(H, W)`` / ``(H, W, 1)`` is
    expanded, RGBA loses its alpha; anything else raises :class:`ValueError`."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"expected a NumPy image, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {frame.dtype}")
    if frame.ndim in (2, 3) and (frame.shape[0] == 0 or frame.shape[1] == 0):
        raise ValueError(f"the image is empty ({frame.shape[0]}x{frame.shape[1]})")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {frame.shape}")
    return frame


def _clip_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> Box:
    left = int(round(min(max(x1, 0.0), width)))
    top = int(round(min(max(y1, 0.0), height)))
    right = int(round(min(max(x2, 0.0), width)))
    bottom = int(round(min(max(y2, 0.0), height)))
    return (min(left, right), min(top, bottom), max(left, right), max(top, bottom))


def _wanted(classes: Collection[str] | None) -> frozenset[str] | None:
    """The class filter as a set; None (or empty) means every class."""
    if not classes:
        return None
    if isinstance(classes, str):
        return frozenset([classes])
    return frozenset(str(c) for c in classes)


# --- thresholds and NMS ---------------------------------------------------------------------


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def filter_detections(
    detections: Iterable[Detection],
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    max_detections: int = DEFAULT_MAX_DETECTIONS,
    class_aware: bool = True,
) -> list[Detection]:
    """Score threshold, then non-maximum suppression (per class when ``class_aware``; boxes of
    different classes never suppress each other), then the best ``max_detections`` by score.

    Boxless detections (whole-frame labels) skip NMS. An IoU threshold of 1 or more turns NMS off.
    """
    kept = [d for d in detections if d.score >= score_threshold]
    boxed = [d for d in kept if d.box is not None]
    boxless = [d for d in kept if d.box is None]
    if boxed and iou_threshold < 1.0:
        rects = [[float(d.box[0]), float(d.box[1]), float(d.box[2] - d.box[0]), float(d.box[3] - d.box[1])] for d in boxed]
        scores = [float(d.score) for d in boxed]
        if class_aware:
            class_ids = [d.class_id if d.class_id >= 0 else hash(d.label) & 0x7FFFFFFF for d in boxed]
            index = cv2.dnn.NMSBoxesBatched(rects, scores, class_ids, float(score_threshold), float(iou_threshold))
        else:
            index = cv2.dnn.NMSBoxes(rects, scores, float(score_threshold), float(iou_threshold))
        boxed = [boxed[int(i)] for i in np.asarray(index).ravel()]
    result = sorted(boxed + boxless, key=lambda d: -d.score)
    return result[: max(0, int(max_detections))]


# --- Haar cascades --------------------------------------------------------------------------


@dataclass(frozen=True)
class CascadeSpec:
    file: str
    label: str
    title: str
    min_neighbors: int = 3
    half_score_neighbors: float = 7.0  # the neighbour count that scores 0.5
    min_size_fraction: float = 0.125  # smallest object: this share of the frame's shorter side
    scale_factor: float = 1.2


HAAR_CASCADES: dict[str, CascadeSpec] = {
    "face": CascadeSpec("haarcascade_frontalface_default.xml", "face", "Frontal face (Haar)"),
    "face-alt": CascadeSpec("haarcascade_frontalface_alt.xml", "face", "Frontal face, alt (Haar)", min_neighbors=2, half_score_neighbors=5),
    "face-alt2": CascadeSpec("haarcascade_frontalface_alt2.xml", "face", "Frontal face, alt2 (Haar)", min_neighbors=2, half_score_neighbors=5),
    "profile-face": CascadeSpec("haarcascade_profileface.xml", "profile face", "Profile face (Haar)"),
    "eyes": CascadeSpec("haarcascade_eye.xml", "eye", "Eyes (Haar)", min_size_fraction=0.04),
    "eyes-glasses": CascadeSpec("haarcascade_eye_tree_eyeglasses.xml", "eye", "Eyes with glasses (Haar)", min_size_fraction=0.04),
    "smile": CascadeSpec("haarcascade_smile.xml", "smile", "Smile (Haar)", min_neighbors=15, half_score_neighbors=25, min_size_fraction=0.06),
    "upper-body": CascadeSpec("haarcascade_upperbody.xml", "upper body", "Upper body (Haar)", min_size_fraction=0.15),
    "full-body": CascadeSpec("haarcascade_fullbody.xml", "person", "Full body (Haar)", min_size_fraction=0.15),
    "lower-body": CascadeSpec("haarcascade_lowerbody.xml", "lower body", "Lower body (Haar)", min_size_fraction=0.15),
    "cat-face": CascadeSpec("haarcascade_frontalcatface_extended.xml", "cat face", "Cat face (Haar)"),
    "licence-plate": CascadeSpec("haarcascade_russian_plate_number.xml", "licence plate", "Licence plate, Russian (Haar)", min_size_fraction=0.05),
}


def haar_cascade_dir() -> Path:
    return Path(cv2.data.haarcascades)


class HaarDetector:
    """One OpenCV Haar cascade. Thread-safe: calls are serialised by a lock."""

    def __init__(self, key: str, work_side: int = HAAR_WORK_SIDE):
        if key not in HAAR_CASCADES:
            raise ModelNotFoundError(f"no Haar cascade is called {key!r} (known: {', '.join(HAAR_CASCADES)})")
        self.key = key
        self.name = HAAR_PREFIX + key
        self.spec = HAAR_CASCADES[key]
        self.title = self.spec.title
        self.work_side = int(work_side)
        path = haar_cascade_dir() / self.spec.file
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ModelLoadError(f"{self.name}: OpenCV could not load the cascade {path}")
        self._lock = threading.Lock()

    def score(self, neighbours: int) -> float:
        return float(1.0 - 0.5 ** (max(0, neighbours) / self.spec.half_score_neighbors))

    def detect(
        self,
        rgb: np.ndarray,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        iou_threshold: float = DEFAULT_IOU_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
        classes: Collection[str] | None = None,
    ) -> list[Detection]:
        rgb = as_rgb(rgb)
        wanted = _wanted(classes)
        if wanted is not None and self.spec.label not in wanted:
            return []
        height, width = rgb.shape[:2]
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, self.work_side / max(height, width))
        if scale < 1.0:
            work = cv2.resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        else:
            work = gray
        min_side = max(12, int(min(work.shape[:2]) * self.spec.min_size_fraction))
        if min(work.shape[:2]) < min_side:
            return []
        with self._lock:
            rects, neighbours = self._cascade.detectMultiScale2(
                work,
                scaleFactor=self.spec.scale_factor,
                minNeighbors=self.spec.min_neighbors,
                minSize=(min_side, min_side),
            )
        sx = width / work.shape[1]
        sy = height / work.shape[0]
        found = [
            Detection(
                box=_clip_box(x * sx, y * sy, (x + w) * sx, (y + h) * sy, width, height),
                label=self.spec.label,
                score=self.score(int(n)),
                class_id=0,
            )
            for (x, y, w, h), n in zip(np.asarray(rects).reshape(-1, 4), np.asarray(neighbours).ravel())
        ]
        return filter_detections(found, score_threshold, iou_threshold, max_detections)


# --- TFLite SSD-style detection models -------------------------------------------------------


def _output_names(interpreter) -> dict[int, str]:
    """Tensor index -> the most telling name: the signature's output name, else the tensor's."""
    names = {int(d["index"]): str(d.get("name", "")) for d in interpreter.get_output_details()}
    try:
        signatures = interpreter._get_full_signature_list()  # {key: {"inputs": {}, "outputs": {name: index}}}
    except Exception:  # noqa: BLE001 - an optional hint only
        signatures = {}
    for signature in signatures.values():
        for name, index in signature.get("outputs", {}).items():
            if int(index) in names:
                names[int(index)] = f"{name} {names[int(index)]}"
    return {index: name.lower() for index, name in names.items()}


class TFLiteDetector:
    """A ``.tflite`` model with SSD post-processing outputs, fed as its card says."""

    def __init__(self, card: ModelCard, num_threads: int | None = None):
        if card.task != "detect":
            raise ModelLoadError(f"{card.name} is a {card.task} model, not a detection model")
        self.card = card
        self.name = card.name
        self.title = card.display_name
        offset = card.extra.get("label_offset", 0)
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise ModelLoadError(f"{card.name}: 'label_offset' must be a whole number")
        self.label_offset = offset
        self.class_aware_nms = True
        self._lock = threading.Lock()
        self._interpreter = load_interpreter(card.model_path, num_threads)
        inputs = self._interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelLoadError(f"{card.name}: expected one image input, the model has {len(inputs)}")
        self._input = inputs[0]
        shape = [int(v) for v in self._input["shape"]]
        if len(shape) != 4 or shape[3] != 3:
            raise ModelLoadError(f"{card.name}: expected an input of shape (1, H, W, 3), the model has {shape}")
        if tuple(shape[1:3]) != tuple(card.input.size):
            raise ModelLoadError(f"{card.name}: the card says input size {list(card.input.size)}, the model takes {shape[1:3]}")
        if shape[0] != 1:
            try:
                self._interpreter.resize_tensor_input(self._input["index"], [1, *shape[1:]], strict=False)
                self._interpreter.allocate_tensors()
                self._input = self._interpreter.get_input_details()[0]
            except (ValueError, RuntimeError):
                raise ModelLoadError(f"{card.name}: the model needs a batch of {shape[0]}, not 1") from None
        self._outputs = self._identify_outputs()

    def _identify_outputs(self) -> dict[str, Any]:
        details = self._interpreter.get_output_details()
        if len(details) != 4:
            raise ModelLoadError(
                f"{self.card.name}: expected the 4 outputs of SSD post-processing "
                f"(boxes, classes, scores, count), the model has {len(details)}"
            )
        shapes = {int(d["index"]): [int(v) for v in d["shape"]] for d in details}
        boxes = [d for d in details if len(shapes[int(d["index"])]) == 3 and shapes[int(d["index"])][-1] == 4]
        count = [d for d in details if int(np.prod(shapes[int(d["index"])])) == 1]
        if len(boxes) != 1 or len(count) != 1:
            raise ModelLoadError(
                f"{self.card.name}: cannot tell the SSD outputs apart; expected boxes [1, N, 4], classes [1, N], "
                f"scores [1, N] and count [1], the model has {[shapes[int(d['index'])] for d in details]}"
            )
        rest = [d for d in details if d is not boxes[0] and d is not count[0]]
        n = shapes[int(boxes[0]["index"])][1]
        if any(shapes[int(d["index"])][-1] != n or len(shapes[int(d["index"])]) != 2 for d in rest):
            raise ModelLoadError(
                f"{self.card.name}: classes and scores must have shape [1, {n}], the model has "
                f"{[shapes[int(d['index'])] for d in rest]}"
            )
        names = _output_names(self._interpreter)
        first, second = rest
        by_name = None
        name_a, name_b = names[int(first["index"])], names[int(second["index"])]
        if "class" in name_a and "score" in name_b:
            by_name = (first, second)
        elif "score" in name_a and "class" in name_b:
            by_name = (second, first)
        if by_name is not None:
            classes, scores, trust_names = by_name[0], by_name[1], True
        else:
            # TFLite_Detection_PostProcess order: boxes, classes, scores, count.
            ordered = sorted(rest, key=lambda d: self._output_position(d, details))
            classes, scores, trust_names = ordered[0], ordered[1], False
        return {"boxes": boxes[0], "classes": classes, "scores": scores, "count": count[0], "named": trust_names}

    @staticmethod
    def _output_position(detail: dict[str, Any], details: list[dict[str, Any]]) -> tuple[int, int]:
        name = str(detail.get("name", ""))
        suffix = name.rsplit(":", 1)[-1] if ":" in name else ""
        return (int(suffix) if suffix.isdigit() else 1 << 20, details.index(detail))

    def _read(self, key: str) -> np.ndarray:
        detail = self._outputs[key]
        return dequantize_output(self._interpreter.get_tensor(detail["index"]), detail)

    def raw(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``(n, 4)`` normalised ymin, xmin, ymax, xmax; class ids ``(n,)``; scores ``(n,)``."""
        batch = prepare(as_rgb(rgb), self.card.input)[np.newaxis]
        with self._lock:
            self._interpreter.set_tensor(self._input["index"], quantize_input(batch, self._input))
            self._interpreter.invoke()
            boxes = self._read("boxes").reshape(-1, 4)
            classes = self._read("classes").reshape(-1)
            scores = self._read("scores").reshape(-1)
            count = self._read("count").reshape(-1)
        n = int(min(max(0, round(float(count[0]))), boxes.shape[0]))
        boxes, classes, scores = boxes[:n], classes[:n], scores[:n]
        if not self._outputs["named"]:
            classes, scores = self._check_order(classes, scores)
        return boxes, np.round(classes).astype(np.int64), scores

    @staticmethod
    def _check_order(classes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Swap the two ``[N]`` outputs when their values say so: class ids are whole numbers
        from 0, scores lie in 0..1. Ambiguous values keep the post-processing order."""

        def whole(x: np.ndarray) -> bool:
            return bool(np.all(np.abs(x - np.round(x)) < 1e-4) and np.all(x >= 0))

        def unit(x: np.ndarray) -> bool:
            return bool(np.all((x >= 0) & (x <= 1)))

        if (whole(scores) and not whole(classes)) or (unit(classes) and not unit(scores)):
            return scores, classes
        return classes, scores

    def to_pixels(self, box: Sequence[float], height: int, width: int) -> Box:
        """A normalised ``ymin, xmin, ymax, xmax`` box on the model input -> frame pixels,
        undoing the card's resize policy."""
        ymin, xmin, ymax, xmax = (float(v) for v in box)
        spec = self.card.input
        in_h, in_w = spec.size
        if spec.resize == "pad":
            scale = min(in_h / height, in_w / width)
            new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
            top, left = (in_h - new_h) // 2, (in_w - new_w) // 2
            fx = lambda x: (x * in_w - left) * width / new_w  # noqa: E731
            fy = lambda y: (y * in_h - top) * height / new_h  # noqa: E731
        elif spec.resize == "center_crop":
            top, left, crop_h, crop_w = center_crop_box(height, width, in_h, in_w, spec.crop_fraction)
            fx = lambda x: left + x * crop_w  # noqa: E731
            fy = lambda y: top + y * crop_h  # noqa: E731
        else:  # stretch
            fx = lambda x: x * width  # noqa: E731
            fy = lambda y: y * height  # noqa: E731
        return _clip_box(fx(xmin), fy(ymin), fx(xmax), fy(ymax), width, height)

    def label(self, class_id: int) -> str:
        index = class_id + self.label_offset
        if 0 <= index < len(self.card.labels):
            return self.card.labels[index]
        return f"class {class_id}"

    def detect(
        self,
        rgb: np.ndarray,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        iou_threshold: float = DEFAULT_IOU_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
        classes: Collection[str] | None = None,
    ) -> list[Detection]:
        rgb = as_rgb(rgb)
        height, width = rgb.shape[:2]
        wanted = _wanted(classes)
        boxes, class_ids, scores = self.candidates(rgb, score_threshold)
        found = []
        for box, class_id, score in zip(boxes, class_ids, scores):
            if not math.isfinite(float(score)) or score < score_threshold:
                continue
            label = self.label(int(class_id))
            if wanted is not None and label not in wanted:
                continue
            pixels = self.to_pixels(box, height, width)
            if pixels[2] <= pixels[0] or pixels[3] <= pixels[1]:
                continue
            found.append(Detection(box=pixels, label=label, score=float(score), class_id=int(class_id)))
        return filter_detections(found, score_threshold, iou_threshold, max_detections, class_aware=self.class_aware_nms)

    def candidates(self, rgb: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised boxes, class ids and scores before thresholds and NMS."""
        return self.raw(rgb)

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels this detector can report (the card's, minus ignored classes)."""
        return tuple(label for label in self.card.labels[max(0, self.label_offset) :])


class RawSSDDetector(TFLiteDetector):
    """A ``.tflite`` SSD with raw outputs (box encodings ``[1, N, 4]`` and class scores
    ``[1, N, C]``), decoded as the card's ``decoder`` section says (:mod:`cvplay.ssd`)."""

    def __init__(self, card: ModelCard, num_threads: int | None = None):
        try:
            self.decoder = parse_decoder(card.extra.get("decoder"))
        except SSDConfigError as error:
            raise ModelLoadError(f"{card.name}: {error}") from None
        self.anchors = generate_anchors(self.decoder.anchors)
        super().__init__(card, num_threads=num_threads)
        self.class_aware_nms = not self.decoder.class_agnostic_nms

    def _identify_outputs(self) -> dict[str, Any]:
        details = self._interpreter.get_output_details()
        shapes = {int(d["index"]): [int(v) for v in d["shape"]] for d in details}
        described = [shapes[int(d["index"])] for d in details]
        if len(details) != 2 or any(len(shape) != 3 for shape in described):
            raise ModelLoadError(
                f"{self.card.name}: a raw SSD model has 2 outputs, box encodings [1, N, 4] and class "
                f"scores [1, N, C]; the model has {described}"
            )
        boxes = [d for d in details if shapes[int(d["index"])][-1] == 4]
        if len(boxes) == 2:  # C == 4: tell them apart by name
            names = _output_names(self._interpreter)
            boxes = [d for d in details if "box" in names[int(d["index"])]]
        if len(boxes) != 1:
            raise ModelLoadError(f"{self.card.name}: cannot tell the box encodings [1, N, 4] from the class scores in {described}")
        scores = next(d for d in details if d is not boxes[0])
        n = shapes[int(boxes[0]["index"])][1]
        if shapes[int(scores["index"])][1] != n:
            raise ModelLoadError(f"{self.card.name}: box encodings and class scores disagree on N: {described}")
        if n != len(self.anchors):
            raise ModelLoadError(
                f"{self.card.name}: the card's anchors make {len(self.anchors)} boxes, the model outputs {n}"
            )
        classes = shapes[int(scores["index"])][2]
        if self.card.labels and classes != len(self.card.labels) - self.label_offset:
            raise ModelLoadError(
                f"{self.card.name}: the model scores {classes} classes, the card lists {len(self.card.labels)} labels"
                + (f" with label_offset {self.label_offset}" if self.label_offset else "")
            )
        return {"boxes": boxes[0], "scores": scores}

    def _batch(self, rgb: np.ndarray) -> np.ndarray:
        """The frame as the model's input, the same values as :func:`cvplay.preprocess.prepare`,
        normalised in place in one float32 buffer (half the time of a fresh array per step)."""
        spec = self.card.input
        resized = resize_for_model(as_rgb(rgb), spec)
        batch = np.empty((1, *resized.shape), np.float32)
        np.subtract(resized, np.asarray(spec.mean, np.float32), out=batch[0], dtype=np.float32)
        np.divide(batch[0], np.asarray(spec.std, np.float32), out=batch[0])
        return batch

    def raw_outputs(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's raw box encodings ``(N, 4)`` and class outputs ``(N, C)`` for a frame."""
        batch = self._batch(rgb)
        with self._lock:
            self._interpreter.set_tensor(self._input["index"], quantize_input(batch, self._input))
            self._interpreter.invoke()
            encodings = self._read("boxes").reshape(len(self.anchors), 4)
            scores = self._read("scores").reshape(len(self.anchors), -1)
        return encodings, scores

    def raw(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every anchor's decoded box (normalised ymin, xmin, ymax, xmax), best class and score."""
        return self.candidates(rgb, -np.inf)

    def candidates(self, rgb: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        encodings, scores = self.raw_outputs(rgb)
        return decode(encodings, scores, self.anchors, self.decoder, score_threshold)

    @property
    def labels(self) -> tuple[str, ...]:
        ignored = set(self.decoder.ignore_classes)
        return tuple(
            label for index, label in enumerate(self.card.labels)
            if index >= self.label_offset and index - self.label_offset not in ignored
        )


# --- classification mode --------------------------------------------------------------------


class ClassifyDetector:
    """A classifier labelling the whole frame: top-k as boxless detections.

    ``every`` > 1 classifies every Nth call and returns the last answer in between
    (``last_fresh`` tells whether the latest answer was computed for this call).
    """

    def __init__(self, classifier: Classifier, every: int = 1, top_k: int = CLASSIFY_TOP_K):
        self.classifier = classifier
        self.name = CLASSIFY_PREFIX + classifier.card.name
        self.title = f"{classifier.card.display_name} (whole-frame classification)"
        self.every = max(1, int(every))
        self.top_k = max(1, int(top_k))
        self._lock = threading.Lock()
        self._calls = 0
        self._last: list[Detection] = []
        self.last_fresh = False

    def detect(
        self,
        rgb: np.ndarray,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        iou_threshold: float = DEFAULT_IOU_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
        classes: Collection[str] | None = None,
    ) -> list[Detection]:
        rgb = as_rgb(rgb)
        k = max(0, min(self.top_k, int(max_detections)))
        with self._lock:
            fresh = self._calls % self.every == 0 or not self._last
            self._calls += 1
        if fresh:
            predictions = self.classifier.predict(rgb, k=self.top_k)
            result = [Detection(box=None, label=p.label, score=p.score, class_id=p.index) for p in predictions]
            with self._lock:
                self._last = result
        wanted = _wanted(classes)
        with self._lock:
            self.last_fresh = fresh
            last = [d for d in self._last if wanted is None or d.label in wanted]
            return last[:k]


# --- listing and creating -------------------------------------------------------------------


def list_detectors(dirs: Iterable[str | os.PathLike[str]] | None = None) -> list[str]:
    """Every detector name: installed detect models (the default first), Haar cascades,
    classifiers (``classify:<name>``)."""
    dirs = list(dirs) if dirs is not None else None
    cards = list_models(dirs=dirs)
    detect_models = sorted((card.name for card in cards if card.task == "detect"), key=lambda name: (name != DEFAULT_DETECTOR, name))
    names = detect_models + [HAAR_PREFIX + key for key in HAAR_CASCADES if (haar_cascade_dir() / HAAR_CASCADES[key].file).is_file()]
    names += [CLASSIFY_PREFIX + card.name for card in cards if card.task == "classify"]
    return names


def default_detector(names: Sequence[str]) -> str:
    """The detector a page starts with: :data:`DEFAULT_DETECTOR` when installed, else the
    frontal-face cascade, else the first name."""
    for name in (DEFAULT_DETECTOR, FALLBACK_DETECTOR):
        if name in names:
            return name
    return names[0] if names else FALLBACK_DETECTOR


def create_detector(
    name: str | os.PathLike[str],
    dirs: Iterable[str | os.PathLike[str]] | None = None,
    num_threads: int | None = None,
    classify_every: int = 1,
) -> Detector:
    """A detector by name (see :func:`list_detectors`), or by path to a detect model's card or
    ``.tflite``. Unknown names raise :class:`~cvplay.registry.ModelNotFoundError`; a model that
    cannot be loaded raises :class:`~cvplay.runtime.ModelLoadError`."""
    text = str(name)
    dirs = list(dirs) if dirs is not None else None
    if text.startswith(HAAR_PREFIX):
        return HaarDetector(text[len(HAAR_PREFIX) :])
    if text.startswith(CLASSIFY_PREFIX):
        card = _card(text[len(CLASSIFY_PREFIX) :], dirs)
        if card.task != "classify":
            raise ModelLoadError(f"{card.name} is a {card.task} model, not a classifier")
        return ClassifyDetector(Classifier(card, num_threads=num_threads), every=classify_every)
    card = _card(text, dirs)
    if card.task == "classify":
        return ClassifyDetector(Classifier(card, num_threads=num_threads), every=classify_every)
    if "decoder" in card.extra:
        return RawSSDDetector(card, num_threads=num_threads)
    return TFLiteDetector(card, num_threads=num_threads)


def _card(name: str, dirs: list | None) -> ModelCard:
    try:
        return get_card(name, dirs)
    except ModelCardError as error:
        raise ModelLoadError(str(error)) from None


def detector_title(name: str) -> str:
    """A human label for a detector name, without loading it."""
    if name.startswith(HAAR_PREFIX) and name[len(HAAR_PREFIX) :] in HAAR_CASCADES:
        return HAAR_CASCADES[name[len(HAAR_PREFIX) :]].title
    if name.startswith(CLASSIFY_PREFIX):
        return f"{name[len(CLASSIFY_PREFIX):]} (classify the whole frame)"
    if name == DEFAULT_DETECTOR:
        return f"{name} (23 everyday objects)"
    return f"{name} (detection model)"


# --- drawing --------------------------------------------------------------------------------

_PALETTE = [
    (255, 56, 56), (255, 157, 151), (255, 112, 31), (255, 178, 29), (207, 210, 49),
    (72, 249, 10), (146, 204, 23), (61, 219, 134), (26, 147, 52), (0, 212, 187),
    (44, 153, 168), (0, 194, 255), (52, 69, 147), (100, 115, 255), (0, 24, 236),
    (132, 56, 255), (82, 0, 133), (203, 56, 255), (255, 149, 200), (255, 55, 199),
]
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def colour_for(label: str) -> tuple[int, int, int]:
    """A stable colour per label (RGB)."""
    return _PALETTE[sum(label.encode("utf-8")) % len(_PALETTE)]


MIN_TEXT_SCALE = 0.3


def fit_text(text: str, max_width: int, scale: float, min_scale: float = MIN_TEXT_SCALE) -> tuple[str, float]:
    """The text and font scale that fit in ``max_width`` pixels (the padding included): the
    scale shrinks down to ``min_scale``, then the text is cut and ends in "..."."""
    text = text.encode("ascii", "replace").decode("ascii")  # Hershey fonts draw ASCII only

    def width(candidate: str, candidate_scale: float) -> int:
        thickness = max(1, int(round(candidate_scale * 2)))
        pad = max(2, int(round(4 * candidate_scale)))
        return cv2.getTextSize(candidate, _FONT, candidate_scale, thickness)[0][0] + 2 * pad

    while width(text, scale) > max_width and scale > min_scale:
        scale = max(min_scale, scale * 0.9)
    if width(text, scale) <= max_width:
        return text, scale
    low, high = 0, len(text)  # the longest prefix that fits with "..."
    while low < high:
        middle = (low + high + 1) // 2
        if width(text[:middle] + "...", scale) <= max_width:
            low = middle
        else:
            high = middle - 1
    return (text[:low] + "..." if low > 0 else text[:1]), scale


def _text_block(frame: np.ndarray, text: str, x: int, y: int, scale: float, fill: tuple[int, int, int], ink: tuple[int, int, int]) -> int:
    """Text on a filled rectangle whose top-left is ``(x, y)``, shrunk or cut to fit the
    frame's width; returns the block's height."""
    height, width = frame.shape[:2]
    text, scale = fit_text(text, width, scale)
    thickness = max(1, int(round(scale * 2)))
    (tw, th), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = max(2, int(round(4 * scale)))
    x = int(min(max(0, x), max(0, width - tw - 2 * pad)))
    y = int(min(max(0, y), max(0, height - th - baseline - 2 * pad)))
    cv2.rectangle(frame, (x, y), (x + tw + 2 * pad, y + th + baseline + 2 * pad), fill, thickness=-1)
    cv2.putText(frame, text, (x + pad, y + pad + th), _FONT, scale, ink, thickness, cv2.LINE_AA)
    return th + baseline + 2 * pad


def _scale_for(frame: np.ndarray) -> float:
    return max(0.4, min(1.2, min(frame.shape[:2]) / 700))


def draw_detections(frame: np.ndarray, detections: Sequence[Detection], colour_order: str = "rgb") -> np.ndarray:
    """Draw each boxed detection (box + "label 0.87" on a filled background) onto ``frame`` in
    place and return it. ``colour_order`` is the frame's channel order, "rgb" or "bgr"."""
    scale = _scale_for(frame)
    thickness = max(2, int(round(min(frame.shape[:2]) / 240)))
    for detection in detections:
        if detection.box is None:
            continue
        colour = colour_for(detection.label)
        if colour_order == "bgr":
            colour = colour[::-1]
        x1, y1, x2, y2 = detection.box
        cv2.rectangle(frame, (x1, y1), (x2, y2), colour, thickness)
        text, text_scale = fit_text(f"{detection.label} {detection.score:.2f}", frame.shape[1], scale)
        (_, th), baseline = cv2.getTextSize(text, _FONT, text_scale, max(1, int(round(text_scale * 2))))
        block = th + baseline + 2 * max(2, int(round(4 * text_scale)))
        top = y1 - block if y1 - block >= 0 else y1
        _text_block(frame, text, x1, top, scale, colour, (255, 255, 255) if sum(colour) < 450 else (0, 0, 0))
    return frame


OVERLAY_FILL = (0, 0, 0)
OVERLAY_INK = (255, 255, 255)


def draw_overlay(frame: np.ndarray, lines: Sequence[str], origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """White text lines on black filled backgrounds, stacked from ``origin`` (top-left), in place."""
    scale = _scale_for(frame) * 0.9
    x, y = origin
    for line in lines:
        y += _text_block(frame, line, x, y, scale, OVERLAY_FILL, OVERLAY_INK)
    return frame


__all__ = [
    "Box", "CLASSIFY_PREFIX", "ClassifyDetector", "DEFAULT_DETECTOR", "FALLBACK_DETECTOR", "RawSSDDetector",
    "default_detector", "Detection", "Detector",
    "HAAR_CASCADES", "HAAR_PREFIX", "HaarDetector", "ModelLoadError", "TFLiteDetector", "as_rgb",
    "colour_for", "create_detector", "detector_title", "draw_detections", "draw_overlay", "fit_text",
    "filter_detections", "iou", "list_detectors",
]
