"""Every model shipped in models/ (one test parametrized over all of them), and the CIFAR-100 one.

Serving only: LiteRT, no TensorFlow. The accuracy check on ../shared skips when it is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from cvplay.datasets import (CIFAR100_COARSE_LABELS, CIFAR100_FINE_LABELS, CIFAR100_FINE_TO_COARSE, load_cifar100,
                             shared_dir)
from cvplay.evaluate import predict_dataset, split_indices
from cvplay.registry import SHIPPED_MODELS_DIR, read_card
from cvplay.runtime import Classifier

SHIPPED = sorted(path.stem for path in SHIPPED_MODELS_DIR.glob("*.json"))


def test_the_cifar100_model_is_shipped():
    assert {"imagenet-lite0", "cifar100-lite0"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_predicts_and_documents_itself(name):
    card = read_card(SHIPPED_MODELS_DIR / f"{name}.json")
    assert card.name == name and card.model_path.is_file()
    assert card.model_path.stat().st_size < 25 * 2**20  # keeps the Heroku slug small
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)]
    if card.task == "detect":
        from cvplay.detect import create_detector

        detector = create_detector(str(card.card_path))
        for photo in photos:
            for detection in detector.detect(photo, score_threshold=0.0, max_detections=50):
                x1, y1, x2, y2 = detection.box
                assert 0 <= x1 < x2 <= photo.shape[1] and 0 <= y1 < y2 <= photo.shape[0]
                assert detection.label in card.labels and 0.0 <= detection.score <= 1.0
        assert card.metrics and all(entry.get("data") and entry.get("command") for entry in card.metrics)
        return
    classifier = Classifier(card)
    probabilities = classifier.predict_proba(photos)
    assert probabilities.shape == (2, card.num_classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    assert len(classifier.predict(photos[0], k=5)) == 5
    if card.coarse_labels:
        coarse = classifier.coarse_probabilities(probabilities)
        np.testing.assert_allclose(coarse.sum(axis=1), 1.0, atol=1e-3)
    # Every figure on the card says what data and which command produced it.
    assert card.metric("top1") is not None and card.metric("top5") is not None
    assert all(entry.get("data") and entry.get("command") for entry in card.metrics)


def cifar_card():
    return read_card(SHIPPED_MODELS_DIR / "cifar100-lite0.json")


def test_cifar100_card_has_the_official_classes_and_superclasses():
    card = cifar_card()
    assert list(card.labels) == list(CIFAR100_FINE_LABELS)
    assert list(card.coarse_labels) == list(CIFAR100_COARSE_LABELS)
    assert list(card.fine_to_coarse) == list(CIFAR100_FINE_TO_COARSE)
    assert card.input.size == (224, 224) and card.input.thumbnail_size == (32, 32)
    assert card.input.crop_fraction == 1.0
    provenance = card.provenance
    assert provenance["backbone"] == "efficientnet-lite0" and provenance["split"]["test_fraction"] > 0
    assert provenance["images"]["test"] >= 5000 and provenance["images"]["train"] <= 50000
    assert "python -m cvplay train" in provenance["command"] and "--test-fraction" in provenance["command"]
    assert provenance["training_time_s"] > 0 and provenance["hardware"]
    held_out = next(m for m in card.metrics if m["name"] == "top1")
    assert "held-out test split" in held_out["data"]


def test_a_cifar_image_and_the_same_photo_at_any_size_get_the_same_answer():
    """The card's thumbnail size makes a large photo look like the 32x32 images it learned from."""
    import cv2

    classifier = Classifier(cifar_card())
    rng = np.random.default_rng(1)
    small = cv2.GaussianBlur(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (5, 5), 0)
    large = cv2.resize(small, (256, 256), interpolation=cv2.INTER_CUBIC)
    p_small, p_large = classifier.predict_proba([small, large])
    assert int(np.argmax(p_small)) == int(np.argmax(p_large))
    assert len(set(np.argsort(-p_small)[:5]) & set(np.argsort(-p_large)[:5])) >= 4


@pytest.mark.shared
@pytest.mark.slow
def test_cifar100_card_figures_reproduce_on_the_held_out_split():
    shared = shared_dir()
    pool = shared / "data" / "cifar100" if shared else None
    if pool is None or not any(pool.glob("pool-*.npz")):
        pytest.skip("../shared/data/cifar100 is absent: the CIFAR-100 pool lives in ../shared beside the checkout")
    card = cifar_card()
    dataset = load_cifar100(pool)
    split = card.provenance["split"]
    assert split["images"] == len(dataset)
    test = split_indices(dataset.labels, "test", split["val_fraction"], split["seed"], split["test_fraction"])
    probabilities = predict_dataset(Classifier(card), dataset, test)
    top1 = float(np.mean(probabilities.argmax(axis=1) == dataset.labels[test]))
    top5 = float(np.mean(np.any(np.argsort(-probabilities, axis=1)[:, :5] == dataset.labels[test][:, None], axis=1)))
    print(f"cifar100-lite0 on its {len(test)} held-out images: top-1 {top1:.4f}, top-5 {top5:.4f}")
    assert top1 == pytest.approx(card.metric("top1"), abs=0.002)
    assert top5 == pytest.approx(card.metric("top5"), abs=0.002)
