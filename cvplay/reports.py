"""Tables of predictions, shared by the classify page and the CLI."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from cvplay.runtime import Prediction


def topk_table(names: Sequence[str], predictions: Sequence[Sequence[Prediction] | None], errors: Sequence[str | None] | None = None) -> pd.DataFrame:
    """One row per input: the winning label and score, the top-k as ``label (score)``, any error.

    ``index`` and ``score`` are nullable columns (``Int64``, ``Float64``): an input that failed has
    them missing, not ``None`` or NaN, so the class index stays an integer and a CSV writes
    ``207`` for it and an empty field for a failed row.
    """
    errors = errors if errors is not None else [None] * len(names)
    rows = []
    for name, top, error in zip(names, predictions, errors):
        row: dict[str, object] = {"input": name}
        if top:
            row["label"] = top[0].label
            row["index"] = int(top[0].index)
            row["score"] = round(float(top[0].score), 6)
            row["top_k"] = "; ".join(f"{p.label} ({p.score:.3f})" for p in top)
            row["error"] = ""
        else:
            row.update({"label": "", "index": pd.NA, "score": pd.NA, "top_k": "", "error": error or ""})
        rows.append(row)
    table = pd.DataFrame(rows, columns=["input", "label", "index", "score", "top_k", "error"])
    return table.astype({"input": "string", "label": "string", "index": "Int64", "score": "Float64",
                         "top_k": "string", "error": "string"})


def probability_table(names: Sequence[str], probabilities: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """Every class's probability for every input: one row per input, one column per class."""
    table = pd.DataFrame(np.asarray(probabilities, dtype=np.float64).round(6), columns=list(labels))
    table.insert(0, "input", list(names))
    return table
