"""Partial fine-tuning a CPU can afford: cache what the frozen lower blocks compute.

Fine-tuning the top blocks of a backbone on images runs the whole backbone forward for every
image of every epoch, although only the top blocks change. Here the backbone is split at the
output of the last frozen block (:func:`split_at_trainable_blocks`): the frozen **lower** part
runs ONCE per image (and once more per horizontally flipped copy) and its feature maps are kept
in memory as float16 (:func:`compute_feature_maps`); the **upper** part (the unfrozen blocks,
the top convolution and the new head) is then trained on those maps for as many epochs as
wanted (:func:`feature_map_pipeline`). The lower and upper models share their layers with the
backbone, so after training, the image-to-probabilities model is simply the backbone and head
as they were built, ready to export.

What it costs: no photometric augmentation, and geometric augmentation only as the cached views
(the original and its mirror image, picked at random per image and epoch) and, optionally, as
random shifts of the cached maps by whole cells (:func:`shift_maps`). Convolutions commute with
translation, so shifting a stride-16 feature map by one cell is close to shifting the image by 16
pixels: at 224 px from a 32 px CIFAR image, about the classic "pad 4 and crop" augmentation. On
EfficientNet-Lite0 at 224 px, the cut below ``block6a`` leaves about a third of the network's
compute to train.

Importing this module does not import TensorFlow or Keras.
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

_BLOCK = re.compile(r"^(block\d+[a-z])_")


class BlockCacheError(ValueError):
    """The backbone cannot be split where asked."""


def cut_layer_name(backbone, trainable_prefixes: list[str]) -> str:
    """The name of the last layer below the first trainable block: the cut's output.

    ``trainable_prefixes`` are block prefixes such as ``["block6a", ..., "block7a"]`` (from
    :func:`cvplay.training.backbones.unfreeze_top_blocks`); with none, the cut is the last
    layer of the last block.
    """
    prefixes: list[str] = []
    last_layer_of: dict[str, str] = {}
    for layer in backbone.layers:
        match = _BLOCK.match(layer.name)
        if match:
            prefix = match.group(1)
            if prefix not in last_layer_of:
                prefixes.append(prefix)
            last_layer_of[prefix] = layer.name
    if not prefixes:
        raise BlockCacheError(f"{backbone.name} has no block{{stage}}{{letter}}_ layers to split at")
    if trainable_prefixes:
        first = trainable_prefixes[0]
        if first not in prefixes:
            raise BlockCacheError(f"{backbone.name} has no block {first!r}")
        position = prefixes.index(first)
        if position == 0:
            raise BlockCacheError("every block is trainable: there is no frozen lower part to cache")
        return last_layer_of[prefixes[position - 1]]
    return last_layer_of[prefixes[-1]]


def split_at_trainable_blocks(backbone, trainable_prefixes: list[str]):
    """``(lower, upper, cut_name)``: ``lower`` maps images to the cut's feature map and
    ``upper`` maps that feature map to the backbone's output. Both reuse the backbone's
    layers (no copies), so training ``upper`` trains the backbone."""
    import keras

    cut_name = cut_layer_name(backbone, trainable_prefixes)
    cut = backbone.get_layer(cut_name).output
    lower = keras.Model(backbone.input, cut, name=f"{backbone.name}_lower")
    upper = keras.Model(cut, backbone.output, name=f"{backbone.name}_upper")
    return lower, upper, cut_name


def compute_feature_maps(
    lower,
    load_batch: Callable[[np.ndarray], np.ndarray],
    indices: np.ndarray,
    *,
    views: int = 1,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """The lower part's float16 outputs, shape ``(views, N, h, w, c)``.

    ``load_batch(indices)`` returns the normalized float32 model inputs ``(n, H, W, 3)`` for those
    dataset indices; view 1 is the horizontal mirror of view 0 (``views`` is 1 or 2).
    ``progress(done, total)`` is called after each batch; ``should_stop()`` ends early (the maps
    computed so far are returned, the rest are zeros).
    """
    if views not in (1, 2):
        raise ValueError(f"views must be 1 or 2, got {views}")
    indices = np.asarray(indices, dtype=np.int64)
    shape = tuple(int(d) for d in lower.output.shape[1:])
    out = np.zeros((views, len(indices), *shape), dtype=np.float16)
    total = views * len(indices)
    done = 0
    for start in range(0, len(indices), batch_size):
        batch = load_batch(indices[start : start + batch_size])
        for view in range(views):
            inputs = batch if view == 0 else batch[:, :, ::-1, :]
            out[view, start : start + len(batch)] = np.asarray(lower.predict_on_batch(inputs), dtype=np.float16)
            done += len(batch)
        if progress is not None:
            progress(done, total)
        if should_stop is not None and should_stop():
            break
    return out


def shift_maps(maps: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Each map of ``(n, h, w, c)`` moved by its ``(dy, dx)`` row of ``shifts`` (whole cells); the
    cells that come in repeat the edge, as an image shifted with "nearest" fill would."""
    n, height, width = maps.shape[:3]
    limit = int(np.abs(shifts).max()) if len(shifts) else 0
    if limit == 0:
        return maps
    padded = np.pad(maps, ((0, 0), (limit, limit), (limit, limit), (0, 0)), mode="edge")
    out = np.empty_like(maps)
    for i, (dy, dx) in enumerate(np.asarray(shifts, dtype=np.int64)):
        top, left = limit - dy, limit - dx
        out[i] = padded[i, top : top + height, left : left + width]
    return out


def feature_map_pipeline(tf, maps: np.ndarray, labels: np.ndarray, *, batch_size: int, shuffle: bool, seed: int,
                         max_shift: int = 0):
    """A ``tf.data`` pipeline of ``(float32 map, label)`` batches from cached maps.

    ``maps`` is ``(views, N, h, w, c)``. When shuffling, each image is drawn in a random view per
    epoch (the mirror-image augmentation) and, with ``max_shift``, moved by a random whole number
    of cells in ``[-max_shift, max_shift]`` each way; otherwise view 0, as it is.
    """
    if max_shift < 0 or (max_shift and 2 * max_shift >= min(maps.shape[2:4])):
        raise ValueError(f"max_shift must lie in [0, {(min(maps.shape[2:4]) - 1) // 2}] for maps of {maps.shape[2:4]}")
    views, n = maps.shape[:2]
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=np.int32)
    if len(labels) != n:
        raise ValueError(f"{n} cached images but {len(labels)} labels")

    def gather(index: np.ndarray):
        view = rng.integers(0, views, size=len(index)) if shuffle and views > 1 else np.zeros(len(index), np.int64)
        x = maps[view, index]
        if shuffle and max_shift:
            x = shift_maps(x, rng.integers(-max_shift, max_shift + 1, size=(len(index), 2)))
        return x.astype(np.float32), labels[index]

    shape = maps.shape[2:]

    def load(index):
        x, y = tf.numpy_function(gather, [index], (tf.float32, tf.int32), stateful=True)
        x.set_shape((None, *shape))
        y.set_shape((None,))
        return x, y

    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(load).prefetch(2)


def cache_nbytes(lower, n_images: int, views: int) -> int:
    """Bytes the float16 cache of ``n_images`` images in ``views`` views will take."""
    shape = [int(d) for d in lower.output.shape[1:]]
    return int(np.prod(shape)) * 2 * n_images * views

