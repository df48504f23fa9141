"""The sidebar every page shares: which models are installed, and which could not be read."""

from __future__ import annotations

import streamlit as st

from cvplay.registry import user_models_dir
from cvplay_ui.models import registry_entries
from cvplay_ui.paths import shown_path


def render_model_status() -> None:
    entries = registry_entries()
    good = [entry.card for entry in entries if entry.card is not None]
    broken = [entry for entry in entries if entry.card is None]
    with st.sidebar:
        st.subheader("Installed models")
        if not good:
            st.caption("None yet.")
        for card in good:
            st.markdown(f"**{card.display_name}**  \n`{card.name}` · {card.task} · {card.num_classes} classes")
        for entry in broken:
            st.warning(f"`{entry.name}` could not be loaded: {entry.error}")
        st.caption(f"Add your own models to `{shown_path(user_models_dir())}` (set `CVPLAY_MODELS` to change it).")
