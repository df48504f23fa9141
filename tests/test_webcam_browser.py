"""End to end: `streamlit run app.py` on loopback, Debian's headless Chromium with a fake camera,
START on the webcam page, and annotated frames flowing back over WebRTC.

Chromium and the server share this machine and need no network: the page uses no STUN/TURN server
by default, and CVPLAY_WEBRTC_LOOPBACK=1 with Chromium's --allow-loopback-in-peer-connection makes
both ends use 127.0.0.1 ICE candidates only.
"""

from __future__ import annotations

import re
import time

import pytest

import e2e_support
from e2e_support import ROOT, chromium_page, streamlit_server, wait_for_streamlit

WEBRTC_IFRAME = 'iframe[title*="streamlit_webrtc"]'
STREAM_SECONDS = 5.0


def webcam_target() -> tuple[str, str]:
    """(script, URL path): the app shell, deep-linked straight to the webcam page."""
    return "app.py", "/webcam"


def metrics(page) -> dict[str, str]:
    found = {}
    for metric in page.locator('[data-testid="stMetric"]').all():
        label = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        found[label] = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return found


def frames_processed(page) -> int:
    value = metrics(page).get("Frames", "0").replace(",", "")
    return int(value) if value.isdigit() else 0


VIDEO_PIXELS = """() => {
    const video = document.querySelector('video');
    if (!video || video.videoWidth === 0) return null;
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    const context = canvas.getContext('2d');
    context.drawImage(video, 0, 0);
    const at = (x, y) => Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3));
    return {width: video.videoWidth, height: video.videoHeight, corner: at(2, 2),
            middle: at(video.videoWidth >> 1, video.videoHeight >> 1)};
}"""


def open_and_start(page, server, path: str) -> None:
    page.goto(server.url + path)
    wait_for_streamlit(page)
    page.wait_for_selector(WEBRTC_IFRAME, timeout=60_000)
    assert "Webcam detection" in page.inner_text("h1")
    page.frame_locator(WEBRTC_IFRAME).first.get_by_role("button", name="START").click()


def wait_for_frames(page, server, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while (count := frames_processed(page)) == 0:
        assert time.monotonic() < deadline, f"no frame came back within {timeout:.0f} s\n{server.log()[-3000:]}"
        time.sleep(0.5)
    return count


def stop(page) -> None:
    page.frame_locator(WEBRTC_IFRAME).first.get_by_role("button", name="STOP").click()


@pytest.mark.browser
@pytest.mark.slow
def test_webcam_streams_annotated_frames(capsys):
    script, path = webcam_target()
    with streamlit_server(script, env={"CVPLAY_WEBRTC_LOOPBACK": "1"}) as server, chromium_page(fake_media=True) as page:
        open_and_start(page, server, path)

        # Wait for the first processed frame, then watch the counter grow.
        first = wait_for_frames(page, server)
        start = time.monotonic()
        readings = [first]
        while time.monotonic() - start < STREAM_SECONDS:
            time.sleep(1.0)
            readings.append(frames_processed(page))
        assert readings == sorted(readings) and readings[-1] > first + 10, readings
        counter_rate = (readings[-1] - first) / (time.monotonic() - start)

        # The frames shown in the browser are the annotated ones: the overlay's black
        # background sits in the top-left corner of Chromium's green fake-camera picture.
        frame = page.locator(WEBRTC_IFRAME).element_handle().content_frame()
        pixels = frame.evaluate(VIDEO_PIXELS)
        assert pixels is not None, "the video element shows nothing"
        assert max(pixels["corner"]) < 50, pixels
        assert max(pixels["middle"]) > 50, pixels

        shown = metrics(page)
        fps = float(shown["FPS"])
        assert fps > 1.0, shown
        assert page.locator('[data-testid="stDataFrame"]').count() >= 1
        with capsys.disabled():
            print(
                f"\nwebcam e2e ({script}): {readings[-1]} frames processed; page FPS {fps:.1f}; "
                f"counter grew {counter_rate:.1f} frames/s; ms/frame {shown.get('ms / frame')}; "
                f"video {pixels['width']}x{pixels['height']}"
            )
        stop(page)


def write_y4m(path, rgb, frames: int = 2, fps: int = 20):
    """A short Y4M clip of one picture: Chromium plays it (looped) as the fake camera."""
    import av

    with av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=fps)
        stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p"
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.shared
def test_webcam_finds_a_real_face(shared, tmp_path, capsys):
    import cv2

    photo = shared / "data" / "imagenet-samples" / "652_n03763968.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} is missing")
    rgb = cv2.cvtColor(cv2.resize(cv2.imread(str(photo)), (640, 480)), cv2.COLOR_BGR2RGB)
    clip = write_y4m(tmp_path / "face.y4m", rgb)
    script, path = webcam_target()
    camera = [f"--use-file-for-fake-video-capture={clip}"]
    with streamlit_server(script, env={"CVPLAY_WEBRTC_LOOPBACK": "1"}) as server, chromium_page(fake_media=True, extra_args=camera) as page:
        open_and_start(page, server, path)
        wait_for_frames(page, server)
        caption = page.get_by_text(re.compile(r"haar:face: \d+ result")).first
        deadline = time.monotonic() + 30
        while "haar:face: 1 result" not in caption.inner_text():
            assert time.monotonic() < deadline, caption.inner_text()
            time.sleep(0.5)
        with capsys.disabled():
            print(f"\nwebcam e2e, real face: {caption.inner_text()}; metrics {metrics(page)}")
        stop(page)


# --- the helpers' own rules (no browser needed) ------------------------------------------------


def test_a_missing_browser_skips_locally_and_fails_in_ci(monkeypatch, tmp_path):
    missing = str(tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
        e2e_support.require_browser(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        e2e_support.require_browser(missing)


def test_streamlit_server_reports_a_server_that_cannot_start(tmp_path):
    with pytest.raises(RuntimeError, match="streamlit exited"):
        with streamlit_server(tmp_path / "missing.py", timeout=60):
            pass
