"""Turn decoded RGB images into model inputs, as a model card's ``input`` section says.

The same functions serve the runtime, training and evaluation, so a model sees at serving
time exactly what it saw when it was trained and measured.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from cvplay.registry import InputSpec


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    shrinking = height < image.shape[0] or width < image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interpolation)


def center_crop_box(image_height: int, image_width: int, height: int, width: int, fraction: float) -> tuple[int, int, int, int]:
    """(top, left, crop_height, crop_width) of the centred crop with the target's aspect ratio
    that covers ``fraction`` of the image's limiting side."""
    scale = fraction * min(image_height / height, image_width / width)
    crop_height = max(1, min(image_height, round(height * scale)))
    crop_width = max(1, min(image_width, round(width * scale)))
    top = (image_height - crop_height) // 2
    left = (image_width - crop_width) // 2
    return top, left, crop_height, crop_width


def resize_for_model(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB image resized to the card's size by its resize policy.

    With a ``thumbnail_size`` the policy first shrinks the image to that size (a photo becomes
    the kind of thumbnail the model was trained on), which is then resized to the model's size.
    """
    small = thumbnail(image, spec)
    if small is not None:
        return _resize(small, *spec.size)
    return _fit(image, spec, *spec.size)


def thumbnail(image: np.ndarray, spec: InputSpec) -> np.ndarray | None:
    """The image at the card's ``thumbnail_size`` (what a model trained on thumbnails sees before
    it is enlarged to its input size), or None when the card has no thumbnail size."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    if spec.thumbnail_size is None:
        return None
    return _fit(image, spec, *spec.thumbnail_size)


def _fit(image: np.ndarray, spec: InputSpec, height: int, width: int) -> np.ndarray:
    """``image`` brought to ``height`` x ``width`` by the card's resize policy."""
    if spec.resize == "stretch":
        return _resize(image, height, width)
    if spec.resize == "pad":
        scale = min(height / image.shape[0], width / image.shape[1])
        new_height = max(1, round(image.shape[0] * scale))
        new_width = max(1, round(image.shape[1] * scale))
        canvas = np.zeros((height, width, 3), dtype=np.uint8)
        top = (height - new_height) // 2
        left = (width - new_width) // 2
        canvas[top : top + new_height, left : left + new_width] = _resize(image, new_height, new_width)
        return canvas
    top, left, crop_height, crop_width = center_crop_box(
        image.shape[0], image.shape[1], height, width, spec.crop_fraction
    )
    crop = image[top : top + crop_height, left : left + crop_width]
    return _resize(crop, height, width)


def normalize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """``(pixels - mean) / std`` as float32, for one image or a batch."""
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return (pixels.astype(np.float32) - mean) / std


def prepare(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """One image as a float32 ``(H, W, 3)`` model input."""
    return normalize(resize_for_model(image, spec), spec)


def prepare_batch(images: Sequence[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Several images as a float32 ``(N, H, W, 3)`` batch."""
    if len(images) == 0:
        height, width = spec.size
        return np.zeros((0, height, width, 3), dtype=np.float32)
    return normalize(np.stack([resize_for_model(image, spec) for image in images]), spec)
