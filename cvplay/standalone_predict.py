"""Classify photos with a cvplay model, using LiteRT alone (no cvplay, no TensorFlow).

    pip install ai-edge-litert pillow numpy
    python predict.py photo.jpg [more.jpg ...] [--top 3] [--json]

The model card (the .json beside the .tflite) says how a photo becomes the model's input; this
script follows it exactly as cvplay does: upright as its EXIF says, shrunk to the card's thumbnail
size when it has one, resized by its policy (centre crop, stretch or pad), normalised with its
mean and std; probabilities averaged with the mirror image when the card says so. With OpenCV
installed the resizing is the very same as cvplay's (area when shrinking, bicubic when
enlarging); without it Pillow resizes, whose filters differ a little from OpenCV's, so scores
may move (by up to a tenth on a tiny model's noisy test images); the top answer rarely changes.

(cvplay writes this file as predict.py into every "Download everything" zip.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent


def find_card(folder: Path = HERE) -> tuple[dict, Path]:
    """The model card in ``folder`` whose .tflite file sits beside it."""
    for path in sorted(folder.glob("*.json")):
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(card, dict) and "labels" in card and (folder / str(card.get("file", ""))).is_file():
            return card, folder / card["file"]
    sys.exit(f"error: no model card (.json) with its .tflite file in {folder}")


def resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    shrinking = height < pixels.shape[0] or width < pixels.shape[1]
    try:
        import cv2
    except ImportError:
        method = Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC
        return np.asarray(Image.fromarray(pixels).resize((width, height), method))
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def fit(pixels: np.ndarray, spec: dict, height: int, width: int) -> np.ndarray:
    policy = spec.get("resize", "center_crop")
    if policy == "stretch":
        return resize(pixels, height, width)
    if policy == "pad":
        scale = min(height / pixels.shape[0], width / pixels.shape[1])
        new_height, new_width = max(1, round(pixels.shape[0] * scale)), max(1, round(pixels.shape[1] * scale))
        canvas = np.zeros((height, width, 3), dtype=np.uint8)
        top, left = (height - new_height) // 2, (width - new_width) // 2
        canvas[top:top + new_height, left:left + new_width] = resize(pixels, new_height, new_width)
        return canvas
    fraction = float(spec.get("crop_fraction", 1.0))
    scale = fraction * min(pixels.shape[0] / height, pixels.shape[1] / width)
    crop_height = max(1, min(pixels.shape[0], round(height * scale)))
    crop_width = max(1, min(pixels.shape[1], round(width * scale)))
    top, left = (pixels.shape[0] - crop_height) // 2, (pixels.shape[1] - crop_width) // 2
    return resize(pixels[top:top + crop_height, left:left + crop_width], height, width)


def prepare(path: str, spec: dict) -> np.ndarray:
    with Image.open(path) as image:
        pixels = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    height, width = spec.get("size", [224, 224])
    if spec.get("thumbnail_size"):
        pixels = resize(fit(pixels, spec, *spec["thumbnail_size"]), height, width)
    else:
        pixels = fit(pixels, spec, height, width)
    mean = np.asarray(spec.get("mean", [0, 0, 0]), np.float32)
    std = np.asarray(spec.get("std", [1, 1, 1]), np.float32)
    return (pixels.astype(np.float32) - mean) / std


class Model:
    def __init__(self, card: dict, model_path: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.card = card
        self.interpreter = Interpreter(model_path=str(model_path))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def _run(self, batch: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if not np.issubdtype(dtype, np.floating):  # an integer-quantized input
            scale, zero_point = self.input.get("quantization", (0.0, 0))
            batch = batch / scale + zero_point if scale else batch
            info = np.iinfo(dtype)
            batch = np.clip(np.round(batch), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], batch.astype(dtype))
        self.interpreter.invoke()
        values = self.interpreter.get_tensor(self.output["index"])
        if not np.issubdtype(values.dtype, np.floating):
            scale, zero_point = self.output.get("quantization", (0.0, 0))
            values = (values.astype(np.float32) - zero_point) * scale if scale else values.astype(np.float32)
        values = values.reshape(1, -1).astype(np.float32)
        if self.card.get("output") == "logits":
            values = np.exp(values - values.max(axis=-1, keepdims=True))
            values /= values.sum(axis=-1, keepdims=True)
        return values[0]

    def probabilities(self, path: str) -> np.ndarray:
        x = prepare(path, self.card.get("input", {}))[None]
        probabilities = self._run(x)
        if self.card.get("input", {}).get("average_flip"):
            probabilities = (probabilities + self._run(np.ascontiguousarray(x[:, :, ::-1]))) / 2
        return probabilities


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Classify photos with the model beside this script (LiteRT).")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON line per photo, every probability")
    args = parser.parse_args(argv)
    card, model_path = find_card()
    model = Model(card, model_path)
    labels = card["labels"]
    failed = False
    for path in args.images:
        try:
            probabilities = model.probabilities(path)
        except (OSError, ValueError) as error:
            print(f"{path}: error: {error}", file=sys.stderr)
            failed = True
            continue
        order = np.argsort(-probabilities, kind="stable")[: max(1, args.top)]
        if args.json:
            print(json.dumps({"input": path, "label": labels[int(order[0])],
                              "probabilities": {label: float(p) for label, p in zip(labels, probabilities)}}))
        else:
            print(path)
            for i in order:
                print(f"  {probabilities[i]:7.2%}  {labels[i]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
