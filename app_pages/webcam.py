"""Webcam: real-time detection on the camera, streamed to the server and back over WebRTC, and
"Detect in photos" for places where a live camera cannot run (:mod:`cvplay_ui.photo_detection`).

The frame work lives in :mod:`cvplay.webcam` (one FrameProcessor per session, fed from
streamlit-webrtc's worker thread); this page only renders controls, the video and the live table.

Deep links: ``/webcam?classifier=MODEL`` opens live whole-frame classification with MODEL chosen;
``/webcam?mode=photos`` opens the photo mode. Each is applied once, then the visitor is free.

Layout rule: every block above the video is created on every run in the same order; controls
that come and go live inside fixed containers. A component whose position changes is remounted
by the browser, which would stop the stream when the detector changes.

Stale frames: ``async_processing=True`` makes streamlit-webrtc put every incoming frame into a
queue that a worker thread drains; it hands only the newest frame of each batch to the callback
and drops the rest, and the outgoing track always sends the newest processed frame. So when
detection is slower than the camera, frames are skipped instead of queued, and latency stays at
about one processing time.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pandas as pd
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from cvplay.detect import (
    CLASSIFY_PREFIX,
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_SCORE_THRESHOLD,
    ClassifyDetector,
    default_detector,
    detector_title,
    list_detectors,
)
from cvplay.registry import ModelCardError, ModelNotFoundError, get_card
from cvplay.runtime import ModelLoadError
from cvplay.webcam import FrameProcessor, WebcamSettings
from cvplay_ui.detectors import class_options, code, deep_linked_detector, load_shared_detector
from cvplay_ui.models import get_classifier
from cvplay_ui.photo_detection import render_photo_detection
from cvplay_ui.webrtc import IceConfigError, enable_loopback_ice, ice_servers_from_env, loopback_requested

KEY = "webcam"
LIVE, PHOTOS = "Live camera", "Detect in photos"
RESOLUTIONS = {"320 × 240": (320, 240), "640 × 480": (640, 480), "1280 × 720": (1280, 720)}
DEFAULT_RESOLUTION = "640 × 480"
POLL_SECONDS = 0.5
TRANSLATIONS = {
    "media_api_not_available": (
        "This browser gives no camera access to this page. Browsers allow the camera only on "
        "https:// pages or on http://localhost; open the app that way, or use Detect in photos."
    ),
    "device_access_denied": (
        "The browser blocked the camera. Allow camera access for this site (the camera icon in "
        "the address bar, or the site settings), then press START again."
    ),
    "device_not_available": "No camera was found, or another program is using it. Detect in photos works without one.",
}


def load_detector(name: str, classify_every: int):
    """The detector for this session; classifiers are shared, their every-Nth-frame state is not."""
    if name.startswith(CLASSIFY_PREFIX):
        card = get_card(name[len(CLASSIFY_PREFIX) :])
        key = f"{KEY}-classify-{card.name}-{classify_every}"
        if key not in st.session_state:
            st.session_state[key] = ClassifyDetector(get_classifier(card), every=classify_every)
        return st.session_state[key]
    return load_shared_detector(name)


def insecure_origin() -> bool:
    """True when the page is served over plain http from a host other than localhost."""
    try:
        url = urlparse(st.context.url or "")
    except Exception:  # noqa: BLE001 - old Streamlit or no browser context (tests)
        return False
    return url.scheme == "http" and (url.hostname or "") not in ("localhost", "127.0.0.1", "::1", "[::1]")


names = list_detectors()
# Deep links: ?classifier=MODEL opens live, whole-frame classification with MODEL chosen;
# ?mode=photos opens the photo mode. Applied once per link, so the visitor can change them after.
linked, link_problem = deep_linked_detector(st.query_params, names)
link = (st.query_params.get("classifier", ""), st.query_params.get("mode", ""))
if st.session_state.get(f"{KEY}-link-applied") != link:
    st.session_state[f"{KEY}-link-applied"] = link
    if linked:
        st.session_state[f"{KEY}-detector"] = linked
        st.session_state[f"{KEY}-mode"] = LIVE
    elif link[1] == "photos":
        st.session_state[f"{KEY}-mode"] = PHOTOS

st.title("Webcam detection")
mode = st.segmented_control(
    "Mode", [LIVE, PHOTOS], default=LIVE, key=f"{KEY}-mode", label_visibility="collapsed",
    help="Detect in photos works where a live camera cannot: a phone, a blocked camera, a server without a TURN relay.",
) or LIVE
if link_problem:
    st.warning(link_problem)

if mode == PHOTOS:
    st.write(
        "Upload photos, paste an image URL or take a snapshot: each photo comes back with a box, a "
        "label and a score for every object found, and a table you can download."
    )
    render_photo_detection(f"{KEY}-photos")
    st.stop()

st.write(
    "Press **START** to stream your camera to the server: every frame comes back with boxes, "
    "labels and scores drawn on it, the frame number, the milliseconds it took and the frames per "
    "second. The table beside the video lists what the current frame shows."
)
st.info(
    "The browser asks for camera permission when you press START. If it blocked the camera, allow "
    "it for this site (camera icon in the address bar) and press START again. Browsers give the "
    "camera only to pages served over **https://** or from **localhost**; over plain http from "
    "another address the camera stays off. Video goes to this app's server, nowhere else. "
    "No camera, or no connection? Switch to **Detect in photos** above.",
    icon=":material/videocam:",
)
# Every block above the video exists on every run, in the same order: a control that appears
# or disappears (the class filter, "classify every Nth frame", an error, the spinner of a first
# model load) lives inside one of these containers, so the video component never moves and the
# stream survives a change of detector.
controls = st.columns([4, 2, 2, 2, 2])
options_area = st.container()
messages = st.container()

if insecure_origin():
    messages.warning("This page is served over plain http from a remote address, so the browser will not open the camera. Use https.")
if loopback_requested():
    enable_loopback_ice()
try:
    ice_servers, ice_source = ice_servers_from_env()
except IceConfigError as error:
    messages.error(f"WebRTC settings: {error}. Using host candidates only.")
    ice_servers, ice_source = [], "host candidates only (the configured ICE servers were invalid)"

with controls[0]:
    detector_name = st.selectbox(
        "Detector",
        names,
        index=names.index(default_detector(names)),
        format_func=detector_title,
        key=f"{KEY}-detector",
        help="openimages-ssd finds 23 everyday objects (people, pets, vehicles, cups, laptops...). "
        "Haar cascades ship with OpenCV (faces, eyes, bodies...). Classifiers label the whole frame.",
    )
classify_mode = detector_name.startswith(CLASSIFY_PREFIX)
with controls[1]:
    score_threshold = st.slider(
        "Score threshold", 0.0, 1.0, DEFAULT_SCORE_THRESHOLD, 0.05, key=f"{KEY}-score",
        disabled=classify_mode,
        help="Drop detections scoring below this. Haar scores measure how many overlapping windows "
        "agreed (0.5 = 7 for faces), not a probability. Classifiers always show their top 3.",
    )
with controls[2]:
    iou_threshold = st.slider(
        "IoU threshold (NMS)", 0.05, 1.0, DEFAULT_IOU_THRESHOLD, 0.05, key=f"{KEY}-iou",
        disabled=classify_mode,
        help="Of two overlapping boxes, keep the higher score when they overlap more than this. 1 turns NMS off.",
    )
with controls[3]:
    max_detections = st.number_input(
        "Max detections", min_value=1, max_value=100, value=DEFAULT_MAX_DETECTIONS, step=1, key=f"{KEY}-max"
    )
with controls[4]:
    resolution = st.selectbox(
        "Camera resolution", list(RESOLUTIONS), index=list(RESOLUTIONS).index(DEFAULT_RESOLUTION),
        key=f"{KEY}-resolution", help="Asked of the camera when the stream starts (press STOP and START to change it).",
    )
classify_every = 1
if classify_mode:
    with options_area:
        classify_every = st.slider(
            "Classify every Nth frame", 1, 10, 1, key=f"{KEY}-every",
            help="Frames in between reuse the last answer (the overlay says so), which saves time on slow machines.",
        )

detector = None
with messages:  # the "Loading…" spinner of a first load must not take the video's place either
    try:
        detector = load_detector(detector_name, classify_every)
    except (ModelLoadError, ModelCardError, ModelNotFoundError) as error:
        st.error(f"Cannot load {code(detector_name)}: {error}")

classes: list[str] = []
choices = class_options(detector) if detector is not None else []
if choices:
    with options_area:
        classes = st.multiselect(
            "Only these objects", choices, key=f"{KEY}-classes-{detector_name}", placeholder="All objects",
            help="Leave empty to report every object the detector knows; pick some to report only those.",
        )

if f"{KEY}-processor" not in st.session_state:
    st.session_state[f"{KEY}-processor"] = FrameProcessor()
processor: FrameProcessor = st.session_state[f"{KEY}-processor"]
processor.update(
    WebcamSettings(
        detector=detector,
        score_threshold=float(score_threshold),
        iou_threshold=float(iou_threshold),
        max_detections=int(max_detections),
        classes=frozenset(classes),
    )
)

width, height = RESOLUTIONS[resolution]
video, table = st.columns([3, 2])
with video:
    ctx = webrtc_streamer(
        key=KEY,
        mode=WebRtcMode.SENDRECV,
        video_frame_callback=processor.video_frame_callback,
        media_stream_constraints={"video": {"width": {"ideal": width}, "height": {"ideal": height}}, "audio": False},
        rtc_configuration={"iceServers": ice_servers},
        async_processing=True,
        translations=TRANSLATIONS,
    )
    st.caption(f"Connection: {ice_source}.")

playing = bool(getattr(getattr(ctx, "state", None), "playing", False))
was_playing = st.session_state.get(f"{KEY}-was-playing", False)
if playing and not was_playing:
    processor.reset()
st.session_state[f"{KEY}-was-playing"] = playing


@st.fragment(run_every=POLL_SECONDS if playing else None)
def live_panel() -> None:
    result = processor.latest()
    counters = st.columns(3)
    counters[0].metric("Frames", processor.frame_count, help="Frames processed since START")
    counters[1].metric("FPS", f"{result.fps:.1f}" if result else "–", help="Processed frames per second")
    counters[2].metric("ms / frame", f"{result.ms:.1f}" if result else "–", help="Detection and drawing time of the latest frame")
    if result is None:
        st.caption("Press START; the detections of the current frame appear here.")
        return
    if result.error:
        st.error(f"The detector failed on frame {result.frame_index}: {result.error}")
    rows = result.rows()
    st.caption(f"Frame {result.frame_index} ({result.width} × {result.height}), {code(result.detector)}: {len(rows)} result(s)")
    frame_table = pd.DataFrame(rows, columns=result.columns())
    st.dataframe(
        frame_table,
        hide_index=True,
        width="stretch",
        column_config={
            "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.2f", width="small"),
            **{corner: st.column_config.NumberColumn(corner, width="small") for corner in ("x1", "y1", "x2", "y2")},
        },
    )


with table:
    live_panel()
