"""The webcam page's "Detect in photos" mode: for places where a live camera cannot run (a
server without a TURN relay, a phone, a browser that blocks the camera). Upload photos, paste a
URL or take a snapshot; each photo comes back with boxes drawn, a table, and a CSV of all."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cvplay.detect import (
    CLASSIFY_PREFIX,
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_SCORE_THRESHOLD,
    default_detector,
    detector_title,
    list_detectors,
)
from cvplay.photo_detect import ROW_COLUMNS, annotate, detect_photo, detection_rows
from cvplay.registry import ModelCardError, ModelNotFoundError
from cvplay.runtime import ModelLoadError
from cvplay_ui.detectors import class_options, code, load_shared_detector
from cvplay_ui.widgets import image_inputs

MAX_PHOTOS = 20


def render_photo_detection(key: str) -> None:
    names = [name for name in list_detectors() if not name.startswith(CLASSIFY_PREFIX)]
    controls = st.columns([4, 2, 2, 2])
    with controls[0]:
        name = st.selectbox("Detector", names, index=names.index(default_detector(names)), format_func=detector_title, key=f"{key}-detector")
    with controls[1]:
        score = st.slider("Score threshold", 0.0, 1.0, DEFAULT_SCORE_THRESHOLD, 0.05, key=f"{key}-score",
                          help="Drop boxes scoring below this.")
    with controls[2]:
        iou = st.slider("IoU threshold (NMS)", 0.05, 1.0, DEFAULT_IOU_THRESHOLD, 0.05, key=f"{key}-iou",
                        help="Of two overlapping boxes, keep the higher score when they overlap more than this. 1 turns NMS off.")
    with controls[3]:
        limit = st.number_input("Max detections", min_value=1, max_value=100, value=DEFAULT_MAX_DETECTIONS, step=1, key=f"{key}-max")
    try:
        detector = load_shared_detector(name)
    except (ModelLoadError, ModelCardError, ModelNotFoundError) as error:
        st.error(f"Cannot load {code(name)}: {error}")
        return
    options = class_options(detector)
    classes = st.multiselect("Only these objects", options, key=f"{key}-classes-{name}", placeholder="All objects",
                             help="Leave empty to report every object the detector knows.") if options else []

    inputs = image_inputs(key, multiple=True)
    good = [item for item in inputs if item.ok]
    if not inputs:
        st.info("Add a photo: every object the detector finds gets a box, a label and a score.")
        return
    if len(good) > MAX_PHOTOS:
        st.warning(f"Only the first {MAX_PHOTOS} of {len(good)} photos are searched at once.")
        good = good[:MAX_PHOTOS]
    rows = []
    with st.spinner(f"Detecting objects in {len(good)} photo(s)…"):
        results = [(item, detect_photo(detector, item.image, float(score), float(iou), int(limit), classes)) for item in good]
    for item, found in results:
        picture, table = st.columns([1, 1])
        with picture:
            height, width = item.image.shape[:2]
            st.image(annotate(item.image, found), caption=f"{item.name} ({width} × {height})", width="stretch")
        with table:
            st.markdown(f"**{len(found)} object{'s' if len(found) != 1 else ''}** in {code(item.name)}")
            if found:
                frame = pd.DataFrame(
                    [{"label": d.label, "score": float(d.score), "x1": d.box[0], "y1": d.box[1], "x2": d.box[2], "y2": d.box[3]} for d in found]
                )
                st.dataframe(frame, hide_index=True, width="stretch", column_config={
                    "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.2f", width="small"),
                    **{corner: st.column_config.NumberColumn(corner, width="small") for corner in ("x1", "y1", "x2", "y2")}})
            else:
                st.caption("Nothing above the score threshold. Lower it to see weaker guesses.")
        rows += detection_rows(item.name, found)
    for item in inputs:
        if not item.ok:
            rows += detection_rows(item.name, None, item.error)
    table = pd.DataFrame(rows, columns=ROW_COLUMNS)
    st.download_button(
        "Download all detections (CSV)", table.to_csv(index=False).encode("utf-8"), file_name="detections.csv",
        mime="text/csv", key=f"{key}-csv", icon=":material/download:",
        help="One row per box: input, label, score and the box's corners in pixels of the photo.",
    )
