"""Transfer learning on a small dataset, end to end: EfficientNet-Lite0 vs a small CNN from scratch.

The issue's goal: 5 classes x 100 images, >= 90 % validation accuracy in under 3 minutes on a
2-core CPU. The images are real CIFAR-100 photos from ``../shared/data/cifar100`` (the first 100
of each of 5 fine classes in the shuffled pool), upscaled from 32x32 to ``--png-size`` and written
as PNGs to a temporary folder of class folders -- the same kind of input a user uploads. Each
model is then trained through :func:`cvplay.training.trainer.train` (what ``python -m cvplay
train`` runs) and measured on its stratified 20 % validation split via the exported ``.tflite``.

    python bench/bench_train.py [--classes apple,bicycle,...] [--image-size 128] [--out DIR]

Wall time counts everything from reading the PNG folder to the written, measured ``.tflite``
(TensorFlow import and model build included); the PNG writing is not counted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CLASSES = "apple,bicycle,cloud,dolphin,tiger"


def shared_cifar() -> Path:
    from cvplay.datasets import shared_dir

    shared = shared_dir()
    folder = shared / "data" / "cifar100" if shared else None
    if folder is None or not folder.is_dir():
        sys.exit("no CIFAR-100 pool in ../shared/data/cifar100 (or $CVPLAY_SHARED/data/cifar100): this benchmark needs it")
    return folder


def write_pngs(folder: Path, classes: list[str], per_class: int, size: int) -> Path:
    cifar = shared_cifar()
    names = json.loads((cifar / "meta.json").read_text())["fine_label_names"]
    wanted = {names.index(c): c for c in classes}
    taken = {c: 0 for c in classes}
    for part in sorted(cifar.glob("pool-*.npz")):
        with np.load(part) as data:
            x, fine = data["x"], data["fine"]
        for image, label in zip(x, fine):
            name = wanted.get(int(label))
            if name is None or taken[name] >= per_class:
                continue
            target = folder / name
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).resize((size, size), Image.BICUBIC).save(target / f"{taken[name]:03d}.png")
            taken[name] += 1
        if all(v >= per_class for v in taken.values()):
            break
    return folder


def run(label: str, config, results: list[dict]) -> None:
    from cvplay.training.trainer import train

    def show(event):
        if event.get("message"):
            print(f"  [{label}] {event['message']}", flush=True)

    started = time.perf_counter()
    result = train(config, progress=show)
    wall = time.perf_counter() - started
    results.append({
        "model": label,
        "val_top1": result.metrics["top1"],
        "val_n": result.n_val,
        "wall_s": wall,
        "feature_ips": result.throughput.get("feature_extraction"),
        "train_ips": result.throughput.get("fine_tune_steps") or result.throughput.get("training_steps"),
        "epochs": len(result.history),
        "tflite": str(result.model_path),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default=DEFAULT_CLASSES)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--png-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=128, help="Lite0 input size")
    parser.add_argument("--cnn-size", type=int, default=64, help="small CNN input size")
    parser.add_argument("--out", default=None, help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--skip-cnn", action="store_true")
    args = parser.parse_args()
    from cvplay.training.trainer import TrainConfig

    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    with tempfile.TemporaryDirectory(prefix="cvplay-bench-train-") as scratch:
        out = Path(args.out) if args.out else Path(scratch) / "runs"
        data = write_pngs(Path(scratch) / "cifar5", classes, args.per_class, args.png_size)
        print(f"data: {len(classes)} classes x {args.per_class} CIFAR-100 images ({', '.join(classes)}), "
              f"upscaled 32 -> {args.png_size} px PNG, in {data}")
        results: list[dict] = []
        run("efficientnet-lite0", TrainConfig(
            data=str(data), out=str(out / "lite0"), backbone="efficientnet-lite0", image_size=args.image_size,
            epochs=40, fine_tune_epochs=2, fine_tune_blocks=2, augment="light", cache_features=True,
            patience=5, name="cifar5-lite0"), results)
        if not args.skip_cnn:
            run("small-cnn", TrainConfig(
                data=str(data), out=str(out / "cnn"), backbone="small-cnn", image_size=args.cnn_size,
                epochs=30, augment="light", patience=6, name="cifar5-small-cnn"), results)
    print()
    print(f"{'model':<20} {'val top-1':>9} {'n':>4} {'wall s':>7} {'features img/s':>15} {'train steps img/s':>18} {'epochs':>6}")
    for r in results:
        feature = f"{r['feature_ips']:.1f}" if r["feature_ips"] else "-"
        steps = f"{r['train_ips']:.1f}" if r["train_ips"] else "-"
        print(f"{r['model']:<20} {r['val_top1']:>9.3f} {r['val_n']:>4} {r['wall_s']:>7.1f} {feature:>15} {steps:>18} {r['epochs']:>6}")
    goal = results[0]
    verdict = "met" if goal["val_top1"] >= 0.9 and goal["wall_s"] < 180 else "NOT met"
    print(f"goal (>= 90 % validation accuracy in < 3 minutes with Lite0): {verdict}")


if __name__ == "__main__":
    main()
