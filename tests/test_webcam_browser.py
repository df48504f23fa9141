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
from e2e_support import ROOT, chromium_page, streamlit_server, wait_for_streamlit  # noqa: F401

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
    """A Y4M clip of one picture at ``fps``: Chromium plays it, looped, as the fake camera
    (``--use-file-for-fake-video-capture``) at the clip's frame rate. Y4M is a text header and
    raw 4:2:0 frames; the picture is converted with OpenCV (BT.601, as Chromium reads Y4M)."""
    import cv2

    height, width = rgb.shape[:2]
    if height % 2 or width % 2:
        raise ValueError("Y4M 4:2:0 needs an even width and height")
    planes = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes()  # Y, then U, then V
    with open(path, "wb") as clip:
        clip.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for _ in range(frames):
            clip.write(b"FRAME\n")
            clip.write(planes)
    return path


def choose_detector(page, title: str) -> None:
    """Pick a detector in the page's "Detector" selectbox by its shown title."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Detector").first.click()
    page.get_by_role("option", name=title).first.click()


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
        page.goto(server.url + path)
        wait_for_streamlit(page)
        page.wait_for_selector(WEBRTC_IFRAME, timeout=60_000)
        choose_detector(page, "Frontal face (Haar)")
        wait_for_streamlit(page)
        page.frame_locator(WEBRTC_IFRAME).first.get_by_role("button", name="START").click()
        wait_for_frames(page, server)
        caption = page.get_by_text(re.compile(r"haar:face: \d+ result")).first
        deadline = time.monotonic() + 30
        while "haar:face: 1 result" not in caption.inner_text():
            assert time.monotonic() < deadline, caption.inner_text()
            time.sleep(0.5)
        with capsys.disabled():
            print(f"\nwebcam e2e, real face: {caption.inner_text()}; metrics {metrics(page)}")
        stop(page)


CLIP_FPS = 30
MEASURE_SECONDS = 10.0


@pytest.mark.browser
@pytest.mark.slow
def test_default_detector_on_a_30_fps_camera_and_a_switch_to_a_classifier(tmp_path, capsys):
    """The goal run: a 30 fps clip of a real photo (scikit-image's astronaut, a person) as the
    camera, the default detector (openimages-ssd); prints the processed FPS, checks the live
    table lists the person, then switches to a Haar cascade and to a whole-frame classifier while
    streaming and checks the stream goes on. One command: python -m pytest tests/test_webcam_browser.py -s -k 30_fps"""
    import cv2

    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the sample photo")
    rgb = cv2.resize(skimage_data.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)
    clip = write_y4m(tmp_path / "astronaut-30fps.y4m", rgb, frames=CLIP_FPS, fps=CLIP_FPS)
    camera = [f"--use-file-for-fake-video-capture={clip}"]
    script, path = webcam_target()
    with streamlit_server(script, env={"CVPLAY_WEBRTC_LOOPBACK": "1"}) as server, chromium_page(fake_media=True, extra_args=camera) as page:
        open_and_start(page, server, path)
        first = wait_for_frames(page, server, timeout=90)
        time.sleep(2.0)  # let the encoder's bitrate and the frame rate settle
        start_count, start = frames_processed(page), time.monotonic()
        time.sleep(MEASURE_SECONDS)
        counted = (frames_processed(page) - start_count) / (time.monotonic() - start)
        shown = metrics(page)
        table = page.locator('[data-testid="stDataFrame"]').first
        deadline = time.monotonic() + 20
        while "openimages-ssd" not in page.inner_text("body") or not page.get_by_text(re.compile(r"openimages-ssd.*result")).count():
            assert time.monotonic() < deadline, page.inner_text("body")[-2000:]
            time.sleep(0.5)
        caption = page.get_by_text(re.compile(r"openimages-ssd.*result")).first.inner_text()
        # The live table lists the person (a canvas grid: its cells are in the hidden accessible table).
        deadline = time.monotonic() + 20
        while "Person" not in (table.text_content() or ""):
            assert time.monotonic() < deadline, f"no Person in the table; caption {caption!r}"
            time.sleep(0.5)
        with capsys.disabled():
            print(
                f"\nwebcam e2e, {CLIP_FPS} fps clip of a real photo (astronaut), default detector: "
                f"processed {counted:.1f} frames/s over {MEASURE_SECONDS:.0f} s (counter), page FPS {shown.get('FPS')}, "
                f"ms/frame {shown.get('ms / frame')}; {caption}; first frame after {first} frames"
            )

        # Switch detectors while streaming (each loads for the first time, behind a spinner):
        # a Haar cascade, then whole-frame classification. The stream must go on.
        choose_detector(page, "Eyes (Haar)")
        deadline = time.monotonic() + 60
        while not page.get_by_text(re.compile(r"haar:eyes.*result")).count():
            assert time.monotonic() < deadline, "the Haar detector's results never arrived after the switch"
            time.sleep(0.5)
        choose_detector(page, "imagenet-lite0 (classify the whole frame)")
        deadline = time.monotonic() + 60
        while not page.get_by_text(re.compile(r"classify:imagenet-lite0.*result")).count():
            assert time.monotonic() < deadline, "the classifier's results never arrived after the switch"
            time.sleep(0.5)
        before = frames_processed(page)
        time.sleep(3.0)
        after = frames_processed(page)
        assert after > before + 10, (before, after)
        assert page.frame_locator(WEBRTC_IFRAME).first.get_by_role("button", name="STOP").count() == 1
        with capsys.disabled():
            print(f"after the switch to classify:imagenet-lite0: {(after - before) / 3.0:.1f} frames/s, the stream went on")
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
