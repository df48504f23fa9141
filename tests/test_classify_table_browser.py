"""End to end: the classify page's results table in headless Chromium, with a photo that fails.
Streamlit draws the table on a canvas and mirrors every cell in a hidden accessibility table:
that is what this test reads, so it sees the text exactly as the grid draws it."""

import pytest
from PIL import Image

from cvplay import samples
from e2e_support import chromium_page, streamlit_server, wait_for_streamlit


@pytest.mark.browser
@pytest.mark.slow
def test_results_table_has_blank_cells_for_a_failed_photo_and_integer_class_indices(tmp_path):
    photos = [tmp_path / "scene.png", tmp_path / "broken.jpg", tmp_path / "grid.png"]
    Image.fromarray(samples.load("scene")).save(photos[0])
    photos[1].write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    Image.fromarray(samples.load(samples.SAMPLES[-1])).save(photos[2])
    env = {"CVPLAY_MODELS": str(tmp_path / "no-user-models")}
    with streamlit_server("app.py", env=env) as server, chromium_page() as page:
        page.goto(server.url + "/classify")
        wait_for_streamlit(page)
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files([str(p) for p in photos])
        page.get_by_text("All results").first.wait_for(timeout=60_000)
        wait_for_streamlit(page)
        table = page.locator('[data-testid="stDataFrame"]').last
        table.locator("td").first.wait_for(state="attached", timeout=30_000)
        cells = table.locator("td").all_text_contents()
        rows = [cells[i:i + 5] for i in range(0, len(cells), 5)]
        assert [row[0] for row in rows] == ["scene.png", "broken.jpg", "grid.png"], cells
        assert "None" not in cells and "nan" not in [cell.lower() for cell in cells]
        assert rows[1][1:4] == ["", "", ""] and rows[1][4].startswith("not classified: ")
        for row in (rows[0], rows[2]):
            assert row[3].isdigit(), row  # the class index as an integer, not "409.0"
            assert row[4].count(";") == 4  # the whole top-5 is there
        assert page.locator('[data-testid="stException"]').count() == 0
