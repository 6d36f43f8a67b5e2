"""Grad-CAM metrics on hand-made maps and masks whose answers are known."""

import numpy as np
import pytest

from keras_morsa.errors import UserError
from keras_morsa.explain import metrics


def _blob(size=8, top=0, left=0, height=4, width=4, value=1.0):
    array = np.zeros((size, size), np.float32)
    array[top : top + height, left : left + width] = value
    return array


def test_area_of_a_known_blob():
    maps = np.stack([_blob(height=4, width=4), _blob(height=2, width=8, value=0.6), _blob(value=0.49)])
    np.testing.assert_allclose(metrics.area(maps), [16 / 64, 16 / 64, 0.0])


def test_mask_energy_all_inside_none_inside_half_and_empty_map():
    mask = _blob()
    maps = np.stack([_blob(height=2), _blob(top=4, left=4), _blob(height=4, width=8), np.zeros((8, 8))])
    energy = metrics.mask_energy(maps, np.stack([mask] * 4))
    np.testing.assert_allclose(energy[:3], [1.0, 0.0, 0.5])
    assert np.isnan(energy[3])


def test_pointing_game_hit_and_miss():
    mask = _blob()
    hit = _blob(value=0.3)
    hit[1, 1] = 1.0
    miss = _blob(value=0.3)
    miss[7, 7] = 1.0
    np.testing.assert_array_equal(metrics.pointing_game(np.stack([hit, miss]), np.stack([mask, mask])), [1, 0])


def test_an_empty_group_gives_empty_values():
    empty = np.zeros((0, 8, 8), np.float32)
    for values in (metrics.area(empty), metrics.mask_energy(empty, empty), metrics.pointing_game(empty, empty)):
        assert values.shape == (0,)


def test_shape_mismatch_is_a_user_error():
    with pytest.raises(UserError, match="does not match"):
        metrics.mask_energy(np.zeros((1, 8, 8)), np.zeros((1, 4, 4)))
    with pytest.raises(UserError, match=r"\(0, 1\]"):
        metrics.deletion_drop(lambda x: x, np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 8)), [0], fractions=(0,))


def test_remove_pixels_mean_fills_the_first_pixels_in_order():
    images = np.arange(2 * 2 * 2 * 1, dtype=np.float32).reshape(2, 2, 2, 1)
    order = np.array([[3, 2, 1, 0], [0, 1, 2, 3]])
    removed = metrics.remove_pixels(images, order, 0.5)
    np.testing.assert_allclose(removed[0, :, :, 0], [[0, 1], [1.5, 1.5]])
    np.testing.assert_allclose(removed[1, :, :, 0], [[5.5, 5.5], [6, 7]])
    np.testing.assert_allclose(images[0, :, :, 0], [[0, 1], [2, 3]])


def _toy_predict(images):
    """p(class 0) grows with the brightness of the top-left 4x4 quadrant only (a known important region)."""
    evidence = images[:, :4, :4, :].mean(axis=(1, 2, 3)) / 255.0 * 8 - 4
    p0 = 1 / (1 + np.exp(-evidence))
    return np.stack([p0, 1 - p0], axis=1)


def test_deletion_drop_beats_random_when_the_map_is_right_and_is_seeded():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 60, (6, 8, 8, 3)).astype(np.float32)
    images[:, :4, :4, :] = 250.0
    right = np.stack([_blob()] * 6) + rng.uniform(0, 0.01, (6, 8, 8))
    drops = metrics.deletion_drop(_toy_predict, images, right, np.zeros(6, int), seed=3)
    assert set(drops) == {0.1, 0.2, 0.5}
    for fraction in (0.2, 0.5):
        assert drops[fraction]["map"].mean() > drops[fraction]["random"].mean() + 0.1
    assert np.all(drops[0.2]["map"] > 0)
    wrong = np.stack([_blob(top=4, left=4)] * 6)
    assert metrics.deletion_drop(_toy_predict, images, wrong, np.zeros(6, int))[0.2]["map"].max() < 0.05
    again = metrics.deletion_drop(_toy_predict, images, right, np.zeros(6, int), seed=3)
    np.testing.assert_array_equal(again[0.5]["random"], drops[0.5]["random"])


def test_bootstrap_interval_is_seeded_and_covers_the_mean():
    values = np.random.default_rng(1).normal(2.0, 1.0, 200)
    first = metrics.bootstrap_interval(values, seed=5)
    assert first == metrics.bootstrap_interval(values, seed=5)
    assert first.low < first.mean < first.high and first.n == 200
    assert 1.7 < first.mean < 2.3 and first.high - first.low < 0.5
    assert metrics.bootstrap_interval([np.nan, 1.0]) == metrics.Interval(1.0, 1.0, 1.0, 1)
    assert metrics.bootstrap_interval([]) == metrics.Interval(None, None, None, 0)


def test_paired_difference_interval_excludes_zero_for_a_consistent_shift():
    base = np.random.default_rng(2).uniform(0.2, 0.8, 50)
    narrower = metrics.paired_difference_interval(base - 0.1, base)
    assert narrower.high < 0 and narrower.mean == pytest.approx(-0.1)
    same = metrics.paired_difference_interval(base + np.random.default_rng(3).normal(0, 0.05, 50), base)
    assert same.low < 0 < same.high
    with pytest.raises(UserError, match="equal lengths"):
        metrics.paired_difference_interval([1.0], [1.0, 2.0])
