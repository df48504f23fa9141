"""The pointing game for heatmaps (Zhang et al., "Top-down Neural Attention by Excitation
Backprop", 2016): a heatmap scores a hit when its hottest cell falls inside the object.

Objects here are real photos pasted, shrunk, on plain canvases at seeded places inside the part
of the canvas the model sees (its centre crop), so the object's box is known exactly and nothing
else in the scene carries evidence. Used by tests/test_explain.py and bench/bench_explain.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

from cvplay import explain as E
from cvplay.images import read_image


def shared_photos(shared: Path) -> list[tuple[Path, int]]:
    """(photo, ImageNet class index) of the shared ImageNet samples, in file order."""
    folder = shared / "data" / "imagenet-samples"
    entries = json.loads((folder / "labels.json").read_text())
    return [(folder / entry["file"], int(entry["index"])) for entry in sorted(entries, key=lambda e: e["file"])]


def pasted_scene(photo: np.ndarray, rng: np.random.Generator, spec, canvas_size=(320, 480),
                 sides=(100, 160)) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(canvas, (top, left, height, width) of the pasted photo). The photo's longer side is drawn
    from ``sides``; the background is one plain colour; the place is inside the model's view."""
    height, width = canvas_size
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = rng.integers(0, 256, 3)
    side = int(rng.integers(sides[0], sides[1] + 1))
    scale = side / max(photo.shape[:2])
    object_height, object_width = max(1, round(photo.shape[0] * scale)), max(1, round(photo.shape[1] * scale))
    pasted = cv2.resize(photo, (object_width, object_height), interpolation=cv2.INTER_AREA)
    geometry = E.view_geometry(spec, height, width)
    view_top, view_left, view_height, view_width = (int(round(v)) for v in geometry.source)
    top = int(rng.integers(view_top, view_top + view_height - object_height + 1))
    left = int(rng.integers(view_left, view_left + view_width - object_width + 1))
    canvas[top : top + object_height, left : left + object_width] = pasted
    return canvas, (top, left, object_height, object_width)


def is_hit(explanation: E.Explanation, box: tuple[int, int, int, int]) -> bool:
    """Whether the hottest grid cell's centre lies inside ``box``."""
    rows, cols = explanation.grid.shape
    height, width = explanation.geometry.image_size
    row, col = explanation.hottest
    y, x = (row + 0.5) * height / rows, (col + 0.5) * width / cols
    top, left, box_height, box_width = box
    return top <= y < top + box_height and left <= x < left + box_width


def play(classifier, photos: list[tuple[Path, int]], *, seed: int = 0, use_true_class: bool = True,
         **explain_options) -> dict:
    """Hits, count, chance (mean share of the seen area the objects cover) and seconds per photo."""
    rng = np.random.default_rng(seed)
    hits, chance, seconds = 0, [], []
    for path, index in photos:
        scene, box = pasted_scene(read_image(path), rng, classifier.card.input)
        started = time.perf_counter()
        explanation = E.explain(classifier, scene, index if use_true_class else None, **explain_options)
        seconds.append(time.perf_counter() - started)
        hits += is_hit(explanation, box)
        _, _, view_height, view_width = explanation.geometry.source
        chance.append(box[2] * box[3] / (view_height * view_width))
    return {"hits": hits, "n": len(photos), "rate": hits / max(1, len(photos)), "chance": float(np.mean(chance)),
            "median_s": float(np.median(seconds)) if seconds else float("nan")}
