"""Raw-output SSD models: anchors, box decoding and scores, driven by the model card alone.

Many mobile SSD detectors (MediaPipe's among them) are exported without the
``TFLite_Detection_PostProcess`` op: the ``.tflite`` ends with two raw tensors,

* box encodings ``[1, N, 4]``: offsets from one anchor box per row, and
* class scores ``[1, N, C]``: one logit (or probability) per class, often with a background class,

and the application generates the ``N`` anchors, decodes the boxes, turns logits into scores and
runs non-maximum suppression. This module does that in NumPy (NMS with OpenCV, in
:func:`cvplay.detect.filter_detections`), so such a model works from a card that says how::

    "decoder": {
      "type": "ssd_raw",
      "anchors": {                        # the SSD anchor generator (MediaPipe's SsdAnchorsCalculator)
        "input_size": [300, 300],         # height, width the strides divide
        "num_layers": 6,
        "strides": [16, 32, 64, 128, 256, 512],
        "min_scale": 0.2, "max_scale": 0.95,
        "aspect_ratios": [1.0, 2.0, 0.5, 3.0, 0.3333],
        "interpolated_scale_aspect_ratio": 1.0,   # one extra anchor per cell at sqrt(s_i * s_i+1); 0: none
        "reduce_boxes_in_lowest_layer": true,     # layer 0: 3 anchors (0.1 at 1, s0 at 2 and 0.5)
        "anchor_offset": [0.5, 0.5],              # y, x of the centre inside a cell
        "fixed_anchor_size": false                # true: every anchor is 1 x 1 (centre only)
      },
      "box_coding": {
        "order": "yxhw",                  # the 4 numbers of a row: "yxhw" or "xywh"
        "scales": {"y": 10.0, "x": 10.0, "h": 5.0, "w": 5.0},
        "exponential_size": true          # h = exp(th / h_scale) * anchor_h (else th / h_scale * anchor_h)
      },
      "scores": {"activation": "sigmoid", "ignore_classes": [0]},   # or "none" / "softmax"
      "class_agnostic_nms": true          # one box per object, whatever its class (MediaPipe's NMS)
    }

Anchors follow the standard SSD generator (Liu et al. 2016, as configured in the TensorFlow Object
Detection API and MediaPipe): for layer ``i`` of ``L`` the scale is
``min_scale + (max_scale - min_scale) * i / (L - 1)``; each aspect ratio ``r`` gives an anchor
``scale / sqrt(r)`` high and ``scale * sqrt(r)`` wide; the feature map of stride ``s`` has
``ceil(H / s) x ceil(W / s)`` cells, and anchors are listed row by row, cell by cell, anchor by
anchor. Boxes decode as::

    y_centre = ty / y_scale * anchor_h + anchor_y      h = exp(th / h_scale) * anchor_h
    x_centre = tx / x_scale * anchor_w + anchor_x      w = exp(tw / w_scale) * anchor_w

in coordinates normalised to the model input (0..1). Each anchor keeps its best class (the ignored
background excluded), as MediaPipe's TensorsToDetections does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

DECODER_TYPE = "ssd_raw"
BOX_ORDERS = ("yxhw", "xywh")
ACTIVATIONS = ("sigmoid", "softmax", "none")


class SSDConfigError(ValueError):
    """The card's ``decoder`` section is malformed."""


@dataclass(frozen=True)
class AnchorSpec:
    input_size: tuple[int, int]
    num_layers: int
    strides: tuple[int, ...]
    min_scale: float
    max_scale: float
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = False
    anchor_offset: tuple[float, float] = (0.5, 0.5)
    fixed_anchor_size: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_size": list(self.input_size),
            "num_layers": self.num_layers,
            "strides": list(self.strides),
            "min_scale": self.min_scale,
            "max_scale": self.max_scale,
            "aspect_ratios": list(self.aspect_ratios),
            "interpolated_scale_aspect_ratio": self.interpolated_scale_aspect_ratio,
            "reduce_boxes_in_lowest_layer": self.reduce_boxes_in_lowest_layer,
            "anchor_offset": list(self.anchor_offset),
            "fixed_anchor_size": self.fixed_anchor_size,
        }


@dataclass(frozen=True)
class BoxCoding:
    order: str = "yxhw"
    y_scale: float = 10.0
    x_scale: float = 10.0
    h_scale: float = 5.0
    w_scale: float = 5.0
    exponential_size: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "scales": {"y": self.y_scale, "x": self.x_scale, "h": self.h_scale, "w": self.w_scale},
            "exponential_size": self.exponential_size,
        }


@dataclass(frozen=True)
class SSDDecoder:
    anchors: AnchorSpec
    box_coding: BoxCoding
    activation: str = "sigmoid"
    ignore_classes: tuple[int, ...] = ()
    class_agnostic_nms: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": DECODER_TYPE,
            "anchors": self.anchors.to_dict(),
            "box_coding": self.box_coding.to_dict(),
            "scores": {"activation": self.activation, "ignore_classes": list(self.ignore_classes)},
            "class_agnostic_nms": self.class_agnostic_nms,
        }


# --- parsing the card's "decoder" section ----------------------------------------------------


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise SSDConfigError(f"decoder: {message}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_anchor_spec(data: Any) -> AnchorSpec:
    _need(isinstance(data, Mapping), "'anchors' must be an object")
    size = data.get("input_size")
    if _whole(size):
        size = [size, size]
    _need(isinstance(size, (list, tuple)) and len(size) == 2 and all(_whole(v) and 1 <= v <= 4096 for v in size),
          "anchors.input_size must be [height, width] in pixels")
    layers = data.get("num_layers")
    _need(_whole(layers) and 1 <= layers <= 16, "anchors.num_layers must be a whole number from 1 to 16")
    strides = data.get("strides")
    _need(isinstance(strides, (list, tuple)) and len(strides) == layers and all(_whole(s) and s >= 1 for s in strides),
          "anchors.strides must list one positive whole number per layer")
    for key in ("min_scale", "max_scale"):
        _need(_number(data.get(key)) and float(data[key]) > 0, f"anchors.{key} must be a positive number")
    ratios = data.get("aspect_ratios", [1.0])
    _need(isinstance(ratios, (list, tuple)) and len(ratios) >= 1 and all(_number(r) and r > 0 for r in ratios),
          "anchors.aspect_ratios must be a list of positive numbers")
    interpolated = data.get("interpolated_scale_aspect_ratio", 1.0)
    _need(_number(interpolated) and interpolated >= 0, "anchors.interpolated_scale_aspect_ratio must be a number >= 0")
    offset = data.get("anchor_offset", [0.5, 0.5])
    _need(isinstance(offset, (list, tuple)) and len(offset) == 2 and all(_number(v) for v in offset),
          "anchors.anchor_offset must be [y, x]")
    flags = {key: data.get(key, False) for key in ("reduce_boxes_in_lowest_layer", "fixed_anchor_size")}
    _need(all(isinstance(v, bool) for v in flags.values()), "anchors' reduce_boxes_in_lowest_layer and fixed_anchor_size must be true or false")
    return AnchorSpec(
        input_size=(int(size[0]), int(size[1])),
        num_layers=int(layers),
        strides=tuple(int(s) for s in strides),
        min_scale=float(data["min_scale"]),
        max_scale=float(data["max_scale"]),
        aspect_ratios=tuple(float(r) for r in ratios),
        interpolated_scale_aspect_ratio=float(interpolated),
        reduce_boxes_in_lowest_layer=flags["reduce_boxes_in_lowest_layer"],
        anchor_offset=(float(offset[0]), float(offset[1])),
        fixed_anchor_size=flags["fixed_anchor_size"],
    )


def parse_box_coding(data: Any) -> BoxCoding:
    _need(isinstance(data, Mapping), "'box_coding' must be an object")
    order = data.get("order", "yxhw")
    _need(order in BOX_ORDERS, f"box_coding.order must be one of {', '.join(BOX_ORDERS)}")
    scales = data.get("scales", {})
    _need(isinstance(scales, Mapping) and all(_number(scales.get(k, 1.0)) and float(scales.get(k, 1.0)) > 0 for k in "yxhw"),
          "box_coding.scales must give positive numbers for y, x, h and w")
    exponential = data.get("exponential_size", True)
    _need(isinstance(exponential, bool), "box_coding.exponential_size must be true or false")
    return BoxCoding(
        order=order,
        y_scale=float(scales.get("y", 1.0)),
        x_scale=float(scales.get("x", 1.0)),
        h_scale=float(scales.get("h", 1.0)),
        w_scale=float(scales.get("w", 1.0)),
        exponential_size=exponential,
    )


def parse_decoder(data: Any) -> SSDDecoder:
    """The card's ``decoder`` section; raises :class:`SSDConfigError` with the field at fault."""
    _need(isinstance(data, Mapping), "the 'decoder' section must be an object")
    _need(data.get("type") == DECODER_TYPE, f"'type' must be {DECODER_TYPE!r}")
    scores = data.get("scores", {})
    _need(isinstance(scores, Mapping), "'scores' must be an object")
    activation = scores.get("activation", "sigmoid")
    _need(activation in ACTIVATIONS, f"scores.activation must be one of {', '.join(ACTIVATIONS)}")
    ignore = scores.get("ignore_classes", [])
    _need(isinstance(ignore, (list, tuple)) and all(_whole(i) and i >= 0 for i in ignore),
          "scores.ignore_classes must list class indices")
    agnostic = data.get("class_agnostic_nms", True)
    _need(isinstance(agnostic, bool), "class_agnostic_nms must be true or false")
    return SSDDecoder(
        anchors=parse_anchor_spec(data.get("anchors")),
        box_coding=parse_box_coding(data.get("box_coding", {})),
        activation=activation,
        ignore_classes=tuple(int(i) for i in ignore),
        class_agnostic_nms=agnostic,
    )


# --- anchors --------------------------------------------------------------------------------


def layer_scale(spec: AnchorSpec, layer: int) -> float:
    """The anchor scale of ``layer``: linear from min_scale to max_scale over the layers."""
    if spec.num_layers == 1:
        return (spec.min_scale + spec.max_scale) / 2
    return spec.min_scale + (spec.max_scale - spec.min_scale) * layer / (spec.num_layers - 1)


def layer_anchor_shapes(spec: AnchorSpec, layer: int) -> list[tuple[float, float]]:
    """(height, width) of each anchor of one cell of ``layer``, normalised to the input."""
    scale = layer_scale(spec, layer)
    if layer == 0 and spec.reduce_boxes_in_lowest_layer:
        pairs = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
    else:
        pairs = [(scale, ratio) for ratio in spec.aspect_ratios]
        if spec.interpolated_scale_aspect_ratio > 0:
            following = 1.0 if layer == spec.num_layers - 1 else layer_scale(spec, layer + 1)
            pairs.append((math.sqrt(scale * following), spec.interpolated_scale_aspect_ratio))
    return [(s / math.sqrt(r), s * math.sqrt(r)) for s, r in pairs]


def generate_anchors(spec: AnchorSpec) -> np.ndarray:
    """Every anchor as a row ``(y_centre, x_centre, height, width)``, normalised to the input,
    in the order the model's outputs list them: layer by layer, row by row, cell by cell.

    Consecutive layers with the same stride share one feature map and are interleaved per cell
    (the generator's rule; no shipped model here uses it)."""
    height, width = spec.input_size
    rows: list[np.ndarray] = []
    layer = 0
    while layer < spec.num_layers:
        shapes: list[tuple[float, float]] = []
        last = layer
        while last < spec.num_layers and spec.strides[last] == spec.strides[layer]:
            shapes += layer_anchor_shapes(spec, last)
            last += 1
        stride = spec.strides[layer]
        map_h, map_w = math.ceil(height / stride), math.ceil(width / stride)
        ys = (np.arange(map_h, dtype=np.float64) + spec.anchor_offset[0]) / map_h
        xs = (np.arange(map_w, dtype=np.float64) + spec.anchor_offset[1]) / map_w
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")  # (map_h, map_w)
        count = len(shapes)
        sizes = np.ones((count, 2)) if spec.fixed_anchor_size else np.asarray(shapes, dtype=np.float64)
        layer_rows = np.empty((map_h, map_w, count, 4), dtype=np.float64)
        layer_rows[..., 0] = grid_y[..., None]
        layer_rows[..., 1] = grid_x[..., None]
        layer_rows[..., 2] = sizes[:, 0]
        layer_rows[..., 3] = sizes[:, 1]
        rows.append(layer_rows.reshape(-1, 4))
        layer = last
    return np.concatenate(rows).astype(np.float32)


# --- decoding -------------------------------------------------------------------------------


def decode_boxes(encodings: np.ndarray, anchors: np.ndarray, coding: BoxCoding) -> np.ndarray:
    """Raw ``(N, 4)`` box encodings -> ``(N, 4)`` boxes ``ymin, xmin, ymax, xmax`` normalised to
    the model input (not clipped)."""
    encodings = np.asarray(encodings, dtype=np.float32).reshape(-1, 4)
    if encodings.shape[0] != anchors.shape[0]:
        raise ValueError(f"{encodings.shape[0]} box encodings for {anchors.shape[0]} anchors")
    if coding.order == "yxhw":
        ty, tx, th, tw = encodings.T
    else:
        tx, ty, tw, th = encodings.T
    ay, ax, ah, aw = anchors.T
    y = ty / coding.y_scale * ah + ay
    x = tx / coding.x_scale * aw + ax
    if coding.exponential_size:
        with np.errstate(over="ignore"):
            h = np.exp(th / coding.h_scale) * ah
            w = np.exp(tw / coding.w_scale) * aw
    else:
        h = th / coding.h_scale * ah
        w = tw / coding.w_scale * aw
    return np.stack([y - h / 2, x - w / 2, y + h / 2, x + w / 2], axis=1)


def class_scores(raw: np.ndarray, activation: str) -> np.ndarray:
    """``(N, C)`` raw class outputs -> scores in 0..1."""
    raw = np.asarray(raw, dtype=np.float32)
    if activation == "sigmoid":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-raw))
    if activation == "softmax":
        shifted = np.exp(raw - raw.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    return raw


def best_classes(scores: np.ndarray, ignore_classes: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Each anchor's best class (ignored classes never win) and its score."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    ignore = [i for i in ignore_classes if 0 <= i < scores.shape[1]]
    if ignore:
        scores[:, ignore] = -np.inf
    classes = np.argmax(scores, axis=1)
    return classes, scores[np.arange(scores.shape[0]), classes]


def decode(
    box_encodings: np.ndarray,
    class_outputs: np.ndarray,
    anchors: np.ndarray,
    decoder: SSDDecoder,
    score_threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidates scoring at least ``score_threshold``: boxes ``(n, 4)`` (normalised ymin,
    xmin, ymax, xmax), class indices ``(n,)`` and scores ``(n,)``, best first. Only the kept
    anchors' boxes are decoded."""
    raw = np.asarray(class_outputs, dtype=np.float32).reshape(anchors.shape[0], -1)
    classes, scores = best_classes(class_scores(raw, decoder.activation), decoder.ignore_classes)
    keep = np.flatnonzero(np.isfinite(scores) & (scores >= score_threshold))
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    encodings = np.asarray(box_encodings, dtype=np.float32).reshape(anchors.shape[0], 4)[keep]
    boxes = decode_boxes(encodings, anchors[keep], decoder.box_coding)
    return boxes, classes[keep], scores[keep]


__all__ = [
    "AnchorSpec", "BoxCoding", "DECODER_TYPE", "SSDConfigError", "SSDDecoder", "best_classes",
    "class_scores", "decode", "decode_boxes", "generate_anchors", "layer_anchor_shapes", "layer_scale",
    "parse_decoder",
]
