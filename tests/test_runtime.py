import json
import shutil
import threading

import numpy as np
import pytest

from cvplay.preprocess import center_crop_box, prepare, resize_for_model, thumbnail
from cvplay.registry import InputSpec, get_card, read_card
from cvplay.runtime import Classifier, ModelLoadError, create_classifier, load_interpreter, softmax, top_k
from model_factory import solid


@pytest.fixture(scope="module")
def colour(colour_models):
    return create_classifier(str(colour_models / "colour.json"))


@pytest.mark.parametrize("colour_value, label", [((255, 0, 0), "red"), ((0, 200, 0), "green"), ((0, 0, 90), "blue")])
def test_predicts_the_dominant_colour(colour, colour_value, label):
    top = colour.predict(solid(colour_value), k=3)
    assert top[0].label == label
    assert [p.score for p in top] == sorted((p.score for p in top), reverse=True)
    assert top[0].index == ["red", "green", "blue"].index(label)
    assert sum(p.score for p in top) == pytest.approx(1.0, abs=1e-5)


def test_probabilities_match_the_known_formula(colour):
    image = solid((255, 51, 0))
    expected = softmax(np.array([8 * 1.0, 8 * 0.2, 0.0]))
    np.testing.assert_allclose(colour.predict_proba([image])[0], expected, atol=1e-5)


def test_logits_models_are_softmaxed(colour_models, colour):
    logits = create_classifier(str(colour_models / "colour-logits.json"))
    image = solid((10, 200, 30))
    np.testing.assert_allclose(logits.predict_proba([image]), colour.predict_proba([image]), atol=1e-5)


def test_batch_matches_single_images_any_size(colour):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(rng.integers(5, 60), rng.integers(5, 60), 3), dtype=np.uint8) for _ in range(40)]
    batch = colour.predict_proba(images)
    singles = np.concatenate([colour.predict_proba([image]) for image in images])
    assert batch.shape == (40, 3)
    np.testing.assert_allclose(batch, singles, atol=1e-6)
    assert colour.predict_proba([]).shape == (0, 3)
    assert [top[0].label for top in colour.predict_batch(images[:2], k=1)] == [top_k(row, colour.labels, 1)[0].label for row in batch[:2]]


def test_thread_safe_under_concurrent_calls(colour):
    images = {"red": solid((250, 0, 0)), "green": solid((0, 250, 0)), "blue": solid((0, 0, 250))}
    failures = []

    def worker(label, count):
        for index in range(30):
            batch = [images[label]] * (1 + (index + count) % 5)
            if any(top[0].label != label for top in colour.predict_batch(batch, k=1)):
                failures.append(label)

    threads = [threading.Thread(target=worker, args=(label, n)) for n, label in enumerate(images) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_top_k_is_clamped(colour):
    assert len(colour.predict(solid((1, 2, 3)), k=99)) == 3
    assert len(colour.predict(solid((1, 2, 3)), k=0)) == 1


@pytest.mark.parametrize(
    "content, message",
    [(b"", "not a TFLite model"), (b"hello world, not a model", "not a TFLite model"), (b"\x00\x00\x00\x00TFL3" + b"\x00" * 16, "could not be loaded")],
)
def test_broken_model_files_give_a_clear_error(tmp_path, content, message):
    path = tmp_path / "broken.tflite"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message):
        load_interpreter(path)


def test_card_and_model_must_agree(tmp_path, colour_models):
    shutil.copy(colour_models / "colour.tflite", tmp_path / "m.tflite")
    card = json.loads((colour_models / "colour.json").read_text())
    card["labels"] = ["a", "b"]
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="lists 2 labels, the model outputs 3"):
        Classifier(read_card(tmp_path / "m.json"))
    card["labels"] = ["a", "b", "c"]
    card["input"]["size"] = [16, 16]
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="input size"):
        Classifier(read_card(tmp_path / "m.json"))


def test_coarse_probabilities_sum_fine_classes(tmp_path, colour_models):
    shutil.copy(colour_models / "colour.tflite", tmp_path / "c.tflite")
    card = json.loads((colour_models / "colour.json").read_text())
    card.update(name="c", coarse_labels=["warm", "cool"], fine_to_coarse=[0, 1, 1])
    (tmp_path / "c.json").write_text(json.dumps(card))
    classifier = create_classifier(str(tmp_path / "c.json"))
    fine = classifier.predict_proba([solid((0, 120, 120))])
    coarse = classifier.coarse_probabilities(fine)
    np.testing.assert_allclose(coarse[0], [fine[0, 0], fine[0, 1] + fine[0, 2]], atol=1e-6)


def test_center_crop_box_keeps_aspect_and_fraction():
    assert center_crop_box(400, 600, 224, 224, 0.875) == (25, 125, 350, 350)
    assert center_crop_box(100, 100, 50, 100, 1.0) == (25, 0, 50, 100)


@pytest.mark.parametrize("policy", ["center_crop", "stretch", "pad"])
def test_resize_policies_give_the_model_size(policy):
    spec = InputSpec(size=(32, 48), resize=policy, crop_fraction=0.9)
    image = np.random.default_rng(1).integers(0, 256, (77, 51, 3), dtype=np.uint8)
    out = resize_for_model(image, spec)
    assert out.shape == (32, 48, 3) and out.dtype == np.uint8
    prepared = prepare(image, InputSpec(size=(32, 48), resize=policy, mean=(127, 127, 127), std=(128, 128, 128)))
    assert prepared.dtype == np.float32 and prepared.min() >= -1.0 and prepared.max() <= 1.0


def test_pad_letterboxes_with_black():
    image = np.full((10, 40, 3), 200, dtype=np.uint8)
    out = resize_for_model(image, InputSpec(size=(40, 40), resize="pad"))
    assert (out[:10] == 0).all() and (out[-10:] == 0).all() and (out[20] == 200).all()


def test_rejects_non_rgb_arrays():
    with pytest.raises(ValueError, match="RGB"):
        resize_for_model(np.zeros((4, 4), np.uint8), InputSpec())


def test_detect_cards_are_not_classifiers(tmp_path, colour_models):
    shutil.copy(colour_models / "colour.tflite", tmp_path / "d.tflite")
    card = json.loads((colour_models / "colour.json").read_text())
    card.update(name="d", task="detect")
    (tmp_path / "d.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="not a classifier"):
        Classifier(get_card(str(tmp_path / "d.json")))


def test_thumbnail_size_shrinks_photos_like_the_training_images():
    import cv2

    from cvplay.registry import parse_input_spec

    spec = parse_input_spec({"size": [64, 64], "resize": "center_crop", "crop_fraction": 1.0, "thumbnail_size": 16})
    assert spec.thumbnail_size == (16, 16) and spec.to_dict()["thumbnail_size"] == [16, 16]
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    small = thumbnail(photo, spec)
    centre = photo[15:105]  # the centred 90x90 square
    np.testing.assert_array_equal(small, cv2.resize(centre, (16, 16), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(resize_for_model(photo, spec), cv2.resize(small, (64, 64), interpolation=cv2.INTER_CUBIC))
    # An image already at the thumbnail size (a CIFAR training image) is only enlarged, so
    # training and serving see the same pixels.
    tiny = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    plain = InputSpec(size=(64, 64), resize="center_crop", crop_fraction=1.0)
    np.testing.assert_array_equal(resize_for_model(tiny, spec), resize_for_model(tiny, plain))
    assert thumbnail(photo, plain) is None



def test_average_flip_averages_an_image_and_its_mirror(tmp_path):
    """A model that looks only at the left half of its input: red on the left says red, its
    mirror image says blue, and the flip-averaged answer is the mean of the two."""
    import json

    tf = pytest.importorskip("tensorflow")
    keras = tf.keras
    inputs = keras.Input(shape=(8, 8, 3))
    left_half = keras.layers.Cropping2D(((0, 0), (0, 4)))(inputs)
    dense = keras.layers.Dense(3, use_bias=False)
    model = keras.Model(inputs, keras.layers.Softmax()(dense(keras.layers.GlobalAveragePooling2D()(left_half))))
    dense.set_weights([np.eye(3, dtype=np.float32) * 8.0])
    (tmp_path / "left.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    card = {"name": "left", "task": "classify", "labels": ["red", "green", "blue"],
            "input": {"size": [8, 8], "resize": "stretch", "mean": 0.0, "std": 255.0}}
    (tmp_path / "left.json").write_text(json.dumps(card))
    card["input"]["average_flip"] = True
    (tmp_path / "both.json").write_text(json.dumps({**card, "name": "both", "file": "left.tflite"}))
    plain, flipping = Classifier(read_card(tmp_path / "left.json")), Classifier(read_card(tmp_path / "both.json"))
    assert flipping.card.input.average_flip and flipping.card.input.to_dict()["average_flip"] is True
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4] = (250, 0, 0)
    image[:, 4:] = (0, 0, 250)
    one, mirrored = plain.predict_proba([image, image[:, ::-1]])
    assert one.argmax() == 0 and mirrored.argmax() == 2
    averaged = flipping.predict_proba([image, image])
    np.testing.assert_allclose(averaged, np.stack([(one + mirrored) / 2] * 2), atol=1e-6)
    assert averaged[0, 0] == pytest.approx(averaged[0, 2], abs=1e-6)
