"""The study's statistics: per-cell intervals over seeds, paired differences, the budget in words.

Read by the report (:mod:`keras_morsa.evaluation.report`); nothing here trains or writes files.
"""

import numpy as np

from keras_morsa.errors import UserError
from keras_morsa.evaluation import stats
from keras_morsa.evaluation.regimes import REGIMES
from keras_morsa.training import recipes


def bn_description(config):
    """How the study handles BatchNorm statistics, in words."""
    text = f"momentum {config.bn_momentum:g}" if config.bn_momentum is not None else "the backbone library's momentum"
    if config.bn_reestimate_batches > 0:
        text += f", re-estimated on {config.bn_reestimate_batches} training batches before each evaluation"
    return text


def describe_budget(config):
    """One sentence stating the training budget every run gets."""
    return (
        f"Every run trains for {config.steps} optimizer steps of batch {config.batch_size} "
        f"({int(config.steps) * int(config.batch_size)} images seen) at {config.image_size} px from "
        f"{'the weights in ' + config.weights if config.weights else 'scratch'} ({config.backbone_library} "
        f"backbones), whatever its training set size, and is evaluated on the real test split every "
        f"{config.eval_every} steps. BatchNorm: {bn_description(config)}. Recipes (the same in every regime): "
        + "; ".join(f"{arch}: {recipes.describe(config.recipes[arch])}" for arch in config.archs)
        + f"; then a {config.lr_schedule} learning rate."
    )


#: The baselines every other cell is compared with, paired by seed.
BASELINES = ("real", "traditional")


def pairing_unit(row):
    """What pairs two runs: ``(validation hold-out, seed)``; the hold-out is -1 without a validation share."""
    split = row.get("split")
    return (-1 if split is None else int(split), int(row["seed"]))


def _paired(treatment, baseline, confidence):
    difference = stats.paired_difference(treatment, baseline, confidence)
    difference["mde"] = stats.minimum_detectable_effect(difference["std"], difference["n"], confidence)
    return difference


def summarize(results, confidence=0.95):
    """Per-cell statistics and paired differences against the ``real`` and ``traditional`` baselines.

    Runs pair by :func:`pairing_unit` (seed, and validation hold-out when the study repeats over several), so
    with repeated hold-outs every figure is over hold-outs x seeds.

    Returns:
        A list of dicts, one per (arch, cell) in sweep order (synthetic sources by name within a regime and
        parameter): ``arch``, ``regime``, ``ratio``, ``source``, ``cell``, ``accuracy`` (``stats.t_interval``
        of test accuracy over the pairing units), ``macro_f1`` (its mean), ``units`` (the pairing units), and
        ``vs_real`` / ``vs_traditional`` (``stats.paired_difference`` against the same arch's baseline runs,
        plus ``"mde"``: :func:`stats.minimum_detectable_effect` of that comparison; None for the baseline
        itself or when it was not run).
    """
    cells = {}
    for row in results:
        cells.setdefault((row["arch"], row["regime"], row["ratio"], row.get("source", "")), []).append(row)
    order = {regime: i for i, regime in enumerate(REGIMES)}
    summary = []
    for (arch, regime, ratio, source), rows in sorted(
        cells.items(), key=lambda item: (item[0][0], order[item[0][1]], item[0][2] or 0.0, item[0][3])
    ):
        by_unit = {pairing_unit(row): row["test_accuracy"] for row in rows}
        entry = {
            "arch": arch,
            "regime": regime,
            "ratio": ratio,
            "source": source,
            "cell": rows[0]["cell"],
            "accuracy": stats.t_interval(by_unit.values(), confidence),
            "macro_f1": float(np.mean([row["macro_f1"] for row in rows])),
            "units": sorted(by_unit),
            "by_unit": by_unit,
        }
        for baseline in BASELINES:
            base = {pairing_unit(row): row["test_accuracy"] for row in cells.get((arch, baseline, None, ""), [])}
            entry[f"vs_{baseline}"] = _paired(by_unit, base, confidence) if regime != baseline and base else None
        summary.append(entry)
    return summary


def compare_sources(summary, arch, reference, confidence=0.95):
    """The synthetic sources side by side: per synthetic (regime, parameter) run on two or more sources, each
    source's accuracy and its paired difference against the ``reference`` source (same seeds and hold-outs).

    Returns:
        ``[{"regime", "ratio", "sources": {source: summary row}, "vs_reference": {source: paired difference
        with "mde"}}]`` in sweep order; empty when no cell ran on two sources.
    """
    groups = {}
    for row in summary:
        if row["arch"] == arch and row["source"]:
            groups.setdefault((row["regime"], row["ratio"]), {})[row["source"]] = row
    compared = []
    for (regime, ratio), by_source in groups.items():
        if len(by_source) < 2 or reference not in by_source:
            continue
        base = by_source[reference]["by_unit"]
        compared.append(
            {
                "regime": regime,
                "ratio": ratio,
                "sources": by_source,
                "vs_reference": {
                    source: _paired(row["by_unit"], base, confidence)
                    for source, row in by_source.items()
                    if source != reference
                },
            }
        )
    return compared


def choose_setting(runs, lr_schedules, final_evals, confidence=0.95):
    """The validation choice: the (lr_schedule, final_evals) pair with the best mean validation accuracy.

    A run's figure for ``final_evals = k`` is the mean of its last ``k`` validation evaluations; a candidate's
    score is the mean of that figure over its runs (the baseline regimes, hold-outs and seeds trained with its
    schedule). Ties go to the earlier candidate (schedules, then final_evals, in the order listed). Only
    validation curves enter: the test split plays no part.

    Args:
        runs: dicts with ``"lr_schedule"`` and ``"val_curve"`` (validation accuracy per evaluation, in order).
        lr_schedules, final_evals: the candidates.
        confidence: coverage of each candidate's interval (over runs), for the report.

    Returns:
        ``{"chosen": {"lr_schedule", "final_evals"}, "score": float, "candidates": [{"lr_schedule",
        "final_evals", "runs", "mean", "std", "low", "high"}]}``.

    Raises:
        UserError: a candidate schedule without runs, or a ``final_evals`` longer than a run's curve.
    """
    candidates = []
    for schedule in lr_schedules:
        curves = [run["val_curve"] for run in runs if run["lr_schedule"] == schedule]
        if not curves:
            raise UserError(f"no validation run with lr_schedule={schedule!r} to choose from")
        for k in final_evals:
            if any(len(curve) < int(k) for curve in curves):
                raise UserError(f"final_evals={k} is longer than a validation curve ({min(map(len, curves))} points)")
            interval = stats.t_interval([float(np.mean(curve[-int(k) :])) for curve in curves], confidence)
            candidates.append({"lr_schedule": schedule, "final_evals": int(k), "runs": interval.pop("n"), **interval})
    best = max(candidates, key=lambda row: row["mean"])  # max keeps the first of equal scores
    return {
        "chosen": {"lr_schedule": best["lr_schedule"], "final_evals": best["final_evals"]},
        "score": best["mean"],
        "candidates": candidates,
    }


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
