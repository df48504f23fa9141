"""How robust is a model? The robustness report on the Train page, and a model's answer on each
augmented sample of the Augmentation page (work in cvplay.robustness and cvplay.runtime)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from cvplay.runtime import top_k
from cvplay_ui.models import get_classifier, model_picker

# --- the Augmentation page: what does a model say about each sample? --------------------------


@dataclass
class SampleCaptions:
    original: str
    samples: list[str]
    changed: int  # samples whose top class differs from the original's


def sample_model(key: str):
    """A toggle and, when on, a model picker; the chosen classifier, or None."""
    if not st.toggle("What does a model say about each sample?", key=f"{key}-model-says",
                     help="Label every augmented sample with a model's top class, to see which transforms "
                     "change its mind."):
        return None
    card = model_picker("Model", task="classify", key=f"{key}-model-says-model")
    return get_classifier(card) if card is not None else None


def sample_captions(classifier, original: np.ndarray, samples: Sequence[np.ndarray]) -> SampleCaptions:
    """The model's top class on the original and on each sample, marked when it changed."""
    probabilities = classifier.predict_proba([original, *samples])
    top = [top_k(row, classifier.labels, 1)[0] for row in probabilities]
    first = top[0]
    captions = []
    for number, prediction in enumerate(top[1:], start=1):
        mark = "same" if prediction.index == first.index else "changed"
        captions.append(f"Sample {number}: {prediction.label.replace('_', ' ')} ({prediction.score:.0%}, {mark})")
    return SampleCaptions(
        original=f"Original: {first.label.replace('_', ' ')} ({first.score:.0%})",
        samples=captions,
        changed=sum(prediction.index != first.index for prediction in top[1:]),
    )


# --- the Train page: the report for the new model --------------------------------------------

REPORT_STATE = "robustness-report"


def _split_settings(card) -> dict[str, Any]:
    split = (card.provenance or {}).get("split") or {}
    return {
        "val_fraction": float(split.get("val_fraction", 0.2)),
        "test_fraction": float(split.get("test_fraction", 0.0)),
        "seed": int(split.get("seed", 0)),
    }


def report_frame(report) -> pd.DataFrame:
    """Top-1 by strength (0 = clean), one column per distortion: what the line chart draws."""
    frame = {"strength": [0, 1, 2, 3]}
    for rows in report.by_distortion().values():
        frame[rows[0]["title"]] = [report.clean_top1] + [row["top1"] for row in rows]
    return pd.DataFrame(frame).set_index("strength")


def show_report(report) -> None:
    st.caption(f"Top-1 on the {report.n} {report.split} images: clean, then under each distortion at three "
               f"strengths (seed {report.seed}; strength 0 is the clean figure).")
    st.metric("Clean top-1", f"{report.clean_top1:.1%}")
    st.line_chart(report_frame(report), x_label="strength (0 = clean)", y_label="top-1")
    table = pd.DataFrame(
        [{"distortion": rows[0]["title"], **{f"strength {row['strength']}": f"{row['setting']}: {row['top1']:.1%}"
                                              for row in rows}} for rows in report.by_distortion().values()]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    from cvplay.robustness import to_csv

    st.download_button("Robustness report (CSV)", to_csv(report).encode("utf-8"),
                       file_name=f"{report.model}-robustness.csv", mime="text/csv", key=f"{REPORT_STATE}-download")


def robustness_panel(result, data) -> None:
    """The robustness report of a freshly trained model (``result``: a TrainResult) on the split its
    figures come from. ``data`` is what it was trained on: an uploaded .zip or a folder path."""
    from cvplay.datasets import DatasetError, load_dataset
    from cvplay.evaluate import EvaluateError
    from cvplay.registry import read_card
    from cvplay.robustness import RobustnessError, robustness_report

    st.subheader("How robust is it?")
    card_path = Path(result.card_path)
    state_key = f"{REPORT_STATE}-{card_path}-{card_path.stat().st_mtime if card_path.exists() else 0}"
    report = st.session_state.get(state_key)
    if report is None:
        if not data:
            st.info("Give the training images again (the .zip or the folder) to measure how the model holds up "
                    "on darker, blurred, noisy, rotated, cropped, compressed and shrunk images.")
            return
        card = read_card(card_path)
        classifier = get_classifier(card)
        split = getattr(result, "metrics_split", "val")
        bar = st.progress(0.0, text="Measuring top-1 under distortions…")
        temporary = None
        try:
            if hasattr(data, "getvalue"):
                temporary = tempfile.NamedTemporaryFile(prefix="cvplay-robustness-", suffix=".zip", delete=False)
                temporary.write(data.getvalue())
                temporary.close()
                source = temporary.name
            else:
                source = str(data)
            dataset = load_dataset(source, min_images_per_class=1)
            report = robustness_report(
                classifier, dataset, split=split, data_name=getattr(data, "name", str(data)),
                progress=lambda done, total: bar.progress(done / max(1, total), text=f"Distorting image {done} of {total}…"),
                **_split_settings(card),
            )
        except (DatasetError, EvaluateError, RobustnessError) as error:
            st.warning(f"The robustness report could not be made: {error}")
            return
        finally:
            bar.empty()
            if temporary is not None:
                Path(temporary.name).unlink(missing_ok=True)
        st.session_state[state_key] = report
    show_report(report)
