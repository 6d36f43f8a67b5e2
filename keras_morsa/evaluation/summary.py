"""The study's statistics: per-cell intervals over seeds, paired differences, the budget in words.

Read by the report (:mod:`keras_morsa.evaluation.report`); nothing here trains or writes files.
"""

import numpy as np

from keras_morsa.evaluation import stats
from keras_morsa.evaluation.regimes import REGIMES


def bn_description(config):
    """How the study handles BatchNorm statistics, in words."""
    text = f"momentum {config.bn_momentum:g}" if config.bn_momentum is not None else "KerasCV momentum"
    if config.bn_reestimate_batches > 0:
        text += f", re-estimated on {config.bn_reestimate_batches} training batches before each evaluation"
    return text


def describe_budget(config):
    """One sentence stating the training budget every run gets."""
    return (
        f"Every run trains for {config.steps} optimizer steps of batch {config.batch_size} "
        f"({int(config.steps) * int(config.batch_size)} images seen) at {config.image_size} px from "
        f"{'the weights in ' + config.weights if config.weights else 'scratch'}, whatever its training set "
        f"size, and is evaluated on the real test split every {config.eval_every} steps. BatchNorm: "
        f"{bn_description(config)}."
    )


#: The baselines every other cell is compared with, paired by seed.
BASELINES = ("real", "traditional")


def summarize(results, confidence=0.95):
    """Per-cell statistics and paired differences against the ``real`` and ``traditional`` baselines.

    Returns:
        A list of dicts, one per (arch, cell) in sweep order: ``arch``, ``regime``, ``ratio``, ``cell``,
        ``accuracy`` (``stats.t_interval`` of test accuracy over seeds), ``macro_f1`` (its mean), and
        ``vs_real`` / ``vs_traditional`` (``stats.paired_difference`` against the same arch's baseline runs,
        plus ``"mde"``: :func:`stats.minimum_detectable_effect` of that comparison; None for the baseline
        itself or when it was not run).
    """
    cells = {}
    for row in results:
        cells.setdefault((row["arch"], row["regime"], row["ratio"]), []).append(row)
    order = {regime: i for i, regime in enumerate(REGIMES)}
    summary = []
    for (arch, regime, ratio), rows in sorted(
        cells.items(), key=lambda item: (item[0][0], order[item[0][1]], item[0][2] or 0.0)
    ):
        by_seed = {row["seed"]: row["test_accuracy"] for row in rows}
        entry = {
            "arch": arch, "regime": regime, "ratio": ratio, "cell": rows[0]["cell"],
            "accuracy": stats.t_interval(by_seed.values(), confidence),
            "macro_f1": float(np.mean([row["macro_f1"] for row in rows])),
            "seeds": sorted(by_seed),
        }
        for baseline in BASELINES:
            base = {row["seed"]: row["test_accuracy"] for row in cells.get((arch, baseline, None), [])}
            difference = None
            if regime != baseline and base:
                difference = stats.paired_difference(by_seed, base, confidence)
                difference["mde"] = stats.minimum_detectable_effect(difference["std"], difference["n"], confidence)
            entry[f"vs_{baseline}"] = difference
        summary.append(entry)
    return summary


def verdicts(summary, arch):
    """For each baseline, the best other cell of ``arch`` by mean accuracy and what its paired interval says.

    "helps" only where the whole interval of the paired difference lies above 0, "hurts" where it lies
    below; otherwise "no clear difference", with the smallest difference the study could have detected.

    Returns:
        ``{baseline: {"cell", "difference", "verdict"}}`` for the baselines that were run.
    """
    rows = [row for row in summary if row["arch"] == arch]
    found = {}
    for baseline in BASELINES:
        rivals = [row for row in rows if row[f"vs_{baseline}"] is not None and row["regime"] not in BASELINES]
        if not rivals:
            continue
        best = max(rivals, key=lambda row: row["accuracy"]["mean"])
        difference = best[f"vs_{baseline}"]
        low, high = difference["low"], difference["high"]
        if np.isnan(low):
            verdict = "not tested (one seed: no interval)"
        elif low > 0:
            verdict = "helps"
        elif high < 0:
            verdict = "hurts"
        else:
            verdict = f"no clear difference (could detect about {100 * difference['mde']:.1f} points or more)"
        found[baseline] = {"cell": best["cell"], "difference": difference, "verdict": verdict}
    return found
