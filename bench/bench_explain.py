"""Heatmap benchmark: the pointing game and seconds per photo, for the method choices side by side.

    python bench/bench_explain.py [--model imagenet-lite0] [--photos 200] [--seed 0]

Pointing game (tests/pointing_game.py): each shared ImageNet photo is shrunk (longer side 100-160
px) and pasted at a seeded place on a plain 480 x 320 canvas, inside the model's centre crop; a
hit is the hottest heatmap cell falling inside the pasted photo. "chance" is the mean share of
the model's view the pasted photo covers (what a random cell would score). Seconds per photo are
measured on the unpasted photos (the whole ``explain`` call: prediction, occlusions, mapping).
Needs ../shared. Prints figures; asserts nothing (machines are noisy).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cvplay import explain as E  # noqa: E402
from cvplay.datasets import shared_dir  # noqa: E402
from cvplay.images import read_image  # noqa: E402
from cvplay.runtime import create_classifier  # noqa: E402
from pointing_game import play, shared_photos  # noqa: E402

VARIANTS = {
    "default: 8x8 cells, 2x2-cell patches of blur mixed with grey (49 occlusions)": {},
    "8x8 cells, 2x2-cell grey patches": {"fill": "grey"},
    "8x8 cells, 2x2-cell blurred patches": {"fill": "blur"},
    "8x8 cells, 3x3-cell patches (36 occlusions)": {"patch_cells": 3},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="imagenet-lite0")
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", action="store_true", help="also run the alternatives the default was chosen over")
    parser.add_argument("--top-class", action="store_true", help="also play with each canvas's top class, not only the true one")
    args = parser.parse_args()
    shared = shared_dir()
    if shared is None:
        print("../shared is absent: this benchmark needs its ImageNet sample photos")
        return 1
    classifier = create_classifier(args.model)
    photos = shared_photos(shared)[: args.photos]
    classifier.predict_proba([read_image(photos[0][0])])  # warm up
    seconds, cpu_seconds = [], []
    for path, _ in photos[: min(len(photos), 40)]:
        image = read_image(path)
        started, cpu_started = time.perf_counter(), time.process_time()
        E.explain(classifier, image)
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    print(f"model {args.model}: explain() on {len(seconds)} shared photos: median {statistics.median(seconds):.3f} s, "
          f"max {max(seconds):.3f} s per photo wall clock (goal <= 1.5 s); CPU time (all threads) median "
          f"{statistics.median(cpu_seconds):.3f} s per photo")
    variants = VARIANTS if args.variants else dict(list(VARIANTS.items())[:1])
    for name, options in variants.items():
        for use_true_class in (True, False) if args.top_class else (True,):
            result = play(classifier, photos, seed=args.seed, use_true_class=use_true_class, **options)
            print(f"pointing game, {name}, {'true' if use_true_class else 'top'} class: {result['hits']}/{result['n']} "
                  f"= {result['rate']:.1%} hits (chance {result['chance']:.1%}; goal >= 80%), "
                  f"median {result['median_s']:.3f} s per canvas")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
