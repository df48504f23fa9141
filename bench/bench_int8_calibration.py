"""Does the choice of calibration photos matter for int8 imagenet-lite0? Prints top-1/top-5.

    python bench/bench_int8_calibration.py [--dir /tmp/cvplay-int8-calibration]

Quantizes EfficientNet-Lite0 (ImageNet) to int8 twice, calibrated on (a) the first 200 CIFAR-100
training photos of ../shared/data/cifar100/pool-0.npz (what ``export`` uses) and (b) the 100
even-numbered ImageNet test photos; measures both and the Keras float model on all 200 photos and
on the 100 odd-numbered ones, which neither calibration saw. Needs the training extra and ../shared.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvplay.preprocess import prepare_batch  # noqa: E402
from cvplay.registry import parse_input_spec  # noqa: E402
from cvplay.training import efficientnet_lite as lite  # noqa: E402
from cvplay.training.export import (calibration_images, export_tflite, load_imagenet_samples,  # noqa: E402
                                    run_tflite, top1_top5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cvplay-int8-calibration"))
    args = parser.parse_args()
    samples = load_imagenet_samples()
    if samples is None:
        sys.exit("../shared/data/imagenet-samples is absent (set CVPLAY_SHARED): nothing to measure on")
    images, targets, _ = samples
    spec = parse_input_spec({k: v for k, v in lite.PREPROCESSING.items() if k != "color"})
    batch = prepare_batch(images, spec)
    even, odd = np.arange(0, len(batch), 2), np.arange(1, len(batch), 2)
    cifar, what = calibration_images()
    model = lite.build_efficientnet_lite0(weights="imagenet")
    rows = {"keras float": np.asarray(model.predict(batch, batch_size=25, verbose=0))}
    for label, representative in ((f"int8, {what}", prepare_batch(cifar, spec)),
                                  ("int8, the 100 even ImageNet test photos", batch[even])):
        path = export_tflite(model, args.dir / f"{len(rows)}.tflite", "int8", representative=representative)
        rows[label] = run_tflite(path, batch)
    print(f"\n{'model':<100}  {'top1 (200)':>10}  {'top5 (200)':>10}  {'top1 (odd 100)':>14}")
    for label, logits in rows.items():
        all_scores, odd_scores = top1_top5(logits, targets), top1_top5(logits[odd], targets[odd])
        print(f"{label:<100}  {all_scores['top1']:10.3f}  {all_scores['top5']:10.3f}  {odd_scores['top1']:14.3f}")


if __name__ == "__main__":
    main()
