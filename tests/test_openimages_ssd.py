"""Raw-output SSD detection: anchors, decoding on a tiny raw-SSD model built here, the shipped
``openimages-ssd`` detector on real photos, its card, and the byte-for-byte rebuild command on
fake npm tarballs made here."""

from __future__ import annotations

import hashlib
import io
import json
import math
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from cvplay import openimages_ssd as oi
from cvplay.detect import RawSSDDetector, create_detector, iou, list_detectors
from cvplay.registry import SHIPPED_MODELS_DIR, read_card
from cvplay.runtime import ModelLoadError
from cvplay.ssd import (
    AnchorSpec,
    BoxCoding,
    SSDConfigError,
    best_classes,
    decode_boxes,
    generate_anchors,
    layer_anchor_shapes,
    parse_decoder,
)
from model_factory import solid

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CARD = SHIPPED_MODELS_DIR / "openimages-ssd.json"
SHIPPED_MODEL = SHIPPED_MODELS_DIR / "openimages-ssd.tflite"
OPENIMAGES = AnchorSpec(
    input_size=(300, 300), num_layers=6, strides=(16, 32, 64, 128, 256, 512), min_scale=0.2, max_scale=0.95,
    aspect_ratios=(1.0, 2.0, 0.5, 3.0, 0.3333), reduce_boxes_in_lowest_layer=True,
)


# --- anchors --------------------------------------------------------------------------------


def test_openimages_anchor_count_and_layers():
    anchors = generate_anchors(OPENIMAGES)
    assert anchors.shape == (1917, 4) and anchors.dtype == np.float32
    # Feature maps ceil(300 / stride): 19, 10, 5, 3, 2, 1; 3 anchors per cell on layer 0, 6 above.
    assert [19 * 19 * 3, 10 * 10 * 6, 5 * 5 * 6, 3 * 3 * 6, 2 * 2 * 6, 1 * 6] == [1083, 600, 150, 54, 24, 6]
    assert sum([1083, 600, 150, 54, 24, 6]) == 1917


def test_known_anchors():
    anchors = generate_anchors(OPENIMAGES).astype(np.float64)
    # Layer 0, first cell: (0.1 at ratio 1), then scale 0.2 at ratios 2 and 0.5.
    assert anchors[0] == pytest.approx([0.5 / 19, 0.5 / 19, 0.1, 0.1])
    assert anchors[1] == pytest.approx([0.5 / 19, 0.5 / 19, 0.2 / math.sqrt(2), 0.2 * math.sqrt(2)])
    assert anchors[2] == pytest.approx([0.5 / 19, 0.5 / 19, 0.2 * math.sqrt(2), 0.2 / math.sqrt(2)])
    assert anchors[3][:2] == pytest.approx([0.5 / 19, 1.5 / 19])  # next cell to the right
    assert anchors[3 * 19] == pytest.approx([1.5 / 19, 0.5 / 19, 0.1, 0.1])  # first cell of row 2
    # Layer 1 starts at 1083: scale 0.2 + 0.75 / 5 = 0.35; its 6th anchor is sqrt(0.35 * 0.5).
    assert anchors[1083] == pytest.approx([0.05, 0.05, 0.35, 0.35])
    assert anchors[1083 + 3] == pytest.approx([0.05, 0.05, 0.35 / math.sqrt(3), 0.35 * math.sqrt(3)])
    assert anchors[1083 + 5] == pytest.approx([0.05, 0.05, math.sqrt(0.35 * 0.5), math.sqrt(0.35 * 0.5)])
    # The last layer: one cell at the centre, scale 0.95; the interpolated anchor uses 1.0 above it.
    assert anchors[-6] == pytest.approx([0.5, 0.5, 0.95, 0.95])
    assert anchors[-1] == pytest.approx([0.5, 0.5, math.sqrt(0.95), math.sqrt(0.95)])


def test_anchor_options():
    plain = AnchorSpec(input_size=(64, 32), num_layers=2, strides=(16, 32), min_scale=0.2, max_scale=0.8, interpolated_scale_aspect_ratio=0.0)
    anchors = generate_anchors(plain)
    assert anchors.shape == (4 * 2 + 2 * 1, 4)  # ceil(64/16) x ceil(32/16) = 4x2, then 2x1
    assert anchors[0] == pytest.approx([0.125, 0.25, 0.2, 0.2])
    assert anchors[-1] == pytest.approx([0.75, 0.5, 0.8, 0.8])
    fixed = generate_anchors(AnchorSpec(**{**plain.__dict__, "fixed_anchor_size": True}))
    assert (fixed[:, 2:] == 1.0).all() and np.allclose(fixed[:, :2], anchors[:, :2])
    # Two layers sharing a stride share one map: each cell lists both layers' anchors.
    shared = generate_anchors(AnchorSpec(input_size=(32, 32), num_layers=2, strides=(16, 16), min_scale=0.2, max_scale=0.6, interpolated_scale_aspect_ratio=0.0))
    assert shared.shape == (8, 4) and shared[0, 2] == pytest.approx(0.2) and shared[1, 2] == pytest.approx(0.6)
    shapes = np.array(layer_anchor_shapes(OPENIMAGES, 0))
    assert shapes.ravel() == pytest.approx([0.1, 0.1, 0.2 / math.sqrt(2), 0.2 * math.sqrt(2), 0.2 * math.sqrt(2), 0.2 / math.sqrt(2)])


def test_box_decoding_and_best_class():
    anchors = np.array([[0.5, 0.5, 0.2, 0.4]], np.float32)
    coding = BoxCoding(order="yxhw", y_scale=10, x_scale=10, h_scale=5, w_scale=5)
    assert decode_boxes(np.zeros((1, 4)), anchors, coding)[0] == pytest.approx([0.4, 0.3, 0.6, 0.7])
    # ty = 1 moves the centre by anchor_h / 10; th = 5 ln 2 doubles the height.
    moved = decode_boxes(np.array([[1.0, 0.0, 5 * math.log(2), 0.0]]), anchors, coding)[0]
    assert moved == pytest.approx([0.52 - 0.2, 0.3, 0.52 + 0.2, 0.7], abs=1e-6)
    xywh = decode_boxes(np.array([[0.0, 1.0, 0.0, 5 * math.log(2)]]), anchors, BoxCoding(order="xywh"))[0]
    assert xywh == pytest.approx([0.52 - 0.2, 0.3, 0.52 + 0.2, 0.7], abs=1e-6)
    linear = decode_boxes(np.array([[0.0, 0.0, 5.0, 5.0]]), anchors, BoxCoding(exponential_size=False))[0]
    assert linear == pytest.approx([0.4, 0.3, 0.6, 0.7])
    classes, scores = best_classes(np.array([[0.9, 0.2, 0.7], [0.1, 0.3, 0.2]]), ignore_classes=[0])
    assert classes.tolist() == [2, 1] and scores.tolist() == pytest.approx([0.7, 0.3])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"type": "other"}, "'type'"),
        ({"anchors": None}, "'anchors' must be an object"),
        ({"anchors": {"input_size": [300, 300], "num_layers": 2, "strides": [16], "min_scale": 0.2, "max_scale": 0.9}}, "one positive whole number per layer"),
        ({"box_coding": {"order": "hwyx"}}, "box_coding.order"),
        ({"scores": {"activation": "relu"}}, "scores.activation"),
        ({"scores": {"ignore_classes": [-1]}}, "ignore_classes"),
    ],
)
def test_bad_decoder_sections(change, message):
    data = {**oi.DECODER, **change}
    with pytest.raises(SSDConfigError, match=message):
        parse_decoder(data)


# --- a tiny raw-SSD model built here --------------------------------------------------------

TINY_ANCHORS = {"input_size": [32, 32], "num_layers": 2, "strides": [16, 32], "min_scale": 0.2, "max_scale": 0.9,
                "aspect_ratios": [1.0], "interpolated_scale_aspect_ratio": 0.0}
# Anchors: layer 0 is a 2x2 map of 0.2 x 0.2 boxes centred at 0.25/0.75 (row by row: (y, x) =
# (.25, .25), (.25, .75), (.75, .25), (.75, .75)); layer 1 is one 0.9 box at the centre.
TINY_ENCODINGS = [
    [0.0, 0.0, 0.0, 0.0],  # 0: the anchor itself: y 0.15-0.35, x 0.15-0.35
    [0.0, 0.0, 0.0, 0.0],  # 1: background wins -> ignored
    [-25.0, 0.0, 0.0, 0.0],  # 2: (y 0.75, x 0.25) moved up onto anchor 0's box: y centre 0.75 - 0.5
    [1.0, 0.0, 5 * math.log(2), 0.0],  # 3: y centre 0.77, twice as high: y 0.57-0.97, x 0.65-0.85
    [0.0, 0.0, 0.0, 0.0],  # 4: the big centred anchor, x and y 0.05-0.95
]
TINY_LABELS = ["background", "cat", "dog"]


def build_raw_ssd_tflite(path: Path) -> Path:
    """Outputs box encodings [1, 5, 4] and class logits [1, 5, 3] (background, cat, dog). Anchor
    4's cat logit is 4 x the mean of the input, so a test can see what the model was fed."""
    import tensorflow as tf

    logits = np.array([
        [-5.0, 2.0, -5.0],  # 0: cat 0.881
        [9.0, -5.0, -1.0],  # 1: background; dog 0.269
        [-5.0, -5.0, 1.5],  # 2: dog 0.818, on anchor 0's box
        [-5.0, -5.0, 1.0],  # 3: dog 0.731
        [-5.0, 0.0, -5.0],  # 4: cat, 4 x mean(input)
    ], np.float32)

    class RawSSD(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32, name="image")])
        def __call__(self, image):
            mean = tf.reduce_mean(image)
            boxes = tf.constant([TINY_ENCODINGS], tf.float32) + mean * 0.0
            bump = tf.one_hot(4 * 3 + 1, 15) * 4.0 * mean
            scores = tf.constant(logits.reshape(1, 15), tf.float32) + tf.reshape(bump, [1, 15])
            return {"box_encodings": boxes, "class_predictions": tf.reshape(scores, [1, 5, 3])}

    module = RawSSD()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    path.write_bytes(converter.convert())
    return path


def tiny_card(**changes) -> dict:
    card = {
        "name": "raw-tiny",
        "task": "detect",
        "input": {"size": [32, 32], "resize": "stretch", "mean": 127.5, "std": 127.5},
        "labels": TINY_LABELS,
        "decoder": {"type": "ssd_raw", "anchors": TINY_ANCHORS,
                    "box_coding": {"order": "yxhw", "scales": {"y": 10, "x": 10, "h": 5, "w": 5}},
                    "scores": {"activation": "sigmoid", "ignore_classes": [0]}, "class_agnostic_nms": True},
    }
    card.update(changes)
    return card


@pytest.fixture(scope="module")
def raw_model(tmp_path_factory) -> Path:
    return build_raw_ssd_tflite(tmp_path_factory.mktemp("raw-ssd") / "raw.tflite")


def write_raw(directory: Path, raw_model: Path, name: str = "raw-tiny", **changes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.tflite").write_bytes(raw_model.read_bytes())
    (directory / f"{name}.json").write_text(json.dumps(tiny_card(name=name, **changes)))
    return directory / f"{name}.json"


def test_raw_ssd_model_decodes_from_its_card(tmp_path, raw_model):
    write_raw(tmp_path, raw_model)
    assert "raw-tiny" in list_detectors([tmp_path])
    detector = create_detector("raw-tiny", dirs=[tmp_path])
    assert isinstance(detector, RawSSDDetector) and detector.labels == ("cat", "dog")
    white = solid((255, 255, 255), 100, 200)  # model input 1.0 everywhere: anchor 4's cat 4.0
    found = detector.detect(white, score_threshold=0.5, iou_threshold=0.5, max_detections=10)
    # Class-agnostic NMS (the card): the dog on anchor 0's box is suppressed by the cat there.
    assert [(d.label, round(d.score, 3)) for d in found] == [("cat", 0.982), ("cat", 0.881), ("dog", 0.731)]
    assert found[1].box == (30, 15, 70, 35)  # x 0.15-0.35 of 200, y 0.15-0.35 of 100
    assert found[2].box == (130, 57, 170, 97)
    assert found[0].box == (10, 5, 190, 95)
    # The frame is fed as the card says: black -> input -1 -> anchor 4's cat drops to 0.018.
    dark = detector.detect(solid((0, 0, 0), 100, 200), 0.5, 0.5, 10)
    assert [d.label for d in dark] == ["cat", "dog"]
    # Thresholds, the cap and the class filter.
    assert len(detector.detect(white, 0.85, 0.5, 10)) == 2
    assert len(detector.detect(white, 0.5, 0.5, max_detections=1)) == 1
    assert [d.label for d in detector.detect(white, 0.5, 0.5, 10, classes=["dog"])] == ["dog", "dog"]
    # Below the threshold stays out; the background class never appears.
    assert all(d.label != "background" for d in detector.detect(white, 0.0, 1.0, 10))


def test_raw_ssd_class_aware_nms_keeps_both_labels(tmp_path, raw_model):
    card = tiny_card()
    card["decoder"]["class_agnostic_nms"] = False
    write_raw(tmp_path, raw_model, **{"decoder": card["decoder"]})
    found = create_detector("raw-tiny", dirs=[tmp_path]).detect(solid((255, 255, 255), 100, 200), 0.5, 0.5, 10)
    assert sorted((d.label, round(d.score, 3)) for d in found) == [("cat", 0.881), ("cat", 0.982), ("dog", 0.731), ("dog", 0.818)]


def test_raw_ssd_card_errors_are_clear(tmp_path, raw_model):
    bad_anchors = dict(TINY_ANCHORS, strides=[8, 32])  # 4x4 + 1 = 17 anchors, the model has 5
    decoder = dict(tiny_card()["decoder"], anchors=bad_anchors)
    write_raw(tmp_path / "a", raw_model, decoder=decoder)
    with pytest.raises(ModelLoadError, match="anchors make 17 boxes, the model outputs 5"):
        create_detector("raw-tiny", dirs=[tmp_path / "a"])
    write_raw(tmp_path / "b", raw_model, labels=["cat", "dog"])
    with pytest.raises(ModelLoadError, match="scores 3 classes, the card lists 2"):
        create_detector("raw-tiny", dirs=[tmp_path / "b"])
    write_raw(tmp_path / "c", raw_model, decoder={"type": "ssd_raw"})
    with pytest.raises(ModelLoadError, match="decoder: 'anchors' must be an object"):
        create_detector("raw-tiny", dirs=[tmp_path / "c"])


# --- the shipped detector -------------------------------------------------------------------


def photo(name: str) -> np.ndarray:
    data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the sample photos")
    return np.ascontiguousarray(getattr(data, name)())


@pytest.fixture(scope="module")
def shipped():
    if not SHIPPED_MODEL.is_file():
        pytest.skip("models/openimages-ssd.tflite is missing")
    return create_detector("openimages-ssd")


def test_shipped_card_and_model(shipped):
    card = read_card(SHIPPED_CARD)
    assert card.task == "detect" and card.labels[0] == "???" and len(card.labels) == 24
    assert hashlib.sha256(SHIPPED_MODEL.read_bytes()).hexdigest() == oi.MODEL_SHA256 == card.provenance["model_sha256"]
    assert isinstance(shipped, RawSSDDetector) and len(shipped.anchors) == 1917
    assert len(shipped.labels) == 23 and "???" not in shipped.labels
    assert {"Person", "Dog", "Cat", "Car", "Bicycle", "Laptop", "Bottle", "Mug"} <= set(shipped.labels)
    assert list_detectors()[0] == "openimages-ssd"  # the default detector is listed first
    assert (SHIPPED_MODELS_DIR / "openimages-ssd.NOTICE").read_text().count("Apache License") >= 1


def test_fast_input_preparation_equals_the_shared_one(shipped):
    from cvplay.preprocess import prepare

    for rgb in (photo("chelsea"), np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)):
        np.testing.assert_array_equal(shipped._batch(rgb)[0], prepare(rgb, shipped.card.input))


def test_committed_card_and_notice_are_what_the_export_writes():
    """The rebuild reproduces the committed files: the card and notice are built from the label
    map and model bytes alone (the label map is rebuilt from the card's labels and checked)."""
    card = json.loads(SHIPPED_CARD.read_text())
    label_bytes = ("\n".join(card["labels"]) + "\n").encode()
    assert hashlib.sha256(label_bytes).hexdigest() == card["provenance"]["label_map_sha256"]
    packed = oi.PackedFiles(tuple(card["labels"]), SHIPPED_MODEL.read_bytes(), label_bytes,
                            tuple(card["provenance"]["model_bytes"]), tuple(card["provenance"]["label_map_bytes"]), "Apache-2.0")
    assert oi.build_card(packed) == card
    assert oi.build_notice(packed) == (SHIPPED_MODELS_DIR / "openimages-ssd.NOTICE").read_text()


@pytest.mark.parametrize("name, label", [("astronaut", "Person"), ("chelsea", "Cat"), ("coffee", "Coffee cup")])
def test_shipped_detector_finds_objects_in_real_photos(shipped, name, label):
    rgb = photo(name)
    found = shipped.detect(rgb)
    assert found and found[0].label == label, [(d.label, d.score) for d in found]
    x1, y1, x2, y2 = found[0].box
    height, width = rgb.shape[:2]
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert (x2 - x1) * (y2 - y1) > 0.2 * width * height  # the subject fills much of each photo


def test_shipped_detector_on_blank_and_flipped_frames(shipped):
    assert shipped.detect(np.zeros((480, 640, 3), np.uint8)) == []
    cat = photo("chelsea")
    box = shipped.detect(cat)[0].box
    mirrored = shipped.detect(np.ascontiguousarray(cat[:, ::-1]))[0]
    width = cat.shape[1]
    assert mirrored.label == "Cat" and iou(box, (width - mirrored.box[2], box[1], width - mirrored.box[0], box[3])) > 0.6


@pytest.mark.shared
def test_found_on_real_photos(shared, shipped, capsys):
    """The goal figure: on the labelled ImageNet samples whose class is one of the detector's
    objects (tests/imagenet_to_openimages.py), the share where it reports that object at the
    default score threshold 0.5. Prints the figure and every miss."""
    from cvplay.images import load_image
    from imagenet_to_openimages import GENERIC_VEHICLE, IMAGENET_TO_DETECTOR

    samples = shared / "data" / "imagenet-samples"
    entries = json.loads((samples / "labels.json").read_text())

    def measure(mapping):
        rows = []
        for entry in entries:
            if entry["index"] not in mapping:
                continue
            found = shipped.detect(load_image(samples / entry["file"]), score_threshold=0.0, iou_threshold=0.5, max_detections=100)
            best = max((d.score for d in found if d.label in mapping[entry["index"]]), default=0.0)
            top = [(d.label, round(d.score, 2)) for d in found[:3]]
            rows.append((entry["file"], entry["name"], best, top))
        return rows

    rows = measure(IMAGENET_TO_DETECTOR)
    vehicles = measure(GENERIC_VEHICLE)
    with capsys.disabled():
        print(f"\nopenimages-ssd on ../shared/data/imagenet-samples, {len(rows)} photos of its objects:")
        for threshold in (0.5, 0.4, 0.3):
            hits = sum(best >= threshold for _, _, best, _ in rows)
            print(f"  score >= {threshold}: found {hits}/{len(rows)} = {hits / len(rows):.3f}")
        dogs = [row for row in rows if row[0][:3].isdigit() and 151 <= int(row[0][:3]) <= 268]
        print(f"  dogs alone: {sum(best >= 0.5 for _, _, best, _ in dogs)}/{len(dogs)}")
        print(f"  non-car vehicles (apart): {sum(best >= 0.5 for _, _, best, _ in vehicles)}/{len(vehicles)}")
        for file, name, best, top in rows:
            if best < 0.5:
                print(f"  missed {file} ({name}): best right score {best:.2f}; top {top}")
    share = sum(best >= 0.5 for _, _, best, _ in rows) / len(rows)
    assert len(rows) >= 40 and share >= 0.8


# --- the rebuild command on fake npm tarballs -------------------------------------------------

FAKE_LABELS = b"???\nThing\nOther thing\n"
FAKE_MODEL = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4


def loader_js(files: list[dict], size: int) -> str:
    table = json.dumps({"files": files, "remote_package_size": size})
    return f"var Module = {{}};\n(function() {{ var loadPackage = function(metadata) {{}};\n loadPackage({table});\n}})();\n"


def fake_tarball(path: Path, model: bytes = FAKE_MODEL, labels: bytes = FAKE_LABELS, loader: str | None = None,
                 skip: tuple[str, ...] = (), link_data: bool = False) -> Path:
    data = labels + model
    files = [
        {"filename": oi.LABELS_FILE, "start": 0, "end": len(labels)},
        {"filename": oi.MODEL_FILE, "start": len(labels), "end": len(data)},
    ]
    members = {
        oi.LOADER_MEMBER: (loader if loader is not None else loader_js(files, len(data))).encode(),
        oi.DATA_MEMBER: data,
        oi.PACKAGE_JSON_MEMBER: json.dumps({"name": oi.NPM_PACKAGE, "license": "Apache-2.0"}).encode(),
        "package/README.md": b"readme",
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            if name in skip:
                continue
            info = tarfile.TarInfo(name)
            if link_data and name == oi.DATA_MEMBER:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                archive.addfile(info)
                continue
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


def test_export_cuts_verifies_and_writes_model_card_and_notice(tmp_path):
    tarball = fake_tarball(tmp_path / "fake.tgz")
    digest = hashlib.sha256(FAKE_MODEL).hexdigest()
    card_path = oi.export_openimages_ssd(tarball, tmp_path / "out", expected_sha256=digest)
    out = tmp_path / "out"
    assert (out / "openimages-ssd.tflite").read_bytes() == FAKE_MODEL
    card = json.loads(card_path.read_text())
    assert card["labels"] == ["???", "Thing", "Other thing"]
    assert card["provenance"]["model_bytes"] == [len(FAKE_LABELS), len(FAKE_LABELS) + len(FAKE_MODEL)]
    assert card["provenance"]["model_sha256"] == digest
    assert card["decoder"]["anchors"]["strides"] == [16, 32, 64, 128, 256, 512]
    assert card["input"]["mean"] == [127.5] * 3 and card["input"]["resize"] == "stretch"
    notice = (out / "openimages-ssd.NOTICE").read_text()
    assert digest in notice and "Apache License" in notice and "Version 2.0" in notice
    # Run twice: the same bytes.
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    oi.export_openimages_ssd(tarball, out, expected_sha256=digest)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_export_reads_the_byte_ranges_from_the_loader(tmp_path):
    # Model first, labels after: a layout the constants never saw.
    data = FAKE_MODEL + FAKE_LABELS
    files = [{"filename": oi.MODEL_FILE, "start": 0, "end": len(FAKE_MODEL)},
             {"filename": oi.LABELS_FILE, "start": len(FAKE_MODEL), "end": len(data)}]
    tarball = fake_tarball(tmp_path / "swapped.tgz", model=b"", labels=data, loader=loader_js(files, len(data)))
    packed = oi.read_packed_files(tarball, expected_sha256=hashlib.sha256(FAKE_MODEL).hexdigest())
    assert packed.model == FAKE_MODEL and packed.labels == ("???", "Thing", "Other thing")
    assert packed.model_range == (0, len(FAKE_MODEL))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "sha256 .* is not the expected"),
        ({"skip": (oi.LOADER_MEMBER,)}, "no package/objectron_solution_packed_assets_loader.js inside"),
        ({"loader": "console.log('no table')"}, r"no loadPackage"),
        ({"loader": loader_js([{"filename": oi.MODEL_FILE, "start": 0, "end": 10**9}], len(FAKE_LABELS) + len(FAKE_MODEL))}, "bad byte range"),
        ({"link_data": True}, "not a regular file"),
        ({"model": b"not a tflite model at all"}, "not a TFLite model"),
    ],
)
def test_export_refuses_what_is_not_the_package(tmp_path, kwargs, message):
    tarball = fake_tarball(tmp_path / "bad.tgz", **kwargs)
    with pytest.raises(oi.ExportError, match=message):
        oi.export_openimages_ssd(tarball, tmp_path / "out")  # the real sha256 is expected
    assert not (tmp_path / "out").exists()


def test_export_command_line(tmp_path):
    (tmp_path / "junk.tgz").write_bytes(b"not a tarball")
    run = lambda *args: subprocess.run([sys.executable, "-m", "cvplay", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)  # noqa: E731
    bad = run("export", "openimages-ssd", "--from", str(tmp_path / "junk.tgz"), "--out", str(tmp_path / "out"))
    assert bad.returncode == 2 and "not a readable npm tarball" in bad.stderr and "Traceback" not in bad.stderr
    fake = run("export", "openimages-ssd", "--from", str(fake_tarball(tmp_path / "fake.tgz")), "--out", str(tmp_path / "out"))
    assert fake.returncode == 2 and "sha256" in fake.stderr and not (tmp_path / "out" / "openimages-ssd.tflite").exists()
    missing = run("export", "openimages-ssd")
    assert missing.returncode == 2 and "npm pack @mediapipe/objectron@0.4.1675468480" in missing.stderr
