"""The Grad-CAM report of a ratio study: baseline (real data only) vs best augmented classifier.

:func:`gradcam_report` reads a study's ``eval_workdir`` (``models/real.keras``,
``models/best_augmented.keras``) and the split it used (see :func:`study_split`), explains both classifiers
on the same images (the real test split and, when given, a synthetic folder; each capped at ``max_images``,
drawn at random with ``seed``), and writes to ``out_dir``::

    grids/real_correct.png, grids/real_wrong.png,            one column per image: the image, then the
    grids/generated_correct.png, grids/generated_wrong.png   baseline's and the augmented model's overlays
    metrics.json                                             every number below, with its interval
    report.html                                              self-contained (PNGs embedded as base64)

Each model's maps are for its own predicted class. Groups are per model: an image is in "real_correct" for
the baseline if the baseline classified it correctly. A grid shows the images of its group for either model
(baseline's first, then the augmented model's, alternating), so both models appear on the same images; each
overlay is titled with the true (T) and predicted (P) labels, green when they agree.

Numbers per model and group (mean over images with a 95 % percentile-bootstrap interval, seeded):
area (share of pixels with a normalised map >= 0.5), energy in the object mask and the pointing game (real
test images with masks only; otherwise "n/a"), and deletion faithfulness (drop of the predicted class's
probability when the top 10/20/50 % of the map's pixels are mean-filled, against the same share removed at
random). The comparison of areas is paired: both models on the same images, augmented minus baseline; the
report calls the augmented maps "narrower" only when that interval lies below 0.

The work runs in three steps, each its own module: :mod:`.compute` explains one model on one set of images
(an ``Explained`` record), :mod:`.scores` turns the records into one ``GroupScores`` per (model, group) and the
area comparison (a ``Summary``, which is ``metrics.json``), :mod:`.render` draws the grids and the page.
"""

from pathlib import Path

import keras
import numpy as np

from keras_morsa import io
from keras_morsa.data import folder, pipeline, splits
from keras_morsa.errors import DataError, UserError
from keras_morsa.explain import metrics, render, scores
from keras_morsa.explain.compute import BATCH, explain, make_explainer
from keras_morsa.explain.gradcam import check_method
from keras_morsa.models.classifier import MIN_MAP_SIZE, class_names_of
from keras_morsa.models.saving import load_model

MODELS = ("real", "best_augmented")
MODEL_TITLES = {"real": "baseline (real only)", "best_augmented": "best augmented"}
SOURCES = ("real", "generated")
GROUPS = ("real_correct", "real_wrong", "generated_correct", "generated_wrong")
GRID_COLUMNS = 8


def _load_models(eval_workdir):
    models = {}
    for name in MODELS:
        path = Path(eval_workdir) / "models" / f"{name}.keras"
        if not path.is_file():
            raise UserError(f"{path} does not exist; expected a finished study (bin/eval_ratios) in eval_workdir")
        models[name] = load_model(path)
    names = [class_names_of(model) for model in models.values()]
    if names[0] != names[1]:
        raise DataError(f"the two models disagree on class names: {names[0]} vs {names[1]}")
    return models, names[0]


def _matches(manifest, checked=3):
    """Whether the first ``checked`` test files of ``manifest`` exist with the recorded bytes."""
    rows = [row for row in manifest.rows if row["split"] == "test"][:checked]
    paths = [manifest.image_root / row["path"] for row in rows]
    return bool(rows) and all(p.is_file() and io.sha256_file(p) == row["sha256"] for p, row in zip(paths, rows))


def study_split(eval_workdir, data_dir=None):
    """The split a study used, resolved against its image folder.

    The manifest is ``<eval_workdir>/split_manifest.csv`` when the study kept it there, else the one beside
    the data (``<data_dir>/split_manifest.csv``). Without ``data_dir`` the data is the built-in dataset: the
    cached builds (``morsa_parts.home()``) are searched for the one whose files match the manifest's SHA-256s
    (or, for a manifest beside the data, the one build holding a split).

    Raises:
        DataError: no matching split and images, or several candidate builds (then pass ``data_dir``).
    """
    from keras_morsa.data import morsa_parts

    if data_dir is not None:
        roots = [Path(data_dir)]
    else:
        home = morsa_parts.home()
        roots = sorted(p for p in home.iterdir() if (p / "images").is_dir()) if home.is_dir() else []
    kept = Path(eval_workdir) / splits.MANIFEST_NAME
    found = []
    for root in roots:
        path = kept if kept.is_file() else root / splits.MANIFEST_NAME
        if path.is_file():
            manifest = splits.SplitManifest.load(path, image_root=folder.find_image_root(root))
            if _matches(manifest):
                found.append(manifest)
    where = f"data_dir={data_dir}" if data_dir is not None else f"the built-in dataset cache {morsa_parts.home()}"
    if not found:
        raise DataError(
            f"no split of {eval_workdir} with its test images in {where}; pass data_dir= the folder the study used"
        )
    if len(found) > 1:
        raise DataError(
            f"{len(found)} built-in builds hold a split ({', '.join(str(m.image_root.parent) for m in found)}); "
            "pass data_dir= the one the study used"
        )
    return found[0]


def _subset(files, labels, max_images, rng):
    if len(files) <= max_images:
        return list(files), list(labels)
    keep = np.sort(rng.choice(len(files), size=max_images, replace=False))
    return [files[i] for i in keep], [labels[i] for i in keep]


def gradcam_report(
    eval_workdir,
    out_dir,
    synthetic_dir=None,
    data_dir=None,
    mask_dir=None,
    max_images=64,
    method="gradcam",
    layer=None,
    seed=0,
    fractions=metrics.DEFAULT_FRACTIONS,
    progress=True,
    min_map_size=MIN_MAP_SIZE,
):
    """Explains the study's baseline and best augmented classifiers and writes the report.

    Args:
        eval_workdir: a finished ratio study (``models/real.keras``, ``models/best_augmented.keras``).
        out_dir: where ``grids/*.png``, ``metrics.json`` and ``report.html`` go.
        synthetic_dir: generated images (``<dir>/<class>/*.png``); None leaves the generated groups empty.
        data_dir: the real data folder of the study; default the built-in dataset, found in its cache
            (:func:`study_split`).
        mask_dir: object masks ``<mask_dir>/<class>/<stem>.png``; default ``masks/`` beside the images.
            Without masks for every selected test image, the mask numbers are "n/a".
        max_images: at most this many real test images and this many generated images (seeded draw).
        method: ``"gradcam"`` (keras.ops, any backend), ``"gradcam++"`` or ``"scorecam"`` (tf-keras-vis,
            TensorFlow backend only).
        layer: the layer to explain; default the last layer whose spatial map is at least ``min_map_size``
            a side (4: a 2x2 map upsampled always peaks in a corner). The report names the layer and its size.
        seed: seeds the image draw, the random deletion baseline and the bootstrap.
        fractions: pixel shares removed for deletion faithfulness.
        progress: show a progress bar.

    Returns:
        The ``metrics.json`` content (a dict).

    Example:
        >>> gradcam_report("runs/study", "runs/gradcam", synthetic_dir="runs/synthetic")  # doctest: +SKIP
    """
    eval_workdir, out_dir = Path(eval_workdir), Path(out_dir)
    if int(max_images) < 1:
        raise UserError(f"max_images={max_images}; expected a positive integer")
    check_method(method)
    models, class_names = _load_models(eval_workdir)
    manifest = study_split(eval_workdir, data_dir)
    if manifest.class_names != class_names:
        raise DataError(f"model classes {class_names} differ from the split's classes {manifest.class_names}")
    rng = np.random.default_rng(seed)
    chosen = {"real": _subset(manifest.files("test"), manifest.labels("test"), int(max_images), rng)}
    generated = pipeline.list_synthetic(synthetic_dir, class_names) if synthetic_dir is not None else ([], [])
    chosen["generated"] = _subset(*generated, int(max_images), rng)

    bar = keras.utils.Progbar(
        max(len(MODELS) * sum(len(files) for files, _ in chosen.values()), 1), unit_name="image", verbose=int(progress)
    )
    views, layers, map_sizes = {}, {}, {}
    for name, model in models.items():
        size = int(model.inputs[0].shape[1])
        explainer = make_explainer(model, method, layer, min_map_size)
        layers[name], map_sizes[name] = explainer.layer_name, list(explainer.map_size)
        for source in SOURCES:
            files, labels = chosen[source]
            masks = (
                folder.load_masks([folder.mask_path(f, manifest.image_root, mask_dir) for f in files], size)
                if source == "real"
                else None
            )
            views[name, source] = explain(
                model,
                explainer,
                pipeline.load_images(files, size, BATCH),
                labels,
                masks,
                model_key=name,
                source=source,
                fractions=fractions,
                seed=seed,
                progress=bar,
            )

    settings = {
        "method": method,
        "layer": layers,
        "map_size": map_sizes,
        "max_images": int(max_images),
        "seed": int(seed),
        "min_map_size": int(min_map_size),
        "confidence": 0.95,
        "interval": "percentile bootstrap over images, 2000 resamples",
        "deletion_fill": "per-image mean colour",
        "fractions": list(fractions),
        "maps_for": "each model's predicted class",
        "eval_workdir": str(eval_workdir),
        "synthetic_dir": None if synthetic_dir is None else str(synthetic_dir),
    }
    summary = scores.Summary(
        settings=settings,
        models={name: _model_info(eval_workdir, name) for name in MODELS},
        class_names=class_names,
        groups=tuple(
            scores.score_group(views[name, source], outcome, fractions, seed)
            for name in MODELS
            for source, outcome in map(_split_group, GROUPS)
        ),
        comparison={
            scope: scores.area_difference(
                [views["best_augmented", s] for s in sources], [views["real", s] for s in sources], seed=seed
            )
            for scope, sources in (("all", SOURCES), ("real", ("real",)), ("generated", ("generated",)))
        },
    )

    titles = [MODEL_TITLES[name] for name in MODELS]
    grids = {}
    for group in GROUPS:
        source, outcome = _split_group(group)
        columns = render.grid_columns([views[name, source] for name in MODELS], outcome, GRID_COLUMNS, seed)
        title = f"{group.replace('_', ' ')} (columns: images in this group for either model)"
        grids[group] = render.draw_grid(out_dir / "grids" / f"{group}.png", title, columns, class_names, titles)
    report = summary.to_json()
    io.write_json(out_dir / "metrics.json", report)
    render.write_page(out_dir / "report.html", summary, grids, MODEL_TITLES)
    return report


def _split_group(group):
    """``"real_wrong"`` -> ``("real", "wrong")``."""
    source, outcome = group.split("_")
    return source, outcome


def _model_info(eval_workdir, name):
    info_path = Path(eval_workdir) / "models" / f"{name}.json"
    info = io.read_json(info_path) if info_path.is_file() else {}
    info["path"] = str(Path(eval_workdir) / "models" / f"{name}.keras")
    return info
