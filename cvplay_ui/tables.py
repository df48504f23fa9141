"""How result tables look on the pages: readable at the default width, nothing shown as "None"."""

from __future__ import annotations

import pandas as pd
import streamlit as st

# Rows tall enough for three lines: Streamlit wraps a cell's text only when rows are over 4rem.
WRAPPING_ROW_HEIGHT = 72


def results_table_config(table: pd.DataFrame) -> dict[str, object]:
    """``st.dataframe`` keyword arguments for a :func:`cvplay.reports.topk_table`.

    The top-k and error texts wrap inside their cells instead of being cut off; the score is a
    bar with its percentage and the class index an integer; a failed row's missing values are
    blank; the error column is shown only when some input failed.
    """
    has_errors = bool(table["error"].fillna("").astype(str).str.len().gt(0).any()) if len(table) else False
    columns = ["input", "label", "score", "index", "top_k"] + (["error"] if has_errors else [])
    return {
        "hide_index": True,
        "width": "stretch",
        "placeholder": "",
        "row_height": WRAPPING_ROW_HEIGHT,
        "column_order": columns,
        "column_config": {
            "input": st.column_config.TextColumn("input", width="medium"),
            "label": st.column_config.TextColumn("label", width="small"),
            "score": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0, format="percent", width="small"),
            "index": st.column_config.NumberColumn("class index", format="%d", width="small"),
            "top_k": st.column_config.TextColumn("top-k (probability)", width="large"),
            "error": st.column_config.TextColumn("error", width="medium"),
        },
    }


def show_results_table(table: pd.DataFrame) -> None:
    st.dataframe(table, **results_table_config(table))
