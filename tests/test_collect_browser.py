"""End to end, as a first-time user: on the Train page, collect 3 classes x 15 photos with Chromium's
fake camera (bursts over WebRTC, plus a snapshot), train with the page's defaults, follow
"Try it live", and check that a refresh and a server restart lose nothing. Prints the time from
opening the page to the trained model (the goal: under 3 minutes on this CPU).

The fake camera's frames differ little between classes, so accuracy is not the point; time is.
Screenshots go to $CVPLAY_SCREENSHOTS when it is set.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from e2e_support import chromium_page, streamlit_server, wait_for_streamlit

WEBRTC_IFRAME = 'iframe[title*="streamlit_webrtc"]'
CLASSES = ["mug", "pen", "phone"]
PER_CLASS = 15


def shot(page, name: str) -> None:
    folder = os.environ.get("CVPLAY_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def open_collect_mode(page, url: str) -> None:
    page.goto(url + "/train")
    wait_for_streamlit(page)
    page.get_by_text("Collect with the camera").click()
    page.get_by_text("Dataset", exact=True).first.wait_for(timeout=30_000)


def ensure_streaming(page, button, timeout: float = 120.0) -> None:
    """Wait until the burst button is enabled (the stream plays). On a busy machine a WebRTC
    connection can drop; as a user would, press START again when it shows."""
    deadline = time.monotonic() + timeout
    start = page.frame_locator(WEBRTC_IFRAME).first.get_by_role("button", name="START")
    while button.is_disabled():
        if time.monotonic() > deadline:
            shot(page, "burst-disabled")
            raise AssertionError("the burst button stayed disabled (is the camera streaming?)")
        if start.count() and start.is_visible():
            start.click()
        time.sleep(1.0)


def burst(page, class_name: str, timeout: float = 90.0) -> None:
    page.locator('[data-testid="stRadio"]').get_by_text(class_name, exact=True).click()
    button = page.get_by_role("button", name=f"Record a burst of {class_name}")
    button.wait_for(timeout=30_000)
    ensure_streaming(page, button)
    button.click()
    try:
        page.get_by_text(f"done: {PER_CLASS} photos of {class_name} saved").first.wait_for(timeout=timeout * 1000)
    except Exception:
        shot(page, f"burst-{class_name}-failed")
        raise


def counts_heading(page) -> str:
    return page.locator("h4").filter(has_text="photo(s) in").first.inner_text()


@pytest.mark.browser
@pytest.mark.slow
def test_collect_three_classes_train_and_try_it_live(tmp_path, capsys):
    env = {"CVPLAY_MODELS": str(tmp_path / "models"), "CVPLAY_WEBRTC_LOOPBACK": "1"}
    with streamlit_server("app.py", env=env) as server, chromium_page(fake_media=True, viewport=(1400, 1000)) as page:
        started = time.monotonic()
        open_collect_mode(page, server.url)
        page.get_by_label("Dataset name").fill("desk")
        page.get_by_label("Class names, separated by commas").fill(", ".join(CLASSES))
        page.get_by_role("button", name="Create the dataset").click()
        page.get_by_text("desk: 0 photo(s) in 3 class(es)").wait_for(timeout=30_000)

        page.get_by_role("tab", name=re.compile("Burst")).click()
        for class_name in CLASSES:
            burst(page, class_name)
        collected = time.monotonic()
        with capsys.disabled():
            print(f"\ncollect e2e: {3 * PER_CLASS} camera photos collected {collected - started:.0f} s after opening the page")
        page.get_by_text(f"desk: {3 * PER_CLASS} photo(s) in 3 class(es)").wait_for(timeout=30_000)
        page.get_by_text("is ready to train").wait_for()
        shot(page, "collect-bursts-done")

        page.get_by_role("button", name="Start", exact=True).click()
        # Generous: the machine may be shared; the time is printed, never asserted.
        page.get_by_text("Validation top-1").wait_for(timeout=900_000)
        trained = time.monotonic()
        assert page.locator('[data-testid="stException"]').count() == 0
        assert (tmp_path / "models" / "desk-efficientnet-lite0" / "desk-efficientnet-lite0.tflite").is_file()
        shot(page, "collect-trained")
        link = page.get_by_role("link", name=re.compile("live on the webcam"))
        link.wait_for()
        with capsys.disabled():
            print(f"collect e2e: trained (EfficientNet-Lite0, page defaults) at {trained - started:.0f} s after opening the "
                  f"page ({trained - collected:.0f} s of training); goal < 180 s")

        # A snapshot (st.camera_input) adds one photo to the chosen class.
        page.get_by_role("tab", name=re.compile("Snapshot")).click()
        page.get_by_role("button", name="Take Photo").click()
        page.get_by_text(f"desk: {3 * PER_CLASS + 1} photo(s) in 3 class(es)").wait_for(timeout=30_000)

        link.click()
        page.wait_for_url(re.compile(r"/webcam\?classifier=desk-efficientnet-lite0"), timeout=30_000)
        wait_for_streamlit(page)
        shot(page, "collect-try-it-live")

        # A refresh of the page loses nothing.
        open_collect_mode(page, server.url)
        page.get_by_text(f"desk: {3 * PER_CLASS + 1} photo(s) in 3 class(es)").wait_for(timeout=30_000)

        page.goto(server.url + "/runs")
        wait_for_streamlit(page)
        page.get_by_text("desk-efficientnet-lite0").first.wait_for(timeout=30_000)
        shot(page, "runs-page")

    # Neither does a restart of the server.
    with streamlit_server("app.py", env=env) as server, chromium_page(fake_media=True) as page:
        open_collect_mode(page, server.url)
        page.get_by_text(f"desk: {3 * PER_CLASS + 1} photo(s) in 3 class(es)").wait_for(timeout=30_000)
        assert sorted(p.name for p in (tmp_path / "datasets" / "desk").iterdir()) == CLASSES
        shot(page, "collect-after-restart")
