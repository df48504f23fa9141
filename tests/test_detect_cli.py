"""``python -m cvplay detect``: the JSON contract, boxes in pixels of the EXIF-oriented photo,
the bad-input contract shared with ``predict``, CSV/table output and annotated copies."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cvplay.cli import main
from cvplay.detect import create_detector, iou

ROOT = Path(__file__).resolve().parents[1]
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the sample photos")


def run_main(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detect-photos")
    cat = folder / "chelsea.jpg"
    Image.fromarray(skimage_data.chelsea()).save(cat, quality=95)
    person = folder / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(person)
    # The same cat stored sideways with EXIF orientation 6 ("rotate 90 clockwise to view").
    sideways = folder / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(skimage_data.chelsea(), k=1))).save(sideways, quality=95, exif=exif)
    broken = folder / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    text = folder / "notes.txt"
    text.write_text("hello")
    return {"cat": cat, "person": person, "sideways": sideways, "broken": broken, "text": text, "missing": folder / "nope.jpg"}


def test_json_contract_one_object_per_input(capsys, photos):
    status, out, _ = run_main(capsys, "detect", "--format", "json", str(photos["cat"]), str(photos["person"]))
    assert status == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["input"] for line in lines] == [str(photos["cat"]), str(photos["person"])]
    for line in lines:
        assert set(line) == {"input", "detections", "error"} and line["error"] is None
        for detection in line["detections"]:
            assert set(detection) == {"label", "score", "box"}
            assert 0.5 <= detection["score"] <= 1.0 and len(detection["box"]) == 4
            assert all(isinstance(v, int) for v in detection["box"])
    cat, person = lines[0]["detections"][0], lines[1]["detections"][0]
    assert cat["label"] == "Cat" and person["label"] == "Person"
    x1, y1, x2, y2 = cat["box"]
    assert 0 <= x1 < x2 <= 451 and 0 <= y1 < y2 <= 300  # pixels of the 451x300 photo


def test_boxes_are_in_pixels_of_the_exif_oriented_photo(capsys, photos):
    status, out, _ = run_main(capsys, "detect", "--format", "json", str(photos["sideways"]), str(photos["cat"]))
    assert status == 0
    sideways, upright = (json.loads(line)["detections"][0] for line in out.splitlines())
    # Orientation 6 turns the stored (451 tall, 300 wide) pixels back upright: the same 451x300
    # photo, so the box matches the upright file's.
    assert sideways["label"] == upright["label"] == "Cat"
    assert iou(sideways["box"], upright["box"]) > 0.8
    assert sideways["box"][2] <= 451 and sideways["box"][3] <= 300


def test_bad_inputs_get_one_sentence_and_the_rest_are_answered(capsys, photos):
    status, out, err = run_main(
        capsys, "detect", "--format", "json", str(photos["broken"]), str(photos["text"]), str(photos["missing"]),
        "http://127.0.0.1:9/x.png", "file:///etc/passwd", str(photos["cat"]),
    )
    assert status == 1 and "Traceback" not in err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 6
    for line in lines[:5]:
        assert line["detections"] is None and isinstance(line["error"], str) and line["error"].strip()
        assert "\n" not in line["error"]
    assert "No such file" in lines[2]["error"]
    assert lines[5]["error"] is None and lines[5]["detections"][0]["label"] == "Cat"


def test_options_thresholds_and_a_haar_detector(capsys, photos):
    status, out, _ = run_main(capsys, "detect", "--format", "json", "--score", "0.05", "--iou", "1", "--max-detections", "3", str(photos["cat"]))
    assert status == 0 and len(json.loads(out)["detections"]) == 3
    status, out, _ = run_main(capsys, "detect", "--format", "json", "--score", "0.99", str(photos["cat"]))
    assert status == 0 and json.loads(out)["detections"] == []
    status, out, _ = run_main(capsys, "detect", "--format", "json", "--model", "haar:face", str(photos["person"]))
    faces = json.loads(out)["detections"]
    assert status == 0 and faces and faces[0]["label"] == "face"
    for bad in (["--score", "1.5"], ["--iou", "0"], ["--max-detections", "0"], ["--model", "no-such-model"]):
        status, _, err = run_main(capsys, "detect", *bad, str(photos["cat"]))
        assert status == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_csv_and_table_formats(capsys, photos):
    status, out, _ = run_main(capsys, "detect", "--format", "csv", str(photos["cat"]), str(photos["broken"]))
    assert status == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["input", "label", "score", "x1", "y1", "x2", "y2", "error"]
    assert rows[0]["label"] == "Cat" and float(rows[0]["score"]) >= 0.5 and rows[0]["error"] == ""
    assert rows[-1]["input"] == str(photos["broken"]) and rows[-1]["error"]
    status, out, _ = run_main(capsys, "detect", str(photos["cat"]), str(photos["broken"]))
    assert status == 1 and "Cat" in out and "error:" in out


def test_out_writes_annotated_copies(capsys, photos, tmp_path):
    out_dir = tmp_path / "annotated"
    status, out, _ = run_main(capsys, "detect", "--format", "json", "--out", str(out_dir), str(photos["cat"]), str(photos["cat"]), str(photos["person"]))
    assert status == 0
    written = sorted(path.name for path in out_dir.iterdir())
    assert written == ["astronaut.detections.jpg", "chelsea-2.detections.jpg", "chelsea.detections.jpg"]
    annotated = cv2.cvtColor(cv2.imread(str(out_dir / "chelsea.detections.jpg")), cv2.COLOR_BGR2RGB)
    original = skimage_data.chelsea()
    assert annotated.shape == original.shape
    box = json.loads(out.splitlines()[0])["detections"][0]["box"]
    x1, y1, x2, y2 = box
    # The box's left edge is drawn in the label's colour, unlike the photo there.
    edge = annotated[y1 + 5 : y2 - 5, min(x1 + 1, original.shape[1] - 1)].astype(int)
    assert np.abs(edge - original[y1 + 5 : y2 - 5, min(x1 + 1, original.shape[1] - 1)].astype(int)).mean() > 30


def test_the_real_process_prints_no_traceback(photos, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cvplay", "detect", "--format", "json", str(photos["text"]), str(photos["cat"])],
        capture_output=True, text=True, cwd=ROOT, timeout=180,
    )
    assert "Traceback" not in result.stderr + result.stdout and result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["detections"] is None and lines[1]["detections"][0]["label"] == "Cat"
    # The boxes agree with the library on the decoded photo.
    from cvplay.images import load_image

    expected = create_detector("openimages-ssd").detect(load_image(photos["cat"]))[0]
    assert lines[1]["detections"][0]["box"] == list(expected.box)
