"""How fast is cvplay.augment? Median/mean milliseconds, single-threaded numbers on this machine.

Run:

    python bench/bench_augment.py            # default policy, presets, every transform
    python bench/bench_augment.py --quick    # fewer repeats

Prints, for the default policy (``DEFAULT_PRESET``) and the other presets: ms per 224x224
image (``Policy.apply``, sampling included) and ms per batch of 64 32x32 images
(``Policy.apply_batch``); then each declared transform alone (probability 1, declared
default settings) on a 224x224 image. Goals: default policy < 2 ms per 224x224 image and
< 10 ms per batch of 64 32x32 images.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvplay import augment, samples  # noqa: E402


def timed(function: Callable[[int], object], repeats: int, warmup: int = 3) -> tuple[float, float]:
    """(median ms, mean ms) of ``function(i)`` over ``repeats`` calls."""
    for i in range(warmup):
        function(i)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        function(i)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), statistics.fmean(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats_image, repeats_batch = (100, 20) if args.quick else (500, 100)

    image = cv2.resize(samples.load("scene", 256), (224, 224), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    batch = np.stack([cv2.resize(samples.load(name, 64), (32, 32), interpolation=cv2.INTER_AREA) for name in samples.SAMPLES])
    batch = batch[rng.integers(0, len(batch), 64)]

    print(f"cvplay.augment benchmark | Python {platform.python_version()} | NumPy {np.__version__} | "
          f"OpenCV {cv2.__version__} (threads {cv2.getNumThreads()}) | {platform.machine()}")
    print(f"default policy: {augment.DEFAULT_PRESET!r}; {repeats_image} images, {repeats_batch} batches per row\n")
    print(f"{'policy':<18}{'224x224 image, ms':>26}{'64 x 32x32 batch, ms':>28}")
    print(f"{'':<18}{'median':>13}{'mean':>13}{'median':>14}{'mean':>14}")
    order = [augment.DEFAULT_PRESET] + [name for name in augment.PRESETS if name != augment.DEFAULT_PRESET]
    for name in order:
        policy = augment.preset(name)
        single = timed(lambda i: policy.apply(image, i), repeats_image)
        batched = timed(lambda i: policy.apply_batch(batch, i), repeats_batch)
        label = f"{name} (default)" if name == augment.DEFAULT_PRESET else name
        print(f"{label:<18}{single[0]:>13.3f}{single[1]:>13.3f}{batched[0]:>14.3f}{batched[1]:>14.3f}")

    print(f"\n{'transform alone (p=1)':<24}{'224x224, ms median':>20}{'mean':>10}{'64 x 32x32, ms median':>24}")
    for t in augment.TRANSFORMS:
        policy = augment.Policy.build({t.name: True}, probabilities={t.name: 1.0})
        single = timed(lambda i: policy.apply(image, i), repeats_image // 2)
        batched = timed(lambda i: policy.apply_batch(batch, i), repeats_batch // 2)
        print(f"{t.name:<24}{single[0]:>20.3f}{single[1]:>10.3f}{batched[0]:>24.3f}")

    overhead = timed(lambda i: np.random.default_rng([0, i]), 2000)
    print(f"\nper-image generator (default_rng([seed, i])): {overhead[0] * 1e3:.1f} us median")


if __name__ == "__main__":
    main()
