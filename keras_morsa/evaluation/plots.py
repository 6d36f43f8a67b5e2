"""PNG figures of the ratio study (matplotlib's Agg canvas: no display, no global backend switch).

- :func:`plot_curves`: test accuracy against training step, mean over seeds, one line per regime and ratio
  (left panel: real + synthetic at each ratio; right: the same with traditional augmentation).
- :func:`plot_accuracy_vs_ratio`: final test accuracy against the synthetic ratio with t-interval error
  bars; the ``real``, ``traditional`` and ``synthetic_only`` results as horizontal bands (mean and interval).
- :func:`plot_confusion`: a row-normalised confusion matrix with counts.
- :func:`plot_quality_vs_change`: one point per class, its synthetic quality against its accuracy change.
"""

import math

import numpy as np
from matplotlib import cm
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_morsa import io
from keras_morsa.evaluation.regimes import RATIO_REGIMES, cell_name

_BASELINES = {"real": "black", "traditional": "tab:gray", "synthetic_only": "tab:red"}


def save_figure(figure, path):
    """Writes a matplotlib ``Figure`` as PNG (110 dpi, tight), atomically."""
    FigureCanvasAgg(figure)
    with io.atomic_write(path) as f:
        figure.savefig(f, format="png", dpi=110, bbox_inches="tight")


def _source_styles(sources):
    """A line style per synthetic source name (solid for the first, or for the unnamed one)."""
    return dict(zip(sorted(set(sources)), ("-", ":", "-.", (0, (5, 1)), (0, (1, 3)))))


def _ratio_colour(ratio, ratios):
    position = 0.0 if len(ratios) < 2 else ratios.index(ratio) / (len(ratios) - 1)
    return cm.viridis(0.1 + 0.8 * position)


def plot_curves(curves, arch, path):
    """Test accuracy vs step for one architecture.

    Args:
        curves: ``{(regime, ratio, source): {step: [accuracy per seed]}}`` (source "" when unnamed; each
            named source gets its own line style).
        arch: the architecture, for the title.
        path: output PNG.
    """
    figure = Figure(figsize=(11, 4.2))
    axes = figure.subplots(1, 2, sharey=True)
    ratios = sorted({ratio for _, ratio, _ in curves if ratio is not None})
    styles = _source_styles(source for _, _, source in curves)
    for ax, mixed in zip(axes, ("synthetic", "traditional+synthetic")):
        for (regime, ratio, source), points in sorted(
            curves.items(), key=lambda item: (item[0][0], item[0][1] or 0.0, item[0][2])
        ):
            steps = sorted(points)
            mean = [float(np.mean(points[s])) for s in steps]
            if regime in _BASELINES:
                ax.plot(
                    steps,
                    mean,
                    color=_BASELINES[regime],
                    linestyle="--" if regime != "real" else "-",
                    linewidth=2,
                    label=regime,
                )
            elif regime == mixed:
                ax.plot(
                    steps,
                    mean,
                    color=_ratio_colour(ratio, ratios),
                    linestyle=styles[source],
                    label=cell_name(regime, ratio, source),
                )
        ax.set_title(f"{arch}: real + {mixed.replace('+', ' + ')}")
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("test accuracy (mean over seeds)")
    save_figure(figure, path)


def plot_accuracy_vs_ratio(summary, arch, path):
    """Final test accuracy vs synthetic ratio for one architecture, baselines as horizontal bands.

    Args:
        summary: rows of ``summary.summarize`` (other architectures are ignored).
        arch: the architecture to draw.
        path: output PNG.
    """
    figure = Figure(figsize=(6.5, 4.5))
    ax = figure.subplots()
    rows = [row for row in summary if row["arch"] == arch]
    ratios = sorted({row["ratio"] for row in rows if row["regime"] in RATIO_REGIMES})
    for row in rows:
        if row["regime"] in _BASELINES:
            acc = row["accuracy"]
            ax.axhline(
                acc["mean"],
                color=_BASELINES[row["regime"]],
                linewidth=1.5,
                label=f"{row['regime']} ({acc['mean']:.3f})",
            )
            if not math.isnan(acc["low"]):
                ax.axhspan(acc["low"], acc["high"], color=_BASELINES[row["regime"]], alpha=0.15)
    markers = dict(zip(RATIO_REGIMES, "osD"))
    sources = sorted({row["source"] for row in rows if row["regime"] in RATIO_REGIMES})
    styles = _source_styles(sources)
    lines = [(regime, source) for regime in RATIO_REGIMES for source in sources]
    for index, (regime, source) in enumerate(lines):
        offset = 0.02 * (index - (len(lines) - 1) / 2) / max(1, len(lines) - 1)
        points = sorted(
            (row["ratio"], row["accuracy"]) for row in rows if row["regime"] == regime and row["source"] == source
        )
        if not points:
            continue
        x = np.array([p[0] for p in points]) + offset * (ratios[-1] if ratios else 1.0)
        mean = np.array([p[1]["mean"] for p in points])
        half = np.array([0.0 if math.isnan(p[1]["high"]) else p[1]["high"] - p[1]["mean"] for p in points])
        ax.errorbar(
            x,
            mean,
            yerr=half,
            marker=markers[regime],
            linestyle=styles[source],
            capsize=4,
            label=f"{cell_name(regime, None, source)} (95 % t-interval)",
        )
    ax.set_xlabel("synthetic images per real image (ratio)")
    ax.set_ylabel("test accuracy on the real test split")
    ax.set_title(f"{arch}: accuracy vs synthetic ratio")
    if ratios:
        ax.set_xticks(ratios)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    save_figure(figure, path)


def plot_accuracy_by_cell(summary, arch, path):
    """Every cell's final test accuracy with its interval, one row per cell; the baselines dashed. The
    arguments are those of :func:`plot_accuracy_vs_ratio`."""
    rows = [row for row in summary if row["arch"] == arch]
    figure = Figure(figsize=(6.5, 1.2 + 0.35 * len(rows)))
    ax = figure.subplots()
    y = np.arange(len(rows))[::-1]
    mean = np.array([row["accuracy"]["mean"] for row in rows])
    low = np.array([row["accuracy"]["low"] for row in rows])
    high = np.array([row["accuracy"]["high"] for row in rows])
    spread = np.where(np.isnan(low), 0.0, np.stack([mean - low, high - mean]))
    ax.errorbar(mean, y, xerr=spread, fmt="o", capsize=3, color="tab:blue")
    for row in rows:
        if row["regime"] in _BASELINES:
            ax.axvline(
                row["accuracy"]["mean"],
                color=_BASELINES[row["regime"]],
                linestyle="--",
                linewidth=1,
                label=row["regime"],
            )
    ax.set_yticks(y, [row["cell"] for row in rows], fontsize=8)
    ax.set_xlabel("test accuracy on the real test split (mean over seeds, 95 % t-interval)")
    ax.set_title(f"{arch}: accuracy by training set")
    ax.grid(alpha=0.3, axis="x")
    if any(row["regime"] in _BASELINES for row in rows):
        ax.legend(fontsize=7, loc="best")
    save_figure(figure, path)


def plot_confusion(matrix, class_names, title, path):
    """A confusion matrix (rows: true class, columns: predicted), colour = row share, text = count."""
    matrix = np.asarray(matrix, np.float64)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)
    size = max(4.0, 0.55 * len(class_names) + 2.0)
    figure = Figure(figsize=(size, size))
    ax = figure.subplots()
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    for i in ticks:
        for j in ticks:
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    f"{int(matrix[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    save_figure(figure, path)


def plot_quality_vs_change(quality, change, class_names, xlabel, title, path):
    """A scatter of each class's synthetic quality (x) against its accuracy change (y, points), labelled.

    Args:
        quality, change: floats per class (change as a fraction; drawn in percentage points).
        class_names: the point labels.
        xlabel, title: axis label and title.
        path: output PNG.
    """
    figure = Figure(figsize=(5.5, 4.2))
    ax = figure.subplots()
    y = 100 * np.asarray(change, np.float64)
    ax.scatter(quality, y, color="tab:blue")
    for x, value, name in zip(quality, y, class_names):
        ax.annotate(name, (x, value), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.axhline(0.0, color="black", linewidth=1, linestyle="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy change against real only (points)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    save_figure(figure, path)
