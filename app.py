"""cvplay: `streamlit run app.py`.

The entry point only declares the pages and the shared sidebar; each page lives in app_pages/.
The folder is not called pages/: Streamlit would treat that name as its legacy multipage
folder and serve a deep link such as /classify without running this file.

Two details keep a first visit clean:

* The home page answers at its own URL too. Streamlit serves the default page at the root only
  (its pathname is ``""``), so ``/cifar100`` would say "Page not found". A hidden page owns the
  ``cifar100`` pathname and hands over to the home page (query parameters kept), which the
  sidebar then shows as the current page.
* Nothing is fetched from another host: the tab icon is a file shipped here, served by the app
  itself (a ``:material/...:`` page icon makes the browser fetch it from fonts.gstatic.com).
"""

from pathlib import Path

import streamlit as st

from cvplay_ui import housekeeping
from cvplay_ui.sidebar import render_model_status

HOME_URL_PATH = "cifar100"
FAVICON = Path(__file__).resolve().parent / "cvplay_ui" / "assets" / "favicon.png"

st.set_page_config(page_title="cvplay", page_icon=str(FAVICON), layout="wide")
housekeeping.start()  # releases what ended sessions leave behind (memory on a small dyno)

HOME = st.Page(
    "app_pages/cifar100.py", title="CIFAR-100", icon=":material/category:", url_path="home", default=True
)
PAGES = [
    HOME,
    st.Page("app_pages/classify.py", title="Classify your photos", icon=":material/photo_library:", url_path="classify"),
    st.Page("app_pages/augment.py", title="Augmentation previews", icon=":material/auto_awesome:", url_path="augment"),
    st.Page("app_pages/webcam.py", title="Webcam", icon=":material/videocam:", url_path="webcam"),
    st.Page("app_pages/train.py", title="Train a classifier", icon=":material/model_training:", url_path="train"),
    st.Page("app_pages/runs.py", title="Training runs", icon=":material/compare_arrows:", url_path="runs"),
]


def open_home_page() -> None:
    """The home page's own URL (``/cifar100``): switch to the home page at the root."""
    st.switch_page(HOME, query_params=st.query_params.to_dict())


HOME_ALIAS = st.Page(open_home_page, title="CIFAR-100", url_path=HOME_URL_PATH, visibility="hidden")

navigation = st.navigation([*PAGES, HOME_ALIAS])
render_model_status()
navigation.run()
