"""CIFAR-100: what would an EfficientNet fine-tuned on CIFAR-100 say about your photo?

Thin page: the model is any installed classifier whose card has super-class labels (the shipped
``cifar100-lite0`` first); predictions come from ``cvplay.runtime``, the test-image gallery from
``cvplay.gallery``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from cvplay import gallery
from cvplay.datasets import DatasetError, cifar100_test_source
from cvplay.download import default_data_dir
from cvplay.preprocess import thumbnail
from cvplay.runtime import top_k
from cvplay_ui.explain import heatmap_panel, heatmap_toggle
from cvplay_ui.models import get_classifier, installed_cards
from cvplay_ui.paths import shown_path
from cvplay_ui.widgets import image_inputs

KEY = "cifar"
DEFAULT_MODEL = "cifar100-lite0"
MAX_IMAGES = 20
SCORE_STATE = f"{KEY}-score"
RIGHT, WRONG = ":green[:material/check_circle:]", ":red[:material/cancel:]"
ROUND_STATE = f"{KEY}-round"
state = st.session_state


def bars(predictions, label: str) -> None:
    st.dataframe(
        pd.DataFrame({label: [p.label.replace("_", " ") for p in predictions], "probability": [p.score for p in predictions]}),
        column_config={"probability": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0, format="percent")},
        hide_index=True,
        width="stretch",
    )


@st.cache_resource(show_spinner="Reading the CIFAR-100 test images…", max_entries=2)
def load_test_images(card_key: str, source: str, _card) -> gallery.GallerySource:
    # card_key (name and card file time) stands for the unhashable card in the cache key.
    return gallery.gallery_source(_card, gallery.load_gallery_dataset(source), source)


st.title("CIFAR-100")
st.write(
    "What would an EfficientNet fine-tuned on CIFAR-100 say about your photo? It answers with the 100 "
    "CIFAR-100 classes and their 20 super-classes (a super-class's probability is the sum of its classes')."
)

cards = [card for card in installed_cards("classify") if card.coarse_labels]
if not cards:
    st.warning(
        "No CIFAR-100 model is installed: the shipped `models/cifar100-lite0.tflite` and its card are missing. "
        "Restore them from the repository, or train one with `python -m cvplay train --data PATH --cache-blocks "
        "--test-fraction 0.1` on a CIFAR-100 source (models/README.md has the exact command)."
    )
    st.stop()
names = [card.name for card in cards]
choice, k_column = st.columns([3, 1])
with choice:
    chosen = st.selectbox("Model", names, index=names.index(DEFAULT_MODEL) if DEFAULT_MODEL in names else 0,
                          key=f"{KEY}-model", format_func=lambda name: next(c.display_name for c in cards if c.name == name))
with k_column:
    k = st.slider("Top-k classes", min_value=1, max_value=10, value=5, key=f"{KEY}-top-k")
card = next(c for c in cards if c.name == chosen)
facts = []
if card.metric("top1") is not None:
    facts.append(f"top-1 **{card.metric('top1'):.1%}**, top-5 **{card.metric('top5'):.1%}** on its held-out test images")
if card.metric("coarse_top1") is not None:
    facts.append(f"super-class top-1 **{card.metric('coarse_top1'):.1%}**")
if facts:
    st.caption("Measured: " + "; ".join(facts) + ".")
if card.input.thumbnail_size:
    height, width = card.input.thumbnail_size
    st.info(
        f"This model learned from {width}×{height} thumbnails, so your photo is shrunk to {width}×{height} "
        "first (as shown beside it): small details vanish, and a photo framed like a CIFAR image (one object, "
        "centred, filling the frame) works best.",
        icon=":material/info:",
    )

classifier = get_classifier(card)
inputs = image_inputs(KEY, multiple=True)
show_heatmaps = heatmap_toggle(KEY)
good = [item for item in inputs if item.ok]
if len(good) > MAX_IMAGES:
    st.warning(f"Only the first {MAX_IMAGES} of {len(good)} photos are classified at once.")
    good = good[:MAX_IMAGES]
if not inputs:
    st.info("Add a photo to see what the CIFAR-100 model thinks it shows.")
if good:
    with st.spinner(f"Classifying {len(good)} photo(s)…"):
        probabilities = classifier.predict_proba([item.image for item in good])
        coarse = classifier.coarse_probabilities(probabilities)
    for position, (item, fine_row, coarse_row) in enumerate(zip(good, probabilities, coarse)):
        fine_top = top_k(fine_row, classifier.labels, k)
        coarse_top = top_k(coarse_row, card.coarse_labels, 3)
        st.divider()
        photo, seen, *heat, results = st.columns([2, 1, 2, 3] if show_heatmaps else [2, 1, 4])
        if heat:
            with heat[0]:
                heatmap_panel(classifier, item.image, fine_row, key=f"{KEY}-heatmap-{position}",
                              label_format=lambda label: label.replace("_", " "))
        with photo:
            st.image(item.image, caption=item.name, width="stretch")
        with seen:
            small = thumbnail(item.image, card.input)
            if small is not None:
                st.image(small, caption="what the model sees", width="stretch")
        with results:
            st.markdown(f"### {fine_top[0].label.replace('_', ' ')}")
            st.caption(f"{fine_top[0].score:.1%} · super-class **{coarse_top[0].label.replace('_', ' ')}** "
                       f"({coarse_top[0].score:.1%})")
            bars(fine_top, "class")
            bars(coarse_top, "super-class")

# --- gallery of test images ------------------------------------------------------------------
st.divider()
st.subheader("Test images")
source = cifar100_test_source()
if source is None:
    st.caption(
        "No CIFAR-100 test set is available here. To see random test images with their true and "
        "predicted labels, run `python -m cvplay data cifar100` once on a machine with internet: it "
        f"downloads the official archive (161 MB, checksum verified) to `{shown_path(default_data_dir())}`, where "
        "this page finds it. Or set `CVPLAY_CIFAR100` to a copy of `cifar-100-python.tar.gz` (or its "
        "extracted folder)."
    )
    st.stop()
try:
    card_key = f"{card.name}:{card.card_path.stat().st_mtime if card.card_path else ''}"
    test_source = load_test_images(card_key, str(source), card)
except (DatasetError, ValueError) as error:
    st.warning(f"The test images at `{source}` cannot be shown: {error}")
    st.stop()
st.caption(f"Random images from {test_source.description}.")
if test_source.caveat:
    st.caption(test_source.caveat)
count_column, button_column = st.columns([3, 1], vertical_alignment="bottom")
with count_column:
    count = st.slider("Images per draw", min_value=4, max_value=32, value=12, step=4, key=f"{KEY}-gallery-count")
with button_column:
    if st.button("New images", key=f"{KEY}-gallery-new", icon=":material/casino:"):
        state[ROUND_STATE] = state.get(ROUND_STATE, 0) + 1
score_key = f"{SCORE_STATE}-{card.name}"
score: gallery.RunningScore = state.setdefault(score_key, gallery.RunningScore())
drawn_key = f"{KEY}-drawn-{card.name}-{state.get(ROUND_STATE, 0)}-{count}"
if drawn_key not in state:
    state[drawn_key] = gallery.draw(test_source, classifier, count, seed=int(np.random.SeedSequence().entropy % 2**32),
                                    exclude=score.shown)
    score.add(state[drawn_key])
items: list[gallery.GalleryItem] = state[drawn_key]
if score.accuracy is not None:
    st.metric("Running accuracy", f"{score.accuracy:.1%}",
              help=f"{score.correct} of {score.seen} test images shown so far on this page were predicted right.")
columns = st.columns(4)
for position, item in enumerate(items):
    mark = RIGHT if item.correct else WRONG
    with columns[position % 4]:
        st.image(item.image, width="stretch")
        st.caption(f"{mark} true **{item.true_label.replace('_', ' ')}** · predicted "
                   f"**{item.predicted_label.replace('_', ' ')}** ({item.score:.0%})")
