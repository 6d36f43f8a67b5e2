"""Quality metrics on hand-made feature sets with known answers: identical, disjoint, subset, planted copies."""

import math

import numpy as np
import pytest

from keras_morsa.errors import UserError
from keras_morsa.quality import metrics

RNG = np.random.default_rng(0)
REAL = RNG.standard_normal((120, 8))
FAR = REAL + 50.0  # the same shape, far away: disjoint supports


def two_clusters(per_cluster=30, d=4, seed=1):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((per_cluster, d))
    b = rng.standard_normal((per_cluster, d)) + 100.0
    return a, b


def test_mmd2_matches_a_hand_computed_value():
    # d = 1, k(x, y) = (xy + 1)^3: k(0,1) = 1, k(2,3) = 343, cross terms 1, 1, 27, 64 (mean 23.25).
    x, y = np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]])
    assert metrics.mmd2_unbiased(x, y) == pytest.approx(1.0 + 343.0 - 2 * 23.25)
    result = metrics.kid(x, y, num_subsets=3, subset_size=10)
    assert result == {"mean": pytest.approx(297.5), "std": 0.0, "subset_size": 2, "num_subsets": 3}


def test_kid_is_near_zero_for_one_distribution_and_large_for_disjoint_sets():
    fresh = np.random.default_rng(5).standard_normal((120, 8))
    same, other, shifted, far = (
        metrics.kid(REAL, x, num_subsets=20, subset_size=60)["mean"] for x in (REAL.copy(), fresh, fresh + 0.5, FAR)
    )
    # Unbiased: ~0 (here within +-0.2, kernel values ~1-10) for one distribution, growing with the shift.
    assert abs(same) < 0.2 and abs(other) < 0.2
    assert shifted > 1.0 and far > 1e9
    assert metrics.kid(REAL, FAR, num_subsets=5, seed=3) == metrics.kid(REAL, FAR, num_subsets=5, seed=3)


def test_fid_is_zero_for_identical_sets_and_the_squared_shift_for_a_translation():
    assert metrics.fid(REAL, REAL) == pytest.approx(0.0, abs=1e-6)
    # A translation keeps the covariance: FID is the squared distance of the means, 50^2 * d.
    assert metrics.fid(REAL, FAR) == pytest.approx(50.0**2 * 8, rel=1e-6)
    # Singular covariances (N <= d) still give a finite value.
    assert math.isfinite(metrics.fid(REAL[:5], FAR[:5]))


def test_prdc_identical_disjoint_and_subset():
    assert metrics.prdc(REAL, REAL, k=5) == {
        "precision": 1.0,
        "recall": 1.0,
        "coverage": 1.0,
        "density": pytest.approx(metrics.prdc(REAL, REAL, k=5)["density"]),
    }
    assert metrics.prdc(REAL, REAL, k=5)["density"] > 0.5
    far = metrics.prdc(REAL, FAR, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # The generator copies one of the two clusters of the class: perfect fidelity, half the diversity.
    a, b = two_clusters()
    half = metrics.prdc(np.concatenate([a, b]), a + 1e-3, k=3)
    assert half["precision"] == 1.0 and half["coverage"] == 0.5 and half["recall"] == 0.5


def test_prdc_k_is_configurable_and_checked():
    a, b = two_clusters()
    real = np.concatenate([a, b])
    assert metrics.prdc(real, real, k=1)["coverage"] == 1.0
    with pytest.raises(UserError, match="k=30 with 60 real and 8 generated"):
        metrics.prdc(real, real[:8], k=30)


def test_memorisation_flags_planted_copies():
    rng = np.random.default_rng(2)
    train, test = rng.standard_normal((200, 16)), rng.standard_normal((60, 16))
    novel = 1.5 * rng.standard_normal((15, 16))  # wider than the data: never nearer than real test images
    copies = train[[3, 50, 199]] + 1e-6
    result = metrics.memorisation(train, test, np.concatenate([novel, copies]), percentile=5)
    assert result.flagged.tolist() == [False] * 15 + [True] * 3
    assert result.share == pytest.approx(3 / 18)
    assert result.nearest[15:].tolist() == [3, 50, 199]
    assert result.distances[15:] == pytest.approx(np.full(3, 16**0.5 * 1e-6), rel=1e-3)
    assert result.threshold == pytest.approx(np.percentile(result.test_distances, 5))
    # Identical sets: every generated image is a copy.
    assert metrics.memorisation(train, test, train).share == 1.0
    with pytest.raises(UserError, match="percentile=0"):
        metrics.memorisation(train, test, train, percentile=0)


def test_train_spacing_is_the_leave_one_out_nearest_distance():
    train = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(metrics.train_spacing(train), [1.0, 1.0, 2.0, 4.0])
    # An exact duplicate is at distance 0 from its twin, not from itself.
    np.testing.assert_allclose(metrics.train_spacing(np.array([[0.0], [0.0], [5.0]])), [0.0, 0.0, 5.0])
    with pytest.raises(UserError, match=r"train features has shape \(1, 1\); expected features \[N, d\] with N >= 2"):
        metrics.train_spacing(np.zeros((1, 1)))


def test_cas_per_class():
    names = ["a", "b", "c"]
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0], [0.1, 0.7, 0.2]])
    result = metrics.cas(probabilities, [0, 1, 1, 1], names)
    assert result["accuracy"] == 0.75
    assert result["per_class"]["a"] == 1.0 and result["per_class"]["b"] == pytest.approx(2 / 3)
    assert math.isnan(result["per_class"]["c"])
    assert result["confidence"]["b"] == pytest.approx((0.8 + 0.4 + 0.7) / 3)
