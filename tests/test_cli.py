import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvplay.cli import main
from model_factory import solid

ROOT = Path(__file__).resolve().parents[1]


def write_png(path: Path, colour) -> Path:
    Image.fromarray(solid(colour)).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    red = write_png(tmp_path / "red.png", (230, 10, 10))
    blue = write_png(tmp_path / "blue.png", (5, 5, 240))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    return red, blue, broken, text


def run_main(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_models_json_lists_user_models(capsys, user_models):
    status, out, _ = run_main(capsys, "models", "--format", "json")
    assert status == 0
    models = {entry["name"]: entry for entry in json.loads(out)}
    assert models["colour"]["task"] == "classify"
    assert models["colour"]["num_classes"] == 3
    assert Path(models["colour"]["path"]).is_file()


def test_models_table_warns_about_broken_cards(capsys, user_models):
    (user_models / "bad.tflite").write_bytes(b"x")
    (user_models / "bad.json").write_text("{")
    status, out, err = run_main(capsys, "models")
    assert status == 0
    assert "colour" in out and "classify" in out
    assert "bad.json" in err and "not valid JSON" in err


def test_predict_json_one_line_per_input_and_errors_do_not_stop_others(capsys, user_models, photos):
    red, blue, broken, text = photos
    status, out, _ = run_main(capsys, "predict", "--model", "colour", "--top", "2", "--format", "json",
                              str(red), str(broken), str(blue), str(text), str(red.parent / "missing.png"))
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["input"] for line in lines] == [str(red), str(broken), str(blue), str(text), str(red.parent / "missing.png")]
    assert lines[0]["top"][0]["label"] == "red" and lines[0]["error"] is None
    assert len(lines[0]["top"]) == 2 and set(lines[0]["top"][0]) == {"label", "index", "score"}
    assert lines[2]["top"][0]["label"] == "blue"
    for failed in (lines[1], lines[3], lines[4]):
        assert failed["top"] is None
        assert isinstance(failed["error"], str) and "\n" not in failed["error"] and failed["error"]
    assert status == 1


def test_predict_all_good_exits_zero_and_csv(capsys, user_models, photos):
    red, blue, _, _ = photos
    status, out, _ = run_main(capsys, "predict", "--model", "colour", "--format", "csv", "--top", "1", str(red), str(blue))
    assert status == 0
    rows = out.strip().splitlines()
    assert rows[0] == "input,rank,label,index,score,error"
    assert rows[1].startswith(f"{red},1,red,0,") and rows[2].startswith(f"{blue},1,blue,2,")


def test_predict_by_model_path(capsys, colour_models, photos):
    status, out, _ = run_main(capsys, "predict", "--model", str(colour_models / "colour.tflite"), str(photos[0]))
    assert status == 0 and "red" in out


def test_unknown_model_is_one_clear_line(capsys, user_models, photos):
    status, _, err = run_main(capsys, "predict", "--model", "nope", str(photos[0]))
    assert status == 2
    assert err.startswith("error: no installed model is called 'nope'") and "Traceback" not in err


def test_unsafe_url_is_refused_per_input(capsys, user_models, photos):
    status, out, _ = run_main(capsys, "predict", "--model", "colour", "--format", "json",
                              "http://127.0.0.1:9/x.png", "file:///etc/passwd", str(photos[0]))
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["top"] is None and lines[0]["error"]
    assert lines[1]["top"] is None and lines[1]["error"]
    assert lines[2]["top"][0]["label"] == "red"
    assert status == 1


def test_no_traceback_from_the_real_process(user_models, photos):
    red, broken, text = photos[0], photos[2], photos[3]
    result = subprocess.run(
        [sys.executable, "-m", "cvplay", "predict", "--model", "colour", "--format", "json", str(broken), str(text), str(red)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 1
    assert json.loads(result.stdout.splitlines()[-1])["top"][0]["label"] == "red"
