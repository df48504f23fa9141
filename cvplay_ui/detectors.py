"""Detectors for the pages: loaded once per process, the class filter's options, the
``?classifier=`` deep link, and text that Streamlit's Markdown must not reinterpret."""

from __future__ import annotations

from typing import Mapping

import streamlit as st

from cvplay.detect import CLASSIFY_PREFIX, HAAR_CASCADES, HAAR_PREFIX, create_detector

DEEP_LINK_PARAMETER = "classifier"


@st.cache_resource(max_entries=8, show_spinner="Loading the detector…")
def load_shared_detector(name: str):
    """Haar cascades and detection models hold no per-session state: one per process."""
    return create_detector(name)


def class_options(detector) -> list[str]:
    """The labels a class filter can offer for ``detector`` (none for Haar and classifiers)."""
    labels = getattr(detector, "labels", None)
    if not labels or getattr(detector, "name", "").startswith((HAAR_PREFIX, CLASSIFY_PREFIX)):
        return []
    return sorted(dict.fromkeys(str(label) for label in labels), key=str.lower)


def code(text: str) -> str:
    """``text`` as a Markdown code span: shown verbatim, so ``haar:eyes:`` never becomes an emoji."""
    return "`" + str(text).replace("`", "'") + "`"


def deep_linked_detector(query: Mapping[str, str], names: list[str]) -> tuple[str | None, str | None]:
    """The detector a ``?classifier=MODEL`` link asks for (``classify:MODEL``), and a message
    when the link names no installed classifier. ``(None, None)`` without the parameter."""
    wanted = str(query.get(DEEP_LINK_PARAMETER, "") or "").strip()
    if not wanted:
        return None, None
    name = wanted if wanted.startswith(CLASSIFY_PREFIX) else CLASSIFY_PREFIX + wanted
    if name in names:
        return name, None
    installed = ", ".join(n[len(CLASSIFY_PREFIX) :] for n in names if n.startswith(CLASSIFY_PREFIX)) or "none"
    return None, f"The link asks for the classifier {code(wanted)}, which is not installed (installed: {installed})."


def haar_title(name: str) -> str:
    key = name[len(HAAR_PREFIX) :]
    return HAAR_CASCADES[key].title if key in HAAR_CASCADES else name
