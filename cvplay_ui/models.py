"""Models for the pages: discovered on every run (cheap), loaded once per process (cached)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cvplay.registry import DEFAULT_MODEL, ModelCard, RegistryEntry, discover
from cvplay.runtime import Classifier


def registry_entries() -> list[RegistryEntry]:
    """Every model in the model folders, broken ones included (reading cards is cheap)."""
    return discover()


def installed_cards(task: str | None = None) -> list[ModelCard]:
    cards = [entry.card for entry in registry_entries() if entry.card is not None]
    if task is not None:
        cards = [card for card in cards if card.task == task]
    return sorted(cards, key=lambda card: (card.name != DEFAULT_MODEL, card.name))


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def _load_classifier(model_path: str, card_path: str, modified: float) -> Classifier:
    # ``modified`` is part of the cache key, so a model retrained in place is reloaded.
    from cvplay.registry import read_card

    return Classifier(read_card(card_path))


def get_classifier(card: ModelCard) -> Classifier:
    """One shared classifier per model file, for every session (the runtime is thread-safe)."""
    card_path = card.card_path or card.model_path.with_suffix(".json")
    modified = max(Path(card.model_path).stat().st_mtime, Path(card_path).stat().st_mtime)
    return _load_classifier(str(card.model_path), str(card_path), modified)


def model_picker(label: str, task: str = "classify", key: str | None = None, prefer: str | None = None) -> ModelCard | None:
    """A selectbox over installed models of one task; ``None`` (with a message) when there are none."""
    cards = installed_cards(task)
    if not cards:
        st.warning(
            f"No {task} model is installed. Put a `.tflite` file and its JSON card in `models/` "
            "or in the folder named by `CVPLAY_MODELS` (default `~/.cvplay/models`)."
        )
        return None
    names = [card.name for card in cards]
    index = names.index(prefer) if prefer in names else 0
    chosen = st.selectbox(
        label,
        names,
        index=index,
        key=key,
        format_func=lambda name: next(card.display_name for card in cards if card.name == name),
    )
    return next(card for card in cards if card.name == chosen)
