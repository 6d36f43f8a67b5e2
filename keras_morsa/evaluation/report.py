"""The study's summary as Markdown and HTML, with its plots.

The report is assembled once as a list of blocks (headings, paragraphs, tables, images) and rendered twice,
so ``report.md`` and ``report.html`` always say the same thing: :func:`render_markdown` here, the HTML by
:func:`keras_morsa.html.blocks`. Both serve other reports too (``bin/gan_quality``).
"""

import math

import numpy as np

from keras_morsa import html, io
from keras_morsa.evaluation import plots
from keras_morsa.evaluation import summary as summary_lib


def _pct(value):
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def _interval(result):
    if math.isnan(result["low"]):
        return "n/a"
    return f"[{_pct(result['low'])}, {_pct(result['high'])}]"


def _signed(difference):
    return "" if difference is None else f"{100 * difference['mean']:+.1f}"


def _curves_by_cell(results, curves, arch):
    run_cell = {row["run_id"]: (row["regime"], row["ratio"]) for row in results if row["arch"] == arch}
    by_cell = {}
    for point in curves:
        if point["run_id"] in run_cell:
            steps = by_cell.setdefault(run_cell[point["run_id"]], {})
            steps.setdefault(int(point["step"]), []).append(float(point["test_accuracy"]))
    return by_cell


def _summed_confusion(results, arch, cell):
    rows = [row for row in results if row["arch"] == arch and row["cell"] == cell]
    return np.sum([row["confusion"] for row in rows], axis=0), len(rows)


def _blocks(results, curves, config, workdir):
    summary = summary_lib.summarize(results, config.confidence)
    level = f"{100 * config.confidence:g} %"
    blocks = [
        ("h1", "Real/synthetic ratio study"),
        ("p", summary_lib.describe_budget(config)),
        ("p", f"{len(results)} runs. Intervals are two-sided {level} Student-t intervals over seeds; "
              "'vs real' and 'vs trad.' are the paired differences against the real-only and the traditional "
              "runs of the same seeds (same initial weights and data order), with their t-intervals; 'MDE' is "
              "the smallest paired difference against real the study could detect with 80 % power at its "
              "observed spread (an interval including 0 means no effect of that size or more was seen, not no "
              "effect). A cell 'helps' only where its whole interval is above 0. Accuracy in %; the test split "
              f"gives these final numbers only (a run's accuracy: mean of its last {config.final_evals} "
              "evaluation(s))."),
    ]
    for arch in sorted({row["arch"] for row in summary}):
        rows = [row for row in summary if row["arch"] == arch]
        table = [["cell", "seeds", "mean", "std", f"{level} CI", "macro-F1", "vs real", f"{level} CI",
                  "MDE", "vs trad.", f"{level} CI"]]
        for row in rows:
            acc, real, trad = row["accuracy"], row["vs_real"], row["vs_traditional"]
            table.append([
                row["cell"], str(acc["n"]), _pct(acc["mean"]), _pct(acc["std"]), _interval(acc),
                _pct(row["macro_f1"]), _signed(real), _interval(real) if real else "",
                _pct(real["mde"]) if real else "", _signed(trad), _interval(trad) if trad else "",
            ])
        blocks += [("h2", arch), ("table", table)]
        for baseline, found in summary_lib.verdicts(summary, arch).items():
            difference = found["difference"]
            blocks.append(("p", f"Best cell against {baseline}: {found['cell']}, {_signed(difference)} points "
                                f"{_interval(difference)}: {found['verdict']}."))
        strategy_png = f"accuracy_by_cell_{arch}.png"
        plots.plot_accuracy_by_cell(summary, arch, workdir / strategy_png)
        blocks += [("p", "Final accuracy of every cell with its interval (dashed: the baselines' means):"),
                   ("img", strategy_png)]
        curve_png = f"curves_{arch}.png"
        plots.plot_curves(_curves_by_cell(results, curves, arch), arch, workdir / curve_png)
        blocks += [("p", "Test accuracy against training step (mean over seeds):"), ("img", curve_png)]
        if any(row["ratio"] is not None for row in rows):
            ratio_png = f"accuracy_vs_ratio_{arch}.png"
            plots.plot_accuracy_vs_ratio(summary, arch, workdir / ratio_png)
            blocks += [("p", "Final accuracy against the synthetic ratio; bands are the baselines' mean and "
                             "interval:"), ("img", ratio_png)]
        augmented = [row for row in rows if row["regime"] != "real"]
        best = max(augmented, key=lambda row: row["accuracy"]["mean"]) if augmented else None
        for label, cell in (("real", "real"), ("best", best["cell"] if best else None)):
            if cell is None or not any(row["cell"] == cell for row in rows):
                continue
            matrix, count = _summed_confusion(results, arch, cell)
            png = f"confusion_{arch}_{label}.png"
            title = f"{arch} {cell}: test predictions summed over {count} seed(s)"
            plots.plot_confusion(matrix, results[0]["class_names"], title, workdir / png)
            blocks += [("p", f"Confusion matrix, {cell}" + (" (best cell by mean accuracy)" if label == "best"
                                                             else "") + ":"), ("img", png)]
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


def write_report(results, curves, config, workdir):
    """Writes ``report.md``, ``report.html`` and their PNGs into ``workdir``; returns the Markdown text."""
    blocks = _blocks(results, curves, config, workdir)
    markdown = render_markdown(blocks)
    with io.atomic_write(workdir / "report.md", "w") as f:
        f.write(markdown)
    html.write_page(workdir / "report.html", "Ratio study", html.blocks(blocks))
    return markdown
