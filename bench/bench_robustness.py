"""Robustness-report benchmark: the whole report for a model on the 200 shared ImageNet photos.

    python bench/bench_robustness.py [--model imagenet-lite0] [--transforms NAME ...]

Copies the photos into class folders named after their ImageNet class (in a temporary folder),
then times ``python -m cvplay robustness --split all`` in-process and ``evaluate`` on the same
images, and checks the clean figure equals evaluate's. Goal: under 2 minutes for imagenet-lite0.
Needs ../shared. Prints figures; asserts nothing but the clean == evaluate identity.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cvplay import robustness as R  # noqa: E402
from cvplay.datasets import load_dataset, shared_dir  # noqa: E402
from cvplay.evaluate import evaluate_classifier  # noqa: E402
from cvplay.runtime import create_classifier  # noqa: E402


def class_folders(source: Path, target: Path) -> Path:
    for entry in json.loads((source / "labels.json").read_text()):
        folder = target / entry["name"]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / entry["file"], folder / entry["file"])
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="imagenet-lite0")
    parser.add_argument("--transforms", nargs="*", default=None)
    args = parser.parse_args()
    shared = shared_dir()
    if shared is None:
        print("../shared is absent: this benchmark needs its ImageNet sample photos")
        return 1
    with tempfile.TemporaryDirectory(prefix="cvplay-bench-robustness-") as tmp:
        data = class_folders(shared / "data" / "imagenet-samples", Path(tmp) / "imagenet-samples")
        classifier = create_classifier(args.model)
        dataset = load_dataset(data, min_images_per_class=1)
        classifier.predict_proba(dataset.load_batch([0]))  # warm up
        started = time.perf_counter()
        evaluated = evaluate_classifier(classifier, dataset, split="all")
        evaluate_seconds = time.perf_counter() - started
        started, cpu_started = time.perf_counter(), time.process_time()
        report = R.robustness_report(classifier, dataset, split="all", distortions=R.get_distortions(args.transforms))
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    print(R.format_table(report))
    print()
    print(f"robustness report: {seconds:.1f} s for {report.n} images x (1 clean + {len(report.rows)} distorted) "
          f"= {report.n * (1 + len(report.rows))} predictions (goal < 120 s); evaluate alone: {evaluate_seconds:.1f} s; "
          f"ratio {seconds / evaluate_seconds:.1f}x; CPU time of the report (all threads) {cpu_seconds:.1f} s")
    assert report.clean_top1 == evaluated.report.top1, (report.clean_top1, evaluated.report.top1)
    print(f"clean top-1 {report.clean_top1:.4f} == evaluate top-1 {evaluated.report.top1:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
