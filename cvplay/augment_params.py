"""Drawn augmentation parameters as text a person reads at a glance.

:meth:`cvplay.augment.Policy.preview` returns, for each sample, the transforms it applied and the
exact values each one drew (``[("rotate", {"angle": -19.08291573686281}), ...]``). This module
turns them into one short line per transform, with the transform's title and rounded values
(``Rotation: angle −19.1``), and into a table of every sample's lines for the preview page.
Transforms it does not know by name are shown by their name, so a new transform needs no code here.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from cvplay import augment

NOTHING_APPLIED = "nothing applied (the image is unchanged)"


def transform_title(name: str) -> str:
    """The declared title of transform ``name`` (``"rotate"`` → ``"Rotation"``), else its name spelled out."""
    for transform in augment.TRANSFORMS:
        if transform.name == name:
            return transform.title
    return name.replace("_", " ").capitalize()


def readable_value(value: Any) -> str:
    """A rounded, short rendering: 2 decimals below 10, 1 decimal above, integers and flags as they are."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        text = f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
        return text.replace("-", "\N{MINUS SIGN}")
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(readable_value(item) for item in value) + ")"
    return str(value)


def readable_params(params: Mapping[str, Any]) -> str:
    """``area 0.78, ratio 0.88``: each drawn value after its name (underscores as spaces).
    A list of boxes, such as cutout's holes, is counted and listed."""
    parts = []
    for key, value in params.items():
        label = key.replace("_", " ")
        if isinstance(value, (list, tuple)) and value and all(isinstance(item, (list, tuple)) for item in value):
            boxes = " ".join(readable_value(item) for item in value)
            parts.append(f"{len(value)} {label} {boxes}")
        else:
            parts.append(f"{label} {readable_value(value)}")
    return ", ".join(parts)


def readable_lines(drawn: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """One line per applied transform: ``Rotation: angle −19.1``; one line saying so if none applied."""
    if not drawn:
        return [NOTHING_APPLIED]
    lines = []
    for name, params in drawn:
        body = readable_params(params)
        lines.append(f"{transform_title(name)}: {body}" if body else transform_title(name))
    return lines


def drawn_table(samples: Sequence[Sequence[tuple[str, Mapping[str, Any]]]]) -> pd.DataFrame:
    """Every sample's drawn parameters: one row per (sample, transform), samples numbered from 1."""
    rows = []
    for number, drawn in enumerate(samples, start=1):
        if not drawn:
            rows.append({"sample": number, "transform": "", "drawn values": NOTHING_APPLIED})
        for name, params in drawn:
            rows.append({"sample": number, "transform": transform_title(name), "drawn values": readable_params(params)})
    return pd.DataFrame(rows, columns=["sample", "transform", "drawn values"])
