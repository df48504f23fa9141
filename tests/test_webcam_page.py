"""The webcam page under Streamlit's AppTest (webrtc_streamer stubbed), the ICE settings read
from the environment, and the import rules (no TensorFlow on the page, no Streamlit in the core)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import streamlit_webrtc  # before TensorFlow: aiortc's pylibsrtp segfaults when loaded after it
import streamlit_webrtc.credentials
from streamlit.testing.v1 import AppTest

from cvplay.webcam import FrameProcessor
from cvplay_ui import webrtc as ice_config
from model_factory import solid

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app_pages" / "webcam.py")
TIMEOUT = 60
ICE_VARIABLES = [
    "CVPLAY_ICE_SERVERS", "TURN_URL", "TURN_USERNAME", "TURN_CREDENTIAL", "STUN_URL",
    "CLOUDFLARE_TURN_KEY_ID", "CLOUDFLARE_TURN_KEY_API_TOKEN", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
    "HF_TOKEN", "CVPLAY_WEBRTC_LOOPBACK",
]


@pytest.fixture(autouse=True)
def clean_ice_environment(monkeypatch):
    for name in ICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


class StreamerStub:
    """Stands in for streamlit_webrtc.webrtc_streamer: records its arguments."""

    def __init__(self, playing: bool = False):
        self.calls: list[dict] = []
        self.playing = playing

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return SimpleNamespace(state=SimpleNamespace(playing=self.playing, signalling=False))

    @property
    def last(self) -> dict:
        return self.calls[-1]

    @property
    def processor(self) -> FrameProcessor:
        return self.last["video_frame_callback"].__self__


@pytest.fixture
def streamer(monkeypatch, user_models):
    stub = StreamerStub()
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", stub)
    return stub


def run_page(**kwargs) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(element.value) for element in getattr(at, kind))


# --- the page -------------------------------------------------------------------------------


def test_controls_render_and_the_streamer_is_configured(streamer):
    at = run_page()
    detector = at.selectbox(key="webcam-detector")
    assert detector.value == "openimages-ssd"  # the shipped detector is the default
    assert "Eyes (Haar)" in detector.options and "colour (classify the whole frame)" in detector.options
    assert "Frontal face (Haar)" in detector.options
    assert at.slider(key="webcam-score").value == 0.5
    assert at.slider(key="webcam-iou").value == 0.45
    assert at.number_input(key="webcam-max").value == 20
    assert at.selectbox(key="webcam-resolution").value == "640 × 480"
    assert "https://" in texts(at, "info") and "localhost" in texts(at, "info")
    call = streamer.last
    assert call["key"] == "webcam"
    assert call["mode"] == streamlit_webrtc.WebRtcMode.SENDRECV
    assert call["async_processing"] is True
    assert call["media_stream_constraints"] == {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False}
    assert call["rtc_configuration"] == {"iceServers": []}  # no variables: host candidates only
    assert "device_access_denied" in call["translations"]
    settings = streamer.processor.settings
    assert settings.detector_name == "openimages-ssd" and settings.score_threshold == 0.5
    assert settings.classes == frozenset()
    # The class filter offers the detector's 23 objects, not its background entry.
    classes = at.multiselect(key="webcam-classes-openimages-ssd")
    assert len(classes.options) == 23 and "Dog" in classes.options and "???" not in classes.options


def test_chosen_settings_reach_the_callback(streamer):
    at = run_page()
    at.slider(key="webcam-score").set_value(0.7)
    at.slider(key="webcam-iou").set_value(0.3)
    at.number_input(key="webcam-max").set_value(5)
    at.selectbox(key="webcam-resolution").set_value("320 × 240")
    at.selectbox(key="webcam-detector").set_value("haar:eyes").run()
    assert not at.exception
    settings = streamer.processor.settings
    assert (settings.detector_name, settings.score_threshold, settings.iou_threshold, settings.max_detections) == ("haar:eyes", 0.7, 0.3, 5)
    assert streamer.last["media_stream_constraints"]["video"] == {"width": {"ideal": 320}, "height": {"ideal": 240}}
    # The processor survives reruns (one per session), and the callback runs outside Streamlit.
    processors = {id(call["video_frame_callback"].__self__) for call in streamer.calls}
    assert len(processors) == 1
    out = streamer.processor.process(np.zeros((240, 320, 3), np.uint8))
    assert out.shape == (240, 320, 3) and streamer.processor.latest().detector == "haar:eyes"


def test_classification_mode_controls(streamer):
    at = run_page()
    at.selectbox(key="webcam-detector").set_value("classify:colour").run()
    assert not at.exception
    assert at.slider(key="webcam-score").disabled and at.slider(key="webcam-iou").disabled
    at.slider(key="webcam-every").set_value(3).run()
    detector = streamer.processor.settings.detector
    assert detector.name == "classify:colour" and detector.every == 3
    streamer.processor.process(solid((250, 10, 10), 60, 80))
    assert streamer.processor.latest().detections[0].label == "red"


def test_a_broken_detection_model_shows_a_clear_error(streamer, user_models):
    (user_models / "broken-ssd.tflite").write_bytes(b"not a model")
    (user_models / "broken-ssd.json").write_text(json.dumps({"name": "broken-ssd", "task": "detect", "labels": ["x"]}))
    at = run_page()
    at.selectbox(key="webcam-detector").set_value("broken-ssd").run()
    assert not at.exception
    assert "Cannot load" in texts(at, "error") and "not a TFLite model" in texts(at, "error")
    assert streamer.processor.settings.detector is None  # the video still streams, unannotated


def test_live_panel_shows_counters_and_the_table_while_playing(streamer):
    at = run_page()
    processor = streamer.processor
    streamer.playing = True
    at.run()  # START: the counters are reset
    face = np.zeros((120, 160, 3), np.uint8)
    processor.process(face)
    processor.process(face)
    at.run()
    assert not at.exception
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Frames"] == "2"
    assert set(metrics) == {"Frames", "FPS", "ms / frame"}
    assert len(at.dataframe) == 1
    assert list(at.dataframe[0].value.columns) == ["label", "score", "x1", "y1", "x2", "y2"]


def test_bad_ice_settings_are_reported_and_fall_back(streamer, monkeypatch):
    monkeypatch.setenv("CVPLAY_ICE_SERVERS", "{not json")
    at = run_page()
    assert "WebRTC settings" in texts(at, "error")
    assert streamer.last["rtc_configuration"] == {"iceServers": []}


def test_turn_settings_reach_the_streamer(streamer, monkeypatch):
    monkeypatch.setenv("TURN_URL", "turn:turn.example.org:3478")
    monkeypatch.setenv("TURN_USERNAME", "user")
    monkeypatch.setenv("TURN_CREDENTIAL", "secret")
    run_page()
    assert streamer.last["rtc_configuration"] == {
        "iceServers": [{"urls": ["turn:turn.example.org:3478"], "username": "user", "credential": "secret"}]
    }


# --- ICE settings from the environment -------------------------------------------------------


def test_no_variables_means_host_candidates_only():
    servers, source = ice_config.ice_servers_from_env({})
    assert servers == [] and "host candidates only" in source
    assert ice_config.rtc_configuration({}) == {"iceServers": []}


def test_cvplay_ice_servers_json():
    text = json.dumps([{"urls": "stun:stun.example.org:3478"}, {"urls": ["turns:t.example.org:5349"], "username": "u", "credential": "p"}])
    assert ice_config.rtc_configuration({"CVPLAY_ICE_SERVERS": text}) == {
        "iceServers": [{"urls": ["stun:stun.example.org:3478"]}, {"urls": ["turns:t.example.org:5349"], "username": "u", "credential": "p"}]
    }
    wrapped = json.dumps({"iceServers": [{"urls": "stun:s.example.org"}]})
    assert ice_config.rtc_configuration({"CVPLAY_ICE_SERVERS": wrapped}) == {"iceServers": [{"urls": ["stun:s.example.org"]}]}
    assert ice_config.rtc_configuration({"CVPLAY_ICE_SERVERS": "[]"}) == {"iceServers": []}


@pytest.mark.parametrize(
    "value, message",
    [
        ("{nope", "not valid JSON"),
        ('"stun:x"', "JSON list"),
        ('[{"url": "stun:x"}]', "'urls'"),
        ('[{"urls": "http://x"}]', "not a stun:"),
        ('[{"urls": "turn:x"}]', "needs 'username' and 'credential'"),
        ('[{"urls": "stun:x", "username": 3}]', "must be a string"),
    ],
)
def test_bad_cvplay_ice_servers(value, message):
    with pytest.raises(ice_config.IceConfigError, match=message):
        ice_config.ice_servers_from_env({"CVPLAY_ICE_SERVERS": value})


def test_turn_and_stun_variables():
    env = {"TURN_URL": "turn:t.example.org:3478?transport=udp, turns:t.example.org:5349", "TURN_USERNAME": "u", "TURN_CREDENTIAL": "p"}
    servers, source = ice_config.ice_servers_from_env(env)
    assert servers == [{"urls": ["turn:t.example.org:3478?transport=udp", "turns:t.example.org:5349"], "username": "u", "credential": "p"}]
    assert "TURN_URL" in source
    servers, _ = ice_config.ice_servers_from_env({**env, "STUN_URL": "stun:s.example.org:3478"})
    assert servers[1] == {"urls": ["stun:s.example.org:3478"]}
    assert ice_config.ice_servers_from_env({"STUN_URL": "stun:s.example.org:3478"})[0] == [{"urls": ["stun:s.example.org:3478"]}]
    with pytest.raises(ice_config.IceConfigError, match="TURN_USERNAME and TURN_CREDENTIAL"):
        ice_config.ice_servers_from_env({"TURN_URL": "turn:t.example.org"})


def test_providers_are_asked_through_streamlit_webrtc_only_when_configured(monkeypatch, caplog):
    asked = []
    fetched = [{"urls": ["turn:relay.example.org:3478"], "username": "x", "credential": "y"}]
    monkeypatch.setattr(streamlit_webrtc.credentials, "get_available_ice_servers", lambda: asked.append(1) or fetched)
    assert ice_config.ice_servers_from_env({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"})[0] == fetched
    servers, source = ice_config.ice_servers_from_env({"CLOUDFLARE_TURN_KEY_ID": "k", "CLOUDFLARE_TURN_KEY_API_TOKEN": "t"})
    assert servers == fetched and "Cloudflare" in source
    assert ice_config.ice_servers_from_env({"CVPLAY_ICE_SERVERS": "auto"})[0] == fetched
    assert len(asked) == 3
    # Half-set credentials and a lone HF_TOKEN contact nobody.
    with caplog.at_level("WARNING"):
        assert ice_config.ice_servers_from_env({"TWILIO_ACCOUNT_SID": "AC1", "HF_TOKEN": "hf"})[0] == []
    assert len(asked) == 3 and "TWILIO_AUTH_TOKEN is missing" in caplog.text


def test_loopback_mode_patches_aioice_for_loopback_only(monkeypatch):
    from aioice import Candidate, ice

    monkeypatch.setattr(ice, "get_host_addresses", ice.get_host_addresses)  # restored afterwards
    monkeypatch.setattr(ice.Connection, "add_remote_candidate", ice.Connection.add_remote_candidate)
    monkeypatch.setattr(ice_config, "_LOOPBACK_PATCHED", False)
    assert ice_config.loopback_requested({"CVPLAY_WEBRTC_LOOPBACK": "1"})
    assert not ice_config.loopback_requested({})
    assert ice_config.enable_loopback_ice() and ice_config.enable_loopback_ice()
    assert ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]

    async def remote_hosts() -> list[str]:
        connection = ice.Connection(ice_controlling=True)
        for host in ("192.0.2.9", "127.0.0.1"):
            await connection.add_remote_candidate(Candidate("1", 1, "udp", 100, host, 5000, "host"))
        return [candidate.host for candidate in connection.remote_candidates]

    assert asyncio.run(remote_hosts()) == ["127.0.0.1"]


# --- import rules ---------------------------------------------------------------------------


def test_core_modules_import_neither_streamlit_nor_tensorflow():
    code = (
        "import sys, cvplay.detect, cvplay.webcam; "
        "bad = [m for m in ('streamlit', 'tensorflow', 'keras') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_the_page_does_not_import_tensorflow():
    code = (
        "import sys, streamlit_webrtc; from streamlit.testing.v1 import AppTest; "
        "streamlit_webrtc.webrtc_streamer = lambda **kwargs: None; "
        f"at = AppTest.from_file({PAGE!r}, default_timeout=60).run(); "
        "assert not at.exception, at.exception; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=180)


# --- the default detector, the class filter, switching, deep links, photo mode ----------------


def video_block(at: AppTest) -> int:
    """The position, among the main area's blocks, of the block that holds the video (the
    "Connection:" caption is rendered right below the streamer)."""
    from streamlit.testing.v1.element_tree import Block

    for index, child in at.main.children.items():
        if isinstance(child, Block) and any("Connection:" in str(caption.value) for caption in child.caption):
            return index
    raise AssertionError("no video block")


def test_class_filter_reaches_the_callback(streamer):
    from cvplay.detect import Detection

    at = run_page()
    at.multiselect(key="webcam-classes-openimages-ssd").set_value(["Cat", "Dog"]).run()
    assert not at.exception
    settings = streamer.processor.settings
    assert settings.classes == frozenset({"Cat", "Dog"})
    # The processor hands the filter to the detector.
    seen = {}

    class Recorder:
        name = "recorder"

        def detect(self, rgb, score_threshold=0.5, iou_threshold=0.45, max_detections=20, classes=None):
            seen["classes"] = classes
            return [Detection((1, 1, 5, 5), "Dog", 0.9, 20)]

    from cvplay.webcam import FrameProcessor, WebcamSettings

    processor = FrameProcessor(WebcamSettings(detector=Recorder(), classes=settings.classes))
    processor.process(np.zeros((20, 20, 3), np.uint8))
    assert seen["classes"] == frozenset({"Cat", "Dog"})


def test_switching_detectors_keeps_the_video_in_place(streamer):
    """A control that appears (classify every Nth frame, the class filter, an error) must not
    move the video component: a moved component is remounted and its stream stops."""
    at = run_page()
    where = video_block(at)
    for name in ("haar:eyes", "classify:colour", "openimages-ssd", "classify:colour", "haar:face"):
        at.selectbox(key="webcam-detector").set_value(name).run()
        assert not at.exception
        assert video_block(at) == where, name
        assert streamer.processor.settings.detector_name == name


def test_classify_mode_table_has_no_box_columns(streamer):
    at = run_page()
    at.selectbox(key="webcam-detector").set_value("classify:colour").run()
    processor = streamer.processor
    streamer.playing = True
    at.run()
    processor.process(solid((250, 10, 10), 60, 80))
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns) == ["label", "score"] and table["label"].tolist()[0] == "red"
    # Detector names are shown as code, never turned into emoji (":eyes:").
    at.selectbox(key="webcam-detector").set_value("haar:eyes").run()
    processor.process(np.zeros((60, 80, 3), np.uint8))
    at.run()
    caption = next(str(c.value) for c in at.caption if "result(s)" in str(c.value))
    assert "`haar:eyes`" in caption


def test_deep_link_opens_a_classifier(streamer):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.query_params["classifier"] = "colour"
    at.run()
    assert not at.exception
    assert at.selectbox(key="webcam-detector").value == "classify:colour"
    assert streamer.processor.settings.detector_name == "classify:colour"
    assert at.slider(key="webcam-every").value == 1
    # The visitor can still switch afterwards: the link is applied once.
    at.selectbox(key="webcam-detector").set_value("haar:face").run()
    assert streamer.processor.settings.detector_name == "haar:face"


def test_deep_link_to_a_missing_classifier_says_so(streamer):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.query_params["classifier"] = "no-such-model"
    at.run()
    assert not at.exception
    assert "no-such-model" in texts(at, "warning") and "not installed" in texts(at, "warning")
    assert at.selectbox(key="webcam-detector").value == "openimages-ssd"


def png_bytes(rgb: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def test_photo_mode_detects_uploaded_photos(streamer):
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the sample photos")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.query_params["mode"] = "photos"
    at.run()
    assert not at.exception
    assert at.segmented_control(key="webcam-mode").value == "Detect in photos"
    assert not streamer.calls  # no camera in photo mode
    assert at.selectbox(key="webcam-photos-detector").value == "openimages-ssd"
    uploader = at.get("file_uploader")[0]
    uploader.set_value([
        ("chelsea.png", png_bytes(skimage_data.chelsea()), "image/png"),
        ("astronaut.png", png_bytes(skimage_data.astronaut()), "image/png"),
        ("notes.png", b"this is not an image", "image/png"),
    ]).run()
    assert not at.exception
    assert len(at.image) == 2  # the annotated photos
    tables = [frame.value for frame in at.dataframe]
    assert tables[0]["label"].tolist()[0] == "Cat" and tables[1]["label"].tolist()[0] == "Person"
    assert {"x1", "y1", "x2", "y2", "score"} <= set(tables[0].columns)
    assert "notes.png" in texts(at, "error")  # the bad file gets its own message
    assert len(at.get("download_button")) == 1
    # The class filter: only people.
    at.multiselect(key="webcam-photos-classes-openimages-ssd").set_value(["Person"]).run()
    tables = [frame.value for frame in at.dataframe]
    assert len(tables) == 1 and set(tables[0]["label"]) == {"Person"}
    # Back to the live camera.
    at.segmented_control(key="webcam-mode").set_value("Live camera").run()
    assert not at.exception and streamer.calls
