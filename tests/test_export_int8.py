"""int8 export: full-integer quantization with float input/output, calibration photos, CLI."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cvplay.cli import main
from cvplay.training import export


def _tiny_model():
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.Conv2D(96, 1)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(40)(x))  # ~8k weights: the file size is mostly weights


def test_int8_is_integer_inside_with_float_input_and_output(tmp_path):
    from cvplay.runtime import load_interpreter

    model = _tiny_model()
    rng = np.random.default_rng(0)
    representative = rng.uniform(-1, 1, (40, 32, 32, 3)).astype(np.float32)
    batch = rng.uniform(-1, 1, (6, 32, 32, 3)).astype(np.float32)
    path = export.export_tflite(model, tmp_path / "m-int8.tflite", precision="int8", representative=representative)
    fp32 = export.export_tflite(model, tmp_path / "m-fp32.tflite", precision="fp32")
    assert path.stat().st_size < 0.6 * fp32.stat().st_size

    interpreter = load_interpreter(path, 1)
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    assert list(interpreter.get_input_details()[0]["shape_signature"]) == [-1, 32, 32, 3]  # batchable
    dtypes = {detail["dtype"] for detail in interpreter.get_tensor_details()}
    assert np.int8 in dtypes  # quantized weights and activations
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert {"QUANTIZE", "DEQUANTIZE"} <= ops and "CONV_2D" in ops

    expected = np.asarray(model(batch, training=False))
    got = export.run_tflite(path, batch)
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() < 0.1 * scale  # close to the float model, not equal to it
    assert not np.allclose(got, expected, atol=1e-6)


def test_int8_needs_a_fitting_representative_sample(tmp_path):
    model = _tiny_model()
    with pytest.raises(export.ExportError, match="representative sample"):
        export.export_tflite(model, tmp_path / "m.tflite", precision="int8")
    with pytest.raises(export.ExportError, match="the model takes"):
        export.export_tflite(model, tmp_path / "m.tflite", precision="int8",
                             representative=np.zeros((4, 64, 64, 3), np.float32))
    assert not (tmp_path / "m.tflite").exists()


def test_calibration_images_from_a_folder_an_npz_or_shared(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(14):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / ("sub" if i % 2 else "") / f"{i:02d}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    images, what = export.calibration_images(folder, count=12)
    assert len(images) <= 12 and len(images) >= 11 and images[0].shape == (40, 50, 3)
    assert "photos of photos/" in what

    npz = tmp_path / "pool.npz"
    np.savez(npz, x=rng.integers(0, 255, (30, 32, 32, 3), dtype=np.uint8))
    images, what = export.calibration_images(npz, count=20)
    assert len(images) == 20 and "first 20 images of pool.npz" in what

    fake_shared = tmp_path / "shared"
    with pytest.raises(export.ExportError, match="--calibration PATH"):
        export.calibration_images(None, shared=fake_shared)
    (fake_shared / "data" / "cifar100").mkdir(parents=True)
    np.savez(fake_shared / "data" / "cifar100" / "pool-0.npz", x=rng.integers(0, 255, (15, 32, 32, 3), dtype=np.uint8))
    images, what = export.calibration_images(None, shared=fake_shared)
    assert len(images) == 15 and what.startswith("15 CIFAR-100 training photos")

    few = tmp_path / "few"
    few.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(few / "a.png")
    with pytest.raises(export.ExportError, match="at least 10"):
        export.calibration_images(few)
    with pytest.raises(export.ExportError, match="no such folder"):
        export.calibration_images(tmp_path / "missing")


def test_int8_card_says_logits_and_how_it_was_calibrated(tmp_path):
    card = export.imagenet_card("imagenet-lite0", "int8", calibration="200 CIFAR-100 training photos")
    assert card["output"] == "logits"
    assert "200 CIFAR-100 training photos" in card["provenance"]["quantization"]
    assert export.imagenet_card("imagenet-lite2", "fp16")["input"]["size"] == [260, 260]
    assert export.imagenet_card("imagenet-lite2", "fp16")["output"] == "probabilities"
    from cvplay.registry import parse_card

    (tmp_path / "m.tflite").write_bytes(b"")
    assert parse_card(card, model_path=tmp_path / "m.tflite").output == "logits"  # a valid card


def test_export_cli_refuses_calibration_without_int8(capsys):
    assert main(["export", "imagenet-lite0", "--precision", "fp16", "--calibration", "photos/"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "error: --calibration is for --precision int8 only"


@pytest.mark.slow
def test_train_int8_exports_a_logits_card_measured_through_the_runtime(tmp_path):
    pytest.importorskip("tensorflow")
    from cvplay.registry import read_card
    from cvplay.runtime import Classifier, load_interpreter
    from cvplay.training.trainer import TrainConfig, train

    rng = np.random.default_rng(0)
    for name, colour in {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}.items():
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(np.array(colour) + rng.integers(-40, 40, (24, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    result = train(TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / "run"), backbone="small-cnn",
                               image_size=24, epochs=4, augment="none", precision="int8"))
    card = read_card(result.card_path)
    assert card.output == "logits" and card.provenance["precision"] == "int8"
    interpreter = load_interpreter(result.model_path, 1)
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert np.int8 in {detail["dtype"] for detail in interpreter.get_tensor_details()}
    probabilities = Classifier(card).predict_proba([np.full((30, 30, 3), (220, 30, 30), np.uint8)])
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)  # softmax applied at serving
    assert 0 <= card.metric("top1") <= 1
