"""The study's summary as Markdown and HTML, with its plots.

The report is assembled once as a list of blocks (headings, paragraphs, tables, images) and rendered twice,
so ``report.md`` and ``report.html`` always say the same thing: :func:`render_markdown` here, the HTML by
:func:`keras_morsa.html.blocks`. Both serve other reports too (``bin/gan_quality``).
"""

import math

import numpy as np
from scipy import stats as scipy_stats

from keras_morsa import html, io
from keras_morsa.evaluation import plots
from keras_morsa.evaluation import summary as summary_lib
from keras_morsa.evaluation.regimes import SYNTHETIC_REGIMES, cell_name


def _pct(value):
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def _interval(result):
    if math.isnan(result["low"]):
        return "n/a"
    return f"[{_pct(result['low'])}, {_pct(result['high'])}]"


def _signed(difference):
    return "" if difference is None else f"{100 * difference['mean']:+.1f}"


def _curves_by_cell(results, curves, arch):
    run_cell = {
        row["run_id"]: (row["regime"], row["ratio"], row.get("source", "")) for row in results if row["arch"] == arch
    }
    by_cell = {}
    for point in curves:
        if point["run_id"] in run_cell:
            steps = by_cell.setdefault(run_cell[point["run_id"]], {})
            steps.setdefault(int(point["step"]), []).append(float(point["test_accuracy"]))
    return by_cell


def _summed_confusion(results, arch, cell):
    rows = [row for row in results if row["arch"] == arch and row["cell"] == cell]
    return np.sum([row["confusion"] for row in rows], axis=0), len(rows)


def per_class_change(results, arch, cell):
    """``{class: (real mean, cell mean, mean paired change)}``: per-class test accuracy over the seeds (and
    hold-outs) that ran both ``real`` and ``cell`` for ``arch``."""
    by_seed = {}
    for row in results:
        if row["arch"] == arch and row["cell"] in ("real", cell):
            by_seed.setdefault(summary_lib.pairing_unit(row), {})[row["cell"]] = row["per_class_accuracy"]
    pairs = [runs for runs in by_seed.values() if len(runs) == 2] if cell != "real" else []
    if not pairs:
        return {}
    return {
        name: (
            float(np.mean([p["real"][name] for p in pairs])),
            float(np.mean([p[cell][name] for p in pairs])),
            float(np.mean([p[cell][name] - p["real"][name] for p in pairs])),
        )
        for name in pairs[0]["real"]
    }


def _quality_blocks(summary, results, qualities, arch, workdir):
    """Each class's synthetic quality (``bin/gan_quality``) beside its accuracy change in the best cell that
    mixes synthetic images into real ones, and a scatter of the two (the quality of that cell's source)."""
    mixing = [
        row
        for row in summary
        if row["arch"] == arch and row["regime"] in SYNTHETIC_REGIMES and row["regime"] != "synthetic_only"
    ]
    if not mixing:
        return []
    best = max(mixing, key=lambda r: r["accuracy"]["mean"])
    cell, quality = best["cell"], qualities.get(best["source"])
    if quality is None:
        return []
    change = per_class_change(results, arch, cell)
    names = [name for name in results[0]["class_names"] if name in change and name in quality["classes"]]
    if not names:
        return []
    rows = [quality["classes"][name] for name in names]
    has_cas = all(row.get("cas") is not None for row in rows)
    table = [
        ["class", "KID", "precision", "coverage", "memorised %"]
        + (["CAS"] if has_cas else [])
        + ["real", cell, "change"]
    ]
    for name, row in zip(names, rows):
        real, mixed, delta = change[name]
        table.append(
            [
                name,
                f"{row['kid']:.4f}",
                f"{row['precision']:.2f}",
                f"{row['coverage']:.2f}",
                _pct(row["memorised_share"]),
            ]
            + ([_pct(row["cas"])] if has_cas else [])
            + [_pct(real), _pct(mixed), f"{100 * delta:+.1f}"]
        )
    key, label = (
        ("cas", "CAS (real-trained classifier's accuracy on the class's synthetic images)")
        if has_cas
        else ("coverage", "coverage of the class's train images by its synthetic images")
    )
    xs, ys = [row[key] for row in rows], [change[name][2] for name in names]
    png = f"quality_vs_change_{arch}.png"
    plots.plot_quality_vs_change(
        xs, ys, names, label, f"{arch}: per-class quality against {cell}'s change", workdir / png
    )
    rho = scipy_stats.spearmanr(xs, ys).statistic if len(names) > 2 and np.ptp(xs) and np.ptp(ys) else float("nan")
    return [
        (
            "p",
            f"Synthetic quality per class (bin/gan_quality: {quality['settings']['features']}) beside per-class "
            f"test accuracy of real only and of {cell}, the synthetic mix with the best mean accuracy (chosen by "
            "that test accuracy, so its gains are optimistic), and the mean paired change over seeds:",
        ),
        ("table", table),
        (
            "p",
            f"Spearman rank correlation of {key} with the change over {len(names)} classes: "
            + ("n/a" if math.isnan(rho) else f"{rho:+.2f}")
            + " (a handful of classes: a hint, not a test).",
        ),
        ("img", png),
    ]


def _choice_blocks(choice, level):
    """The validation choice: what was held out, every candidate's validation accuracy, what was chosen."""
    table = [["lr_schedule", "final_evals", "runs", "mean val. acc.", "std", f"{level} CI", ""]]
    for row in choice["candidates"]:
        chosen = {key: row[key] for key in ("lr_schedule", "final_evals")} == choice["chosen"]
        table.append(
            [
                row["lr_schedule"],
                str(row["final_evals"]),
                str(row["runs"]),
                _pct(row["mean"]),
                _pct(row["std"]),
                _interval(row),
                "chosen" if chosen else "",
            ]
        )
    sizes = ", ".join(f"{count} (hold-out {seed})" for seed, count in choice["val_images"].items())
    return [
        ("h2", "Validation choice"),
        (
            "p",
            f"lr_schedule and final_evals were chosen on validation accuracy only: a seeded, stratified "
            f"{100 * choice['validation_share']:g} % of each class's train images held out "
            f"(validation images: {sizes}; whole groups of identical bytes, disjoint from train and test), "
            f"with {', '.join(choice['regimes'])} trained on the rest. The test split was not read for the "
            f"choice. Chosen: lr_schedule={choice['chosen']['lr_schedule']}, final_evals="
            f"{choice['chosen']['final_evals']} (best mean validation accuracy; ties to the first listed).",
        ),
        ("table", table),
    ]


def _source_blocks(summary, arch, reference, level, confidence):
    """The synthetic sources side by side, each paired against the reference source."""
    compared = summary_lib.compare_sources(summary, arch, reference, confidence)
    if not compared:
        return []
    others = sorted({source for group in compared for source in group["vs_reference"]})
    header = ["cell", f"{reference} mean", f"{level} CI"]
    for source in others:
        header += [f"{source} mean", f"{level} CI", f"{source} - {reference}", f"{level} CI", "MDE"]
    table = [header]
    for group in compared:
        base = group["sources"][reference]["accuracy"]
        line = [cell_name(group["regime"], group["ratio"]), _pct(base["mean"]), _interval(base)]
        for source in others:
            if source not in group["vs_reference"]:
                line += [""] * 5
                continue
            accuracy, difference = group["sources"][source]["accuracy"], group["vs_reference"][source]
            line += [
                _pct(accuracy["mean"]),
                _interval(accuracy),
                _signed(difference),
                _interval(difference),
                _pct(difference["mde"]),
            ]
        table.append(line)
    return [
        (
            "p",
            f"Synthetic sources side by side: each cell on every source, and each source's paired difference "
            f"against {reference} (same seeds, initial weights and data order; only the synthetic folder "
            "differs), with its interval and minimum detectable effect:",
        ),
        ("table", table),
    ]


def _blocks(results, curves, config, workdir, qualities=None, choice=None):
    summary = summary_lib.summarize(results, config.confidence)
    level = f"{100 * config.confidence:g} %"
    sources = sorted({row["source"] for row in summary if row["source"]})
    repeated = any(row.get("split") is not None for row in results)
    units = "hold-outs x seeds" if repeated else "seeds"
    blocks = [
        ("h1", "Real/synthetic ratio study"),
        ("p", summary_lib.describe_budget(config)),
        (
            "p",
            f"{len(results)} runs. Intervals are two-sided {level} Student-t intervals over {units}; "
            "'vs real' and 'vs trad.' are the paired differences against the real-only and the traditional "
            f"runs of the same {units} (same initial weights and data order), with their t-intervals; 'MDE' is "
            "the smallest paired difference against real the study could detect with 80 % power at its "
            "observed spread (an interval including 0 means no effect of that size or more was seen, not no "
            "effect). A cell 'helps' only where its whole interval is above 0. Accuracy in %; the test split "
            f"gives these final numbers only (a run's accuracy: mean of its last {config.final_evals} "
            "evaluation(s)).",
        ),
    ]
    if repeated:
        blocks.append(
            (
                "p",
                f"Repeated splits: every run trains on the train split less a validation share of "
                f"{100 * float(config.validation_share):g} % per class, drawn once per hold-out seed "
                f"({', '.join(map(str, config.validation_seeds))}); the test split is the same for all.",
            )
        )
    if choice is not None:
        blocks += _choice_blocks(choice, level)
    for arch in sorted({row["arch"] for row in summary}):
        rows = [row for row in summary if row["arch"] == arch]
        table = [
            [
                "cell",
                units,
                "mean",
                "std",
                f"{level} CI",
                "macro-F1",
                "vs real",
                f"{level} CI",
                "MDE",
                "vs trad.",
                f"{level} CI",
            ]
        ]
        for row in rows:
            acc, real, trad = row["accuracy"], row["vs_real"], row["vs_traditional"]
            table.append(
                [
                    row["cell"],
                    str(acc["n"]),
                    _pct(acc["mean"]),
                    _pct(acc["std"]),
                    _interval(acc),
                    _pct(row["macro_f1"]),
                    _signed(real),
                    _interval(real) if real else "",
                    _pct(real["mde"]) if real else "",
                    _signed(trad),
                    _interval(trad) if trad else "",
                ]
            )
        blocks += [("h2", arch), ("table", table)]
        if len(sources) > 1:
            blocks += _source_blocks(summary, arch, config.reference_source or sources[0], level, config.confidence)
        for baseline, found in summary_lib.verdicts(summary, arch).items():
            difference = found["difference"]
            blocks.append(
                (
                    "p",
                    f"Best cell against {baseline}: {found['cell']}, {_signed(difference)} points "
                    f"{_interval(difference)}: {found['verdict']}.",
                )
            )
        strategy_png = f"accuracy_by_cell_{arch}.png"
        plots.plot_accuracy_by_cell(summary, arch, workdir / strategy_png)
        blocks += [
            ("p", "Final accuracy of every cell with its interval (dashed: the baselines' means):"),
            ("img", strategy_png),
        ]
        curve_png = f"curves_{arch}.png"
        plots.plot_curves(_curves_by_cell(results, curves, arch), arch, workdir / curve_png)
        blocks += [("p", "Test accuracy against training step (mean over seeds):"), ("img", curve_png)]
        if any(row["ratio"] is not None for row in rows):
            ratio_png = f"accuracy_vs_ratio_{arch}.png"
            plots.plot_accuracy_vs_ratio(summary, arch, workdir / ratio_png)
            blocks += [
                ("p", "Final accuracy against the synthetic ratio; bands are the baselines' mean and interval:"),
                ("img", ratio_png),
            ]
        augmented = [row for row in rows if row["regime"] != "real"]
        best = max(augmented, key=lambda row: row["accuracy"]["mean"]) if augmented else None
        for label, cell in (("real", "real"), ("best", best["cell"] if best else None)):
            if cell is None or not any(row["cell"] == cell for row in rows):
                continue
            matrix, count = _summed_confusion(results, arch, cell)
            png = f"confusion_{arch}_{label}.png"
            title = f"{arch} {cell}: test predictions summed over {count} seed(s)"
            plots.plot_confusion(matrix, results[0]["class_names"], title, workdir / png)
            blocks += [
                ("p", f"Confusion matrix, {cell}" + (" (best cell by mean accuracy)" if label == "best" else "") + ":"),
                ("img", png),
            ]
        if qualities:
            blocks += _quality_blocks(summary, results, qualities, arch, workdir)
    return blocks


def render_markdown(blocks):
    """Markdown of report blocks: ``(kind, content)`` with kind h1/h2/p (text), img (a relative PNG path) or
    table (a list of rows of strings, the first the header); :func:`keras_morsa.html.blocks` renders the same
    blocks as HTML."""
    lines = []
    for kind, content in blocks:
        if kind in ("h1", "h2"):
            lines += ["#" * int(kind[1]) + " " + content, ""]
        elif kind == "p":
            lines += [content, ""]
        elif kind == "img":
            lines += [f"![{content}]({content})", ""]
        else:
            lines.append("| " + " | ".join(content[0]) + " |")
            lines.append("|" + "---|" * len(content[0]))
            lines += ["| " + " | ".join(row) + " |" for row in content[1:]]
            lines.append("")
    return "\n".join(lines)


def write_report(results, curves, config, workdir, qualities=None, choice=None):
    """Writes ``report.md``, ``report.html`` and their PNGs into ``workdir``; returns the Markdown text.

    ``qualities``: ``{source: quality.json}`` of the synthetic folders (``bin/gan_quality``), shown beside
    per-class accuracy; ``choice``: the validation choice (``validation/choice.json``), shown with its figures.
    """
    blocks = _blocks(results, curves, config, workdir, qualities, choice)
    markdown = render_markdown(blocks)
    with io.atomic_write(workdir / "report.md", "w") as f:
        f.write(markdown)
    html.write_page(workdir / "report.html", "Ratio study", html.blocks(blocks))
    return markdown
