"""Why did the model say that? Occlusion-sensitivity heatmaps for any LiteRT classifier.

For one photo and one class, patches are slid over what the model sees and each patch's drop in
that class's probability is recorded: a region whose hiding costs the class a lot is a region the
answer comes from (occlusion sensitivity: Zeiler and Fergus, "Visualizing and Understanding
Convolutional Networks", 2014). A patch shows the region blurred and mixed half-way with the
card's mean grey (:data:`FILL`): it removes detail and colour without drawing a hard-edged grey
square, which measured best in the pointing game among grey, blur and this mix. The method needs nothing but batched invokes of the ``.tflite`` file, so it
works for every installed classifier, shipped or trained by a user, with no second model output
(a class activation map would need the last feature map as one, which neither the shipped
models nor user exports have). ``bench/bench_explain.py`` measures the choice: the pointing game
and the seconds per photo.

The patches are drawn in **the model's view**: the image the card's preprocessing makes before
normalisation (the centre crop resized to the input size, or the thumbnail for a card with a
``thumbnail_size``), so occluded inputs go through exactly the card's path, flip-averaging
included (:meth:`cvplay.runtime.Classifier.predict_prepared`). The view's heat is then mapped
back onto the whole original photo (after EXIF orientation) through the card's crop, pad or
stretch (:func:`view_geometry`); regions the model never saw (outside the centre crop) get 0
heat and are marked unseen.

Conventions: ``grid`` is ``(rows, cols)``, row 0 at the top; cell ``(r, c)`` covers photo rows
``r * H / rows`` to ``(r + 1) * H / rows`` and columns likewise; its value is the drop of the
class's probability when the region is hidden (0..1, averaged over the patches covering it).
``seen`` is the share of each cell inside the part of the photo the model sees.

No TensorFlow, no Streamlit, no matplotlib: NumPy, OpenCV and Pillow only.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from cvplay.preprocess import _resize, center_crop_box, normalize, thumbnail
from cvplay.registry import InputSpec

#: The view is cut into CELLS x CELLS cells; a patch covers PATCH_CELLS x PATCH_CELLS of them and
#: moves one cell at a time: (CELLS - PATCH_CELLS + 1) ** 2 = 49 occluded copies per photo.
CELLS = 8
PATCH_CELLS = 2
#: What a patch hides the view with: "mix" (default) is the mean of the blurred view and the card's
#: mean grey, so a patch removes detail AND half the colour without drawing a hard grey square on
#: a plain background; "grey" and "blur" are the alternatives it was measured against
#: (bench/bench_explain.py --variants).
FILL = "mix"
#: Occluded copies per invoke batch. It bounds memory on a 512 MB dyno: LiteRT's arena grows with
#: the batch (imagenet-lite0, peak process RSS: 90 MB at batch 1, 136 MB at 8, 185 MB at 16).
CHUNK = 8
UNSEEN_BELOW = 0.5  # a cell less than half inside the model's view counts as unseen
OVERLAY_MAX_SIDE = 640


class ExplainError(ValueError):
    """The explanation cannot be made as asked (an unknown class...)."""


# --- geometry: the model's view and the photo ------------------------------------------------


@dataclass(frozen=True)
class ViewGeometry:
    """Where the model's view comes from in the photo.

    The photo's box ``source`` (top, left, height, width in photo pixels) is resized onto the
    view's box ``target`` (in view pixels); the rest of the view is padding (``pad`` policy) and
    the rest of the photo is never seen (``center_crop``).
    """

    image_size: tuple[int, int]
    view_size: tuple[int, int]
    source: tuple[float, float, float, float]
    target: tuple[float, float, float, float]

    def to_photo(self, row: float, col: float) -> tuple[float, float]:
        """A point of the view (pixel-edge coordinates) in photo coordinates."""
        s_top, s_left, s_height, s_width = self.source
        t_top, t_left, t_height, t_width = self.target
        return (s_top + (row - t_top) * s_height / t_height, s_left + (col - t_left) * s_width / t_width)


def view_size(spec: InputSpec) -> tuple[int, int]:
    """(height, width) of the model's view: the thumbnail size when the card has one."""
    return tuple(spec.thumbnail_size) if spec.thumbnail_size is not None else tuple(spec.size)


def view_geometry(spec: InputSpec, height: int, width: int) -> ViewGeometry:
    """How :func:`model_view` maps a ``height`` x ``width`` photo (same arithmetic as
    :mod:`cvplay.preprocess`)."""
    view_height, view_width = view_size(spec)
    full_view = (0.0, 0.0, float(view_height), float(view_width))
    if spec.resize == "stretch":
        return ViewGeometry((height, width), (view_height, view_width), (0.0, 0.0, float(height), float(width)), full_view)
    if spec.resize == "pad":
        scale = min(view_height / height, view_width / width)
        new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
        top, left = (view_height - new_height) // 2, (view_width - new_width) // 2
        return ViewGeometry((height, width), (view_height, view_width), (0.0, 0.0, float(height), float(width)),
                            (float(top), float(left), float(new_height), float(new_width)))
    top, left, crop_height, crop_width = center_crop_box(height, width, view_height, view_width, spec.crop_fraction)
    return ViewGeometry((height, width), (view_height, view_width),
                        (float(top), float(left), float(crop_height), float(crop_width)), full_view)


def model_view(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The uint8 image the model sees before normalisation, at :func:`view_size`."""
    small = thumbnail(image, spec)
    if small is not None:
        return small
    from cvplay.preprocess import resize_for_model

    return resize_for_model(image, spec)


def _view_to_inputs(views: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Views (N, h, w, 3) uint8 as the model's normalised float32 inputs (thumbnails enlarged)."""
    height, width = spec.size
    if views.shape[1:3] != (height, width):
        views = np.stack([_resize(view, height, width) for view in views])
    return normalize(views, spec)


# --- occlusion -------------------------------------------------------------------------------


def _cell_edges(length: int, cells: int) -> np.ndarray:
    return np.round(np.linspace(0, length, cells + 1)).astype(int)


def _fill_colour(spec: InputSpec) -> np.ndarray:
    """The card's mean grey, which normalises to zero."""
    return np.clip(np.rint(np.asarray(spec.mean, dtype=np.float64)), 0, 255).astype(np.uint8)


def occlusion_map(classifier, view: np.ndarray, class_index: int, *, cells: int = CELLS,
                  patch_cells: int = PATCH_CELLS, fill: str = FILL) -> tuple[np.ndarray, float]:
    """``(cells, cells)`` drops of ``class_index``'s probability when each cell is hidden, and the
    unoccluded probability. A cell's drop is the mean over the patches that cover it; ``fill`` is
    what a patch shows (see :data:`FILL`)."""
    spec = classifier.card.input
    view_height, view_width = view.shape[:2]
    cells = max(1, min(cells, view_height, view_width))
    patch_cells = max(1, min(patch_cells, cells))
    rows, cols = _cell_edges(view_height, cells), _cell_edges(view_width, cells)
    positions = [(r, c) for r in range(cells - patch_cells + 1) for c in range(cells - patch_cells + 1)]
    grey = np.broadcast_to(_fill_colour(spec), view.shape)
    if fill in ("blur", "mix"):
        sigma = max(view_height, view_width) / cells
        filler = cv2.GaussianBlur(view, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
        if fill == "mix":
            filler = ((filler.astype(np.uint16) + grey) // 2).astype(np.uint8)
    elif fill == "grey":
        filler = grey
    else:
        raise ExplainError(f"unknown fill {fill!r}: grey, blur or mix")
    base = float(classifier.predict_prepared(_view_to_inputs(view[None], spec))[0, class_index])
    drops = np.empty(len(positions), dtype=np.float64)
    for start in range(0, len(positions), CHUNK):
        chunk = positions[start : start + CHUNK]
        occluded = np.repeat(view[None], len(chunk), axis=0)
        for i, (r, c) in enumerate(chunk):
            box = (slice(rows[r], rows[r + patch_cells]), slice(cols[c], cols[c + patch_cells]))
            occluded[i][box] = filler[box]
        scores = classifier.predict_prepared(_view_to_inputs(occluded, spec))[:, class_index]
        drops[start : start + len(chunk)] = base - scores
    total = np.zeros((cells, cells), dtype=np.float64)
    count = np.zeros((cells, cells), dtype=np.float64)
    for drop, (r, c) in zip(drops, positions):
        total[r : r + patch_cells, c : c + patch_cells] += drop
        count[r : r + patch_cells, c : c + patch_cells] += 1
    return np.clip(total / count, 0.0, 1.0), base


# --- back onto the photo ---------------------------------------------------------------------


def grid_shape(geometry: ViewGeometry, cells: int = CELLS) -> tuple[int, int]:
    """Rows and columns of a photo grid whose cells are as big as the view's cells in the photo."""
    height, width = geometry.image_size
    _, _, s_height, s_width = geometry.source
    _, _, t_height, t_width = geometry.target
    view_height, view_width = geometry.view_size
    cell_height = view_height / cells * s_height / t_height
    cell_width = view_width / cells * s_width / t_width
    return max(1, min(height, round(height / cell_height))), max(1, min(width, round(width / cell_width)))


def to_photo_grid(view_heat: np.ndarray, geometry: ViewGeometry, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(grid, seen)`` of ``shape`` over the whole photo from a heat map over the view.

    Works at a resolution of ``shape`` times 8 per cell: each fine pixel takes the view cell its
    centre falls in (0 outside the view), then cells average their fine pixels.
    """
    rows, cols = shape
    fine = 8
    height, width = geometry.image_size
    ys = (np.arange(rows * fine) + 0.5) * height / (rows * fine)
    xs = (np.arange(cols * fine) + 0.5) * width / (cols * fine)
    s_top, s_left, s_height, s_width = geometry.source
    t_top, t_left, t_height, t_width = geometry.target
    view_height, view_width = geometry.view_size
    # photo -> view coordinates, then view -> heat cell
    vy = t_top + (ys - s_top) * t_height / s_height
    vx = t_left + (xs - s_left) * t_width / s_width
    inside_y = (ys >= s_top) & (ys < s_top + s_height)
    inside_x = (xs >= s_left) & (xs < s_left + s_width)
    cells_y, cells_x = view_heat.shape
    iy = np.clip((vy * cells_y / view_height).astype(int), 0, cells_y - 1)
    ix = np.clip((vx * cells_x / view_width).astype(int), 0, cells_x - 1)
    inside = inside_y[:, None] & inside_x[None, :]
    values = np.where(inside, view_heat[iy[:, None], ix[None, :]], 0.0)
    grid = values.reshape(rows, fine, cols, fine).mean(axis=(1, 3))
    seen = inside.reshape(rows, fine, cols, fine).mean(axis=(1, 3))
    return grid, seen


# --- the whole explanation -------------------------------------------------------------------


@dataclass
class Explanation:
    """A heatmap for one photo and one class; see the module docstring for ``grid``/``seen``."""

    label: str
    index: int
    score: float  # the class's probability on the whole photo, as the classifier gives it
    grid: np.ndarray
    seen: np.ndarray
    view_heat: np.ndarray
    geometry: ViewGeometry

    @property
    def hottest(self) -> tuple[int, int]:
        """(row, col) of the hottest grid cell."""
        return tuple(int(v) for v in np.unravel_index(int(np.argmax(self.grid)), self.grid.shape))

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        return {
            "label": self.label,
            "index": self.index,
            "score": round(float(self.score), 6),
            "grid": [[round(float(v), digits) for v in row] for row in self.grid],
        }


def _label_key(name: str) -> str:
    return " ".join(str(name).replace("_", " ").replace("-", " ").casefold().split())


def resolve_class(labels: Sequence[str], value: str | int) -> int:
    """A class index from a label (case-insensitive; ``_``, ``-`` and space alike) or an index."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(labels):
            raise ExplainError(f"class index {index} is out of range: the model has {len(labels)} classes (0..{len(labels) - 1})")
        return index
    wanted = _label_key(text)
    for index, label in enumerate(labels):
        if _label_key(label) == wanted:
            return index
    close = difflib.get_close_matches(wanted, [_label_key(label) for label in labels], n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ExplainError(f"{text!r} is not a class of the model{hint} (give a label or an index 0..{len(labels) - 1})")


def explain(classifier, image: np.ndarray, class_index: int | None = None, *, cells: int = CELLS,
            patch_cells: int = PATCH_CELLS, fill: str = FILL) -> Explanation:
    """The occlusion heatmap of ``class_index`` (default: the top class) for one RGB uint8 photo."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ExplainError(f"expected a (H, W, 3) uint8 RGB image, got shape {image.shape} dtype {image.dtype}")
    spec = classifier.card.input
    probabilities = classifier.predict_proba([image])[0]
    index = int(np.argmax(probabilities)) if class_index is None else int(class_index)
    if not 0 <= index < len(probabilities):
        raise ExplainError(f"class index {index} is out of range (0..{len(probabilities) - 1})")
    view = model_view(image, spec)
    view_heat, _ = occlusion_map(classifier, view, index, cells=cells, patch_cells=patch_cells, fill=fill)
    geometry = view_geometry(spec, image.shape[0], image.shape[1])
    grid, seen = to_photo_grid(view_heat, geometry, grid_shape(geometry, view_heat.shape[0]))
    labels = classifier.labels
    return Explanation(
        label=labels[index] if index < len(labels) else str(index), index=index,
        score=float(probabilities[index]), grid=grid, seen=seen, view_heat=view_heat, geometry=geometry,
    )


# --- pictures --------------------------------------------------------------------------------


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii") or "?"


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def _hatch(mask: np.ndarray, spacing: int = 10) -> np.ndarray:
    height, width = mask.shape
    yy, xx = np.indices((height, width))
    return mask & (((yy + xx) % spacing) < 2)


def render_overlay(image: np.ndarray, explanation: Explanation, *, max_side: int = OVERLAY_MAX_SIDE,
                   legend: bool = True) -> np.ndarray:
    """The photo with the heatmap blended over it (turbo colours, scaled to the map's maximum),
    the parts the model never saw darkened and hatched, and a legend below."""
    from PIL import Image, ImageDraw

    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    photo = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    peak = float(explanation.grid.max())
    heat = explanation.grid / peak if peak > 0 else np.zeros_like(explanation.grid)
    heat = cv2.resize(heat.astype(np.float32), size, interpolation=cv2.INTER_CUBIC).clip(0, 1)
    colours = cv2.cvtColor(cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    alpha = (0.25 + 0.5 * heat)[..., None]
    out = (photo * (1 - alpha) + colours * alpha).astype(np.uint8)
    # The model's view edge is drawn where it really is, not at cell edges.
    s_top, s_left, s_height, s_width = explanation.geometry.source
    yy, xx = np.indices((size[1], size[0]))
    unseen = ~((yy / scale >= s_top) & (yy / scale < s_top + s_height) & (xx / scale >= s_left) & (xx / scale < s_left + s_width))
    out[unseen] = (photo[unseen] * 0.35).astype(np.uint8)
    out[_hatch(unseen)] = 200
    if not legend:
        return out
    # The legend grows with the picture, so it stays legible when the picture is shown small.
    unit = max(1.0, max(size) / 320)
    band_height = round(64 * unit)
    canvas = Image.new("RGB", (max(size[0], round(320 * unit)), size[1] + band_height), "white")
    canvas.paste(Image.fromarray(out), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(round(13 * unit))
    bar_left, bar_top = round(8 * unit), size[1] + round(8 * unit)
    bar_width, bar_height = round(min(200 * unit, canvas.width - 120 * unit)), round(12 * unit)
    ramp = cv2.applyColorMap(np.linspace(0, 255, bar_width).astype(np.uint8)[None, :], cv2.COLORMAP_TURBO)
    canvas.paste(Image.fromarray(cv2.cvtColor(np.repeat(ramp, bar_height, axis=0), cv2.COLOR_BGR2RGB)), (bar_left, bar_top))
    draw.text((bar_left, bar_top + bar_height + 2 * unit), "0", fill="black", font=font)
    draw.text((bar_left + bar_width - 30 * unit, bar_top + bar_height + 2 * unit), f"{peak:.2f}", fill="black", font=font)
    draw.text((bar_left, bar_top + bar_height + 18 * unit), _ascii(f"drop in P({explanation.label}) when hidden"),
              fill="black", font=font)
    swatch_width = round(24 * unit)
    swatch = np.full((bar_height, swatch_width, 3), 90, np.uint8)
    swatch[_hatch(np.ones((bar_height, swatch_width), bool), 6)] = 200
    canvas.paste(Image.fromarray(swatch), (round(bar_left + bar_width + 12 * unit), bar_top))
    draw.text((bar_left + bar_width + 40 * unit, bar_top - unit), "not seen", fill="black", font=font)
    return np.asarray(canvas)


def text_grid(explanation: Explanation) -> list[str]:
    """The grid as characters: `` .:-=+*#%@`` from 0 to the map's maximum, ``/`` for unseen cells."""
    ramp = " .:-=+*#%@"
    peak = float(explanation.grid.max())
    lines = []
    for values, seen in zip(explanation.grid, explanation.seen):
        chars = []
        for value, share in zip(values, seen):
            if share < UNSEEN_BELOW:
                chars.append("/")
            else:
                level = 0 if peak <= 0 else min(len(ramp) - 1, int(math.floor(value / peak * (len(ramp) - 1) + 0.5)))
                chars.append(ramp[level])
        lines.append("".join(chars))
    return lines


# --- command line ----------------------------------------------------------------------------


def _overlay_name(source: str, used: set[str]) -> str:
    """A safe, unique PNG file name for an input path or URL."""
    import re
    from pathlib import PurePosixPath
    from urllib.parse import urlsplit

    path = urlsplit(source).path if "://" in source else source.replace("\\", "/")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(path).stem).strip("._") or "image"
    name, number = f"{stem[:80]}-heatmap.png", 2
    while name in used:
        name, number = f"{stem[:80]}-heatmap-{number}.png", number + 1
    used.add(name)
    return name


def cmd_explain(args) -> int:
    import json
    from pathlib import Path

    from cvplay.errors import CommandError
    from cvplay.fetch import FetchError
    from cvplay.images import ImageError, encode_png, load_image
    from cvplay.runtime import create_classifier

    classifier = create_classifier(args.model)
    try:
        class_index = None if args.class_ is None else resolve_class(classifier.labels, args.class_)
    except ExplainError as error:
        raise CommandError(str(error)) from None
    out_dir = None
    if args.out:
        out_dir = Path(args.out)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandError(f"cannot create the output folder {out_dir} ({error.strerror})") from None
    used: set[str] = set()
    failed = False
    for source in args.inputs:
        result: dict[str, Any] = {"input": source, "label": None, "index": None, "score": None, "grid": None, "error": None}
        explanation = None
        try:
            image = load_image(source)
            explanation = explain(classifier, image, class_index)
            result.update(explanation.to_dict())
        except (ImageError, FetchError, ExplainError, OSError) as error:
            failed = True
            result["error"] = str(error) if not isinstance(error, OSError) else f"Cannot read the file ({error.strerror})."
        if explanation is not None and out_dir is not None:
            target = out_dir / _overlay_name(source, used)
            target.write_bytes(encode_png(render_overlay(image, explanation)))
        if args.format == "json":
            print(json.dumps(result, ensure_ascii=False), flush=True)
            continue
        print(source)
        if result["error"]:
            print(f"  error: {result['error']}")
            continue
        print(f"  {explanation.label} (class {explanation.index}, {explanation.score:.2%}); hottest cell "
              f"row {explanation.hottest[0]}, column {explanation.hottest[1]} of {explanation.grid.shape[0]}x"
              f"{explanation.grid.shape[1]}; peak drop {explanation.grid.max():.3f}")
        for line in text_grid(explanation):
            print(f"  |{line}|")
        if out_dir is not None:
            print(f"  wrote {target}")
    if args.format != "json":
        print("(grid: ' .:-=+*#%@' from no effect to the largest drop of the class's probability when the "
              "region is hidden; '/' the model never sees)")
    return 1 if failed else 0


def add_explain_parser(subparsers):
    """Register ``explain`` on the CLI's sub-command parsers."""
    from cvplay.registry import DEFAULT_MODEL

    parser = subparsers.add_parser("explain", help="heatmap of where in each image a class's probability comes from")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model name or path (default: {DEFAULT_MODEL})")
    parser.add_argument("--class", dest="class_", default=None, metavar="LABEL_OR_INDEX",
                        help="the class to explain (default: each image's top class)")
    parser.add_argument("--format", choices=["table", "json"], default="table",
                        help="json: one object per input line with the heat grid (rows top to bottom, 0..1)")
    parser.add_argument("--out", default=None, metavar="DIR", help="also write each overlay as a PNG into DIR")
    parser.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    parser.set_defaults(handler=cmd_explain)
    return parser
