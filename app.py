"""cvplay: `streamlit run app.py`.

The entry point only declares the pages and the shared sidebar; each page lives in app_pages/.
The folder is not called pages/: Streamlit would treat that name as its legacy multipage
folder and serve a deep link such as /classify without running this file.
"""

import streamlit as st

from cvplay_ui.sidebar import render_model_status

st.set_page_config(page_title="cvplay", page_icon=":material/visibility:", layout="wide")

PAGES = [
    st.Page("app_pages/cifar100.py", title="CIFAR-100", icon=":material/category:", url_path="cifar100", default=True),
    st.Page("app_pages/classify.py", title="Classify your photos", icon=":material/photo_library:", url_path="classify"),
    st.Page("app_pages/augment.py", title="Augmentation previews", icon=":material/auto_awesome:", url_path="augment"),
    st.Page("app_pages/webcam.py", title="Webcam", icon=":material/videocam:", url_path="webcam"),
    st.Page("app_pages/train.py", title="Train a classifier", icon=":material/model_training:", url_path="train"),
    st.Page("app_pages/runs.py", title="Training runs", icon=":material/compare_arrows:", url_path="runs"),
]

navigation = st.navigation(PAGES)
render_model_status()
navigation.run()
