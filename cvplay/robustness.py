"""How robust is a classifier? Top-1 on a labelled set, clean and under distortions.

``python -m cvplay robustness --model NAME_OR_PATH --data PATH [--split auto|val|test|all]
[--transforms NAMES] [--format table|json] [--out DIR]``

The clean figure IS :func:`cvplay.evaluate.evaluate_classifier` on the same split (same images,
same label matching), so it equals ``python -m cvplay evaluate``. Then every distortion of
:data:`DISTORTIONS` is applied at three strengths to those images and top-1 is measured again.

Each distortion is a transform of the ONE declared list, :data:`cvplay.augment.TRANSFORMS` (the
list the Augmentation page shows and training draws from), with pinned settings per strength; its
parameters are drawn with :class:`cvplay.augment.Policy` from a generator seeded by
``[seed, distortion, strength, image index]``, so a report is reproducible and does not depend on
batching.

Distortions act on a **working copy** of each image: photos larger than the model ever uses are
first shrunk (area averaging) so that their shorter side is the side the card's preprocessing
takes (input or thumbnail size, divided by the crop fraction: 256 for ``imagenet-lite0``, 32 for
``cifar100-lite0``). So a blur of sigma 2 means the same to the model whatever the camera's
resolution, and a 12-megapixel photo costs no more than a small one. Blur sigmas are declared in
pixels of a 224-pixel side and scaled to the working copy.

No TensorFlow, no matplotlib: the plot of ``--out`` is drawn with Pillow.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from cvplay import augment
from cvplay.evaluate import AUTO, DEFAULT_SEED, SPLITS, EvaluateError, evaluate_classifier, match_labels
from cvplay.registry import InputSpec

REFERENCE_SIDE = 224  # pixel-sized settings (blur sigma) are declared for an image of this shorter side
BATCH = 32


class RobustnessError(ValueError):
    """The report cannot be made as asked (an unknown distortion...)."""


@dataclass(frozen=True)
class Distortion:
    """A declared transform at three pinned strengths (mild, medium, severe)."""

    name: str
    title: str
    transform: str  # a name in cvplay.augment.TRANSFORMS
    strengths: tuple[Mapping[str, Any], ...]
    labels: tuple[str, ...]  # one short description per strength
    fill_mode: str = "constant"
    pixel_settings: tuple[str, ...] = ()  # settings in pixels of a REFERENCE_SIDE image

    def policy(self, strength: int, image_side: int, seed: int) -> augment.Policy:
        """The one-transform policy of ``strength`` (0-based) for a working image of ``image_side``."""
        settings = dict(self.strengths[strength])
        for key in self.pixel_settings:
            low, high = settings[key]
            scale = image_side / REFERENCE_SIDE
            settings[key] = (low * scale, high * scale)
        return augment.Policy.build({self.transform: settings}, probabilities={self.transform: 1.0},
                                    fill_mode=self.fill_mode, seed=seed)


def _fixed(key: str, *values) -> tuple[dict[str, Any], ...]:
    return tuple({key: (value, value)} for value in values)


#: What production does to photos. Settings are pinned per strength; what is still random
#: (the crop's place, the noise) is drawn with the report's seed.
DISTORTIONS: tuple[Distortion, ...] = (
    Distortion("brightness", "Darker", "brightness", _fixed("factor", 0.6, 0.4, 0.2), ("x0.6", "x0.4", "x0.2")),
    Distortion("blur", "Blur", "gaussian_blur", _fixed("sigma", 1.0, 2.0, 4.0), ("sigma 1", "sigma 2", "sigma 4"),
               pixel_settings=("sigma",)),
    Distortion("noise", "Noise", "gaussian_noise", _fixed("std", 10.0, 25.0, 50.0), ("std 10", "std 25", "std 50")),
    Distortion("rotation", "Rotation", "rotate", _fixed("angle", 15.0, 30.0, 45.0), ("15 deg", "30 deg", "45 deg")),
    Distortion("crop", "Zoom / crop", "random_resized_crop",
               tuple({"scale": (a, a), "ratio": (1.0, 1.0)} for a in (0.6, 0.4, 0.2)),
               ("60% area", "40% area", "20% area")),
    Distortion("jpeg", "JPEG quality", "jpeg", tuple({"quality": (q, q)} for q in (30, 15, 5)),
               ("quality 30", "quality 15", "quality 5")),
    Distortion("downscale", "Downscale", "downscale", _fixed("factor", 2.0, 4.0, 8.0), ("1/2", "1/4", "1/8")),
)
_BY_NAME = {d.name: d for d in DISTORTIONS}


def get_distortions(names: str | Sequence[str] | None) -> list[Distortion]:
    """Distortions by name (a list, or a comma/space separated string); all when None or empty."""
    if names is None:
        return list(DISTORTIONS)
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        return list(DISTORTIONS)
    unknown = [n for n in names if n not in _BY_NAME]
    if unknown:
        raise RobustnessError(f"unknown distortion(s) {', '.join(unknown)}; choose from {', '.join(_BY_NAME)}")
    return [_BY_NAME[n] for n in dict.fromkeys(names)]


def working_side(spec: InputSpec) -> int:
    """The shorter side the card's preprocessing takes from a photo (input or thumbnail size over
    the crop fraction)."""
    height, width = spec.thumbnail_size or spec.size
    side = max(height, width)
    if spec.resize == "center_crop":
        side = side / spec.crop_fraction
    return max(1, math.ceil(side))


def working_copy(image: np.ndarray, side: int) -> np.ndarray:
    """The image shrunk (area averaging) so its shorter side is ``side``; unchanged if smaller."""
    height, width = image.shape[:2]
    shorter = min(height, width)
    if shorter <= side:
        return image
    scale = side / shorter
    return cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


@dataclass
class RobustnessReport:
    model: str
    data: str
    split: str
    n: int
    clean_top1: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    seed: int = DEFAULT_SEED
    seconds: float = 0.0
    skipped_images: int = 0
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "data": self.data, "split": self.split, "n": self.n, "seed": self.seed,
            "clean_top1": self.clean_top1, "rows": [dict(row) for row in self.rows],
            "skipped_images": self.skipped_images, "seconds": round(self.seconds, 2),
        }

    def by_distortion(self) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in self.rows:
            grouped.setdefault(row["transform"], []).append(row)
        return grouped


def robustness_report(classifier, dataset, *, split: str = AUTO, val_fraction: float | None = None,
                      seed: int | None = None, test_fraction: float | None = None, distortions: Sequence[Distortion] | None = None,
                      data_name: str = "", progress: Callable[[int, int], None] | None = None,
                      should_stop: Callable[[], bool] | None = None, batch_size: int = BATCH) -> RobustnessReport:
    """Clean top-1 (exactly :func:`~cvplay.evaluate.evaluate_classifier`) and top-1 under each
    distortion and strength, on the same images. ``split``, the fractions and ``seed`` mean what
    they mean to ``evaluate`` (``auto``: every image, unless the card says this is the model's own
    training data); ``seed`` also seeds the distortions (default 0)."""
    started = time.perf_counter()
    distortions = list(DISTORTIONS if distortions is None else distortions)
    clean = evaluate_classifier(classifier, dataset, split=split, val_fraction=val_fraction, seed=seed,
                                data_name=data_name, test_fraction=test_fraction)
    seed = DEFAULT_SEED if seed is None else seed
    chosen = np.asarray(clean.indices if clean.indices is not None else [], dtype=np.int64)
    mapping = match_labels(dataset.class_names, classifier.labels)
    targets = np.array([mapping[int(dataset.labels[i])] for i in chosen], dtype=np.int64)
    levels = [(d_index, distortion, s_index) for d_index, distortion in enumerate(distortions)
              for s_index in range(len(distortion.strengths))]
    correct = np.zeros(len(levels), dtype=np.int64)
    side = working_side(classifier.card.input)
    done = 0
    stopped = False
    for start in range(0, len(chosen), batch_size):
        if should_stop is not None and should_stop():
            stopped = True
            break
        chunk = chosen[start : start + batch_size]
        images = [working_copy(image, side) for image in dataset.load_batch(chunk)]
        for level, (d_index, distortion, s_index) in enumerate(levels):
            distorted = []
            for image, index in zip(images, chunk):
                policy = distortion.policy(s_index, min(image.shape[:2]), seed)
                distorted.append(policy.apply(image, np.random.default_rng([seed, d_index, s_index, int(index)])))
            predictions = classifier.predict_proba(distorted).argmax(axis=1)
            correct[level] += int((predictions == targets[start : start + len(chunk)]).sum())
        done += len(chunk)
        if progress is not None:
            progress(done, len(chosen))
    rows = []
    for level, (_, distortion, s_index) in enumerate(levels):
        top1 = float(correct[level] / done) if done else float("nan")
        rows.append({
            "transform": distortion.name, "title": distortion.title, "strength": s_index + 1,
            "setting": distortion.labels[s_index], "top1": top1, "drop": clean.report.top1 - top1 if done else float("nan"),
            "n": done,
        })
    return RobustnessReport(model=classifier.card.name, data=clean.data, split=clean.split, n=clean.report.n,
                            clean_top1=clean.report.top1, rows=rows, seed=seed,
                            seconds=time.perf_counter() - started, skipped_images=clean.skipped_images, stopped=stopped)


def run_report(model: str, data: str, *, split: str = AUTO, val_fraction: float | None = None,
               seed: int | None = None, test_fraction: float | None = None, distortions: Sequence[Distortion] | None = None,
               max_per_class: int | None = None, progress=None) -> RobustnessReport:
    """Load the model and the dataset as ``evaluate`` does, then :func:`robustness_report`."""
    from cvplay.datasets import load_dataset
    from cvplay.runtime import create_classifier

    classifier = create_classifier(model)
    dataset = load_dataset(data, max_images_per_class=max_per_class, min_images_per_class=1)
    return robustness_report(classifier, dataset, split=split, val_fraction=val_fraction, seed=seed,
                             test_fraction=test_fraction, distortions=distortions, data_name=str(data), progress=progress)


# --- output ----------------------------------------------------------------------------------

CSV_COLUMNS = ("transform", "title", "strength", "setting", "top1", "drop", "n")


def to_csv(report: RobustnessReport) -> str:
    """One row for the clean images (strength 0), then one per transform and strength."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(["clean", "Clean", 0, "", f"{report.clean_top1:.4f}", "0.0000", report.n])
    for row in report.rows:
        writer.writerow([row["transform"], row["title"], row["strength"], row["setting"], f"{row['top1']:.4f}",
                         f"{row['drop']:.4f}", row["n"]])
    return buffer.getvalue()


def format_table(report: RobustnessReport) -> str:
    lines = [
        f"model {report.model}  data {report.data}  split {report.split}  n {report.n}  seed {report.seed}  "
        f"({report.seconds:.1f} s)",
        f"clean top-1 {report.clean_top1:.4f}",
        "",
    ]
    grouped = report.by_distortion()
    width = max([len("distortion")] + [len(rows[0]["title"]) for rows in grouped.values()])
    header = f"{'distortion':<{width}}  " + "  ".join(f"{'strength ' + str(i):>22}" for i in (1, 2, 3))
    lines.append(header)
    for rows in grouped.values():
        cells = [f"{row['setting'] + ': ' + format(row['top1'], '.3f'):>22}" for row in rows]
        lines.append(f"{rows[0]['title']:<{width}}  " + "  ".join(cells))
    if report.stopped:
        lines.append(f"(stopped early: distortions measured on the first {report.rows[0]['n'] if report.rows else 0} images)")
    return "\n".join(lines)


PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def render_plot(report: RobustnessReport, width: int = 720, height: int = 420) -> np.ndarray:
    """Top-1 against strength (0 = clean), one line per distortion, as an RGB array (Pillow)."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = 56, 36, width - 170, height - 48
    draw.text((left, 10), f"{report.model}: top-1 under distortions ({report.n} images, {report.split})", fill="black", font=font)

    def point(strength: float, value: float) -> tuple[float, float]:
        return left + strength / 3 * (right - left), bottom - value * (bottom - top)

    for tick in np.linspace(0, 1, 6):
        y = point(0, tick)[1]
        draw.line([(left, y), (right, y)], fill=(225, 225, 225))
        draw.text((left - 34, y - 7), f"{tick:.1f}", fill="black", font=font)
    for strength in range(4):
        x = point(strength, 0)[0]
        draw.line([(x, bottom), (x, bottom + 4)], fill="black")
        draw.text((x - 14, bottom + 8), "clean" if strength == 0 else str(strength), fill="black", font=font)
    draw.text(((left + right) / 2 - 30, bottom + 26), "strength", fill="black", font=font)
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black")
    for number, rows in enumerate(report.by_distortion().values()):
        colour = PALETTE[number % len(PALETTE)]
        points = [point(0, report.clean_top1)] + [point(row["strength"], row["top1"]) for row in rows]
        draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([(x - 3, y - 3), (x + 3, y + 3)], fill=colour)
        legend_y = top + number * 20
        draw.line([(right + 16, legend_y + 7), (right + 40, legend_y + 7)], fill=colour, width=3)
        draw.text((right + 46, legend_y), rows[0]["title"], fill="black", font=font)
    return np.asarray(canvas)


def write_outputs(report: RobustnessReport, out_dir: str | Path) -> tuple[Path, Path]:
    """``robustness.csv`` and ``robustness.png`` in ``out_dir``."""
    from cvplay.images import encode_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, plot_path = out / "robustness.csv", out / "robustness.png"
    csv_path.write_text(to_csv(report), encoding="utf-8")
    plot_path.write_bytes(encode_png(render_plot(report)))
    return csv_path, plot_path


# --- command line ----------------------------------------------------------------------------


def cmd_robustness(args: argparse.Namespace) -> int:
    import sys

    from cvplay.errors import CommandError

    try:
        distortions = get_distortions(args.transforms)
        if args.out:
            try:
                Path(args.out).mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise CommandError(f"cannot create the output folder {args.out} ({error.strerror})") from None

        def progress(done: int, total: int) -> None:
            if args.format == "table" and sys.stderr.isatty():
                print(f"\r{done}/{total} images", end="" if done < total else "\n", file=sys.stderr, flush=True)

        report = run_report(args.model, args.data, split=args.split, val_fraction=args.val_fraction, seed=args.seed,
                            test_fraction=args.test_fraction, distortions=distortions,
                            max_per_class=args.max_per_class, progress=progress)
    except (RobustnessError, EvaluateError) as error:
        raise CommandError(str(error)) from None
    if args.format == "json":
        print(json.dumps(report.to_dict()))
    else:
        print(format_table(report))
    if args.out:
        csv_path, plot_path = write_outputs(report, args.out)
        print(f"wrote {csv_path} and {plot_path}", file=sys.stderr if args.format == "json" else sys.stdout)
    return 0


def add_robustness_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``robustness`` on the CLI's sub-command parsers."""
    parser = subparsers.add_parser("robustness", help="top-1 of a classifier, clean and under distortions at three strengths")
    parser.add_argument("--model", required=True, help="model name or path to its .tflite / card")
    parser.add_argument("--data", required=True, help="folder of class folders, .zip, CIFAR-100 source or .npz")
    parser.add_argument("--split", choices=[AUTO, *SPLITS], default=AUTO,
                        help="the same splits as evaluate: auto (default: every image, unless the card says this "
                        "is the model's training data, then its held-out split), val, test, all")
    parser.add_argument("--transforms", nargs="+", default=None, metavar="NAME",
                        help=f"distortions to apply (default: all): {', '.join(_BY_NAME)}")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help="validation share, as when training (default: the card's on its training data, else 0.2)")
    parser.add_argument("--test-fraction", type=float, default=None,
                        help="held-out test share, as when training (default: the card's on its training data, else 0)")
    parser.add_argument("--seed", type=int, default=None,
                        help="split seed, as when training (default: the card's, else 0), and the seed of the distortions (default 0)")
    parser.add_argument("--max-per-class", type=int, default=None, help="use at most this many images per class")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--out", default=None, metavar="DIR", help="also write robustness.csv and robustness.png into DIR")
    parser.set_defaults(handler=cmd_robustness)
    return parser
