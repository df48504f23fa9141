"""Precisions (fp32, fp16, int8) of the ImageNet EfficientNet-Lites side by side: size, accuracy, latency.

    python bench/bench_lite0_precision.py [--models imagenet-lite0,imagenet-lite2]
        [--precisions fp32,fp16,int8] [--dir /tmp/cvplay-lite0-precision] [--runs 100] [--threads N]

Exports each model and precision with ``cvplay.training.export.export_imagenet_lite`` into
``--dir``/MODEL-PRECISION (needs the training extra; int8 is calibrated on CIFAR-100 photos from
../shared, never on the 200 test photos; skipped when already there, ``--reexport`` to force),
then measures each file:

* size on disk;
* top-1/top-5 through ``cvplay.runtime`` on the 200 photos of ../shared/data/imagenet-samples;
* model load time (``Classifier(card)``, median of 5) and the resident memory a fresh process
  gains by loading it and classifying once;
* the process's CPU time per ``Classifier.predict`` (all threads; median): unlike the wall-clock
  figures it barely moves when other processes load the machine;
* single-image latency, median over ``--runs``: ``Classifier.predict`` on a real photo (crop,
  resize, normalise, lock, invoke, top-5) and a bare ``ai_edge_litert`` ``set_tensor + invoke +
  get_tensor`` on the prepared input with the same thread count, and their ratio.

All files are timed in alternating rounds so that load from other processes on a shared
machine falls on both alike. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvplay.preprocess import prepare  # noqa: E402
from cvplay.registry import read_card  # noqa: E402
from cvplay.runtime import Classifier, default_num_threads  # noqa: E402
from cvplay.training.export import load_imagenet_samples, top1_top5  # noqa: E402

def ensure_exports(root: Path, models: list[str], precisions: list[str], reexport: bool) -> dict[str, Path]:
    cards = {}
    for model in models:
        for precision in precisions:
            card = root / f"{model}-{precision}" / f"{model}.json"
            if reexport or not card.is_file():
                from cvplay.training.export import export_imagenet_lite

                print(f"exporting {model} {precision} to {card.parent} ...", flush=True)
                export_imagenet_lite(model, card.parent, precision=precision)
            cards[f"{model} {precision}"] = card
    return cards


_RSS_SNIPPET = """
import sys, numpy as np
from cvplay.registry import read_card
from cvplay.runtime import Classifier
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6
card = read_card(sys.argv[1])
before = rss()
Classifier(card).predict(np.zeros((256, 320, 3), np.uint8))
print(rss() - before)
"""


def resident_mb(card_path: Path) -> float:
    """Resident memory a fresh process gains by loading the model and classifying once (Linux)."""
    if not Path("/proc/self/statm").exists():
        return float("nan")
    result = subprocess.run(
        [sys.executable, "-c", _RSS_SNIPPET, str(card_path)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], check=False,
    )
    try:
        return float(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/cvplay-lite0-precision"))
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--reexport", action="store_true")
    parser.add_argument("--models", default="imagenet-lite0", help="comma-separated: imagenet-lite0,imagenet-lite2")
    parser.add_argument("--precisions", default="fp32,fp16", help="comma-separated: fp32,fp16,int8")
    args = parser.parse_args()

    from ai_edge_litert.interpreter import Interpreter

    samples = load_imagenet_samples()
    if samples is None:
        sys.exit("../shared/data/imagenet-samples is absent (set CVPLAY_SHARED): nothing to measure on")
    images, targets, names = samples
    photo = images[0]
    threads = args.threads or default_num_threads()
    cards = ensure_exports(args.dir, args.models.split(","), args.precisions.split(","), args.reexport)

    rows = {}
    runners = {}
    for precision, card_path in cards.items():
        card = read_card(card_path)
        classifier = Classifier(card, num_threads=threads)
        scores = top1_top5(classifier.predict_proba(images), targets)
        interpreter = Interpreter(model_path=str(card.model_path), num_threads=threads)
        interpreter.allocate_tensors()
        detail_in = interpreter.get_input_details()[0]
        detail_out = interpreter.get_output_details()[0]
        prepared = prepare(photo, card.input)[None].astype(np.float32)

        def bare(interpreter=interpreter, detail_in=detail_in, detail_out=detail_out, prepared=prepared):
            interpreter.set_tensor(detail_in["index"], prepared)
            interpreter.invoke()
            return interpreter.get_tensor(detail_out["index"])

        def runtime(classifier=classifier):
            return classifier.predict(photo)

        classifier.predict(photo)  # settle the batch size at one
        loads = []
        for _ in range(5):
            start = time.perf_counter()
            Classifier(card, num_threads=threads)
            loads.append((time.perf_counter() - start) * 1000)
        runners[precision] = {"runtime": runtime, "bare": bare}
        rows[precision] = {
            "size_mb": card.model_path.stat().st_size / 1e6,
            **scores,
            "load_ms": statistics.median(loads),
            "rss_mb": resident_mb(card_path),
            "runtime": [],
            "bare": [],
            "runtime_cpu": [],
        }

    for function in [f for r in runners.values() for f in r.values()]:
        for _ in range(10):
            function()  # warm-up
    rounds = 10
    per_round = max(1, args.runs // rounds)
    for _ in range(rounds):
        for precision, functions in runners.items():
            for kind, function in functions.items():
                for _ in range(per_round):
                    start, cpu_start = time.perf_counter(), time.process_time()
                    function()
                    rows[precision][kind].append((time.perf_counter() - start) * 1000)
                    if kind == "runtime":
                        rows[precision]["runtime_cpu"].append((time.process_time() - cpu_start) * 1000)

    print(f"\n{len(images)} photos, {threads} threads, {per_round * rounds} runs per figure")
    print(f"photo for latency: {names[0]} {photo.shape[1]}x{photo.shape[0]} (center crop as each card says)\n")
    header = (
        f"{'model precision':<20}  {'size MB':>7}  {'top1':>6}  {'top5':>6}  {'cvplay ms':>9}  {'p90':>6}  "
        f"{'bare ms':>7}  {'ratio':>5}  {'CPU ms':>6}  {'load ms':>7}  {'RSS MB':>6}"
    )
    print(header)
    print("-" * len(header))
    for precision, row in rows.items():
        runtime_ms = statistics.median(row["runtime"])
        bare_ms = statistics.median(row["bare"])
        print(
            f"{precision:<20}  {row['size_mb']:7.2f}  {row['top1']:6.3f}  {row['top5']:6.3f}  {runtime_ms:9.2f}  "
            f"{np.percentile(row['runtime'], 90):6.2f}  {bare_ms:7.2f}  {runtime_ms / bare_ms:5.2f}  "
            f"{statistics.median(row['runtime_cpu']):6.2f}  "
            f"{row['load_ms']:7.1f}  {row['rss_mb']:6.1f}"
        )


if __name__ == "__main__":
    main()
