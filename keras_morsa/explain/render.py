"""The pictures and the page of the Grad-CAM report: overlays, one grid per image group, ``report.html``.

Drawing only: the maps come computed (:class:`keras_morsa.explain.compute.Explained`), the numbers scored
(:class:`keras_morsa.explain.scores.Summary`). The page is built with :mod:`keras_morsa.html`, like the
study's and the quality report's.
"""

import dataclasses

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_morsa import html, io
from keras_morsa.explain.scores import verdict

#: The Grad-CAM page's style: full width, ruled table cells.
STYLE = (
    "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} "
    "td,th{border:1px solid #bbb;padding:3px 6px;font-size:13px} img{max-width:100%}"
)


def overlay(image, heatmap, alpha=0.45):
    """The image (float [H, W, 3] in 0..255) blended with a jet-coloured heatmap ([H, W] in [0, 1]): float in [0, 1]."""
    colours = colormaps["jet"](heatmap)[..., :3]
    return np.clip((1 - alpha) * image / 255.0 + alpha * colours, 0, 1)


@dataclasses.dataclass(frozen=True, eq=False)
class GridColumn:
    """One image of a grid: its true label and, per model (in the grid's row order), the model's input image,
    map and predicted class."""

    label: int
    images: tuple
    maps: tuple
    preds: tuple

    @property
    def image(self):
        """The image shown in the first row (the first model's input)."""
        return self.images[0]


def grid_columns(views, outcome, count, seed):
    """Up to ``count`` images with ``outcome`` (``"correct"``/``"wrong"``) for any of the models, stratified
    over classes (one per class in turn, a seeded draw within each class), so a grid never shows only the
    first classes in file order.

    Args:
        views: one :class:`~keras_morsa.explain.compute.Explained` per model, all on the same images.
    """
    labels = views[0].labels
    wanted = np.logical_or.reduce([view.members(outcome) for view in views])
    rng = np.random.default_rng(seed)
    by_class = [list(rng.permutation(np.flatnonzero(wanted & (labels == label)))) for label in np.unique(labels)]
    order = [
        members[turn]
        for turn in range(max(map(len, by_class), default=0))
        for members in by_class
        if turn < len(members)
    ]
    return [
        GridColumn(
            label=int(labels[i]),
            images=tuple(view.images[i] for view in views),
            maps=tuple(view.maps[i] for view in views),
            preds=tuple(int(view.pred[i]) for view in views),
        )
        for i in order[:count]
    ]


def draw_grid(path, title, columns, class_names, model_titles):
    """One PNG: per column the image, then each model's overlay titled T/P; an empty group says so."""
    rows = 1 + len(model_titles)
    figure = Figure(figsize=(max(len(columns), 3) * 1.5, rows * 1.7 + 0.4), dpi=100)
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=10)
    if not columns:
        figure.text(0.5, 0.5, "no images in this group", ha="center", va="center", fontsize=11)
    for col, column in enumerate(columns):
        axes = [figure.add_subplot(rows, len(columns), row * len(columns) + col + 1) for row in range(rows)]
        axes[0].imshow(column.image.astype(np.uint8))
        axes[0].set_title(f"T: {class_names[column.label]}", fontsize=7)
        for ax, image, heatmap, predicted in zip(axes[1:], column.images, column.maps, column.preds):
            ax.imshow(overlay(image, heatmap))
            ax.set_title(
                f"T: {class_names[column.label]}\nP: {class_names[predicted]}",
                fontsize=7,
                color="green" if predicted == column.label else "red",
            )
        for row, ax in enumerate(axes):
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel("image" if row == 0 else model_titles[row - 1], fontsize=7)
    figure.tight_layout()
    with io.atomic_write(path) as f:
        figure.savefig(f, format="png")
    return path


def _cell(interval):
    if interval is None:
        return "n/a"
    if interval.n == 0:
        return "empty"
    return f"{interval.mean:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _scores_table(summary, model_titles):
    fractions = [d.fraction for d in summary.groups[0].deletion] if summary.groups else []
    rows = [
        ["model", "group", "n", "area", "mask energy", "pointing game"]
        + [f"drop top {float(f) * 100:.0f} % (map / random)" for f in fractions]
    ]
    for scores in summary.groups:
        rows.append(
            [
                model_titles[scores.model],
                scores.group.replace("_", " "),
                str(scores.n),
                _cell(scores.area),
                _cell(scores.mask_energy),
                _cell(scores.pointing_game),
            ]
            + [f"{_cell(d.map)} / {_cell(d.random)}" for d in scores.deletion]
        )
    return html.table(rows)


def _model_line(title, info):
    accuracy = info.get("test_accuracy")
    return f"{title}: {info.get('run_id', info['path'])}" + (
        f", test accuracy {accuracy:.3f}" if isinstance(accuracy, float) else ""
    )


def page_sections(summary, grids, model_titles):
    """The sections of ``report.html``: the verdict, the models, the method, the numbers, the grids.

    Args:
        summary: :class:`~keras_morsa.explain.scores.Summary`.
        grids: ``{group: PNG path}``, embedded in this order.
        model_titles: ``{model key: title}``.
    """
    settings = summary.settings
    layers = ", ".join(
        f"{name}: {layer} ({'x'.join(map(str, settings['map_size'][name]))} map)"
        for name, layer in settings["layer"].items()
    )
    sections = [
        html.heading("Grad-CAM: baseline vs best augmented classifier"),
        f"<p><b>Are the augmented model's maps narrower?</b> {html.escape(summary.narrower)}.</p>",
        html.bullets(f"{scope} images: {verdict(interval)}" for scope, interval in summary.comparison.items()),
        html.paragraph("Models:"),
        html.bullets(_model_line(model_titles[name], info) for name, info in summary.models.items()),
        html.paragraph(
            f"Method {settings['method']} on layer(s) {layers}; maps for {settings['maps_for']}; up to "
            f"{settings['max_images']} real test and {settings['max_images']} generated images, seed "
            f"{settings['seed']}. Cells: mean [95 % interval], {settings['interval']}. Area: share of pixels "
            "with normalised map ≥ 0.5. Mask energy: share of the map on the object. Pointing game: share of "
            'maps whose maximum is on the object ("n/a" without masks). Deletion: drop of the predicted '
            "class's probability when the map's top pixels are filled with the image's mean colour, against as "
            "many pixels at random (a faithful map drops more)."
        ),
        _scores_table(summary, model_titles),
        html.heading("Grids", 2),
        html.paragraph(
            "Each column: the image, then the baseline's and the augmented model's overlays; T is the "
            "true label, P the model's prediction (green: correct, red: wrong)."
        ),
    ]
    for group, grid in grids.items():
        sections.append(html.heading(group.replace("_", " "), 3) + html.image(grid, alt=group, embed=True))
    return sections


def write_page(path, summary, grids, model_titles):
    """Writes the self-contained ``report.html`` (grids embedded as base64); returns ``path``."""
    return html.write_page(path, "Grad-CAM report", page_sections(summary, grids, model_titles), style=STYLE)
