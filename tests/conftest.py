# aiortc's SRTP binding (pulled in by streamlit-webrtc) segfaults when it is loaded after
# TensorFlow, and some test modules import TensorFlow at collection: load it first.
import pylibsrtp  # noqa: F401  isort: skip

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from model_factory import write_colour_model  # noqa: E402

from cvplay.datasets import shared_dir  # noqa: E402


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if path is None:
        pytest.skip("../shared (the development data folder beside the checkout) is absent")
    return path


@pytest.fixture(scope="session")
def colour_models(tmp_path_factory) -> Path:
    """A folder with tiny known models: ``colour`` (probabilities) and ``colour-logits``."""
    directory = tmp_path_factory.mktemp("colour-models")
    write_colour_model(directory, "colour")
    write_colour_model(directory, "colour-logits", output="logits")
    return directory


@pytest.fixture
def user_models(tmp_path, monkeypatch, colour_models) -> Path:
    """A user model folder (CVPLAY_MODELS) holding the colour models."""
    directory = tmp_path / "user-models"
    shutil.copytree(colour_models, directory)
    monkeypatch.setenv("CVPLAY_MODELS", str(directory))
    return directory
