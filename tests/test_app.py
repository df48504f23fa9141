"""The app shell and the classify page under Streamlit's AppTest."""

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from model_factory import solid

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(solid(colour)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(solid(colour, 64, 64)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def all_text(at: AppTest) -> str:
    return "\n".join(str(element.value) for kind in ("markdown", "caption", "error", "warning", "info") for element in getattr(at, kind))


def test_app_shell_runs_and_lists_installed_models(user_models):
    (user_models / "broken.tflite").write_bytes(b"x")
    (user_models / "broken.json").write_text("{")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    sidebar = "\n".join(str(element.value) for element in at.sidebar.markdown)
    assert "`colour`" in sidebar and "classify" in sidebar
    assert any("broken" in str(warning.value) for warning in at.sidebar.warning)


@pytest.fixture
def classify_page(user_models):
    at = AppTest.from_file(str(ROOT / "app_pages" / "classify.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    at.selectbox(key="classify-model").set_value("colour").run()
    return at


def test_classify_page_asks_for_a_photo_first(classify_page):
    assert any("Add a photo" in str(info.value) for info in classify_page.info)


def test_classify_several_photos_with_one_bad_file(classify_page):
    at = classify_page
    at.file_uploader(key="classify-upload").set_value(
        [("red.png", png((240, 5, 5)), "image/png"), ("broken.jpg", b"\xff\xd8\xff\xe0 nope", "image/jpeg"), ("blue.png", png((0, 0, 250)), "image/png")]
    ).run()
    assert not at.exception
    headings = [str(m.value) for m in at.markdown if str(m.value).startswith("### ")]
    assert headings == ["### red", "### blue"]
    assert len(at.error) == 1 and "broken.jpg" in str(at.error[0].value)
    table = at.dataframe[-1].value
    assert list(table["input"]) == ["red.png", "broken.jpg", "blue.png"]
    assert list(table["label"]) == ["red", "", "blue"]
    assert table["error"][1] != "" and table["score"][0] > 0.9
    assert [button.label for button in at.get("download_button")] == ["Download results (CSV)", "Download every class probability (CSV)"]


def test_top_k_slider_changes_the_bars(classify_page):
    at = classify_page
    at.file_uploader(key="classify-upload").set_value([("green.png", png((0, 230, 0)), "image/png")]).run()
    assert len(at.dataframe[0].value) == 3
    at.slider(key="classify-top-k").set_value(2).run()
    bars = at.dataframe[0].value
    assert list(bars["class"])[0] == "green" and len(bars) == 2


def test_camera_snapshot_is_classified(classify_page):
    at = classify_page
    at.toggle(key="classify-camera-on").set_value(True).run()
    at.camera_input(key="classify-camera").set_value(("snap.jpg", jpeg((10, 200, 20)), "image/jpeg")).run()
    assert not at.exception
    assert "### green" in [str(m.value) for m in at.markdown]


def test_unsafe_url_gets_a_clear_message(classify_page):
    at = classify_page
    at.text_input(key="classify-url").set_value("http://169.254.169.254/latest/meta-data").run()
    assert not at.exception
    assert len(at.error) == 1 and "169.254.169.254" in str(at.error[0].value)


SERVING_WITHOUT_TENSORFLOW = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from streamlit.testing.v1 import AppTest
    import numpy as np
    root = Path(sys.argv[1])
    ran = {}
    for script in [root / "app.py", *sorted((root / "app_pages").glob("*.py"))]:
        at = AppTest.from_file(str(script), default_timeout=120).run()
        ran[script.name] = [str(e.value) for e in at.exception]
    from cvplay.registry import list_models
    from cvplay.runtime import create_classifier
    for card in list_models("classify"):
        create_classifier(card.name).predict(np.zeros((50, 60, 3), np.uint8))
    print(json.dumps({"tensorflow": sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "torch")), "ran": ran}))
    """
)


def test_serving_never_imports_tensorflow(user_models):
    result = subprocess.run(
        [sys.executable, "-c", SERVING_WITHOUT_TENSORFLOW, str(ROOT)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tensorflow"] == []
    assert "app.py" in report["ran"] and "classify.py" in report["ran"]
