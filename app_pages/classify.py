"""Classify your photos: several photos, a URL or a camera snapshot, with any installed classifier."""

import pandas as pd
import streamlit as st

from cvplay.reports import probability_table, topk_table
from cvplay.runtime import top_k
from cvplay_ui.explain import heatmap_panel, heatmap_toggle
from cvplay_ui.models import get_classifier, model_picker
from cvplay_ui.tables import show_results_table
from cvplay_ui.widgets import image_inputs

MAX_IMAGES = 50

st.title("Classify your photos")
st.write(
    "Drag in several photos, paste an image URL or take a camera snapshot, pick a model, and get "
    "each photo's most likely classes. The table at the bottom has every result, ready to download."
)

choice, top = st.columns([3, 1])
with choice:
    card = model_picker("Model", task="classify", key="classify-model")
with top:
    k = st.slider("Top-k", min_value=1, max_value=10, value=5, key="classify-top-k")

inputs = image_inputs("classify", multiple=True)
show_heatmaps = heatmap_toggle("classify")

if card is None:
    st.stop()
if card.description:
    st.caption(card.description)
if not inputs:
    st.info("Add a photo to see what the model thinks it shows.")
    st.stop()
if len(inputs) > MAX_IMAGES:
    st.warning(f"Only the first {MAX_IMAGES} of {len(inputs)} inputs are classified at once.")
    inputs = inputs[:MAX_IMAGES]

classifier = get_classifier(card)
good = [item for item in inputs if item.ok]
with st.spinner(f"Classifying {len(good)} image(s)…"):
    probabilities = classifier.predict_proba([item.image for item in good])
predictions = {id(item): top_k(row, classifier.labels, k) for item, row in zip(good, probabilities)}

for position, (item, row) in enumerate(zip(good, probabilities)):
    top_predictions = predictions[id(item)]
    columns = st.columns([1, 1, 2] if show_heatmaps else [1, 2], vertical_alignment="center")
    picture, result = columns[0], columns[-1]
    if show_heatmaps:
        with columns[1]:
            heatmap_panel(classifier, item.image, row, key=f"classify-heatmap-{position}")
    with picture:
        st.image(item.image, caption=item.name, width="stretch")
    with result:
        winner = top_predictions[0]
        st.markdown(f"### {winner.label}")
        st.caption(f"{winner.score:.1%} probability · {card.display_name}")
        st.dataframe(
            pd.DataFrame({"class": [p.label for p in top_predictions], "probability": [p.score for p in top_predictions]}),
            column_config={
                "probability": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0, format="percent"),
            },
            hide_index=True,
            width="stretch",
        )

st.subheader("All results")
table = topk_table(
    [item.name for item in inputs],
    [predictions.get(id(item)) for item in inputs],
    [item.error for item in inputs],
)
show_results_table(table)
downloads = st.columns(2)
downloads[0].download_button(
    "Download results (CSV)",
    table.to_csv(index=False).encode("utf-8"),
    file_name=f"cvplay-{card.name}-results.csv",
    mime="text/csv",
)
if good:
    downloads[1].download_button(
        "Download every class probability (CSV)",
        probability_table([item.name for item in good], probabilities, classifier.labels).to_csv(index=False).encode("utf-8"),
        file_name=f"cvplay-{card.name}-probabilities.csv",
        mime="text/csv",
    )
