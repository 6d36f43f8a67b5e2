"""Traditional augmentation ops: eager and inside Dataset.map, ranges, determinism, per-image draws."""

import numpy as np
import pytest
import tensorflow as tf

from keras_morsa.data.augment import color_jitter, gaussian_noise, make_augment, random_flip
from keras_morsa.errors import UserError

SEED = tf.constant([3, 4], tf.int32)


def _batch():
    # Left half dark, right half bright: a flip is visible, jitter has room in both directions.
    images = np.zeros((16, 8, 8, 3), np.float32)
    images[:, :, :4] = 20.0
    images[:, :, 4:] = 240.0
    images[:, :, :, 1] += 5.0
    return tf.constant(images)


def test_flip_flips_some_images_exactly():
    images = _batch()
    out = random_flip(images, SEED).numpy()
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images.numpy())]
    kept = [np.array_equal(o, i) for o, i in zip(out, images.numpy())]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < len(flipped)


def test_color_jitter_stays_in_range_and_varies_per_image():
    images = _batch()
    out = color_jitter(images, SEED, brightness=40.0, contrast=0.5, saturation=0.5).numpy()
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert not np.allclose(out, images.numpy())
    means = out.mean(axis=(1, 2, 3))
    assert np.std(means) > 1.0  # each image gets its own draw
    np.testing.assert_array_equal(color_jitter(images, SEED, 0.0, 0.0, 0.0).numpy(), images.numpy())


def test_gaussian_noise_has_the_requested_spread():
    images = tf.fill((4, 32, 32, 3), 128.0)
    out = gaussian_noise(images, SEED, stddev=10.0).numpy()
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert abs((out - 128.0).std() - 10.0) < 0.5
    assert abs((out - 128.0).mean()) < 0.5


def test_make_augment_in_dataset_map_is_deterministic_and_in_range():
    augment = make_augment(["flip", "color_jitter", "gaussian_noise"], seed=7)
    labels = tf.range(16, dtype=tf.int32)
    ds = tf.data.Dataset.from_tensors((_batch(), labels)).repeat(2).map(augment, num_parallel_calls=2)
    (first, first_labels), (second, _) = list(ds)
    assert first.shape == (16, 8, 8, 3) and first.dtype == tf.float32
    np.testing.assert_array_equal(first_labels.numpy(), labels.numpy())
    assert float(tf.reduce_min(first)) >= 0.0 and float(tf.reduce_max(first)) <= 255.0
    np.testing.assert_array_equal(first.numpy(), second.numpy())
    eager, _ = augment(_batch(), labels)
    np.testing.assert_array_equal(eager.numpy(), first.numpy())
    other, _ = make_augment(["flip", "color_jitter", "gaussian_noise"], seed=8)(_batch(), labels)
    assert not np.array_equal(other.numpy(), first.numpy())


def test_make_augment_rejects_unknown_ops_and_allows_none():
    assert make_augment([], seed=0) is None
    with pytest.raises(UserError, match="rotate"):
        make_augment(["flip", "rotate"], seed=0)
