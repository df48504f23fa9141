"""cvplay: `streamlit run app.py`.

The entry point only declares the pages and the shared sidebar; each page lives in pages/.
"""

import streamlit as st

from cvplay_ui.sidebar import render_model_status

st.set_page_config(page_title="cvplay", page_icon=":material/visibility:", layout="wide")

PAGES = [
    st.Page("pages/classify.py", title="Classify your photos", icon=":material/photo_library:", url_path="classify", default=True),
    st.Page("pages/augment.py", title="Augmentation previews", icon=":material/auto_awesome:", url_path="augment"),
]

navigation = st.navigation(PAGES)
render_model_status()
navigation.run()
