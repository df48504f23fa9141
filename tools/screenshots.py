"""Screenshots of every page of the real app, for the README: one command regenerates them all.

    python tools/screenshots.py [--out docs/screenshots] [--width 900] [--quality 80]

Starts `streamlit run app.py` on 127.0.0.1 (a free port), drives headless Debian Chromium through
Playwright (never a browser download: see tests/e2e_support.py), opens each page by its own URL
in a fresh browser context as a first visitor, does what a visitor would do first (upload a
photo, switch on the drawn parameters), and writes one small JPEG per page: the page at a
1280-px-wide window, cut to at most ``--max-height`` CSS pixels and scaled to ``--width``.

The photos it uploads are cvplay's built-in procedural samples (cvplay.samples), so nothing with
unknown rights ends up in the pictures. Any request to a host other than the app's own is aborted
and reported, as in tests/test_every_page_browser.py.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from e2e_support import chromium_page, streamlit_server, wait_for_streamlit  # noqa: E402

from cvplay import samples  # noqa: E402

VIEWPORT = (1280, 900)
UPLOAD = '[data-testid="stFileUploader"] input[type="file"]'


@dataclass(frozen=True)
class Shot:
    name: str  # file name without extension
    path: str  # the page's URL path
    prepare: Callable[[object, list[Path]], None]  # what a first visitor does before we look


def settle(page, extra_ms: int = 1_500) -> None:
    """The script run is over and images have arrived."""
    wait_for_streamlit(page)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(extra_ms)


def upload_one_photo(page, photos: list[Path]) -> None:
    page.locator(UPLOAD).first.set_input_files(str(photos[0]))
    page.locator("h3").first.wait_for(timeout=60_000)


def upload_photos(page, photos: list[Path]) -> None:
    page.locator(UPLOAD).first.set_input_files([str(photo) for photo in photos])
    page.get_by_text("All results").first.wait_for(timeout=60_000)


def show_drawn_parameters(page, photos: list[Path]) -> None:
    page.get_by_text("Show drawn parameters").first.click()
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)


def just_open(page, photos: list[Path]) -> None:
    return None


SHOTS = [
    Shot("cifar100", "/cifar100", upload_one_photo),
    Shot("classify", "/classify", upload_photos),
    Shot("augment", "/augment", show_drawn_parameters),
    Shot("webcam", "/webcam", just_open),
    Shot("train", "/train", just_open),
]


def write_photos(folder: Path) -> list[Path]:
    paths = []
    for name in ("scene", samples.SAMPLES[-1]):
        path = folder / f"{name}.png"
        Image.fromarray(samples.load(name)).save(path)
        paths.append(path)
    return paths


def small_jpeg(png: bytes, width: int, quality: int) -> bytes:
    with Image.open(io.BytesIO(png)) as image:
        image = image.convert("RGB")
        height = round(image.height * width / image.width)
        image = image.resize((width, height), Image.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
        return buffer.getvalue()


def take(page, server_url: str, shot: Shot, photos: list[Path], max_height: int) -> bytes:
    outside: list[str] = []

    def route(route_) -> None:
        host = urlparse(route_.request.url).hostname
        if urlparse(route_.request.url).scheme in ("http", "https", "ws", "wss") and host != "127.0.0.1":
            outside.append(route_.request.url)
            route_.abort()
        else:
            route_.continue_()

    page.context.route("**/*", route)
    page.goto(server_url + shot.path)
    settle(page)
    page.locator("h1").first.wait_for(timeout=60_000)
    shot.prepare(page, photos)
    settle(page)
    if outside:
        print(f"  {shot.path}: aborted requests to other hosts: {outside}", file=sys.stderr)
    height = min(max_height, page.evaluate("document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || document.body.scrollHeight"))
    page.set_viewport_size({"width": VIEWPORT[0], "height": max(VIEWPORT[1], int(height))})
    settle(page, 800)
    return page.screenshot(clip={"x": 0, "y": 0, "width": VIEWPORT[0], "height": max(VIEWPORT[1], int(height))})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="output folder")
    parser.add_argument("--width", type=int, default=900, help="width of the written images in pixels")
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality")
    parser.add_argument("--max-height", type=int, default=1500, help="cut each page at this many CSS pixels")
    parser.add_argument("--only", nargs="*", help="page names to take (default: all)")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cvplay-screenshots-") as scratch:
        scratch = Path(scratch)
        photos = write_photos(scratch)
        # A newcomer's machine: an empty home folder (no models of yours, no downloaded data).
        (scratch / "home").mkdir()
        env = {"HOME": str(scratch / "home"), "CVPLAY_MODELS": "", "CVPLAY_DATA": "", "CVPLAY_CIFAR100": "",
               "CVPLAY_SHARED": str(scratch / "no-shared"), "KERAS_HOME": str(scratch / "no-keras")}
        with streamlit_server("app.py", env=env) as server:
            for shot in SHOTS:
                if args.only and shot.name not in args.only:
                    continue
                with chromium_page(viewport=VIEWPORT) as page:
                    image = small_jpeg(take(page, server.url, shot, photos, args.max_height), args.width, args.quality)
                target = args.out / f"{shot.name}.jpg"
                target.write_bytes(image)
                print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: {len(image) / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
