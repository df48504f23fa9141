"""The Augmentation previews page under Streamlit's AppTest."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from cvplay import augment, samples

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60


@pytest.fixture
def media(monkeypatch) -> list[MemoryMediaFileStorage]:
    """The in-memory media stores AppTest creates, so a download's bytes can be read back."""
    stores: list[MemoryMediaFileStorage] = []

    class Recording(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage", Recording)
    return stores


@pytest.fixture
def page(media) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / "augment.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    return at


def image_urls(at: AppTest) -> list[str]:
    return [image.proto.imgs[0].url for image in at.image]


def download_text(at: AppTest, media: list[MemoryMediaFileStorage]) -> str:
    button = at.get("download_button")[0]
    filename = button.proto.url.rsplit("/", 1)[-1]
    return media[-1].get_file(filename).content.decode()


def png(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_renders_a_built_in_sample_with_the_default_policy(page):
    assert page.selectbox(key="augment-preset").value == augment.DEFAULT_PRESET
    assert page.selectbox(key="augment-sample").value == "scene"
    captions = [image.proto.imgs[0].caption for image in page.image]
    assert captions == ["Original"] + [f"Sample {i}" for i in range(1, 9)]
    assert len(set(image_urls(page)[1:])) == 8  # eight different samples
    # One expander of generated controls per declared transform.
    for t in augment.TRANSFORMS:
        assert page.checkbox(key=f"augment-{t.name}-enabled").value == augment.DEFAULT_POLICY.transforms[t.name].enabled
    assert page.slider(key="augment-rotate-angle").value == (-15.0, 15.0)
    assert any("Train page" in str(caption.value) for caption in page.caption)


def test_preset_loads_into_the_controls_and_changes_the_grid(page):
    before = image_urls(page)
    page.selectbox(key="augment-preset").set_value("strong").run()
    assert not page.exception
    assert page.checkbox(key="augment-cutout-enabled").value is True
    assert page.selectbox(key="augment-fill-mode").value == "reflect"
    after = image_urls(page)
    assert after[0] == before[0] and after[1:] != before[1:]
    page.selectbox(key="augment-preset").set_value("none").run()
    assert not any(page.checkbox(key=f"augment-{t.name}-enabled").value for t in augment.TRANSFORMS)
    urls = image_urls(page)
    assert len(set(urls)) == 1  # every sample is the original


def test_seed_and_new_samples_change_the_grid(page):
    before = image_urls(page)
    page.number_input(key="augment-seed").set_value(5).run()
    seeded = image_urls(page)
    assert seeded[1:] != before[1:]
    page.button(key="augment-new-samples").click().run()
    assert page.number_input(key="augment-seed").value == 6
    assert image_urls(page)[1:] != seeded[1:]
    page.number_input(key="augment-seed").set_value(5).run()
    assert image_urls(page) == seeded  # same seed, same samples


def test_controls_change_the_policy(page):
    page.slider(key="augment-count").set_value(3).run()
    assert len(page.image) == 4
    page.checkbox(key="augment-grayscale-enabled").check().run()
    page.slider(key="augment-grayscale-probability").set_value(1.0).run()
    page.checkbox(key="augment-show-params").check().run()
    assert not page.exception
    table = drawn_parameters(page)
    assert sorted(set(table["sample"])) == [1, 2, 3]
    assert all("Grayscale" in set(rows["transform"]) for _, rows in table.groupby("sample"))


def drawn_parameters(at: AppTest):
    """The drawn-parameters table (the page's only dataframe)."""
    assert len(at.dataframe) == 1
    return at.dataframe[0].value


def test_show_drawn_parameters_as_one_readable_row_per_transform(page):
    assert len(page.dataframe) == 0
    page.checkbox(key="augment-show-params").check().run()
    table = drawn_parameters(page)
    assert list(table.columns) == ["sample", "transform", "drawn values"]
    assert sorted(set(table["sample"])) == list(range(1, 9))
    # The default policy rotates and zooms every sample: titled lines with rounded values.
    for _, rows in table.groupby("sample"):
        assert {"Rotation", "Zoom"} <= set(rows["transform"])
    rotation = table[table["transform"] == "Rotation"]["drawn values"]
    assert all(re.fullmatch(r"angle \N{MINUS SIGN}?\d+\.\d\d?", text) for text in rotation), list(rotation)
    zoom = table[table["transform"] == "Zoom"]["drawn values"].iloc[0]
    assert re.fullmatch(r"scale x \d\.\d\d, scale y \d\.\d\d", zoom), zoom
    # Still the exact draw: the rounded text of the policy's own preview.
    policy = augment.Policy.from_dict(page.session_state["augment-policy"])
    _, drawn = policy.preview(augment.downscale_to(samples.load("scene"), 512), 1, policy.seed)[0]
    angle = dict(drawn)["rotate"]["angle"]
    expected = f"angle {angle:.2f}" if abs(angle) < 10 else f"angle {angle:.1f}"
    assert rotation.iloc[0] == expected.replace("-", "\N{MINUS SIGN}")


def test_download_json_is_the_current_policy(page, media):
    page.selectbox(key="augment-preset").set_value("light").run()
    page.number_input(key="augment-seed").set_value(42).run()
    downloaded = augment.Policy.from_json(download_text(page, media))
    assert downloaded == augment.preset("light").replace(seed=42)
    shown = [code.value for code in page.code if code.value.startswith("{")]
    assert json.loads(shown[0]) == downloaded.to_dict()


def test_upload_policy_json_loads_it(page):
    policy = augment.preset("strong").replace(seed=77, fill_mode="constant", fill_value=200)
    page.file_uploader(key="augment-policy-upload").set_value(
        [("mine.json", policy.to_json().encode(), "application/json")]
    ).run()
    assert not page.exception
    assert page.number_input(key="augment-seed").value == 77
    assert page.selectbox(key="augment-fill-mode").value == "constant"
    assert page.checkbox(key="augment-hue-enabled").value is True
    assert any("Loaded the policy" in str(message.value) for message in page.success)


def test_bad_policy_json_is_reported(page):
    page.file_uploader(key="augment-policy-upload").set_value(
        [("bad.json", b'{"transforms": {"sharpen": {}}}', "application/json")]
    ).run()
    assert not page.exception
    assert any("unknown transform 'sharpen'" in str(message.value) for message in page.error)


def test_own_large_image_is_downscaled_for_the_preview(page):
    page.radio(key="augment-source").set_value("Your own image").run()
    assert any("Add a photo" in str(info.value) for info in page.info)
    page.file_uploader(key="augment-upload").set_value([("big.png", png(1200, 600), "image/png")]).run()
    assert not page.exception
    assert any("downscaled from 1200×600 to 512×256" in str(caption.value) for caption in page.caption)
    assert len(page.image) == 9
