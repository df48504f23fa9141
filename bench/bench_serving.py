"""Serving benchmark: per-image latency through cvplay's runtime vs a bare LiteRT invoke, and
batch throughput. Prints figures; asserts nothing (these machines are noisy).

    python bench/bench_serving.py [--model imagenet-lite0] [--runs 200] [--threads N]

"Bare" is ``interpreter.set_tensor + invoke + get_tensor`` on an already prepared input with the
same number of threads: the floor. "cvplay" is ``Classifier.predict`` on a 224x224 RGB photo:
crop/resize, normalisation, lock, invoke, top-5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvplay.preprocess import prepare  # noqa: E402
from cvplay.runtime import create_classifier, default_num_threads, load_interpreter  # noqa: E402


def timed(function, runs: int) -> list[float]:
    return interleaved([function], runs)[0]


def interleaved(functions, runs: int) -> list[list[float]]:
    """Time each function once per round, alternating, so drift and load hit all alike."""
    for _ in range(max(3, runs // 20)):
        for function in functions:
            function()
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(runs):
        for function, bucket in zip(functions, times):
            start = time.perf_counter()
            function()
            bucket.append((time.perf_counter() - start) * 1000)
    return times


def describe(times: list[float]) -> str:
    return f"median {statistics.median(times):7.2f} ms   p90 {np.percentile(times, 90):7.2f} ms   min {min(times):7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="imagenet-lite0")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    threads = args.threads or default_num_threads()
    classifier = create_classifier(args.model, num_threads=threads)
    card = classifier.card
    height, width = card.input.size
    photo = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)

    interpreter = load_interpreter(card.model_path, num_threads=threads)
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    prepared = prepare(photo, card.input)[None].astype(input_detail["dtype"])

    def bare() -> None:
        interpreter.set_tensor(input_detail["index"], prepared)
        interpreter.invoke()
        interpreter.get_tensor(output_detail["index"])

    bare_times, cvplay_times = interleaved([bare, lambda: classifier.predict(photo, k=5)], args.runs)
    batch = [photo] * args.batch
    batch_times = timed(lambda: classifier.predict_proba(batch), max(5, args.runs // 20))

    print(f"model {card.name}  input {height}x{width}  threads {threads}  runs {args.runs}")
    print(f"bare LiteRT invoke      {describe(bare_times)}")
    print(f"cvplay predict (top-5)  {describe(cvplay_times)}")
    ratio = statistics.median(cvplay_times) / statistics.median(bare_times)
    print(f"ratio cvplay / bare     {ratio:.2f}x (median over median)")
    per_image = statistics.median(batch_times) / args.batch
    print(
        f"batch of {args.batch}             median {statistics.median(batch_times):7.1f} ms   "
        f"{per_image:.2f} ms/image   {1000 / per_image:.0f} images/s"
    )
    print(f"single-image throughput {1000 / statistics.median(cvplay_times):.0f} images/s")


if __name__ == "__main__":
    main()
