"""End to end: `streamlit run app.py` on loopback, headless Debian Chromium uploads a photo,
and the shipped default model's prediction appears on the page."""

import numpy as np
import pytest
from PIL import Image

from cvplay.runtime import create_classifier
from e2e_support import chromium_page, streamlit_server, wait_for_streamlit


def synthetic_photo(path):
    """A smooth, photo-like picture (gradients and a disc) the test makes itself."""
    y, x = np.mgrid[0:240, 0:320]
    image = np.stack([x * 255 // 320, y * 255 // 240, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    image[(x - 160) ** 2 + (y - 120) ** 2 < 60**2] = (230, 200, 40)
    Image.fromarray(image).save(path)
    return image


@pytest.mark.browser
@pytest.mark.slow
def test_upload_a_photo_and_see_the_prediction(tmp_path, monkeypatch):
    monkeypatch.setenv("CVPLAY_MODELS", str(tmp_path / "no-user-models"))
    photo = tmp_path / "photo.png"
    expected = create_classifier("imagenet-lite0").predict(synthetic_photo(photo), k=1)[0].label
    with streamlit_server("app.py", env={"CVPLAY_MODELS": str(tmp_path / "no-user-models")}) as server, chromium_page() as page:
        page.goto(server.url + "/classify")
        wait_for_streamlit(page)
        page.get_by_text("Classify your photos").first.wait_for()
        # A deep link still runs app.py: its sidebar (installed models) is there.
        page.locator('[data-testid="stSidebar"]').get_by_text("Installed models").wait_for(timeout=30_000)
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(photo))
        heading = page.locator("h3", has_text=expected)
        heading.first.wait_for(timeout=60_000)
        assert page.get_by_text("photo.png").count() >= 1
        assert page.locator('[data-testid="stException"]').count() == 0
