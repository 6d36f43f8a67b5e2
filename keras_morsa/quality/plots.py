"""Pictures of synthetic image quality: nearest generated/train pairs, and quality against training step."""

import math

import numpy as np
from matplotlib.figure import Figure

from keras_morsa.evaluation.plots import save_figure


def nearest_pairs_grid(path, pairs, title, threshold):
    """One PNG: per column a generated image above its nearest training image, titled with their distance.

    Args:
        path: the PNG to write.
        pairs: ``[(generated uint8 [H, W, 3], train uint8 [H, W, 3], distance)]``, closest first.
        title: the figure title.
        threshold: the memorisation threshold; distances below it are titled in red ("likely copy").
    """
    columns = max(len(pairs), 1)
    figure = Figure(figsize=(max(columns, 3) * 1.4, 3.4))
    figure.suptitle(title, fontsize=9)
    if not pairs:
        figure.text(0.5, 0.5, "no generated images", ha="center", va="center")
    for col, (generated, train, distance) in enumerate(pairs):
        top = figure.add_subplot(2, columns, col + 1)
        bottom = figure.add_subplot(2, columns, columns + col + 1)
        top.imshow(generated)
        bottom.imshow(train)
        top.set_title(f"d={distance:.3g}", fontsize=7, color="red" if distance < threshold else "black")
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
        if col == 0:
            top.set_ylabel("generated", fontsize=7)
            bottom.set_ylabel("nearest train", fontsize=7)
    save_figure(figure, path)
    return path


def quality_curve(path, rows, title, best_step=None):
    """KID (left axis, log scale when positive) and coverage (right axis) against the training step.

    Args:
        path: the PNG to write.
        rows: dicts with ``step``, ``kid`` and ``coverage`` (rows without a KID are skipped).
        title: the figure title.
        best_step: marked with a vertical line (the kept ``generator_best.keras``).
    """
    rows = [r for r in rows if r.get("kid") not in (None, "") and math.isfinite(float(r["kid"]))]
    steps = np.array([int(r["step"]) for r in rows])
    kid = np.array([float(r["kid"]) for r in rows])
    coverage = np.array([float(r["coverage"]) for r in rows])
    figure = Figure(figsize=(6, 3.5))
    ax = figure.add_subplot(1, 1, 1)
    ax.plot(steps, kid, "o-", color="tab:blue", label="KID")
    if len(kid) and (kid > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("KID (lower is better)", color="tab:blue")
    right = ax.twinx()
    right.plot(steps, coverage, "s--", color="tab:orange", label="coverage")
    right.set_ylim(0, 1.05)
    right.set_ylabel("coverage (higher is better)", color="tab:orange")
    if best_step is not None:
        ax.axvline(best_step, color="gray", linestyle=":", label=f"best (step {best_step})")
    ax.legend(loc="upper center", fontsize=8)
    ax.set_title(title, fontsize=10)
    save_figure(figure, path)
    return path
