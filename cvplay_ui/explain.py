"""Heatmaps beside photos: a toggle, a class picker and the overlay (work in cvplay.explain)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from cvplay.explain import explain, render_overlay

HELP = (
    "Patches that blur and grey out the photo are slid over what the model sees; where hiding the photo lowers the chosen class's "
    "probability most, the map is hottest. Hatched parts are outside the model's view (its centre crop)."
)


def heatmap_toggle(key: str) -> bool:
    """The page's "why?" switch."""
    return st.toggle("Show heatmaps: where does the answer come from?", key=f"{key}-heatmaps", help=HELP)


@st.cache_data(max_entries=64, show_spinner=False)
def _overlay(model_key: str, image_digest: str, class_index: int, _classifier, _image: np.ndarray):
    # model_key and image_digest stand for the unhashable classifier and the (large) image.
    explanation = explain(_classifier, _image, class_index)
    return render_overlay(_image, explanation), float(explanation.grid.max()), explanation.label


def _model_key(classifier) -> str:
    card = classifier.card
    path = Path(card.model_path)
    return f"{card.name}:{path}:{path.stat().st_mtime if path.exists() else 0}"


def _digest(image: np.ndarray) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest() + f":{image.shape}"


def heatmap_panel(classifier, image: np.ndarray, probabilities: np.ndarray, key: str,
                  label_format=lambda label: label) -> None:
    """A class picker (every class, most likely first; the top one by default) and the overlay."""
    order = [int(i) for i in np.argsort(-probabilities, kind="stable")]
    labels = classifier.labels
    picture = st.container()  # above the picker, so the heatmap lines up with the photo
    chosen = st.selectbox(
        "Explain the class", order, key=key,
        format_func=lambda i: f"{label_format(labels[i])} ({probabilities[i]:.1%})",
        help="Any class, most likely first. " + HELP,
    )
    with picture, st.spinner("Hiding patches of the photo…"):
        overlay, peak, label = _overlay(_model_key(classifier), _digest(image), int(chosen), classifier, image)
    picture.image(overlay, width="stretch",
             caption=f"Heatmap for {label_format(label)}: hiding the hottest region lowers its probability by {peak:.1%}")
