"""Partial fine-tuning on cached lower-block outputs (cvplay.training.block_cache)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cvplay.training import block_cache  # noqa: E402
from cvplay.training.backbones import unfreeze_top_blocks  # noqa: E402


@pytest.fixture(scope="module")
def backbone():
    from cvplay.training.efficientnet_lite import build_efficientnet_lite0

    return build_efficientnet_lite0(include_top=False, weights=None, input_shape=(32, 32, 3))


@pytest.mark.parametrize(
    "blocks, cut",
    [(0, "block7a_project_bn"), (1, "block6d_add"), (5, "block5c_add"), (6, "block5b_add"), (14, "block2a_project_bn")],
)
def test_cut_is_the_output_of_the_last_frozen_block(backbone, blocks, cut):
    chosen = unfreeze_top_blocks(backbone, blocks)
    assert len(chosen) == blocks
    assert block_cache.cut_layer_name(backbone, chosen) == cut


def test_every_block_trainable_leaves_nothing_to_cache(backbone):
    chosen = unfreeze_top_blocks(backbone, -1)
    with pytest.raises(block_cache.BlockCacheError, match="no frozen lower part"):
        block_cache.cut_layer_name(backbone, chosen)


def test_lower_then_upper_is_the_backbone_and_shares_its_weights(backbone):
    import keras

    chosen = unfreeze_top_blocks(backbone, 5)
    lower, upper, cut = block_cache.split_at_trainable_blocks(backbone, chosen)
    assert cut == "block5c_add" and tuple(lower.output.shape[1:]) == (2, 2, 112)
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype(np.float32)
    whole = backbone.predict_on_batch(x)
    np.testing.assert_allclose(upper.predict_on_batch(lower.predict_on_batch(x)), whole, rtol=1e-4, atol=1e-4)
    # The upper part reuses the backbone's variables (no copy), and after the trainer's sequence
    # (freeze everything for the head, then unfreeze the top blocks) a model on it trains them.
    kernel = backbone.get_layer("block6a_expand_conv").kernel
    inputs = keras.Input(shape=tuple(lower.output.shape[1:]))
    head = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(upper(inputs, training=False))))
    upper.trainable = False
    assert not any(w is kernel for w in head.trainable_weights)
    unfreeze_top_blocks(backbone, 5)
    assert any(w is kernel for w in head.trainable_weights)
    assert not any(w is backbone.get_layer("block5c_expand_conv").kernel for w in head.trainable_weights)
    # The upper part holds only the trained blocks and the top, not the frozen ones below the cut.
    assert {l.name.split("_")[0] for l in upper.layers if l.name.startswith("block")} == set(chosen)


@pytest.fixture(scope="module")
def lower():
    """A small stand-in for a backbone's lower part: a fixed, non-symmetric 3x3 convolution."""
    import keras

    inputs = keras.Input(shape=(8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.random.default_rng(2).normal(size=(3, 3, 3, 4)).astype(np.float32)])
    return model


def test_feature_maps_hold_both_views_in_float16(lower):
    images = np.random.default_rng(1).normal(size=(5, 8, 8, 3)).astype(np.float32)
    seen = []
    maps = block_cache.compute_feature_maps(lower, lambda idx: images[idx], np.arange(5), views=2, batch_size=2,
                                            progress=lambda done, total: seen.append((done, total)))
    assert maps.shape == (2, 5, 8, 8, 4) and maps.dtype == np.float16
    np.testing.assert_allclose(maps[0], lower.predict_on_batch(images), rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(maps[1], lower.predict_on_batch(images[:, :, ::-1]), rtol=1e-2, atol=1e-2)
    assert np.abs(maps[0].astype(np.float32) - maps[1]).mean() > 0.5  # the mirror view is another input
    assert seen[-1] == (10, 10) and len(seen) == 3
    assert block_cache.cache_nbytes(lower, 5, 2) == maps.nbytes
    with pytest.raises(ValueError, match="views"):
        block_cache.compute_feature_maps(lower, lambda idx: images[idx], np.arange(5), views=3)


def test_stop_ends_the_caching_early(lower):
    images = np.ones((6, 8, 8, 3), np.float32)
    maps = block_cache.compute_feature_maps(lower, lambda idx: images[idx], np.arange(6), batch_size=2,
                                            should_stop=lambda: True)
    assert np.all(maps[0, :2] != 0) and np.all(maps[0, 2:] == 0)


def test_pipeline_draws_random_views_when_shuffling_and_view_zero_otherwise():
    import tensorflow as tf

    maps = np.zeros((2, 40, 1, 1, 1), np.float16)
    maps[1] = 1.0  # view 1 is all ones, view 0 all zeros
    labels = np.arange(40)
    ordered = list(block_cache.feature_map_pipeline(tf, maps, labels, batch_size=16, shuffle=False, seed=0))
    assert [len(y) for _, y in ordered] == [16, 16, 8]
    assert np.concatenate([y.numpy() for _, y in ordered]).tolist() == list(range(40))
    assert all(float(tf.reduce_max(x)) == 0.0 for x, _ in ordered)
    shuffled = list(block_cache.feature_map_pipeline(tf, maps, labels, batch_size=40, shuffle=True, seed=0))
    x, y = shuffled[0]
    assert sorted(y.numpy().tolist()) == list(range(40)) and y.numpy().tolist() != list(range(40))
    assert 5 < float(tf.reduce_sum(x)) < 35  # about half the images in their mirror view
    with pytest.raises(ValueError, match="labels"):
        block_cache.feature_map_pipeline(tf, maps, labels[:3], batch_size=4, shuffle=False, seed=0)


def test_shift_maps_moves_each_map_by_whole_cells_repeating_the_edge():
    maps = np.arange(2 * 4 * 5, dtype=np.float16).reshape(2, 4, 5, 1)
    out = block_cache.shift_maps(maps, np.array([[0, 1], [-1, 0]]))
    # first map: one cell right, the first column repeated
    np.testing.assert_array_equal(out[0, :, 1:, 0], maps[0, :, :-1, 0])
    np.testing.assert_array_equal(out[0, :, 0, 0], maps[0, :, 0, 0])
    # second map: one cell up, the last row repeated
    np.testing.assert_array_equal(out[1, :-1, :, 0], maps[1, 1:, :, 0])
    np.testing.assert_array_equal(out[1, -1, :, 0], maps[1, -1, :, 0])
    assert block_cache.shift_maps(maps, np.zeros((2, 2), np.int64)) is maps


def test_pipeline_shifts_only_when_shuffling():
    import tensorflow as tf

    maps = np.random.default_rng(0).normal(size=(1, 16, 5, 5, 2)).astype(np.float16)
    labels = np.arange(16)
    plain = next(iter(block_cache.feature_map_pipeline(tf, maps, labels, batch_size=16, shuffle=False, seed=0,
                                                       max_shift=1)))
    np.testing.assert_array_equal(plain[0].numpy(), maps[0].astype(np.float32))
    x, y = next(iter(block_cache.feature_map_pipeline(tf, maps, labels, batch_size=16, shuffle=True, seed=0,
                                                      max_shift=1)))
    moved = [not np.array_equal(x.numpy()[i], maps[0, int(label)].astype(np.float32)) for i, label in enumerate(y.numpy())]
    assert 4 <= sum(moved) < 16  # 8 of the 9 (dy, dx) draws move a map
    # the centre cells of a moved map are its neighbours' in the original
    for i, label in enumerate(y.numpy()):
        original = maps[0, int(label)].astype(np.float32)
        shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                  if np.array_equal(x.numpy()[i, 1:4, 1:4], np.roll(original, (dy, dx), axis=(0, 1))[1:4, 1:4])]
        assert shifts
    with pytest.raises(ValueError, match="max_shift"):
        block_cache.feature_map_pipeline(tf, maps, labels, batch_size=4, shuffle=True, seed=0, max_shift=3)
