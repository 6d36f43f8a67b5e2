"""Statistics of the ratio study: classification metrics, cell summaries and paired differences.

Intervals are Student-t intervals: for ``n`` values with mean ``m`` and sample standard deviation ``s``
(``ddof=1``), ``m +- t(1 - alpha/2, n - 1) * s / sqrt(n)``. With three seeds per cell they are wide; that is
the honest width. A paired difference is the t-interval of the per-seed differences between two regimes
trained with the same seeds (same initial weights and data order), which removes the seed-to-seed spread the
two share. Fewer than two values give no interval (NaN).
"""

import math

import numpy as np
from scipy import stats as scipy_stats


def confusion_matrix(y_true, y_pred, num_classes):
    """``[num_classes, num_classes]`` int counts: rows are true classes, columns predicted classes."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return matrix


def classification_metrics(matrix):
    """Accuracy, macro-F1 and per-class accuracy (recall) from a confusion matrix.

    A class absent from both truth and predictions is left out of the macro-F1 average; a class absent from
    the truth has per-class accuracy NaN.

    Returns:
        ``{"accuracy": float, "macro_f1": float, "per_class_accuracy": list[float]}``.
    """
    matrix = np.asarray(matrix, np.float64)
    true_positive = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, true_positive / support, np.nan)
        f1 = np.where(support + predicted > 0, 2 * true_positive / (support + predicted), np.nan)
    total = matrix.sum()
    return {
        "accuracy": float(true_positive.sum() / total) if total else math.nan,
        "macro_f1": float(np.nanmean(f1)) if np.any(~np.isnan(f1)) else math.nan,
        "per_class_accuracy": [float(r) for r in recall],
    }


def t_interval(values, confidence=0.95):
    """Mean, sample standard deviation and the two-sided Student-t interval of the mean.

    Args:
        values: the observations (e.g. one test accuracy per seed).
        confidence: interval coverage.

    Returns:
        ``{"n", "mean", "std", "low", "high"}``; ``std``, ``low`` and ``high`` are NaN when ``n < 2``.

    Example:
        >>> t_interval([0.70, 0.72, 0.74])["low"]  # 0.72 - 4.303 * 0.02 / sqrt(3)
        0.6703...
    """
    values = np.asarray(list(values), np.float64)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "low": math.nan, "high": math.nan}
    std = float(values.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "low": mean - half, "high": mean + half}


def paired_difference(treatment, baseline, confidence=0.95):
    """The t-interval of per-seed differences ``treatment[seed] - baseline[seed]`` over the seeds both have.

    Args:
        treatment, baseline: ``{seed: value}`` mappings.
        confidence: interval coverage.

    Returns:
        ``t_interval`` of the differences, plus ``"seeds"``: the paired seeds, sorted.
    """
    seeds = sorted(set(treatment) & set(baseline))
    result = t_interval([treatment[s] - baseline[s] for s in seeds], confidence)
    result["seeds"] = seeds
    return result


def minimum_detectable_effect(std, n, confidence=0.95, power=0.8):
    """The smallest true paired difference a two-sided paired t-test at ``confidence`` detects with ``power``.

    ``(t_{1 - alpha/2, n-1} + t_{power, n-1}) * std / sqrt(n)`` (the usual normal-approximation formula with
    Student-t quantiles), where ``std`` is the standard deviation of the per-seed differences. A study whose
    interval includes 0 has not shown "no effect", only no effect of this size or more.

    Returns:
        The effect size, in the unit of ``std``; NaN when ``n < 2`` or ``std`` is NaN.

    Example:
        >>> round(minimum_detectable_effect(0.05, 3), 3)   # (4.303 + 1.061) * 0.05 / sqrt(3)
        0.155
    """
    if n < 2 or math.isnan(std):
        return math.nan
    quantiles = scipy_stats.t.ppf(0.5 + confidence / 2.0, n - 1) + scipy_stats.t.ppf(power, n - 1)
    return float(quantiles * std / math.sqrt(n))
