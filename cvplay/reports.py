"""Tables of predictions, shared by the classify page and the CLI."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from cvplay.runtime import Prediction


def topk_table(names: Sequence[str], predictions: Sequence[Sequence[Prediction] | None], errors: Sequence[str | None] | None = None) -> pd.DataFrame:
    """One row per input: the winning label and score, the top-k as ``label (score)``, any error."""
    errors = errors if errors is not None else [None] * len(names)
    rows = []
    for name, top, error in zip(names, predictions, errors):
        row: dict[str, object] = {"input": name}
        if top:
            row["label"] = top[0].label
            row["index"] = top[0].index
            row["score"] = round(top[0].score, 6)
            row["top_k"] = "; ".join(f"{p.label} ({p.score:.3f})" for p in top)
            row["error"] = ""
        else:
            row.update({"label": "", "index": None, "score": None, "top_k": "", "error": error or ""})
        rows.append(row)
    return pd.DataFrame(rows, columns=["input", "label", "index", "score", "top_k", "error"])


def probability_table(names: Sequence[str], probabilities: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """Every class's probability for every input: one row per input, one column per class."""
    table = pd.DataFrame(np.asarray(probabilities, dtype=np.float64).round(6), columns=list(labels))
    table.insert(0, "input", list(names))
    return table
