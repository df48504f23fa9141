"""End to end: the heatmap toggle on the Classify page in headless Chromium. Set
CVPLAY_SCREENSHOTS=DIR to keep the screenshot."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from e2e_support import chromium_page, streamlit_server, wait_for_streamlit


def photo_like(path: Path) -> None:
    y, x = np.mgrid[0:240, 0:360]
    image = np.stack([x * 255 // 360, y * 255 // 240, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    image[(x - 120) ** 2 + (y - 110) ** 2 < 50**2] = (230, 200, 40)
    Image.fromarray(image).save(path)


@pytest.mark.browser
@pytest.mark.slow
def test_heatmap_toggle_shows_an_overlay_beside_the_photo(tmp_path):
    photo = tmp_path / "photo.png"
    photo_like(photo)
    env = {"CVPLAY_MODELS": str(tmp_path / "no-user-models")}
    with streamlit_server("app.py", env=env) as server, chromium_page(viewport=(1400, 1000)) as page:
        page.goto(server.url + "/classify")
        wait_for_streamlit(page)
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(photo))
        page.locator("h3").first.wait_for(timeout=60_000)
        page.get_by_text("Show heatmaps").click()
        page.get_by_text("Heatmap for").first.wait_for(timeout=60_000)
        page.get_by_text("Explain the class").first.wait_for()
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator('[data-testid="stImage"] img').count() >= 2  # the photo and its heatmap
        folder = os.environ.get("CVPLAY_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / "classify-heatmap.png"), full_page=True)
