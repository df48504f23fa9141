"""Fine-tuning the top blocks on images vs on cached lower-block outputs (``--cache-blocks``).

Both runs go through :func:`cvplay.training.trainer.train` on the same real CIFAR-100 images from
``../shared/data/cifar100`` (``--per-class`` of each of the 100 classes), at the same input size,
with the same top ``--blocks`` blocks unfrozen, for one fine-tuning epoch and no head stage:

* **images**: every step runs the whole backbone forward (frozen lower part included) and the
  top blocks backward, as the trainer does without ``--cache-blocks``;
* **cached**: the frozen lower part runs once per image and mirror image (a one-time cost), then
  every step runs only the top blocks.

Prints training images per second for each, their ratio, the one-time caching cost and after
how many epochs caching has paid for itself. Asserts nothing.

    python bench/bench_cache_blocks.py [--per-class 6] [--image-size 224] [--blocks 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=6)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from cvplay.datasets import shared_dir
    from cvplay.training.trainer import TrainConfig, train

    shared = shared_dir()
    pool = shared / "data" / "cifar100" if shared else None
    if pool is None or not pool.is_dir():
        sys.exit("no CIFAR-100 pool in ../shared/data/cifar100 (or $CVPLAY_SHARED/data/cifar100): this benchmark needs it")
    results = {}
    with tempfile.TemporaryDirectory(prefix="cvplay-bench-cache-") as scratch:
        for mode in ("images", "cached"):
            result = train(TrainConfig(
                data=str(pool), out=str(Path(scratch) / mode), backbone="efficientnet-lite0", image_size=args.image_size,
                epochs=0, fine_tune_epochs=1, fine_tune_blocks=args.blocks, augment="classic" if mode == "cached" else "none",
                cache_blocks=mode == "cached", max_per_class=args.per_class, batch_size=args.batch_size,
                val_fraction=0.2, name=f"bench-{mode}"))
            results[mode] = result
            print(f"{mode}: {result.throughput}", flush=True)
    n_train = results["images"].n_train
    images_ips = results["images"].throughput["fine_tune_steps"]
    cached = results["cached"]
    cached_ips = cached.throughput["fine_tune_steps"]
    extract_ips = cached.throughput["feature_extraction"]
    views = 2
    cache_seconds = (n_train * views + cached.n_val) / extract_ips
    epoch_images, epoch_cached = n_train / images_ips, n_train / cached_ips
    print()
    print(f"EfficientNet-Lite0 at {args.image_size} px, top {args.blocks} blocks trained, {n_train} training images, "
          f"batch {args.batch_size}")
    print(f"{'fine-tuning on':<16} {'train img/s':>11} {'s / epoch':>10}")
    print(f"{'images':<16} {images_ips:>11.1f} {epoch_images:>10.1f}")
    print(f"{'cached maps':<16} {cached_ips:>11.1f} {epoch_cached:>10.1f}")
    print(f"ratio cached / images: {cached_ips / images_ips:.2f}x faster per epoch")
    print(f"one-time cache ({views} views of {n_train} + {cached.n_val} validation images): {cache_seconds:.1f} s "
          f"at {extract_ips:.1f} images/s")
    saved = epoch_images - epoch_cached
    if saved > 0:
        print(f"caching pays for itself after {cache_seconds / saved:.1f} epoch(s)")


if __name__ == "__main__":
    main()
