"""cvplay.detect: Haar cascades, SSD-style TFLite detection models, classification mode, NMS and
drawing, on synthetic frames, one real photo with a face (../shared) and tiny models built here."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cvplay import detect
from cvplay.detect import (
    ClassifyDetector,
    Detection,
    Detector,
    HaarDetector,
    TFLiteDetector,
    as_rgb,
    create_detector,
    draw_detections,
    draw_overlay,
    filter_detections,
    iou,
    list_detectors,
)
from cvplay.registry import ModelNotFoundError, discover
from cvplay.runtime import ModelLoadError
from model_factory import solid

FACE_PHOTO = "652_n03763968.jpg"  # ImageNet "military uniform": one clear frontal face
FACE_REGION = (44, 66, 175, 197)  # x1, y1, x2, y2 of that face in the 313x256 photo (checked by eye)

# --- a tiny SSD-style detection model -------------------------------------------------------

N = 6
BOXES = [  # normalised ymin, xmin, ymax, xmax
    [0.1, 0.1, 0.5, 0.5],  # 0: class 0, 0.9 (score = image mean for the first box)
    [0.12, 0.12, 0.52, 0.52],  # 1: class 0, 0.8 -> suppressed by box 0 (same class, IoU 0.82)
    [0.12, 0.12, 0.52, 0.52],  # 2: class 1, 0.7 -> kept: another class
    [0.6, 0.6, 0.9, 0.9],  # 3: class 2, 0.4 -> below the 0.5 threshold
    [0.6, 0.1, 0.9, 0.4],  # 4: class 1, 0.6 -> kept
    [0.0, 0.0, 1.0, 1.0],  # 5: class 0, 0.95 -> beyond count (5): padding, must be ignored
]
CLASSES = [0, 0, 1, 2, 1, 0]
SCORES = [0.9, 0.8, 0.7, 0.4, 0.6, 0.95]
COUNT = 5
LABELS = ["cat", "dog", "bird"]


def build_ssd_tflite(path: Path, size: int = 32, dtype: str = "float32", order: str = "postprocess") -> Path:
    """A model whose outputs look like TFLite_Detection_PostProcess: boxes [1,N,4], classes [1,N],
    scores [1,N], count [1]. The first box's score is the mean input value scaled to 0..1 (input
    0..1 for float32, 0..255 for uint8), so a test can see what the model was fed.

    ``order``: "postprocess" (boxes, classes, scores, count as a tuple: unnamed outputs),
    "scrambled" (scores, count, boxes, classes: unnamed) or "named" (a dict with the TF Object
    Detection API's names, which become signature output names).
    """
    import tensorflow as tf

    tf_dtype = tf.uint8 if dtype == "uint8" else tf.float32
    scale = 255.0 if dtype == "uint8" else 1.0

    class SSD(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf_dtype, name="image")])
        def __call__(self, image):
            mean = tf.reduce_mean(tf.cast(image, tf.float32)) / scale
            zero = mean * 0.0
            boxes = tf.constant([BOXES], tf.float32) + zero
            classes = tf.constant([CLASSES], tf.float32) + zero
            scores = tf.concat([tf.reshape(mean, [1, 1]), tf.constant([SCORES[1:]], tf.float32)], axis=1)
            count = tf.constant([float(COUNT)], tf.float32) + zero
            if order == "named":
                return {"detection_boxes": boxes, "detection_classes": classes, "detection_scores": scores, "num_detections": count}
            if order == "scrambled":
                return scores, count, boxes, classes
            return boxes, classes, scores, count

    module = SSD()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    path.write_bytes(converter.convert())
    return path


def write_ssd_model(directory: Path, name: str, resize: str = "stretch", **kwargs) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    dtype = kwargs.get("dtype", "float32")
    build_ssd_tflite(directory / f"{name}.tflite", **kwargs)
    card = {
        "name": name,
        "task": "detect",
        "title": f"Tiny SSD test model ({name})",
        "input": {"size": [32, 32], "resize": resize, "mean": 0.0, "std": 1.0 if dtype == "uint8" else 255.0},
        "labels": LABELS,
    }
    (directory / f"{name}.json").write_text(json.dumps(card))
    return directory / f"{name}.json"


@pytest.fixture(scope="session")
def ssd_models(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("ssd-models")
    write_ssd_model(directory, "ssd-tiny")
    write_ssd_model(directory, "ssd-scrambled", order="scrambled")
    write_ssd_model(directory, "ssd-named", order="named")
    write_ssd_model(directory, "ssd-uint8", dtype="uint8")
    write_ssd_model(directory / "padded", "ssd-pad", resize="pad")
    return directory


WHITE = solid((255, 255, 255), 100, 200)  # H=100, W=200: first box scores 1.0


def expected_stretch(box, width=200, height=100):
    ymin, xmin, ymax, xmax = box
    return (round(xmin * width), round(ymin * height), round(xmax * width), round(ymax * height))


# --- frames ---------------------------------------------------------------------------------


def test_as_rgb_handles_gray_and_rgba_and_rejects_the_rest():
    gray = np.full((5, 7), 9, np.uint8)
    assert as_rgb(gray).shape == (5, 7, 3) and as_rgb(gray)[0, 0].tolist() == [9, 9, 9]
    assert as_rgb(gray[:, :, None]).shape == (5, 7, 3)
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0] = 200
    assert as_rgb(rgba).shape == (5, 7, 3) and as_rgb(rgba)[0, 0, 0] == 200
    with pytest.raises(ValueError, match="uint8"):
        as_rgb(np.zeros((5, 7, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        as_rgb(np.zeros((5, 7, 2), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        as_rgb(np.zeros((0, 7, 3), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        as_rgb(np.zeros((4, 0), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        as_rgb(np.zeros((2, 2, 2, 3), np.uint8))
    with pytest.raises(ValueError):
        as_rgb([[1, 2, 3]])


# --- NMS and thresholds on hand-built detections ---------------------------------------------


def D(box, label="a", score=0.9, class_id=-1):
    return Detection(box=box, label=label, score=score, class_id=class_id)


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_filter_applies_threshold_nms_per_class_and_max():
    detections = [
        D((0, 0, 100, 100), "cat", 0.9, 0),
        D((5, 5, 105, 105), "cat", 0.8, 0),  # IoU 0.82 with the first: suppressed
        D((5, 5, 105, 105), "dog", 0.7, 1),  # same box, other class: kept
        D((300, 300, 400, 400), "cat", 0.6, 0),  # far away: kept
        D((0, 0, 50, 50), "cat", 0.3, 0),  # below the threshold
    ]
    kept = filter_detections(detections, score_threshold=0.5, iou_threshold=0.5, max_detections=10)
    assert [(d.label, d.score) for d in kept] == [("cat", 0.9), ("dog", 0.7), ("cat", 0.6)]
    assert [d.score for d in filter_detections(detections, 0.5, 0.5, max_detections=2)] == [0.9, 0.7]
    assert filter_detections(detections, 0.5, 0.5, max_detections=0) == []
    # Class-agnostic NMS lets the cat suppress the dog too.
    assert [d.score for d in filter_detections(detections, 0.5, 0.5, 10, class_aware=False)] == [0.9, 0.6]
    # A looser IoU threshold keeps the overlapping cat; 1.0 turns NMS off.
    assert len(filter_detections(detections, 0.5, 0.9, 10)) == 4
    assert len(filter_detections(detections, 0.0, 1.0, 10)) == 5
    # Without class ids, labels keep classes apart.
    unlabelled = [D((0, 0, 100, 100), "x", 0.9), D((0, 0, 100, 100), "y", 0.8), D((0, 0, 100, 100), "x", 0.7)]
    assert [(d.label, d.score) for d in filter_detections(unlabelled, 0.5, 0.5, 10)] == [("x", 0.9), ("y", 0.8)]


def test_filter_keeps_boxless_labels_and_handles_nothing():
    assert filter_detections([], 0.5, 0.5, 10) == []
    labels = [Detection(None, "tabby", 0.6), Detection(None, "tiger cat", 0.3)]
    assert [d.label for d in filter_detections(labels, 0.0, 0.5, 10)] == ["tabby", "tiger cat"]


# --- Haar cascades --------------------------------------------------------------------------


def test_list_detectors_order_and_default(tmp_path, ssd_models):
    names = list_detectors([tmp_path])  # no models: the cascades, the face first
    assert names[0] == detect.FALLBACK_DETECTOR == "haar:face"
    assert detect.default_detector(names) == "haar:face"
    assert {"haar:eyes", "haar:full-body", "haar:upper-body", "haar:cat-face", "haar:smile"} <= set(names)
    # Detection models come first, the shipped default before the others.
    assert detect.DEFAULT_DETECTOR == "openimages-ssd"
    with_models = list_detectors([ssd_models])
    assert with_models.index("ssd-tiny") < with_models.index("haar:face")
    shipped = list_detectors()
    assert shipped[0] == "openimages-ssd" and detect.default_detector(shipped) == "openimages-ssd"
    assert detect.default_detector([]) == "haar:face"


@pytest.mark.parametrize("name", [f"haar:{key}" for key in detect.HAAR_CASCADES])
def test_every_cascade_loads_and_finds_nothing_in_a_blank_frame(name):
    detector = create_detector(name)
    assert isinstance(detector, Detector) and detector.name == name
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 13, 3), (479, 641, 3), (33, 1000, 3), (1000, 20, 3), (240, 320), (240, 320, 4)])
def test_haar_on_odd_sizes_gray_and_rgba(shape):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=shape, dtype=np.uint8)
    detections = create_detector("haar:face").detect(frame, 0.0, 0.5, 50)
    height, width = shape[:2]
    for d in detections:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


def test_haar_no_faces_in_synthetic_frames():
    detector = create_detector("haar:face")
    rng = np.random.default_rng(1)
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (480, 1, 3))
    for frame in (solid((255, 255, 255), 480, 640), gradient, rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)):
        assert detector.detect(frame) == []


def test_unknown_cascade_and_detector_names():
    with pytest.raises(ModelNotFoundError, match="no Haar cascade"):
        create_detector("haar:unicorn")
    with pytest.raises(ModelNotFoundError):
        create_detector("no-such-model", dirs=[])


def face_photo(shared: Path) -> np.ndarray:
    path = shared / "data" / "imagenet-samples" / FACE_PHOTO
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.mark.shared
def test_haar_finds_the_real_face(shared):
    photo = face_photo(shared)
    assert photo.shape[:2] == (256, 313)
    detections = create_detector("haar:face").detect(photo)
    assert len(detections) == 1
    face = detections[0]
    assert face.label == "face" and 0.5 <= face.score <= 1.0
    assert iou(face.box, FACE_REGION) > 0.6
    # Upscaled to webcam size the frame is downscaled for the cascade; boxes come back in pixels.
    big = cv2.resize(photo, (640, 480))
    [big_face] = create_detector("haar:face").detect(big)
    sx, sy = 640 / 313, 480 / 256
    scaled = (FACE_REGION[0] * sx, FACE_REGION[1] * sy, FACE_REGION[2] * sx, FACE_REGION[3] * sy)
    assert iou(big_face.box, scaled) > 0.5
    # The score threshold prunes by the documented neighbour score.
    assert create_detector("haar:face").detect(photo, score_threshold=0.999) == []


def test_haar_score_is_documented_neighbour_squash():
    detector = HaarDetector("face")
    assert detector.score(0) == 0.0
    assert detector.score(7) == pytest.approx(0.5)
    assert detector.score(14) == pytest.approx(0.75)
    assert 0.0 < detector.score(3) < detector.score(10) < detector.score(30) < 1.0


# --- TFLite detection models ----------------------------------------------------------------


def test_detect_models_are_discovered_and_listed(ssd_models):
    entries = {entry.name: entry for entry in discover([ssd_models])}
    assert {"ssd-tiny", "ssd-scrambled", "ssd-named", "ssd-uint8", "ssd-pad"} <= set(entries)
    assert all(entry.ok and entry.card.task == "detect" for entry in entries.values())
    names = list_detectors([ssd_models])
    assert "ssd-tiny" in names and "ssd-pad" in names
    assert names.index("ssd-tiny") < names.index("haar:face")


@pytest.mark.parametrize("name", ["ssd-tiny", "ssd-scrambled", "ssd-named", "ssd-uint8"])
def test_ssd_boxes_in_pixels_with_threshold_nms_and_max(ssd_models, name):
    detector = create_detector(name, dirs=[ssd_models])
    assert isinstance(detector, TFLiteDetector) and detector.name == name
    detections = detector.detect(WHITE, score_threshold=0.5, iou_threshold=0.5, max_detections=10)
    assert [(d.label, round(d.score, 3)) for d in detections] == [("cat", 1.0), ("dog", 0.7), ("dog", 0.6)]
    assert [d.box for d in detections] == [expected_stretch(BOXES[i]) for i in (0, 2, 4)]
    assert [d.box for d in detector.detect(WHITE, 0.5, 0.5, max_detections=2)] == [expected_stretch(BOXES[i]) for i in (0, 2)]
    # A loose IoU threshold keeps the overlapping cat; a low score threshold lets the bird in,
    # and the padding entry beyond count never appears.
    loose = detector.detect(WHITE, score_threshold=0.3, iou_threshold=1.0, max_detections=10)
    assert sorted(round(d.score, 2) for d in loose) == [0.4, 0.6, 0.7, 0.8, 1.0]
    assert "bird" in {d.label for d in loose}


@pytest.mark.parametrize("name", ["ssd-tiny", "ssd-uint8"])
def test_ssd_model_is_fed_the_frame(ssd_models, name):
    """The first box's score is the input's mean scaled to 0..1: black frames score 0."""
    detector = create_detector(name, dirs=[ssd_models])
    boxes, classes, scores = detector.raw(solid((0, 0, 0), 50, 50))
    assert scores[0] == pytest.approx(0.0, abs=1e-3)
    _, _, scores = detector.raw(solid((255, 255, 255), 50, 50))
    assert scores[0] == pytest.approx(1.0, abs=1e-3)
    _, _, scores = detector.raw(solid((51, 102, 153), 50, 50))
    assert scores[0] == pytest.approx(0.4, abs=0.01)
    assert len(boxes) == len(classes) == COUNT
    # With the first box at score 0, the overlapping cat it used to suppress comes through.
    dark = detector.detect(solid((0, 0, 0), 100, 200), 0.5, 0.5, 10)
    assert [(d.label, round(d.score, 2)) for d in dark] == [("cat", 0.8), ("dog", 0.7), ("dog", 0.6)]


def test_ssd_pad_policy_maps_boxes_back_through_the_letterbox(ssd_models):
    detector = create_detector(str(ssd_models / "padded" / "ssd-pad.tflite"))  # by path
    # 200x100 into 32x32: scale 0.16, content 32x16 centred with 8 rows of black padding above
    # and below, so the white frame's mean input (the first box's score) is 0.5.
    detections = detector.detect(WHITE, 0.0, 1.0, 10)
    first = next(d for d in detections if d.label == "cat" and abs(d.score - 0.5) < 0.01)
    # ymin 0.1 -> 3.2 model rows, inside the padding: clipped to 0; ymax 0.5 -> row 16 -> 8
    # rows into the content -> 8 * 100 / 16 = 50; x: 0.1 * 32 * 200 / 32 = 20, 0.5 -> 100.
    assert first.box == (20, 0, 100, 50)
    bird = next(d for d in detections if d.label == "bird")  # 0.6..0.9 -> rows 19.2..28.8
    assert bird.box == (120, round((19.2 - 8) * 100 / 16), 180, 100)  # ymax in the bottom padding


def test_ssd_on_gray_rgba_and_odd_frames(ssd_models):
    detector = create_detector("ssd-tiny", dirs=[ssd_models])
    for frame in (np.full((37, 91), 255, np.uint8), np.full((37, 91, 4), 255, np.uint8), np.full((1, 1, 3), 255, np.uint8)):
        for d in detector.detect(frame, 0.5, 0.5, 10):
            assert 0 <= d.box[0] <= d.box[2] <= frame.shape[1] and 0 <= d.box[1] <= d.box[3] <= frame.shape[0]
    with pytest.raises(ValueError):
        detector.detect(np.zeros((10, 10, 3), np.float32))


def test_label_offset_from_the_card(tmp_path):
    card = write_ssd_model(tmp_path, "ssd-offset")
    data = json.loads(card.read_text())
    data["labels"] = ["background", *LABELS]
    data["label_offset"] = 1
    card.write_text(json.dumps(data))
    detector = create_detector(str(card))
    assert [d.label for d in detector.detect(WHITE, 0.5, 0.5, 10)] == ["cat", "dog", "dog"]


def test_broken_detect_model_gives_a_clear_error(tmp_path, colour_models):
    (tmp_path / "broken.tflite").write_bytes(b"this is not a model")
    (tmp_path / "broken.json").write_text(json.dumps({"name": "broken", "task": "detect", "labels": ["x"]}))
    with pytest.raises(ModelLoadError, match="not a TFLite model"):
        create_detector("broken", dirs=[tmp_path])
    # A real model that is not a detector: the classifier's one output is not SSD's four.
    (tmp_path / "wrong.tflite").write_bytes((colour_models / "colour.tflite").read_bytes())
    (tmp_path / "wrong.json").write_text(
        json.dumps({"name": "wrong", "task": "detect", "labels": ["x"], "input": {"size": [8, 8], "resize": "stretch"}})
    )
    with pytest.raises(ModelLoadError, match="4 outputs"):
        create_detector("wrong", dirs=[tmp_path])
    # A card whose size disagrees with the model.
    (tmp_path / "sized.tflite").write_bytes((colour_models / "colour.tflite").read_bytes())
    (tmp_path / "sized.json").write_text(json.dumps({"name": "sized", "task": "detect", "labels": ["x"]}))
    with pytest.raises(ModelLoadError, match="input size"):
        create_detector("sized", dirs=[tmp_path])
    # A malformed card is a load error too, not a crash.
    (tmp_path / "bad-card.tflite").write_bytes(b"x")
    (tmp_path / "bad-card.json").write_text("{")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        create_detector(str(tmp_path / "bad-card.json"))


# --- classification mode --------------------------------------------------------------------


def test_classify_mode_labels_the_whole_frame(colour_models):
    names = list_detectors([colour_models])
    assert "classify:colour" in names
    detector = create_detector("classify:colour", dirs=[colour_models])
    assert isinstance(detector, ClassifyDetector)
    detections = detector.detect(solid((250, 10, 10), 48, 64), score_threshold=0.99, iou_threshold=0.1, max_detections=20)
    assert [d.label for d in detections] == ["red", "green", "blue"]  # top-3, thresholds do not apply
    assert all(d.box is None for d in detections)
    assert detections[0].score > 0.9
    assert len(detector.detect(solid((250, 10, 10)), max_detections=1)) == 1
    # A classifier's card named without the prefix still works.
    assert isinstance(create_detector("colour", dirs=[colour_models]), ClassifyDetector)


def test_classify_every_nth_frame_reuses_the_answer(colour_models):
    detector = create_detector("classify:colour", dirs=[colour_models], classify_every=3)
    red, blue = solid((250, 10, 10)), solid((10, 10, 250))
    assert detector.detect(red)[0].label == "red" and detector.last_fresh
    assert detector.detect(blue)[0].label == "red" and not detector.last_fresh  # reused
    assert detector.detect(blue)[0].label == "red" and not detector.last_fresh
    assert detector.detect(blue)[0].label == "blue" and detector.last_fresh


def test_classify_prefix_on_a_detect_model_is_refused(ssd_models):
    with pytest.raises(ModelLoadError, match="not a classifier"):
        create_detector("classify:ssd-tiny", dirs=[ssd_models])


# --- drawing --------------------------------------------------------------------------------


def test_draw_detections_and_overlay():
    frame = np.zeros((120, 160, 3), np.uint8)
    out = draw_detections(frame, [D((10, 40, 60, 100), "face", 0.87), Detection(None, "whole", 0.5)])
    assert out is frame
    colour = detect.colour_for("face")
    assert frame[70, 10].tolist() == list(colour)  # the box's left edge
    assert (frame[25:40, 10:60] == colour).all(axis=-1).any()  # the filled label background above it
    bgr = draw_detections(np.zeros((120, 160, 3), np.uint8), [D((10, 40, 60, 100), "face", 0.87)], colour_order="bgr")
    assert bgr[70, 10].tolist() == list(colour[::-1])
    # A box at the very top gets its label inside the box; nothing is drawn out of bounds.
    draw_detections(frame, [D((0, 0, 160, 120), "edge", 0.5)])
    overlay = draw_overlay(np.full((120, 160, 3), 80, np.uint8), ["line one", "line two"])
    assert overlay[1, 1].tolist() == [0, 0, 0]  # filled black background
    assert (overlay[:40, :80] > 200).all(axis=-1).any()  # white (anti-aliased) text
    assert overlay[119, 159].tolist() == [80, 80, 80]


def test_overlay_text_never_runs_off_the_frame():
    long_line = "classify:a-very-long-model-name-indeed: whole frame (reused: classified every 10 frames)"
    for width in (160, 320, 640):
        text, scale = detect.fit_text(long_line, width, 1.0)
        thickness = max(1, int(round(scale * 2)))
        pad = max(2, int(round(4 * scale)))
        assert cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] + 2 * pad <= width
        assert scale >= detect.MIN_TEXT_SCALE
    short, scale = detect.fit_text("face 0.87", 640, 0.9)
    assert short == "face 0.87" and scale == 0.9  # what fits is left alone
    cut, _ = detect.fit_text(long_line, 160, 1.0)
    assert cut.endswith("...") and long_line.startswith(cut[:-3])
    # Drawn: the filled black block stops inside the frame and the last columns stay untouched
    # wherever the text is short enough to end before them.
    frame = draw_overlay(np.full((120, 160, 3), 80, np.uint8), [long_line])
    assert (frame[:, :, :] == 0).all(axis=-1).any()
    assert detect.fit_text("émoji ☺ label", 640, 0.5)[0].isascii()


def test_class_filter_on_every_detector_kind(ssd_models, colour_models):
    tiny = create_detector("ssd-tiny", dirs=[ssd_models])
    assert [d.label for d in tiny.detect(WHITE, 0.5, 0.5, 10, classes=["dog"])] == ["dog", "dog"]
    assert tiny.detect(WHITE, 0.5, 0.5, 10, classes={"bird"}) == []  # below the threshold anyway
    assert len(tiny.detect(WHITE, 0.5, 0.5, 10, classes=[])) == 3  # empty: every class
    assert create_detector("haar:face").detect(np.zeros((60, 80, 3), np.uint8), classes=["eye"]) == []
    colour = create_detector("classify:colour", dirs=[colour_models])
    assert [d.label for d in colour.detect(solid((250, 10, 10), 48, 64), classes=["green", "blue"])] == ["green", "blue"]
