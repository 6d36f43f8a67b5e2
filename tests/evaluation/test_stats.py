"""Study statistics on hand-computed numbers."""

import math

import numpy as np
import pytest

from keras_morsa.evaluation import stats
from keras_morsa.evaluation.summary import summarize

T_975_2 = 4.302652729911275  # Student-t 97.5 % quantile, 2 degrees of freedom


def test_t_interval_matches_hand_computation():
    result = stats.t_interval([0.70, 0.72, 0.74])
    half = T_975_2 * 0.02 / math.sqrt(3)
    assert result["n"] == 3
    assert result["mean"] == pytest.approx(0.72)
    assert result["std"] == pytest.approx(0.02)
    assert result["low"] == pytest.approx(0.72 - half)
    assert result["high"] == pytest.approx(0.72 + half)
    single = stats.t_interval([0.5])
    assert single["mean"] == 0.5 and math.isnan(single["std"]) and math.isnan(single["low"])


def test_paired_difference_uses_common_seeds_only():
    treatment = {0: 0.80, 1: 0.70, 2: 0.90}
    baseline = {0: 0.70, 1: 0.65, 2: 0.80, 3: 0.50}
    result = stats.paired_difference(treatment, baseline)
    sd = np.std([0.10, 0.05, 0.10], ddof=1)
    assert result["seeds"] == [0, 1, 2]
    assert result["mean"] == pytest.approx(0.25 / 3)
    assert result["high"] - result["mean"] == pytest.approx(T_975_2 * sd / math.sqrt(3))


def test_confusion_matrix_and_metrics():
    matrix = stats.confusion_matrix([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    metrics = stats.classification_metrics(matrix)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["per_class_accuracy"] == pytest.approx([0.5, 1.0, 0.5])
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # A class nobody predicts scores F1 0; one absent from the truth has no per-class accuracy.
    empty = stats.classification_metrics(stats.confusion_matrix([0, 0], [0, 0], 2))
    assert empty["macro_f1"] == pytest.approx(1.0) and math.isnan(empty["per_class_accuracy"][1])


def _row(regime, ratio, seed, accuracy):
    cell = regime if ratio is None else f"{regime}@{ratio:g}"
    return {
        "arch": "a",
        "regime": regime,
        "ratio": ratio,
        "seed": seed,
        "cell": cell,
        "test_accuracy": accuracy,
        "macro_f1": accuracy - 0.1,
    }


def test_summarize_orders_cells_and_pairs_against_real():
    results = [_row("real", None, s, a) for s, a in enumerate([0.6, 0.7, 0.8])]
    results += [_row("synthetic", 1.0, s, a) for s, a in enumerate([0.7, 0.75, 0.9])]
    results += [_row("synthetic", 0.5, s, a) for s, a in enumerate([0.6, 0.7, 0.8])]
    summary = summarize(results)
    assert [row["cell"] for row in summary] == ["real", "synthetic@0.5", "synthetic@1"]
    assert summary[0]["vs_real"] is None
    assert summary[1]["vs_real"]["mean"] == pytest.approx(0.0) and summary[1]["vs_real"]["std"] == 0.0
    assert summary[2]["vs_real"]["mean"] == pytest.approx(0.25 / 3)
    assert summary[2]["accuracy"]["mean"] == pytest.approx(2.35 / 3)
    assert summary[2]["macro_f1"] == pytest.approx(2.35 / 3 - 0.1)
