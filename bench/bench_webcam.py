"""Webcam benchmark: the cost of the page's frame callback at 640x480, against its goals.

    python bench/bench_webcam.py [--runs 200] [--width 640 --height 480] [--model imagenet-lite0]

Each row times one streamlit-webrtc callback the way the page runs it: an ``av.VideoFrame`` in
yuv420p (what the browser's decoder gives), converted to RGB, detection, boxes, labels and the
overlay drawn, converted back to an ``av.VideoFrame``; the result pushed to the table's queue.
"process" rows time :meth:`FrameProcessor.process` on an RGB array alone (no av conversions).

Goals: under 20 ms median with the default detector (``openimages-ssd``, SSD-MobileNetV2 on
Open Images) and with the Haar frontal-face cascade, under 33 ms in classification mode (``classify:imagenet-lite0``, when that model is installed). Classification
is also timed every 2nd and 3rd frame (the page's "Classify every Nth frame" control; frames in
between reuse the last answer, labelled "reused" in the overlay).

The frames: for the SSD, a real photo with a dog (the ImageNet beagle of ../shared) or, without
../shared, scikit-image's astronaut (a person); for Haar, the ImageNet sample with a face; else a
synthetic picture (gradients, a disc, noise); each resized to the frame size. The SSD rows also
split the detector's time into the LiteRT invoke alone and the rest (resize, normalise, decode,
NMS). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import cv2  # noqa: E402

from cvplay.detect import DEFAULT_DETECTOR, FALLBACK_DETECTOR, create_detector  # noqa: E402
from cvplay.registry import ModelNotFoundError  # noqa: E402
from cvplay.runtime import ModelLoadError, default_num_threads  # noqa: E402
from cvplay.webcam import FrameProcessor, WebcamSettings  # noqa: E402

FACE_PHOTO = ROOT.parent / "shared" / "data" / "imagenet-samples" / "652_n03763968.jpg"
DOG_PHOTO = ROOT.parent / "shared" / "data" / "imagenet-samples" / "162_n02088364.jpg"


def object_frame(width: int, height: int) -> tuple[np.ndarray, str]:
    """A real photo with an object the SSD knows: the beagle, else the astronaut."""
    if DOG_PHOTO.is_file():
        photo, name = cv2.cvtColor(cv2.imread(str(DOG_PHOTO)), cv2.COLOR_BGR2RGB), f"{DOG_PHOTO.name} (a dog)"
    else:
        try:
            from skimage.data import astronaut
        except ImportError:
            return test_frame(width, height)
        photo, name = astronaut(), "scikit-image astronaut (a person)"
    return np.ascontiguousarray(cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)), name


def test_frame(width: int, height: int) -> tuple[np.ndarray, str]:
    if FACE_PHOTO.is_file():
        photo = cv2.cvtColor(cv2.imread(str(FACE_PHOTO)), cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)), f"{FACE_PHOTO.name} (a face)"
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    image[(x - width // 2) ** 2 + (y - height // 2) ** 2 < (height // 4) ** 2] = (230, 200, 40)
    noise = np.random.default_rng(0).integers(-20, 21, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8), "synthetic (no face)"


def codec_rows(rgb: np.ndarray, runs: int) -> list:
    """aiortc's VP8 encode and decode of one 4:2:0 frame (a moving picture, so the encoder works)."""
    import fractions

    from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder
    from aiortc.jitterbuffer import JitterFrame

    encoder, decoder = Vp8Encoder(), Vp8Decoder()
    frames = []
    for index in range(max(30, runs)):
        frame = av.VideoFrame.from_ndarray(np.roll(rgb, 4 * index, axis=1), format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = index * 3000, fractions.Fraction(1, 90000)
        frames.append(frame)
    encode_times, decode_times = [], []
    for index, frame in enumerate(frames):
        start = time.perf_counter()
        payloads, timestamp = encoder.encode(frame, force_keyframe=index == 0)
        encode_times.append((time.perf_counter() - start) * 1000)
        # aiortc's VP8 payloads carry a descriptor; the depacketizer joins them back into a frame.
        from aiortc.codecs.vpx import VpxPayloadDescriptor

        data = b"".join(VpxPayloadDescriptor.parse(payload)[1] for payload in payloads)
        start = time.perf_counter()
        decoder.decode(JitterFrame(data=data, timestamp=timestamp))
        decode_times.append((time.perf_counter() - start) * 1000)
    return [
        ("VP8 encode (aiortc, 500 kbit/s)", "one frame out", encode_times[5:], None, "the annotated frame going back"),
        ("VP8 decode (aiortc)", "one frame in", decode_times[5:], None, "the camera frame arriving"),
    ]


def timed(function, runs: int) -> list[float]:
    for _ in range(max(5, runs // 20)):
        function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--model", default="imagenet-lite0", help="classifier for classification mode")
    args = parser.parse_args()

    rgb, frame_name = test_frame(args.width, args.height)
    object_rgb, object_name = object_frame(args.width, args.height)

    rows: list[tuple[str, str, list[float] | None, float | None, str]] = []

    def bench(mode: str, detector, goal: float | None, note: str = "", frame: np.ndarray | None = None) -> None:
        frame = rgb if frame is None else frame
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
        processor = FrameProcessor(WebcamSettings(detector=detector))
        rows.append((mode, "callback (av yuv420p)", timed(lambda: processor.video_frame_callback(video_frame), args.runs), goal, note))
        processor = FrameProcessor(WebcamSettings(detector=detector))
        rows.append((mode, "process (RGB array)", timed(lambda: processor.process(frame), args.runs), None, note))

    try:
        ssd = create_detector(DEFAULT_DETECTOR)
    except (ModelNotFoundError, ModelLoadError) as error:
        rows.append((f"default: {DEFAULT_DETECTOR}", "callback (av yuv420p)", None, 20.0, f"n/a: {error}"))
    else:
        found = ", ".join(f"{d.label} {d.score:.2f}" for d in ssd.detect(object_rgb)) or "nothing"
        bench(f"default: {DEFAULT_DETECTOR}", ssd, 20.0, f"{object_name}: {found}", frame=object_rgb)
        batch = ssd.raw_outputs  # the LiteRT invoke with its input preparation, no decoding
        rows.append((f"  {DEFAULT_DETECTOR} prepare+invoke", "raw_outputs (no decode)", timed(lambda: batch(object_rgb), args.runs), None, ""))
        invoke = ssd._interpreter.invoke
        rows.append((f"  {DEFAULT_DETECTOR} LiteRT invoke", "invoke() alone", timed(invoke, args.runs), None, "300x300 fp16"))

    haar = create_detector(FALLBACK_DETECTOR)
    faces = len(haar.detect(rgb))
    bench(FALLBACK_DETECTOR, haar, 20.0, f"{frame_name}: {faces} face(s) found")

    try:
        classify = create_detector(f"classify:{args.model}")
    except (ModelNotFoundError, ModelLoadError) as error:
        rows.append((f"classify:{args.model}", "callback (av yuv420p)", None, 33.0, f"n/a: {error}"))
    else:
        top = classify.detect(rgb)[0]
        bench(f"classify:{args.model}", classify, 33.0, f"top-1 {top.label!r} {top.score:.2f}")
        for every in (2, 3):
            reused = create_detector(f"classify:{args.model}", classify_every=every)
            processor = FrameProcessor(WebcamSettings(detector=reused))
            video_frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            rows.append(
                (f"classify:{args.model} every {every}", "callback (av yuv420p)",
                 timed(lambda: processor.video_frame_callback(video_frame), args.runs), 33.0,
                 "frames in between reuse the answer")
            )

    # What else a frame costs on the server in the browser pipeline: aiortc's VP8 decoder (the
    # camera's frames) and encoder (the annotated frames going back), at aiortc's default bitrate.
    try:
        rows += codec_rows(object_rgb, args.runs)
    except Exception as error:  # noqa: BLE001 - optional rows; aiortc's internals may change
        rows.append(("VP8 (aiortc)", "encode/decode", None, None, f"n/a: {type(error).__name__}: {error}"))

    print(
        f"frame {args.width}x{args.height}, runs {args.runs}, "
        f"OpenCV threads {cv2.getNumThreads()}, LiteRT threads {default_num_threads()}"
    )
    header = f"{'mode':<34} {'what':<22} {'median ms':>9} {'mean ms':>8} {'p90 ms':>8} {'goal':>7}  verdict  note"
    print(header)
    print("-" * len(header))
    for mode, what, times, goal, note in rows:
        if times is None:
            print(f"{mode:<34} {what:<22} {'n/a':>9} {'n/a':>8} {'n/a':>8} {f'<{goal:.0f} ms':>7}  n/a      {note}")
            continue
        median = statistics.median(times)
        p90 = float(np.percentile(times, 90))
        goal_text = f"<{goal:.0f} ms" if goal else ""
        verdict = ("met" if median < goal else "MISSED") if goal else ""
        mean = statistics.fmean(times)
        print(f"{mode:<34} {what:<22} {median:9.2f} {mean:8.2f} {p90:8.2f} {goal_text:>7}  {verdict:<7}  {note}")


if __name__ == "__main__":
    main()
