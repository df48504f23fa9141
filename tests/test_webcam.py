"""cvplay.webcam: the frame callback as a plain class, on ndarray and av frames."""

from __future__ import annotations

import threading
from fractions import Fraction

import cv2
import numpy as np
import pytest
import streamlit_webrtc  # noqa: F401 - loads aiortc's pylibsrtp now: loaded after TensorFlow it segfaults

from cvplay.detect import Detection, create_detector, iou
from cvplay.webcam import FrameProcessor, FrameResult, LatestQueue, WebcamSettings
from model_factory import solid


class FakeDetector:
    """Records what it was given; returns one fixed box."""

    name = "fake"

    def __init__(self, detections=None, fail=False):
        self.calls: list[dict] = []
        self.detections = detections if detections is not None else [Detection((10, 20, 60, 90), "thing", 0.75, 0)]
        self.fail = fail

    def detect(self, rgb, score_threshold=0.5, iou_threshold=0.45, max_detections=20):
        self.calls.append(
            {"pixel": rgb[0, 0].tolist(), "shape": rgb.shape, "score": score_threshold, "iou": iou_threshold, "max": max_detections}
        )
        if self.fail:
            raise RuntimeError("the model fell over")
        return list(self.detections)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_latest_queue_is_bounded_and_drops_the_oldest():
    q = LatestQueue(maxsize=2)
    for i in range(5):
        q.put(i)
    assert q.qsize() == 2 and q.dropped == 3
    assert q.drain() == [3, 4]
    assert q.drain() == []


def test_process_annotates_a_copy_counts_and_reports():
    detector = FakeDetector()
    processor = FrameProcessor(WebcamSettings(detector=detector, score_threshold=0.3, iou_threshold=0.6, max_detections=7))
    frame = np.full((120, 160, 3), 90, np.uint8)
    before = frame.copy()
    out = processor.process(frame)
    assert np.array_equal(frame, before), "the caller's frame must not be drawn on"
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert out[1, 1].tolist() == [0, 0, 0]  # overlay background
    assert not np.array_equal(out[20:90, 10:60], before[20:90, 10:60])  # the box is drawn
    assert detector.calls[0] == {"pixel": [90, 90, 90], "shape": (120, 160, 3), "score": 0.3, "iou": 0.6, "max": 7}
    processor.process(frame)
    assert processor.frame_count == 2
    result = processor.latest()
    assert isinstance(result, FrameResult)
    assert result.frame_index == 2 and result.detector == "fake" and result.error is None
    assert (result.width, result.height) == (160, 120)
    assert result.rows() == [{"label": "thing", "score": 0.75, "x1": 10, "y1": 20, "x2": 60, "y2": 90}]
    assert result.ms >= 0
    assert processor.latest() is result  # nothing new: the last result again


def test_settings_update_reaches_the_callback():
    first, second = FakeDetector(), FakeDetector([])
    processor = FrameProcessor(WebcamSettings(detector=first))
    processor.process(solid((1, 2, 3)))
    processor.update(WebcamSettings(detector=second, score_threshold=0.9, iou_threshold=0.1, max_detections=1))
    processor.process(solid((1, 2, 3)))
    assert len(first.calls) == 1 and second.calls[0]["score"] == 0.9 and second.calls[0]["max"] == 1
    assert processor.latest().detections == ()


def test_bgr_frames_reach_the_detector_as_rgb_and_come_back_bgr():
    detector = FakeDetector()
    processor = FrameProcessor(WebcamSettings(detector=detector, show_overlay=False))
    bgr = np.zeros((100, 100, 3), np.uint8)
    bgr[..., 0] = 255  # blue in BGR
    out = processor.process(bgr, colour_order="bgr")
    assert detector.calls[0]["pixel"] == [0, 0, 255]
    assert out[50, 50].tolist() == [255, 0, 0]  # untouched pixels keep BGR order
    with pytest.raises(ValueError):
        processor.process(bgr, colour_order="hsv")


def test_gray_rgba_odd_and_bad_frames():
    processor = FrameProcessor(WebcamSettings(detector=create_detector("haar:face")))
    for frame in (np.zeros((48, 64), np.uint8), np.zeros((48, 64, 4), np.uint8), np.zeros((1, 1, 3), np.uint8), np.zeros((7, 333, 3), np.uint8)):
        out = processor.process(frame)
        assert out.shape == (*frame.shape[:2], 3)
    assert processor.latest().detections == ()
    with pytest.raises(ValueError):
        processor.process(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        processor.process(np.zeros((10, 10, 2), np.uint8))


def test_no_detector_still_streams():
    processor = FrameProcessor()
    out = processor.process(solid((9, 9, 9), 60, 80))
    assert out.shape == (60, 80, 3) and processor.latest().detector == "none"


def test_a_failing_detector_does_not_stop_the_video():
    processor = FrameProcessor(WebcamSettings(detector=FakeDetector(fail=True)))
    out = processor.process(solid((9, 9, 9), 120, 160))
    assert out.shape == (120, 160, 3)
    result = processor.latest()
    assert result.error == "RuntimeError: the model fell over" and result.detections == ()


def test_fps_over_a_moving_window_and_reset():
    clock = FakeClock()
    processor = FrameProcessor(WebcamSettings(detector=FakeDetector([])), clock=clock)
    assert processor.fps == 0.0
    for _ in range(10):
        processor.process(solid((0, 0, 0)))
        clock.now += 0.05  # a frame every 50 ms
    assert processor.fps == pytest.approx(20.0)
    assert processor.latest().fps == pytest.approx(20.0)
    processor.reset()
    assert processor.frame_count == 0 and processor.fps == 0.0 and processor.latest() is None


def test_results_queue_keeps_only_recent_frames():
    processor = FrameProcessor(WebcamSettings(detector=FakeDetector([])), queue_size=3)
    for _ in range(10):
        processor.process(solid((0, 0, 0)))
    assert processor.results.qsize() == 3
    assert processor.latest().frame_index == 10


def test_concurrent_frames_and_setting_changes():
    processor = FrameProcessor(WebcamSettings(detector=FakeDetector()))
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(25):
                processor.process(solid((5, 5, 5), 40, 50))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(50):
        processor.update(WebcamSettings(detector=FakeDetector([]) if i % 2 else FakeDetector(), max_detections=i + 1))
        processor.latest()
    for thread in threads:
        thread.join()
    assert not errors
    assert processor.frame_count == 100
    assert processor.latest().frame_index <= 100


def test_video_frame_callback_on_av_frames():
    av = pytest.importorskip("av")
    processor = FrameProcessor(WebcamSettings(detector=FakeDetector()))
    frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 90, np.uint8), format="rgb24")
    frame.pts = 1234
    frame.time_base = Fraction(1, 90000)
    out = processor.video_frame_callback(frame)
    assert isinstance(out, av.VideoFrame)
    assert (out.width, out.height) == (160, 120) and out.pts == 1234 and out.time_base == Fraction(1, 90000)
    image = out.to_ndarray(format="rgb24")
    assert image[1, 1].tolist() == [0, 0, 0]
    # A camera's usual yuv420p frames work too.
    yuv = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 90, np.uint8), format="rgb24").reformat(format="yuv420p")
    assert processor(yuv).to_ndarray(format="rgb24").shape == (120, 160, 3)
    assert processor.frame_count == 2


@pytest.mark.shared
def test_real_face_through_the_callback(shared):
    path = shared / "data" / "imagenet-samples" / "652_n03763968.jpg"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    rgb = cv2.cvtColor(cv2.resize(cv2.imread(str(path)), (640, 480)), cv2.COLOR_BGR2RGB)
    processor = FrameProcessor(WebcamSettings(detector=create_detector("haar:face")))
    out = processor.process(rgb)
    [face] = processor.latest().detections
    assert face.label == "face"
    sx, sy = 640 / 313, 480 / 256
    assert iou(face.box, (44 * sx, 66 * sy, 175 * sx, 197 * sy)) > 0.5
    x1, y1, x2, y2 = face.box
    assert not np.array_equal(out[y1:y2, x1], rgb[y1:y2, x1])  # the box is drawn


def test_classification_mode_through_the_callback(colour_models):
    detector = create_detector("classify:colour", dirs=[colour_models], classify_every=2)
    processor = FrameProcessor(WebcamSettings(detector=detector))
    processor.process(solid((250, 10, 10), 120, 160))
    result = processor.latest()
    assert [d.label for d in result.detections] == ["red", "green", "blue"]
    # Whole-frame labels have no box: the table shows label and score only, no empty columns.
    assert result.rows()[0] == {"label": "red", "score": round(result.detections[0].score, 3)}
    assert result.columns() == ["label", "score"] and not result.boxed
    processor.process(solid((10, 10, 250), 120, 160))  # reused answer on the second frame
    assert processor.latest().detections[0].label == "red"
    processor.process(solid((10, 10, 250), 120, 160))
    assert processor.latest().detections[0].label == "blue"


def test_async_processing_drops_stale_frames_so_latency_does_not_build():
    """The page's setup (streamlit-webrtc's AsyncVideoProcessTrack around our callback) with a
    camera at 50 fps and a detector that needs 80 ms: most frames are skipped, and each frame
    the detector gets is (nearly) the newest one, all the way through."""
    import asyncio
    import time

    av = pytest.importorskip("av")
    from aiortc import MediaStreamTrack
    from streamlit_webrtc.models import CallbackAttachableProcessor
    from streamlit_webrtc.process import AsyncVideoProcessTrack

    produced = {"latest": -1}
    lags: list[int] = []

    class Camera(MediaStreamTrack):
        kind = "video"

        def __init__(self):
            super().__init__()
            self.index = 0

        async def recv(self):
            await asyncio.sleep(0.02)
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), self.index % 256, np.uint8), format="rgb24")
            frame.pts = self.index
            frame.time_base = Fraction(1, 50)
            produced["latest"] = self.index
            self.index += 1
            return frame

    class SlowDetector:
        name = "slow"

        def detect(self, rgb, score_threshold=0.5, iou_threshold=0.45, max_detections=20):
            lags.append(produced["latest"] - int(rgb[40, 60, 0]))
            time.sleep(0.08)
            return []

    processor = FrameProcessor(WebcamSettings(detector=SlowDetector(), show_overlay=False))
    camera = Camera()
    track = AsyncVideoProcessTrack(track=camera, processor=CallbackAttachableProcessor(processor.video_frame_callback, None, None))

    async def stream(frames: int):
        for _ in range(frames):
            await track.recv()
        track.stop()

    asyncio.run(stream(100))  # two seconds of camera
    assert camera.index == 100
    assert 5 <= processor.frame_count <= 40, processor.frame_count  # far fewer than 100: frames were dropped
    assert max(lags) <= 6, lags  # never more than one processing time (~4 frames) behind
    assert sum(lags[-5:]) / 5 <= sum(lags[:5]) / 5 + 2, lags  # no growth over time
