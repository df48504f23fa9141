"""App benchmark: cold start to first rendered page, and the server's resident memory after the
serving pages have run (a photo on the CIFAR-100 page, a photo on the classify page, the
augmentation previews, the webcam page). Prints figures; asserts nothing.

    python bench/bench_app.py [--photo PATH] [--runs 3] [--with-test-set]

By default the server runs as on Heroku, with no CIFAR-100 test set (so no gallery);
``--with-test-set`` lets the CIFAR-100 page find ``../shared`` and draw its gallery too.

Needs Debian's Chromium and the Python package playwright (the dev extra). Resident memory is
VmRSS of the `streamlit run` process (it serves every session; no child processes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from e2e_support import chromium_page, streamlit_server, wait_for_streamlit  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def default_photo(path: Path) -> Path:
    rng = np.random.default_rng(0)
    image = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(path)
    return path


def upload_and_wait(page, photo: Path) -> None:
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(photo))
    page.locator("h3").first.wait_for(timeout=60_000)


def one_run(photo: Path, with_test_set: bool) -> dict[str, float]:
    env = {} if with_test_set else {"CVPLAY_SHARED": "/nonexistent", "CVPLAY_CIFAR100": ""}
    started = time.perf_counter()
    with streamlit_server("app.py", env=env) as server, chromium_page() as page:
        serving = time.perf_counter() - started
        idle_rss = rss_mb(server.process.pid)
        page.goto(server.url + "/")
        wait_for_streamlit(page)
        page.locator("h1", has_text="CIFAR-100").wait_for(timeout=60_000)
        first_page = time.perf_counter() - started
        upload_and_wait(page, photo)
        classified = time.perf_counter() - started
        cifar_rss = rss_mb(server.process.pid)
        page.goto(server.url + "/classify")
        wait_for_streamlit(page)
        page.locator("h1", has_text="Classify your photos").wait_for(timeout=60_000)
        upload_and_wait(page, photo)
        classify_rss = rss_mb(server.process.pid)
        for path in ("/augment", "/webcam"):
            page.goto(server.url + path)
            wait_for_streamlit(page)
            time.sleep(1.0)
        all_rss = rss_mb(server.process.pid)
    return {
        "server answers health check (s)": serving,
        "first page rendered (s)": first_page,
        "first photo classified (s)": classified,
        "RSS idle server (MB)": idle_rss,
        "RSS after CIFAR-100 page (MB)": cifar_rss,
        "RSS after + classify page (MB)": classify_rss,
        "RSS after every serving page (MB)": all_rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--with-test-set", action="store_true", help="let the CIFAR-100 page find ../shared")
    args = parser.parse_args()
    photo = args.photo or default_photo(Path("/tmp/cvplay-bench-photo.png"))
    runs = [one_run(photo, args.with_test_set) for _ in range(args.runs)]
    print(f"{'figure':<36} {'median':>8} {'min':>8} {'max':>8}   ({args.runs} cold starts)")
    for key in runs[0]:
        values = [run[key] for run in runs]
        print(f"{key:<36} {statistics.median(values):8.1f} {min(values):8.1f} {max(values):8.1f}")


if __name__ == "__main__":
    main()
