"""How result tables look on the pages: readable at the default width, nothing shown as "None"."""

from __future__ import annotations

import pandas as pd
import streamlit as st

# Streamlit wraps a cell's text only when rows are over 4rem (64 px): rows get 3 to 6 lines of
# about 20 px, as many as the longest result needs at about 50 characters a line.
LINE_PX, PADDING_PX, CHARS_PER_LINE = 20, 14, 50
MIN_LINES, MAX_LINES = 3, 6
FAILED_PREFIX = "not classified: "
# Column widths in px add up to the main column at a 1280-px window with the sidebar open (about
# 820 px); wider windows stretch them all.
RESULT_WIDTH = 380


def results_display_table(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`cvplay.reports.topk_table` with a ``result`` column for the page: the top-k for a
    classified input, why it failed otherwise. One wrapped text column instead of two keeps every
    column inside the default width (the CSV keeps ``top_k`` and ``error`` apart)."""
    errors = table["error"].fillna("").astype(str)
    top_k = table["top_k"].fillna("").astype(str)
    result = top_k.where(errors == "", FAILED_PREFIX + errors)
    return table.assign(result=result.astype("string"))


def row_height(texts: pd.Series) -> int:
    """Pixels per row for wrapped ``texts``: enough lines for the longest, within 3 to 6."""
    longest = int(texts.fillna("").astype(str).str.len().max()) if len(texts) else 0
    lines = min(MAX_LINES, max(MIN_LINES, -(-longest // CHARS_PER_LINE)))
    return LINE_PX * lines + PADDING_PX


def results_table_config(shown: pd.DataFrame) -> dict[str, object]:
    """``st.dataframe`` keyword arguments for ``shown``, a :func:`results_display_table`: text wraps
    in its cell instead of being cut off, the score is a bar with its percentage, the class index
    an integer, and a failed row's missing values are blank."""
    return {
        "hide_index": True,
        "width": "stretch",
        "placeholder": "",
        "row_height": row_height(shown["result"]),
        "column_order": ["input", "label", "score", "index", "result"],
        "column_config": {
            "input": st.column_config.TextColumn("input", width=140),
            "label": st.column_config.TextColumn("label", width=110),
            "score": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0, format="percent", width=100),
            "index": st.column_config.NumberColumn("class index", format="%d", width=80),
            "result": st.column_config.TextColumn("top-k (probability), or why it failed", width=RESULT_WIDTH),
        },
    }


def show_results_table(table: pd.DataFrame) -> None:
    shown = results_display_table(table)
    st.dataframe(shown, **results_table_config(shown))
