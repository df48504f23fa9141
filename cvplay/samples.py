"""Built-in sample images, drawn procedurally (no downloaded photos ship with cvplay).

Each sample is chosen so some augmentation is easy to see: an asymmetric scene with
text and an "up" arrow (flips, rotation), a checkerboard with a marked corner (shear,
zoom, fill modes), a colour wheel (hue, saturation), a numbered grid (shift, crop).

>>> from cvplay import samples
>>> samples.SAMPLES            # names, in display order
>>> image = samples.load("scene")   # (256, 256, 3) uint8 RGB, a fresh copy
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import cv2
import numpy as np

__all__ = ["SAMPLES", "DESCRIPTIONS", "load"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _scene(size: int) -> np.ndarray:
    s = size / 256.0
    image = np.empty((size, size, 3), np.uint8)
    # Sky: vertical gradient from deep to pale blue.
    t = np.linspace(0.0, 1.0, size)[:, None]
    sky = (1 - t) * np.array([40, 90, 200]) + t * np.array([170, 210, 250])
    image[:] = sky[:, None, :].astype(np.uint8)
    # Ground: a green-and-olive checkerboard on the lower third.
    horizon = int(size * 0.68)
    cell = max(2, int(16 * s))
    yy, xx = np.mgrid[horizon:size, 0:size]
    board = ((yy // cell + xx // cell) % 2).astype(bool)
    image[horizon:][board] = (70, 150, 60)
    image[horizon:][~board] = (120, 170, 70)

    def p(x: float, y: float) -> tuple[int, int]:
        return int(round(x * s)), int(round(y * s))

    # Sun (top right) with rays.
    cv2.circle(image, p(205, 45), int(22 * s), (255, 215, 40), -1, cv2.LINE_AA)
    for angle in range(0, 360, 45):
        a = np.deg2rad(angle)
        cv2.line(image, p(205 + 28 * np.cos(a), 45 + 28 * np.sin(a)), p(205 + 38 * np.cos(a), 45 + 38 * np.sin(a)),
                 (255, 200, 30), max(1, int(3 * s)), cv2.LINE_AA)
    # House (left): red walls, dark roof, door on its right side.
    cv2.rectangle(image, p(30, 120), p(110, 180), (200, 50, 40), -1)
    roof = np.array([p(22, 122), p(70, 82), p(118, 122)], np.int32)
    cv2.fillPoly(image, [roof], (90, 40, 30), cv2.LINE_AA)
    cv2.rectangle(image, p(80, 145), p(100, 180), (70, 40, 20), -1)
    cv2.rectangle(image, p(40, 132), p(62, 152), (240, 240, 200), -1)
    # Tree (right).
    cv2.rectangle(image, p(170, 130), p(182, 180), (110, 70, 30), -1)
    cv2.circle(image, p(176, 118), int(24 * s), (30, 120, 40), -1, cv2.LINE_AA)
    # "Up" arrow and text: orientation at a glance.
    cv2.arrowedLine(image, p(140, 165), p(140, 95), (255, 255, 255), max(1, int(4 * s)), cv2.LINE_AA, tipLength=0.3)
    cv2.putText(image, "cvplay", p(12, 40), _FONT, 1.1 * s, (255, 255, 255), max(1, int(2 * s)), cv2.LINE_AA)
    cv2.putText(image, "UP", p(125, 88), _FONT, 0.6 * s, (255, 255, 255), max(1, int(2 * s)), cv2.LINE_AA)
    return image


def _checkerboard(size: int) -> np.ndarray:
    cells = 8
    yy, xx = np.mgrid[0:size, 0:size]
    board = ((yy * cells // size + xx * cells // size) % 2).astype(bool)
    image = np.where(board[..., None], np.uint8(235), np.uint8(25)).astype(np.uint8)
    image = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    cell = size // cells
    image[:cell, :cell] = (220, 30, 30)  # top-left cell red
    image[:cell, -cell:] = (30, 90, 220)  # top-right cell blue
    cv2.circle(image, (size // 2, size // 2), size // 5, (250, 200, 0), max(1, size // 64), cv2.LINE_AA)
    return image


def _colour_wheel(size: int) -> np.ndarray:
    centre = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dx, dy = xx - centre, yy - centre
    radius = np.sqrt(dx * dx + dy * dy) / centre
    hue = (np.degrees(np.arctan2(-dy, dx)) % 360.0) / 2.0  # OpenCV hue: 0..180
    hsv = np.empty((size, size, 3), np.uint8)
    hsv[..., 0] = hue.astype(np.uint8)
    hsv[..., 1] = np.clip(radius * 255, 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    image[radius > 1.0] = (40, 40, 40)
    # A grey-level bar along the bottom (brightness/contrast).
    bar = max(4, size // 12)
    image[-bar:] = np.linspace(0, 255, size, dtype=np.float32).astype(np.uint8)[None, :, None]
    return image


def _grid(size: int) -> np.ndarray:
    image = np.full((size, size, 3), 250, np.uint8)
    cells = 4
    step = size / cells
    scale = size / 256.0
    for i in range(cells):
        for j in range(cells):
            number = i * cells + j + 1
            x, y = int(j * step + step * 0.25), int(i * step + step * 0.7)
            colour = (int(60 + 190 * j / 3), 60, int(60 + 190 * i / 3))
            cv2.putText(image, str(number), (x, y), _FONT, 1.0 * scale, colour, max(1, int(2 * scale)), cv2.LINE_AA)
    for k in range(cells + 1):
        pos = min(size - 1, int(round(k * step)))
        cv2.line(image, (pos, 0), (pos, size - 1), (40, 40, 40), max(1, size // 128))
        cv2.line(image, (0, pos), (size - 1, pos), (40, 40, 40), max(1, size // 128))
    return image


_MAKERS: dict[str, tuple[Callable[[int], np.ndarray], str]] = {
    "scene": (_scene, "A drawn landscape with text and an 'up' arrow (flips, rotation)"),
    "checkerboard": (_checkerboard, "8x8 checkerboard with marked corners (shear, zoom, fill modes)"),
    "colour_wheel": (_colour_wheel, "Hue wheel over a grey ramp (hue, saturation, brightness)"),
    "grid": (_grid, "Numbered 4x4 grid (shift, crop)"),
}

SAMPLES: tuple[str, ...] = tuple(_MAKERS)
DESCRIPTIONS: dict[str, str] = {name: description for name, (_, description) in _MAKERS.items()}


@lru_cache(maxsize=16)
def _cached(name: str, size: int) -> np.ndarray:
    image = _MAKERS[name][0](size)
    image.setflags(write=False)
    return image


def load(name: str, size: int = 256) -> np.ndarray:
    """Sample ``name`` as a fresh ``(size, size, 3)`` uint8 RGB array."""
    if name not in _MAKERS:
        raise ValueError(f"unknown sample {name!r}; choose from {', '.join(SAMPLES)}")
    if not 16 <= int(size) <= 4096:
        raise ValueError(f"size must be within 16..4096, got {size}")
    return _cached(name, int(size)).copy()
