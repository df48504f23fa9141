"""Offline means offline, before any browser runs: settings that would make the browser ask
another host. (The browser check itself is tests/test_every_page_browser.py.)"""

import tomllib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_usage_statistics_are_off_so_the_frontend_never_calls_data_streamlit_io():
    # With gatherUsageStats on, Streamlit's frontend fetches https://data.streamlit.io/metrics.json.
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False


def test_the_tab_icon_is_a_shipped_image_not_a_material_icon_from_fonts_gstatic_com():
    source = (ROOT / "app.py").read_text()
    assert 'page_icon=":material' not in source
    with Image.open(ROOT / "cvplay_ui" / "assets" / "favicon.png") as icon:
        assert icon.format == "PNG" and icon.size[0] == icon.size[1] >= 32
