"""Image augmentation: declared transforms, seeded policies, and a ``tf.data`` bridge.

In the style of albumentations, every transform is declared exactly once, in
:data:`TRANSFORMS`: its name, title, kind, the settings a user can change (type,
default, bounds, UI step, help text), its default probability, and two pure
functions:

* ``sample(rng, settings) -> params`` draws the exact parameters of one application
  from a :class:`numpy.random.Generator`;
* ``apply(image, params) -> image`` applies them to a ``(H, W, 3)`` uint8 RGB image.

That one list drives the Augmentation previews page (one expander per transform,
one widget per setting) and the tests (parametrized over it), so a new transform is
one new entry. Drawn parameters are plain JSON-able dicts, so a preview can show
exactly what was drawn and :meth:`Policy.replay` can apply them again.

A :class:`Policy` says which transforms are on, with what settings and
probabilities, which fill mode geometric transforms use, and the seed. It is what
the Train page and the previews page share, as JSON (:meth:`Policy.to_json`).

Speed: all geometric transforms of a policy (crop, flips, rotation, shift, shear,
zoom) are composed into ONE affine matrix and applied with one ``cv2.warpAffine``;
brightness, contrast and channel shift are 256-entry lookup tables; hue is one HSV
round trip with a lookup table on H; saturation is one blend with the grey image.

Conventions (``x`` = column, ``y`` = row, origin at the top-left pixel centre,
geometric transforms act about the image centre ``((W-1)/2, (H-1)/2)``):

* ``rotate.angle`` > 0 turns the content counter-clockwise on screen (as Keras and
  ``cv2.getRotationMatrix2D``);
* ``shift.x``/``shift.y`` > 0 move the content right/down, as fractions of W/H;
* ``shear.angle`` is in degrees, with Keras' matrix (see :func:`_shear_matrix`);
* ``zoom.scale`` > 1 magnifies (zooms in); Keras' ``zoom_range`` is the inverse;
* fill modes: ``nearest`` (edge pixel repeated), ``reflect`` (``dcba|abcd|dcba``,
  scipy's and Keras' ``reflect``), ``wrap`` (periodic) and ``constant``
  (``fill_value``) -- what is shown where a warp uncovers the outside of the image.

Keras ``ImageDataGenerator`` settings map onto a policy with
:meth:`Policy.from_image_data_generator`; the ``classic`` preset is the seed
project's generator mapped that way (details in that method's docstring).

This module imports only NumPy and OpenCV. TensorFlow is imported inside
:func:`make_tf_augment` only.

Usage::

    from cvplay import augment
    policy = augment.preset("classic")                  # or augment.DEFAULT_POLICY
    out, drawn = policy.apply_with_params(image, 7)     # drawn: [("rotate", {"angle": 3.1}), ...]
    batch = policy.apply_batch(images, seed=0)          # (N, H, W, 3) uint8, reproducible
    text = policy.to_json(); same = augment.Policy.from_json(text)
    tf_augment = augment.make_tf_augment(policy)       # imports TensorFlow here
    ds = ds.map(lambda x, y: (tf_augment(x), y))        # x: uint8 (or 0..255 float) batches
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

import cv2
import numpy as np

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_PRESET",
    "FILL_MODES",
    "PRESETS",
    "Param",
    "Policy",
    "TRANSFORMS",
    "Transform",
    "TransformConfig",
    "downscale_to",
    "format_params",
    "get_transform",
    "make_tf_augment",
    "preset",
]

FILL_MODES: dict[str, int] = {
    "nearest": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT,
    "wrap": cv2.BORDER_WRAP,
    "constant": cv2.BORDER_CONSTANT,
}

ParamType = Literal["float", "int", "bool", "range", "int_range"]
Kind = Literal["geometric", "colour"]
Params = dict[str, Any]
Drawn = list[tuple[str, Params]]


# --------------------------------------------------------------------------------------
# Declarations
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One user-facing setting of a transform.

    ``type`` is ``float``, ``int``, ``bool``, ``range`` (a ``(low, high)`` pair of
    floats) or ``int_range`` (a pair of ints). ``min``/``max`` bound the value (both
    ends of a range); ``step`` is the UI step.
    """

    name: str
    type: ParamType
    default: Any
    min: float | None = None
    max: float | None = None
    step: float | None = None
    help: str = ""

    def validate(self, value: Any, where: str = "") -> Any:
        """The value normalised (floats, tuples), or a ValueError naming ``where``."""
        label = f"{where}.{self.name}" if where else self.name
        if self.type == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{label}: expected true/false, got {value!r}")
            return bool(value)
        if self.type in ("float", "int"):
            return self._scalar(value, label)
        if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != 2:
            raise ValueError(f"{label}: expected a [low, high] pair, got {value!r}")
        low, high = (self._scalar(v, label) for v in value)
        if low > high:
            raise ValueError(f"{label}: low {low} is above high {high}")
        return (low, high)

    def _scalar(self, value: Any, label: str) -> float | int:
        integral = self.type in ("int", "int_range")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{label}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{label}: expected a finite number, got {value!r}")
        if integral:
            if float(value) != int(value):
                raise ValueError(f"{label}: expected an integer, got {value!r}")
            number: float | int = int(value)
        else:
            number = float(value)
        if self.min is not None and number < self.min:
            raise ValueError(f"{label}: {number} is below the minimum {self.min}")
        if self.max is not None and number > self.max:
            raise ValueError(f"{label}: {number} is above the maximum {self.max}")
        return number


@dataclass(frozen=True)
class Transform:
    """One declared transform. See the module docstring for the contract.

    ``matrix`` (geometric transforms only) gives the forward 3x3 affine matrix of drawn
    params for an image of the given height and width, in pixel-index coordinates;
    a policy multiplies these into one warp. ``identity`` is a settings override at
    which the transform is the identity ("zero strength"), or None where that makes no
    sense (a flip). ``random`` says whether ``sample`` draws anything (a flip's
    randomness is its probability alone). ``bounds`` maps drawn-param names to the
    interval they must lie in, given the settings.
    """

    name: str
    title: str
    kind: Kind
    params: tuple[Param, ...]
    sample_fn: Callable[[np.random.Generator, Mapping[str, Any]], Params]
    apply_fn: Callable[..., np.ndarray] | None = None
    matrix: Callable[[Mapping[str, Any], int, int], np.ndarray] | None = None
    probability: float = 1.0
    identity: Mapping[str, Any] | None = None
    random: bool = True
    bounds: Callable[[Mapping[str, Any]], dict[str, tuple[float, float]]] | None = None
    help: str = ""

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate(self, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Settings with defaults filled in and every value checked."""
        settings = dict(settings or {})
        known = {p.name for p in self.params}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(
                f"{self.name}: unknown setting(s) {unknown}; known: {sorted(known) or 'none'}"
            )
        return {p.name: p.validate(settings.get(p.name, p.default), self.name) for p in self.params}

    def sample(self, rng: np.random.Generator, settings: Mapping[str, Any] | None = None) -> Params:
        """Draw this transform's parameters from ``rng`` (settings default to the declared ones)."""
        return self.sample_fn(rng, self.validate(settings))

    def apply(
        self, image: np.ndarray, params: Mapping[str, Any], *, fill_mode: str = "nearest", fill_value: int = 0
    ) -> np.ndarray:
        """Apply drawn ``params`` to a ``(H, W, 3)`` uint8 image; returns a new array."""
        _check_image(image)
        if self.matrix is not None:
            height, width = image.shape[:2]
            return _warp(image, self.matrix(params, height, width), fill_mode, fill_value)
        assert self.apply_fn is not None
        return self.apply_fn(image, params)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"expected a (H, W, 3) uint8 RGB image, got shape {shape} dtype {dtype}")


def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    low, high = bounds
    return float(low) if low == high else float(rng.uniform(low, high))


def _about_centre(matrix: np.ndarray, height: int, width: int) -> np.ndarray:
    """``C @ matrix @ C^-1`` with C the translation to the image centre."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a, b, c, d = matrix[0, 0], matrix[0, 1], matrix[1, 0], matrix[1, 1]
    return np.array(
        [
            [a, b, cx - a * cx - b * cy + matrix[0, 2]],
            [c, d, cy - c * cx - d * cy + matrix[1, 2]],
            [0.0, 0.0, 1.0],
        ]
    )


_IDENTITY = np.eye(3)


def _warp(image: np.ndarray, forward: np.ndarray, fill_mode: str, fill_value: int) -> np.ndarray:
    """Apply a forward 3x3 affine (input index coords -> output index coords)."""
    if fill_mode not in FILL_MODES:
        raise ValueError(f"unknown fill mode {fill_mode!r}; choose from {sorted(FILL_MODES)}")
    height, width = image.shape[:2]
    if np.allclose(forward, _IDENTITY, atol=1e-9):
        return image.copy()
    # Pure flips: exact and cheaper than a warp.
    a, d = forward[0, 0], forward[1, 1]
    if forward[0, 1] == 0 and forward[1, 0] == 0 and abs(a) == 1 and abs(d) == 1:
        tx, ty = forward[0, 2], forward[1, 2]
        if tx == (0 if a > 0 else width - 1) and ty == (0 if d > 0 else height - 1):
            code = {(-1.0, 1.0): 1, (1.0, -1.0): 0, (-1.0, -1.0): -1}[(float(a), float(d))]
            return cv2.flip(image, code)
    # Closed-form inverse of the 2x3 part: warpAffine wants output -> input.
    a, b, tx = forward[0]
    c, d, ty = forward[1]
    det = a * d - b * c
    if abs(det) < 1e-12:
        raise ValueError("degenerate geometric transform (zero scale)")
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    inverse = np.array([[ia, ib, -(ia * tx + ib * ty)], [ic, id_, -(ic * tx + id_ * ty)]])
    return cv2.warpAffine(
        image,
        inverse,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=FILL_MODES[fill_mode],
        borderValue=(int(fill_value),) * 3,
    )


def _lut_apply(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    return cv2.LUT(image, np.clip(np.rint(table), 0, 255).astype(np.uint8))


_LEVELS = np.arange(256, dtype=np.float64)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


# --------------------------------------------------------------------------------------
# Geometric transforms: drawn params -> forward matrix
# --------------------------------------------------------------------------------------


def _crop_sample(rng: np.random.Generator, s: Mapping[str, Any]) -> Params:
    area = _uniform(rng, s["scale"])
    low, high = s["ratio"]
    ratio = math.exp(_uniform(rng, (math.log(low), math.log(high))))
    height = min(1.0, math.sqrt(area / ratio))
    width = min(1.0, math.sqrt(area * ratio))
    top = _uniform(rng, (0.0, 1.0 - height))
    left = _uniform(rng, (0.0, 1.0 - width))
    return {"area": area, "ratio": ratio, "top": top, "left": left, "height": height, "width": width}


def _crop_matrix(p: Mapping[str, Any], height: int, width: int) -> np.ndarray:
    # Output pixel centre u + 0.5 of [0, W] samples input x0 + (u + 0.5) * crop_width / W.
    sx, sy = 1.0 / p["width"], 1.0 / p["height"]
    return np.array(
        [
            [sx, 0.0, (0.5 - p["left"] * width) * sx - 0.5],
            [0.0, sy, (0.5 - p["top"] * height) * sy - 0.5],
            [0.0, 0.0, 1.0],
        ]
    )


def _no_params(rng: np.random.Generator, s: Mapping[str, Any]) -> Params:
    return {}


def _hflip_matrix(p: Mapping[str, Any], height: int, width: int) -> np.ndarray:
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _vflip_matrix(p: Mapping[str, Any], height: int, width: int) -> np.ndarray:
    return np.array([[1.0, 0.0, 0.0], [0.0, -1.0, height - 1.0], [0.0, 0.0, 1.0]])


def _rotate_matrix(p: Mapping[str, Any], height: int, width: int) -> np.ndarray:
    theta = math.radians(p["angle"])
    cos, sin = math.cos(theta), math.sin(theta)
    # Forward map; its inverse is Keras' [[cos, -sin], [sin, cos]] on (x, y).
    return _about_centre(np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]]), height, width)


def _shift_matrix(p: Mapping[str, Any], height: int, width: int) -> np.ndarray:
    return np.array([[1.0, 0.0, p["x"] * width], [0.0, 1.0, p["y"] * height], [0.0, 0.0, 1.0]])


def _shear_matrix(p: Mapping[str, Any], height: int, width: int) -> np.ndarray:
    """Keras' shear: output->input ``[[1, -sin a], [0, cos a]]`` on (x, y), a in degrees.

    (Not a pure shear: it also scales y by ``cos a``, negligible at small angles.) The
    forward map is its inverse ``[[1, tan a], [0, 1 / cos a]]``.
    """
    phi = math.radians(p["angle"])
    return _about_centre(
        np.array([[1.0, math.tan(phi), 0.0], [0.0, 1.0 / math.cos(phi), 0.0], [0.0, 0.0, 1.0]]), height, width
    )


def _zoom_sample(rng: np.random.Generator, s: Mapping[str, Any]) -> Params:
    # Drawn as 1 / u, u uniform in [1/high, 1/low]: exactly Keras' zoom_range distribution.
    low, high = s["scale"]
    inverse = (1.0 / high, 1.0 / low)
    scale_x = 1.0 / _uniform(rng, inverse)
    scale_y = 1.0 / _uniform(rng, inverse) if s["independent"] else scale_x
    return {"scale_x": scale_x, "scale_y": scale_y}


def _zoom_matrix(p: Mapping[str, Any], height: int, width: int) -> np.ndarray:
    return _about_centre(
        np.array([[p["scale_x"], 0.0, 0.0], [0.0, p["scale_y"], 0.0], [0.0, 0.0, 1.0]]), height, width
    )


# --------------------------------------------------------------------------------------
# Colour (pixel-level) transforms
# --------------------------------------------------------------------------------------


def _channel_shift(image: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """Keras' channel shift: add ``intensity`` to every channel, clip to the image's min..max."""
    intensity = p["intensity"]
    if intensity == 0:
        return image.copy()
    low, high = float(image.min()), float(image.max())
    return _lut_apply(image, np.clip(_LEVELS + intensity, low, high))


def _brightness(image: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """Multiply by ``factor`` (PIL's ``ImageEnhance.Brightness``, Keras' ``brightness_range``)."""
    factor = p["factor"]
    return image.copy() if factor == 1 else _lut_apply(image, _LEVELS * factor)


def _contrast(image: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """Blend with the mean grey level (PIL's ``ImageEnhance.Contrast``)."""
    factor = p["factor"]
    if factor == 1:
        return image.copy()
    mean = cv2.mean(_grey(image))[0]
    return _lut_apply(image, mean + factor * (_LEVELS - mean))


def _saturation(image: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """Blend with the grey image: 0 is grey, 1 the original, above 1 more saturated."""
    factor = p["factor"]
    if factor == 1:
        return image.copy()
    grey = cv2.cvtColor(_grey(image), cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(image, factor, grey, 1.0 - factor, 0.0)


def _hue(image: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """Rotate hue by ``shift`` degrees: one HSV round trip, a lookup table on H (2 degree steps)."""
    shift = p["shift"]
    steps = int(round(shift / 2.0)) % 180
    if steps == 0:
        return image.copy()
    table = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    table[:180, 0] = (np.arange(180) + steps) % 180
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    return cv2.cvtColor(cv2.LUT(hsv, table.reshape(256, 1, 3)), cv2.COLOR_HSV2RGB)


def _grayscale(image: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    return cv2.cvtColor(_grey(image), cv2.COLOR_GRAY2RGB)


def _blur(image: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    sigma = p["sigma"]
    if sigma <= 0:
        return image.copy()
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def _noise_sample(rng: np.random.Generator, s: Mapping[str, Any]) -> Params:
    return {"std": _uniform(rng, s["std"]), "seed": int(rng.integers(0, 2**31 - 1))}


def _noise(image: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """Add N(0, std) per pixel and channel.

    The noise comes from OpenCV's (thread-local) RNG re-seeded with the drawn ``seed``:
    the same params give the same image, at a quarter of NumPy's cost.
    """
    std = p["std"]
    if std <= 0:
        return image.copy()
    height, width = image.shape[:2]
    noise = np.empty((height, width * 3), np.float32)
    cv2.setRNGSeed(int(p["seed"]))
    cv2.randn(noise, 0.0, float(std))
    return cv2.add(image, noise.reshape(image.shape), dtype=cv2.CV_8U)


def _cutout_sample(rng: np.random.Generator, s: Mapping[str, Any]) -> Params:
    low, high = s["count"]
    count = int(low) if low == high else int(rng.integers(low, high + 1))
    holes = []
    for _ in range(count):
        height = _uniform(rng, s["size"])
        width = _uniform(rng, s["size"])
        holes.append([float(rng.random()), float(rng.random()), height, width])
    return {"holes": holes, "fill_value": s["fill_value"]}


def _cutout(image: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """Fill each hole ``[centre_y, centre_x, height, width]`` (fractions) with ``fill_value``.

    Holes are centred anywhere in the image and clipped at its border (Cutout, DeVries
    and Taylor 2017).
    """
    out = image.copy()
    height, width = image.shape[:2]
    for cy, cx, h, w in p["holes"]:
        hole_h, hole_w = round(h * height), round(w * width)
        if hole_h <= 0 or hole_w <= 0:
            continue
        top = round(cy * height - hole_h / 2)
        left = round(cx * width - hole_w / 2)
        out[max(0, top) : max(0, top + hole_h), max(0, left) : max(0, left + hole_w)] = p["fill_value"]
    return out


def _jpeg_sample(rng: np.random.Generator, s: Mapping[str, Any]) -> Params:
    low, high = s["quality"]
    return {"quality": int(low) if low == high else int(rng.integers(low, high + 1))}


def _jpeg(image: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """Encode as a JPEG of ``quality`` (1..100) and decode it again: blocks, ringing, colour bleed.

    OpenCV's encoder (libjpeg, 4:2:0 chroma subsampling) is deterministic, so the same params
    give the same image.
    """
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(p["quality"])])
    if not ok:  # pragma: no cover - libjpeg encodes any uint8 RGB image
        raise ValueError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _downscale(image: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """Shrink by ``factor`` (area averaging) and enlarge back (bilinear): a low-resolution
    photo shown at the original size, as a small upload or a digital zoom gives."""
    factor = p["factor"]
    height, width = image.shape[:2]
    small = (max(1, round(width / factor)), max(1, round(height / factor)))
    if small == (width, height):
        return image.copy()
    shrunk = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
    return cv2.resize(shrunk, (width, height), interpolation=cv2.INTER_LINEAR)


def _mirror(*names: str) -> Callable[[Mapping[str, Any]], dict[str, tuple[float, float]]]:
    """Bounds of drawn params that carry the name of the range setting they come from."""

    def bounds(s: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
        return {name: tuple(s[name]) for name in names}

    return bounds


def _range_param(name: str, default: tuple[float, float], low: float, high: float, step: float, help: str) -> Param:
    return Param(name, "range", default, low, high, step, help)


def _sample_range(setting: str, drawn: str | None = None) -> Callable[[np.random.Generator, Mapping[str, Any]], Params]:
    key = drawn or setting

    def sample(rng: np.random.Generator, s: Mapping[str, Any]) -> Params:
        return {key: _uniform(rng, s[setting])}

    return sample


# --------------------------------------------------------------------------------------
# THE declared list. Order = application order: geometric first (one warp), then colour.
# --------------------------------------------------------------------------------------

TRANSFORMS: tuple[Transform, ...] = (
    Transform(
        name="random_resized_crop",
        title="Random resized crop",
        kind="geometric",
        params=(
            _range_param("scale", (0.5, 1.0), 0.05, 1.0, 0.01, "Area of the crop, as a fraction of the image."),
            _range_param(
                "ratio", (0.75, 4 / 3), 0.25, 4.0, 0.01,
                "Aspect ratio of the crop relative to the image's (drawn log-uniformly); 1 keeps the image's shape.",
            ),
        ),
        sample_fn=_crop_sample,
        matrix=_crop_matrix,
        probability=1.0,
        identity={"scale": (1.0, 1.0), "ratio": (1.0, 1.0)},
        bounds=lambda s: {
            "area": s["scale"], "ratio": s["ratio"], "top": (0.0, 1.0), "left": (0.0, 1.0),
            "height": (0.0, 1.0), "width": (0.0, 1.0),
        },
        help="Crop a random box and resize it back to the image size (Inception-style).",
    ),
    Transform(
        name="hflip",
        title="Horizontal flip",
        kind="geometric",
        params=(),
        sample_fn=_no_params,
        matrix=_hflip_matrix,
        probability=0.5,
        random=False,
        help="Mirror left-right. Its randomness is its probability.",
    ),
    Transform(
        name="vflip",
        title="Vertical flip",
        kind="geometric",
        params=(),
        sample_fn=_no_params,
        matrix=_vflip_matrix,
        probability=0.5,
        random=False,
        help="Mirror top-bottom. Its randomness is its probability.",
    ),
    Transform(
        name="rotate",
        title="Rotation",
        kind="geometric",
        params=(
            _range_param(
                "angle", (-15.0, 15.0), -180.0, 180.0, 1.0,
                "Degrees, drawn uniformly; positive turns counter-clockwise. Keras rotation_range=r is (-r, r).",
            ),
        ),
        sample_fn=_sample_range("angle"),
        matrix=_rotate_matrix,
        identity={"angle": (0.0, 0.0)},
        bounds=_mirror("angle"),
        help="Rotate about the image centre.",
    ),
    Transform(
        name="shift",
        title="Width / height shift",
        kind="geometric",
        params=(
            _range_param("x", (-0.1, 0.1), -0.5, 0.5, 0.01, "Horizontal shift, fraction of the width; positive moves right."),
            _range_param("y", (-0.1, 0.1), -0.5, 0.5, 0.01, "Vertical shift, fraction of the height; positive moves down."),
        ),
        sample_fn=lambda rng, s: {"x": _uniform(rng, s["x"]), "y": _uniform(rng, s["y"])},
        matrix=_shift_matrix,
        identity={"x": (0.0, 0.0), "y": (0.0, 0.0)},
        bounds=_mirror("x", "y"),
        help="Translate the image (Keras width_shift_range / height_shift_range).",
    ),
    Transform(
        name="shear",
        title="Shear",
        kind="geometric",
        params=(
            _range_param(
                "angle", (-10.0, 10.0), -45.0, 45.0, 0.1,
                "Shear angle in DEGREES, as Keras 3's shear_range (0.1 there is 0.1 degree, not 0.1 rad).",
            ),
        ),
        sample_fn=_sample_range("angle"),
        matrix=_shear_matrix,
        identity={"angle": (0.0, 0.0)},
        bounds=_mirror("angle"),
        help="Slant the image horizontally about its centre.",
    ),
    Transform(
        name="zoom",
        title="Zoom",
        kind="geometric",
        params=(
            _range_param(
                "scale", (0.9, 1.1), 0.25, 4.0, 0.01,
                "Magnification; above 1 zooms in. Drawn as 1/u with u uniform in [1/high, 1/low], "
                "which is Keras' zoom_range distribution (Keras' factor is 1/scale).",
            ),
            Param("independent", "bool", False, help="Draw x and y scales separately (Keras does)."),
        ),
        sample_fn=_zoom_sample,
        matrix=_zoom_matrix,
        identity={"scale": (1.0, 1.0)},
        bounds=lambda s: {"scale_x": s["scale"], "scale_y": s["scale"]},
        help="Scale about the image centre.",
    ),
    Transform(
        name="channel_shift",
        title="Channel shift",
        kind="colour",
        params=(
            _range_param(
                "intensity", (-20.0, 20.0), -255.0, 255.0, 1.0,
                "Added to all channels, clipped to the image's own min..max (Keras channel_shift_range).",
            ),
        ),
        sample_fn=_sample_range("intensity"),
        apply_fn=_channel_shift,
        identity={"intensity": (0.0, 0.0)},
        bounds=_mirror("intensity"),
        help="Keras-style additive shift of all channels.",
    ),
    Transform(
        name="brightness",
        title="Brightness",
        kind="colour",
        params=(_range_param("factor", (0.8, 1.2), 0.0, 3.0, 0.01, "Multiplies the pixels; 1 is unchanged."),),
        sample_fn=_sample_range("factor"),
        apply_fn=_brightness,
        identity={"factor": (1.0, 1.0)},
        bounds=_mirror("factor"),
        help="Scale brightness (PIL ImageEnhance.Brightness, Keras brightness_range).",
    ),
    Transform(
        name="contrast",
        title="Contrast",
        kind="colour",
        params=(_range_param("factor", (0.8, 1.2), 0.0, 3.0, 0.01, "0 is flat mean grey, 1 unchanged."),),
        sample_fn=_sample_range("factor"),
        apply_fn=_contrast,
        identity={"factor": (1.0, 1.0)},
        bounds=_mirror("factor"),
        help="Scale contrast about the mean grey level.",
    ),
    Transform(
        name="saturation",
        title="Saturation",
        kind="colour",
        params=(_range_param("factor", (0.7, 1.3), 0.0, 3.0, 0.01, "0 is grey, 1 unchanged."),),
        sample_fn=_sample_range("factor"),
        apply_fn=_saturation,
        identity={"factor": (1.0, 1.0)},
        bounds=_mirror("factor"),
        help="Blend with the grey image.",
    ),
    Transform(
        name="hue",
        title="Hue",
        kind="colour",
        params=(_range_param("shift", (-10.0, 10.0), -180.0, 180.0, 1.0, "Hue rotation in degrees (applied in 2-degree steps)."),),
        sample_fn=_sample_range("shift"),
        apply_fn=_hue,
        identity={"shift": (0.0, 0.0)},
        bounds=_mirror("shift"),
        help="Rotate hue in HSV space.",
    ),
    Transform(
        name="grayscale",
        title="Grayscale",
        kind="colour",
        params=(),
        sample_fn=_no_params,
        apply_fn=_grayscale,
        probability=0.1,
        random=False,
        help="Replace the image by its grey version (as 3 channels). Its randomness is its probability.",
    ),
    Transform(
        name="gaussian_blur",
        title="Gaussian blur",
        kind="colour",
        params=(_range_param("sigma", (0.1, 1.5), 0.0, 10.0, 0.1, "Standard deviation of the kernel, pixels."),),
        sample_fn=_sample_range("sigma"),
        apply_fn=_blur,
        probability=0.5,
        identity={"sigma": (0.0, 0.0)},
        bounds=_mirror("sigma"),
        help="Blur with a Gaussian kernel (size from sigma).",
    ),
    Transform(
        name="gaussian_noise",
        title="Gaussian noise",
        kind="colour",
        params=(_range_param("std", (2.0, 10.0), 0.0, 100.0, 0.5, "Standard deviation of the noise, in 0..255 levels."),),
        sample_fn=_noise_sample,
        apply_fn=_noise,
        probability=0.5,
        identity={"std": (0.0, 0.0)},
        bounds=lambda s: {"std": s["std"], "seed": (0, 2**31 - 1)},
        help="Add independent Gaussian noise to every pixel and channel.",
    ),
    Transform(
        name="cutout",
        title="Cutout / random erasing",
        kind="colour",
        params=(
            Param("count", "int_range", (1, 2), 0, 16, 1, "Number of holes, drawn uniformly."),
            _range_param("size", (0.1, 0.3), 0.0, 1.0, 0.01, "Hole height and width, fractions of the image's."),
            Param("fill_value", "int", 0, 0, 255, 1, "Grey level the holes are filled with."),
        ),
        sample_fn=_cutout_sample,
        apply_fn=_cutout,
        probability=0.5,
        identity={"size": (0.0, 0.0)},
        bounds=lambda s: {"holes": (0.0, 1.0), "fill_value": (s["fill_value"], s["fill_value"])},
        help="Erase random rectangles (holes may reach past the border and are clipped).",
    ),
    Transform(
        name="jpeg",
        title="JPEG quality",
        kind="colour",
        params=(
            Param("quality", "int_range", (20, 95), 1, 100, 1,
                  "JPEG quality, drawn uniformly (integers); 100 is nearly lossless, below 20 shows blocks."),
        ),
        sample_fn=_jpeg_sample,
        apply_fn=_jpeg,
        probability=0.5,
        bounds=_mirror("quality"),
        help="Compress as a JPEG and decode again, as uploads and messaging apps do.",
    ),
    Transform(
        name="downscale",
        title="Downscale",
        kind="colour",
        params=(
            _range_param(
                "factor", (1.5, 3.0), 1.0, 16.0, 0.1,
                "Shrink by this factor (area averaging), then enlarge back (bilinear); 1 is unchanged.",
            ),
        ),
        sample_fn=_sample_range("factor"),
        apply_fn=_downscale,
        probability=0.5,
        identity={"factor": (1.0, 1.0)},
        bounds=_mirror("factor"),
        help="Lose resolution: a small or heavily zoomed photo shown at full size.",
    ),
)

_BY_NAME: dict[str, Transform] = {t.name: t for t in TRANSFORMS}
assert len(_BY_NAME) == len(TRANSFORMS), "transform names must be unique"
assert [t.kind for t in TRANSFORMS] == sorted((t.kind for t in TRANSFORMS), key=lambda k: k != "geometric"), (
    "geometric transforms must come before colour ones: they are composed into one warp first"
)


def get_transform(name: str) -> Transform:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown transform {name!r}; known: {', '.join(_BY_NAME)}") from None


# --------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------

FORMAT = "cvplay.augment/v1"


@dataclass
class TransformConfig:
    """A transform's state in a policy: on or off, its probability, its settings."""

    enabled: bool = False
    probability: float = 1.0
    settings: dict[str, Any] = field(default_factory=dict)


def _as_rng(rng_or_seed: np.random.Generator | int | Sequence[int] | None) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


def _entropy(seed: int | Sequence[int]) -> list[int]:
    values = [int(seed)] if isinstance(seed, (int, np.integer)) else [int(v) for v in seed]
    if any(v < 0 for v in values):
        raise ValueError(f"seeds must be non-negative integers, got {seed!r}")
    return values


@dataclass
class Policy:
    """Which transforms are on, with what settings and probabilities; the fill mode; the seed.

    ``transforms`` always holds every declared transform, in declared order (missing
    ones are filled in disabled with their defaults; settings are validated), so a
    policy is complete and ``to_dict`` round-trips through ``from_dict``.
    """

    transforms: dict[str, TransformConfig] = field(default_factory=dict)
    fill_mode: str = "nearest"
    fill_value: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [name for name in self.transforms if name not in _BY_NAME]
        if unknown:
            raise ValueError(f"unknown transform(s) {unknown}; known: {', '.join(_BY_NAME)}")
        complete: dict[str, TransformConfig] = {}
        for t in TRANSFORMS:
            config = self.transforms.get(t.name) or TransformConfig(False, t.probability, {})
            probability = Param("probability", "float", 1.0, 0.0, 1.0).validate(config.probability, t.name)
            complete[t.name] = TransformConfig(bool(config.enabled), probability, t.validate(config.settings))
        self.transforms = complete
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode: unknown {self.fill_mode!r}; choose from {', '.join(FILL_MODES)}")
        self.fill_value = Param("fill_value", "int", 0, 0, 255).validate(self.fill_value)
        self.seed = Param("seed", "int", 0, 0, 2**63 - 1).validate(self.seed)

    # ---- construction ------------------------------------------------------------

    @classmethod
    def build(
        cls,
        enabled: Mapping[str, Mapping[str, Any] | bool] | None = None,
        *,
        probabilities: Mapping[str, float] | None = None,
        fill_mode: str = "nearest",
        fill_value: int = 0,
        seed: int = 0,
    ) -> "Policy":
        """A policy with the named transforms on: ``{"hflip": True, "rotate": {"angle": (-5, 5)}}``.

        Probabilities default to each transform's declared one.
        """
        probabilities = dict(probabilities or {})
        configs: dict[str, TransformConfig] = {}
        for name, settings in (enabled or {}).items():
            t = get_transform(name)
            configs[name] = TransformConfig(
                True,
                probabilities.pop(name, t.probability),
                {} if settings is True else dict(settings),  # type: ignore[arg-type]
            )
        for name, probability in probabilities.items():
            t = get_transform(name)
            configs[name] = TransformConfig(False, probability, {})
        return cls(configs, fill_mode=fill_mode, fill_value=fill_value, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        transforms: dict[str, Any] = {}
        for name, config in self.transforms.items():
            entry: dict[str, Any] = {"enabled": config.enabled, "probability": config.probability}
            for key, value in config.settings.items():
                entry[key] = list(value) if isinstance(value, tuple) else value
            transforms[name] = entry
        return {
            "format": FORMAT,
            "seed": self.seed,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "transforms": transforms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Policy":
        """Inverse of :meth:`to_dict`. A listed transform is on unless ``"enabled": false``;
        unlisted ones are off. Unknown keys, transforms or settings and out-of-range
        values raise ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a policy must be a JSON object, got {type(data).__name__}")
        allowed = {"format", "seed", "fill_mode", "fill_value", "transforms"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown policy key(s) {unknown}; allowed: {sorted(allowed)}")
        if data.get("format", FORMAT) != FORMAT:
            raise ValueError(f"unsupported policy format {data.get('format')!r}; expected {FORMAT!r}")
        entries = data.get("transforms", {})
        if not isinstance(entries, Mapping):
            raise ValueError("'transforms' must be an object mapping transform names to settings")
        configs: dict[str, TransformConfig] = {}
        for name, entry in entries.items():
            t = get_transform(name)
            if entry is True or entry is None:
                entry = {}
            if not isinstance(entry, Mapping):
                raise ValueError(f"{name}: expected an object of settings, got {entry!r}")
            entry = dict(entry)
            enabled = entry.pop("enabled", True)
            if not isinstance(enabled, bool):
                raise ValueError(f"{name}.enabled: expected true/false, got {enabled!r}")
            probability = entry.pop("probability", t.probability)
            configs[name] = TransformConfig(enabled, probability, entry)
        return cls(
            configs,
            fill_mode=data.get("fill_mode", "nearest"),
            fill_value=data.get("fill_value", 0),
            seed=data.get("seed", 0),
        )

    def to_json(self) -> str:
        """The policy as JSON, one transform a line (compact enough to read and diff)."""
        data = self.to_dict()
        transforms = data.pop("transforms")
        lines = [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in data.items()]
        entries = [f"    {json.dumps(name)}: {json.dumps(entry)}" for name, entry in transforms.items()]
        body = ",\n".join(entries)
        return "{\n" + "\n".join(lines) + '\n  "transforms": {\n' + body + "\n  }\n}\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> "Policy":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON: {error}") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "Policy":
        """A copy with ``fill_mode``/``fill_value``/``seed`` changed."""
        data = self.to_dict()
        data.update(changes)
        return Policy.from_dict(data)

    @classmethod
    def from_image_data_generator(cls, *, ignore: Iterable[str] = (), seed: int = 0, **kwargs: Any) -> "Policy":
        """The policy equivalent to ``keras.preprocessing.image.ImageDataGenerator(**kwargs)``.

        Mapping (checked against keras 3's ``keras/src/legacy/preprocessing/image.py``):

        * ``rotation_range=r`` -> ``rotate.angle = (-r, r)`` degrees, probability 1.
          Same direction (positive = counter-clockwise) and matrix as Keras.
        * ``width_shift_range=w`` / ``height_shift_range=h`` (fractions < 1) ->
          ``shift.x = (-w, w)``, ``shift.y = (-h, h)``, probability 1. Keras 3's legacy
          code actually applies the height range along x (scaled by the height) and the
          width range along y, a quirk of its axis swap; we follow the documented intent
          (width -> horizontal). With equal ranges on square images -- the seed project's
          case -- the two are the same distribution. Pixel ranges (>= 1, ints, lists)
          depend on the image size and are refused.
        * ``shear_range=s`` -> ``shear.angle = (-s, s)`` in DEGREES: Keras 3 converts
          with ``np.deg2rad``. So the seed project's ``shear_range=0.1`` is a 0.1 degree
          shear (invisible); we keep it faithful.
        * ``zoom_range=z`` or ``[lo, hi]`` (``z`` means ``[1-z, 1+z]``) -> ``zoom.scale =
          (1/hi, 1/lo)``, ``independent=True``: Keras' factor divides coordinates
          (``zx > 1`` zooms out) and draws x and y separately; our draw of ``scale`` is
          1/uniform(lo, hi), the same distribution.
        * ``horizontal_flip`` / ``vertical_flip`` -> ``hflip`` / ``vflip`` at p = 0.5.
        * ``fill_mode`` (nearest, reflect, wrap, constant) and ``cval`` -> ``fill_mode``,
          ``fill_value`` (cval must be an integer level 0..255).
        * ``brightness_range=[lo, hi]`` -> ``brightness.factor`` (PIL multiply), p = 1.
        * ``channel_shift_range=r`` -> ``channel_shift.intensity = (-r, r)``, p = 1.

        Transforms are composed in one order (flips, rotation, shift, shear, zoom, then
        channel shift and brightness); Keras flips after the affine, the same
        distribution since each range is symmetric. Random streams differ from Keras':
        the same seed gives the same *kind* of images, not the same ones.

        Other settings at their Keras defaults are accepted; any other value raises
        ValueError (``ignore=("rescale",)`` skips named non-augmentation settings, which
        belong to the model's preprocessing).
        """
        ignored = set(ignore)
        kwargs = {k: v for k, v in kwargs.items() if k not in ignored}
        no_op_defaults: dict[str, tuple[Any, ...]] = {
            "featurewise_center": (False,),
            "samplewise_center": (False,),
            "featurewise_std_normalization": (False,),
            "samplewise_std_normalization": (False,),
            "zca_whitening": (False,),
            "zca_epsilon": (1e-6,),
            "rescale": (None, 1, 1.0),
            "preprocessing_function": (None,),
            "data_format": (None, "channels_last"),
            "validation_split": (0, 0.0),
            "interpolation_order": (1,),
            "dtype": (None, "float32"),
        }
        supported = {
            "rotation_range", "width_shift_range", "height_shift_range", "shear_range", "zoom_range",
            "horizontal_flip", "vertical_flip", "fill_mode", "cval", "brightness_range", "channel_shift_range",
        }
        for key, value in kwargs.items():
            if key in supported:
                continue
            if key in no_op_defaults:
                if any(value is d or (type(value) is type(d) and value == d) for d in no_op_defaults[key]):
                    continue
                raise ValueError(
                    f"ImageDataGenerator setting {key}={value!r} is not supported by cvplay.augment "
                    f"(only its default {no_op_defaults[key][0]!r} is); if it is model preprocessing "
                    f"rather than augmentation, pass ignore=({key!r},)"
                )
            raise ValueError(f"unknown ImageDataGenerator setting {key!r}")

        def number(key: str, low: float, high: float) -> float:
            value = kwargs.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{key}={value!r}: only a single number is supported")
            if not low <= float(value) <= high:
                raise ValueError(f"{key}={value!r} is outside [{low}, {high}]")
            return float(value)

        enabled: dict[str, Any] = {}
        probabilities: dict[str, float] = {}
        rotation = number("rotation_range", 0, 180)
        if rotation:
            enabled["rotate"] = {"angle": (-rotation, rotation)}
            probabilities["rotate"] = 1.0
        shifts = {}
        for key, axis in (("width_shift_range", "x"), ("height_shift_range", "y")):
            value = kwargs.get(key, 0.0)
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value != 0:
                raise ValueError(f"{key}={value!r}: integer ranges are pixel shifts; give a fraction < 1")
            value = number(key, 0, math.inf)
            if value >= 1:
                raise ValueError(f"{key}={value!r}: values >= 1 are pixel shifts in Keras; give a fraction < 1")
            shifts[axis] = (-value, value)
        if any(high for _, high in shifts.values()):
            enabled["shift"] = shifts
            probabilities["shift"] = 1.0
        shear = number("shear_range", 0, 45)
        if shear:
            enabled["shear"] = {"angle": (-shear, shear)}
            probabilities["shear"] = 1.0
        zoom = kwargs.get("zoom_range", 0.0)
        if isinstance(zoom, (int, float, np.integer, np.floating)) and not isinstance(zoom, bool):
            low, high = 1.0 - float(zoom), 1.0 + float(zoom)
        elif isinstance(zoom, (list, tuple)) and len(zoom) == 2 and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in zoom
        ):
            low, high = float(zoom[0]), float(zoom[1])
        else:
            raise ValueError(f"zoom_range={zoom!r}: expected a float or a [low, high] pair")
        if low <= 0 or low > high:
            raise ValueError(f"zoom_range={zoom!r}: needs 0 < low <= high")
        if (low, high) != (1.0, 1.0):
            enabled["zoom"] = {"scale": (1.0 / high, 1.0 / low), "independent": True}
            probabilities["zoom"] = 1.0
        for key, name in (("horizontal_flip", "hflip"), ("vertical_flip", "vflip")):
            value = kwargs.get(key, False)
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{key}={value!r}: expected True or False")
            if value:
                enabled[name] = True
                probabilities[name] = 0.5
        channel = number("channel_shift_range", 0, 255)
        if channel:
            enabled["channel_shift"] = {"intensity": (-channel, channel)}
            probabilities["channel_shift"] = 1.0
        brightness = kwargs.get("brightness_range")
        if brightness is not None:
            if not isinstance(brightness, (list, tuple)) or len(brightness) != 2:
                raise ValueError(f"brightness_range={brightness!r}: expected a [low, high] pair")
            enabled["brightness"] = {"factor": (float(brightness[0]), float(brightness[1]))}
            probabilities["brightness"] = 1.0
        fill_mode = kwargs.get("fill_mode", "nearest")
        if fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode={fill_mode!r}: supported are {', '.join(FILL_MODES)}")
        cval = kwargs.get("cval", 0.0)
        if not isinstance(cval, (int, float, np.integer, np.floating)) or float(cval) != int(cval) or not 0 <= cval <= 255:
            raise ValueError(f"cval={cval!r}: expected an integer grey level 0..255 for uint8 images")
        return cls.build(enabled, probabilities=probabilities, fill_mode=fill_mode, fill_value=int(cval), seed=seed)

    # ---- use -----------------------------------------------------------------------

    def enabled(self) -> list[tuple[Transform, float, dict[str, Any]]]:
        """(transform, probability, settings) of the transforms that are on, in order."""
        return [
            (_BY_NAME[name], config.probability, config.settings)
            for name, config in self.transforms.items()
            if config.enabled and config.probability > 0
        ]

    def sample(self, rng: np.random.Generator | int | None = None, *, _active=None) -> Drawn:
        """Draw which transforms apply and their exact params: ``[(name, params), ...]``."""
        rng = _as_rng(rng)
        drawn: Drawn = []
        for t, probability, settings in _active if _active is not None else self.enabled():
            if probability >= 1 or rng.random() < probability:
                drawn.append((t.name, t.sample_fn(rng, settings)))
        return drawn

    def replay(self, image: np.ndarray, drawn: Sequence[tuple[str, Mapping[str, Any]]]) -> np.ndarray:
        """Apply drawn params (from :meth:`sample`): geometric ones as ONE warp, then colour ones."""
        _check_image(image)
        height, width = image.shape[:2]
        forward = None
        out = image
        for name, params in drawn:
            t = get_transform(name)
            if t.matrix is not None:
                matrix = t.matrix(params, height, width)
                forward = matrix if forward is None else matrix @ forward
        if forward is not None:
            out = _warp(image, forward, self.fill_mode, self.fill_value)
        for name, params in drawn:
            t = _BY_NAME[name]
            if t.apply_fn is not None:
                out = t.apply_fn(out, params)
        return out if out is not image else image.copy()

    def apply_with_params(
        self, image: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> tuple[np.ndarray, Drawn]:
        """(augmented image, the exact params drawn)."""
        drawn = self.sample(rng)
        return self.replay(image, drawn), drawn

    def apply(self, image: np.ndarray, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """One augmented copy. ``rng`` is a Generator, or a seed for ``default_rng``."""
        return self.replay(image, self.sample(rng))

    def image_rng(self, index: int, seed: int | Sequence[int] | None = None) -> np.random.Generator:
        """The generator :meth:`apply_batch` uses for image ``index``: ``default_rng([*seed, index])``."""
        return np.random.default_rng([*_entropy(self.seed if seed is None else seed), int(index)])

    def apply_batch(self, images: np.ndarray, seed: int | Sequence[int] | None = None) -> np.ndarray:
        """Augment ``(N, H, W, 3)`` uint8 images, deterministically under ``seed``
        (default: the policy's). Image ``i`` uses :meth:`image_rng` ``(i, seed)``, so
        ``apply_batch(x, s)[i] == apply(x[i], image_rng(i, s))``."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            raise ValueError(f"expected (N, H, W, 3) uint8 images, got shape {images.shape} dtype {images.dtype}")
        entropy = _entropy(self.seed if seed is None else seed)
        active = self.enabled()
        out = np.empty_like(images)
        if not active:
            out[...] = images
            return out
        for index in range(len(images)):
            rng = np.random.default_rng([*entropy, index])
            out[index] = self.replay(images[index], self.sample(rng, _active=active))
        return out

    def preview(self, image: np.ndarray, count: int, seed: int | None = None) -> list[tuple[np.ndarray, Drawn]]:
        """``count`` (augmented image, drawn params) pairs, sample ``i`` drawn as in :meth:`apply_batch`."""
        return [self.apply_with_params(image, self.image_rng(i, seed)) for i in range(count)]

    def tf_map_fn(self, seed: int | None = None) -> Callable[[Any], Any]:
        """Shortcut for :func:`make_tf_augment` ``(self, seed)``."""
        return make_tf_augment(self, seed)


# --------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------

# The seed project's Keras generator, kept verbatim; "classic" is its mapping.
CLASSIC_IMAGE_DATA_GENERATOR: dict[str, Any] = {
    "rotation_range": 15,
    "width_shift_range": 0.1,
    "height_shift_range": 0.1,
    "shear_range": 0.1,
    "zoom_range": 0.1,
    "horizontal_flip": True,
    "fill_mode": "nearest",
}

_PRESET_FACTORIES: dict[str, Callable[[], Policy]] = {
    "none": lambda: Policy(),
    "light": lambda: Policy.build(
        {
            "hflip": True,
            "rotate": {"angle": (-10.0, 10.0)},
            "shift": {"x": (-0.05, 0.05), "y": (-0.05, 0.05)},
            "brightness": {"factor": (0.9, 1.1)},
            "contrast": {"factor": (0.9, 1.1)},
        },
        probabilities={"hflip": 0.5, "rotate": 0.5, "shift": 0.5, "brightness": 0.5, "contrast": 0.5},
    ),
    "classic": lambda: Policy.from_image_data_generator(**CLASSIC_IMAGE_DATA_GENERATOR),
    "strong": lambda: Policy.build(
        {
            "random_resized_crop": {"scale": (0.4, 1.0), "ratio": (0.75, 4 / 3)},
            "hflip": True,
            "rotate": {"angle": (-25.0, 25.0)},
            "shear": {"angle": (-10.0, 10.0)},
            "brightness": {"factor": (0.7, 1.3)},
            "contrast": {"factor": (0.7, 1.3)},
            "saturation": {"factor": (0.6, 1.4)},
            "hue": {"shift": (-15.0, 15.0)},
            "grayscale": True,
            "gaussian_blur": {"sigma": (0.1, 1.5)},
            "gaussian_noise": {"std": (2.0, 12.0)},
            "cutout": {"count": (1, 3), "size": (0.1, 0.3), "fill_value": 127},
        },
        probabilities={
            "random_resized_crop": 1.0, "hflip": 0.5, "rotate": 0.7, "shear": 0.3, "brightness": 0.8,
            "contrast": 0.8, "saturation": 0.8, "hue": 0.5, "grayscale": 0.1, "gaussian_blur": 0.2,
            "gaussian_noise": 0.3, "cutout": 0.5,
        },
        fill_mode="reflect",
    ),
}
PRESETS: tuple[str, ...] = tuple(_PRESET_FACTORIES)

#: The default policy is the ``classic`` preset: the seed project's ImageDataGenerator,
#: so a model trained with the defaults sees what the seed project's models saw.
DEFAULT_PRESET = "classic"


def preset(name: str) -> Policy:
    """A fresh copy of a preset policy: ``none``, ``light``, ``classic`` or ``strong``."""
    try:
        return _PRESET_FACTORIES[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None


DEFAULT_POLICY: Policy = preset(DEFAULT_PRESET)


# --------------------------------------------------------------------------------------
# Display and tf.data helpers
# --------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def format_params(drawn: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Drawn params, one transform a line: ``rotate: angle=7.32``; ``(no transform)`` if none."""
    if not drawn:
        return "(no transform)"
    lines = []
    for name, params in drawn:
        body = ", ".join(f"{key}={_fmt(value)}" for key, value in params.items())
        lines.append(f"{name}: {body}" if body else name)
    return "\n".join(lines)


def downscale_to(image: np.ndarray, max_side: int = 512) -> np.ndarray:
    """The image shrunk (INTER_AREA) so its longer side is at most ``max_side``; unchanged if it fits."""
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def make_tf_augment(policy: Policy, seed: int | None = None) -> Callable[[Any], Any]:
    """A function for ``tf.data``: ``ds.map(lambda x, y: (augment(x), y))``.

    ``augment(images)`` takes a ``(N, H, W, 3)`` batch or one ``(H, W, 3)`` image,
    uint8 or float in 0..255 (returned in the same dtype), and runs
    :meth:`Policy.apply_batch` through ``tf.numpy_function``. Call ``k`` (counted from
    0 per returned function) uses seed ``[seed, k]`` (``seed`` defaults to the
    policy's), so every batch and epoch differs and a sequential pipeline
    (``num_parallel_calls=None``) is reproducible; with parallel calls the order of ``k``
    is not. TensorFlow is imported here, not at module import.
    """
    import tensorflow as tf

    base = _entropy(policy.seed if seed is None else seed)
    counter = itertools.count()
    lock = threading.Lock()

    def augment_numpy(images: np.ndarray) -> np.ndarray:
        with lock:
            call = next(counter)
        array = np.asarray(images)
        single = array.ndim == 3
        batch = array[None] if single else array
        if batch.dtype == np.uint8:
            out = policy.apply_batch(batch, [*base, call])
        else:
            as_uint8 = np.clip(np.rint(batch), 0, 255).astype(np.uint8)
            out = policy.apply_batch(as_uint8, [*base, call]).astype(array.dtype)
        return out[0] if single else out

    def augment(images: Any) -> Any:
        images = tf.convert_to_tensor(images)
        out = tf.numpy_function(augment_numpy, [images], images.dtype, stateful=True, name="cvplay_augment")
        out.set_shape(images.shape)
        return out

    return augment
