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
"""

import base64
import html
from pathlib import Path

import keras
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from keras_morsa import io
from keras_morsa.data import folder, pipeline, splits
from keras_morsa.errors import DataError, UserError
from keras_morsa.explain import metrics
from keras_morsa.explain.gradcam import GradCAM
from keras_morsa.models.classifier import MIN_MAP_SIZE, class_names_of
from keras_morsa.models.saving import load_model

MODELS = ("real", "best_augmented")
MODEL_TITLES = {"real": "baseline (real only)", "best_augmented": "best augmented"}
SOURCES = ("real", "generated")
GROUPS = ("real_correct", "real_wrong", "generated_correct", "generated_wrong")
METHODS = ("gradcam", "gradcam++", "scorecam")
_BATCH = 16
_GRID_COLUMNS = 8


def make_explainer(model, method="gradcam", layer=None, min_map_size=MIN_MAP_SIZE):
    """The explainer for ``method``: keras.ops ``GradCAM`` (every backend) or tf-keras-vis (TF only)."""
    if method not in METHODS:
        raise UserError(f"method={method!r}; accepted: {', '.join(METHODS)}")
    if method == "gradcam":
        return GradCAM(model, layer_name=layer, min_map_size=min_map_size)
    from keras_morsa.explain.tfkv import TfKerasVisCAM

    return TfKerasVisCAM(model, method=method, layer_name=layer, min_map_size=min_map_size)


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


def _mask_path(image_path, image_root, mask_dir):
    """``<mask root>/<class>/<stem>.png``; the mask root is ``mask_dir``, else ``masks/`` beside ``images/``."""
    relative = Path(image_path).relative_to(image_root)
    if mask_dir is not None:
        base = Path(mask_dir)
    elif image_root.name == "images":
        base = image_root.parent / "masks"
    else:
        return None  # a plain ImageFolder: masks only through mask_dir
    return base / relative.parent / f"{relative.stem}.png"


def _load_masks(paths, image_size):
    """Binary masks [N, S, S] resized like the images (bilinear, no crop), or None if any is missing."""
    if not paths or not all(p is not None and p.is_file() for p in paths):
        return None
    masks = []
    for path in paths:
        with Image.open(path) as mask:
            resized = mask.convert("L").resize((image_size, image_size), Image.BILINEAR)
        masks.append(np.asarray(resized) >= 128)
    return np.stack(masks)


def _load_images(files, labels, image_size):
    if not files:
        return np.zeros((0, image_size, image_size, 3), np.float32)
    ds = pipeline.classifier_dataset(files, labels, image_size, _BATCH, seed=0, training=False)
    return np.concatenate([images for images, _ in ds.as_numpy_iterator()]).astype(np.float32)


def _subset(files, labels, max_images, rng):
    if len(files) <= max_images:
        return list(files), list(labels)
    keep = np.sort(rng.choice(len(files), size=max_images, replace=False))
    return [files[i] for i in keep], [labels[i] for i in keep]


def _explain(model, images, explainer, fractions, seed, bar, done):
    """Predictions, maps and deletion drops of one model on one source's images, in batches of _BATCH."""
    num = len(images)
    # Every batch padded to _BATCH images: one input shape, so JAX and tf.function compile once, not per tail.
    padded = np.concatenate([images, np.zeros((-num % _BATCH, *images.shape[1:]), images.dtype)])
    out = {"pred": np.zeros(len(padded), np.int64), "maps": np.zeros(padded.shape[:3], np.float32),
           "drops": {f: {"map": np.zeros(len(padded), np.float32), "random": np.zeros(len(padded), np.float32)}
                     for f in fractions}}

    def predict(x):
        x = np.asarray(x, np.float32)
        return np.concatenate([np.asarray(model.predict_on_batch(x[i:i + _BATCH])) for i in range(0, len(x), _BATCH)])

    for start in range(0, num, _BATCH):
        batch = padded[start:start + _BATCH]
        pred = np.argmax(predict(batch), axis=-1)
        maps = explainer(batch, targets=pred)
        out["pred"][start:start + _BATCH], out["maps"][start:start + _BATCH] = pred, maps
        drops = metrics.deletion_drop(predict, batch, maps, pred, fractions, seed=seed + start)
        for fraction, values in drops.items():
            for kind in ("map", "random"):
                out["drops"][fraction][kind][start:start + _BATCH] = values[kind]
        done[0] += min(_BATCH, num - start)
        bar.update(done[0])
    return {"pred": out["pred"][:num], "maps": out["maps"][:num],
            "drops": {f: {kind: v[:num] for kind, v in d.items()} for f, d in out["drops"].items()}}


def _interval_dict(interval):
    return interval._asdict()


def _group_metrics(result, masks, members, fractions, seed):
    """Intervals of one model's numbers over the images of one group."""
    maps = result["maps"][members]
    entry = {"n": int(members.sum()), "area": _interval_dict(metrics.bootstrap_interval(metrics.area(maps), seed=seed))}
    if masks is None:
        entry["mask_energy"] = entry["pointing_game"] = "n/a"
    else:
        entry["mask_energy"] = _interval_dict(metrics.bootstrap_interval(
            metrics.mask_energy(maps, masks[members]), seed=seed))
        entry["pointing_game"] = _interval_dict(metrics.bootstrap_interval(
            metrics.pointing_game(maps, masks[members]), seed=seed))
    entry["deletion"] = {}
    for fraction in fractions:
        drops = {kind: values[members] for kind, values in result["drops"][fraction].items()}
        entry["deletion"][str(fraction)] = {
            "map": _interval_dict(metrics.bootstrap_interval(drops["map"], seed=seed)),
            "random": _interval_dict(metrics.bootstrap_interval(drops["random"], seed=seed)),
            "map_minus_random": _interval_dict(metrics.paired_difference_interval(
                drops["map"], drops["random"], seed=seed)),
        }
    return entry


def _verdict(interval):
    if interval.n == 0:
        return "not measured (no images)"
    spread = f"{interval.mean:+.3f} [{interval.low:+.3f}, {interval.high:+.3f}], n={interval.n}"
    if interval.high < 0:
        return f"narrower: augmented minus baseline mean area {spread}"
    if interval.low > 0:
        return f"wider: augmented minus baseline mean area {spread}"
    return f"no clear difference: augmented minus baseline mean area {spread} (interval includes 0)"


def overlay(image, heatmap, alpha=0.45):
    """The image (float [H, W, 3] in 0..255) blended with a jet-coloured heatmap ([H, W] in [0, 1]): float in [0, 1]."""
    colours = colormaps["jet"](heatmap)[..., :3]
    return np.clip((1 - alpha) * image / 255.0 + alpha * colours, 0, 1)


def _draw_grid(path, title, columns, class_names):
    """One PNG: per column the image, then each model's overlay titled T/P; an empty group says so."""
    rows = 1 + len(MODELS)
    figure = Figure(figsize=(max(len(columns), 3) * 1.5, rows * 1.7 + 0.4), dpi=100)
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=10)
    if not columns:
        figure.text(0.5, 0.5, "no images in this group", ha="center", va="center", fontsize=11)
    for col, column in enumerate(columns):
        axes = [figure.add_subplot(rows, len(columns), row * len(columns) + col + 1) for row in range(rows)]
        axes[0].imshow(column["image"].astype(np.uint8))
        axes[0].set_title(f"T: {class_names[column['label']]}", fontsize=7)
        for ax, name in zip(axes[1:], MODELS):
            predicted = column["pred"][name]
            ax.imshow(overlay(column["images"][name], column["maps"][name]))
            ax.set_title(f"T: {class_names[column['label']]}\nP: {class_names[predicted]}", fontsize=7,
                         color="green" if predicted == column["label"] else "red")
        for row, ax in enumerate(axes):
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel("image" if row == 0 else MODEL_TITLES[MODELS[row - 1]], fontsize=7)
    figure.tight_layout()
    with io.atomic_write(path) as f:
        figure.savefig(f, format="png")
    return path


def _in_group(group, data, results, name):
    """Boolean mask of the images of ``group`` (e.g. ``"real_wrong"``) for model ``name``."""
    source, outcome = group.split("_")
    correct = results[name][source]["pred"] == data[source]["labels"]
    return correct if outcome == "correct" else ~correct


def _grid_columns(group, data, results, count, seed):
    """Up to ``count`` images of ``group`` for either model, stratified over classes (one per class in turn,
    a seeded draw within each class), so a grid never shows only the first classes in file order."""
    source = group.split("_")[0]
    labels = data[source]["labels"]
    wanted = np.logical_or.reduce([_in_group(group, data, results, name) for name in MODELS])
    rng = np.random.default_rng(seed)
    by_class = [list(rng.permutation(np.flatnonzero(wanted & (labels == label)))) for label in np.unique(labels)]
    order = [members[turn] for turn in range(max(map(len, by_class), default=0))
             for members in by_class if turn < len(members)]
    columns = []
    for index in order[:count]:
        columns.append({
            "image": data[source]["images"][MODELS[0]][index],
            "label": int(data[source]["labels"][index]),
            "images": {name: data[source]["images"][name][index] for name in MODELS},
            "maps": {name: results[name][source]["maps"][index] for name in MODELS},
            "pred": {name: int(results[name][source]["pred"][index]) for name in MODELS},
        })
    return columns


def gradcam_report(eval_workdir, out_dir, synthetic_dir=None, data_dir=None, mask_dir=None, max_images=64,
                   method="gradcam", layer=None, seed=0, fractions=metrics.DEFAULT_FRACTIONS, progress=True,
                   min_map_size=MIN_MAP_SIZE):
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
    if method not in METHODS:
        raise UserError(f"method={method!r}; accepted: {', '.join(METHODS)}")
    models, class_names = _load_models(eval_workdir)
    manifest = study_split(eval_workdir, data_dir)
    if manifest.class_names != class_names:
        raise DataError(f"model classes {class_names} differ from the split's classes {manifest.class_names}")
    rng = np.random.default_rng(seed)
    chosen = {"real": _subset(manifest.files("test"), manifest.labels("test"), int(max_images), rng)}
    generated = pipeline.list_synthetic(synthetic_dir, class_names) if synthetic_dir is not None else ([], [])
    chosen["generated"] = _subset(*generated, int(max_images), rng)

    sizes = {name: int(model.inputs[0].shape[1]) for name, model in models.items()}
    data = {}
    for source, (files, labels) in chosen.items():
        masks = None
        if source == "real":
            masks = {name: _load_masks([_mask_path(f, manifest.image_root, mask_dir) for f in files], size)
                     for name, size in sizes.items()}
        data[source] = {"files": files, "labels": np.asarray(labels, np.int64), "masks": masks,
                        "images": {name: _load_images(files, labels, size) for name, size in sizes.items()}}

    total = len(MODELS) * sum(len(d["files"]) for d in data.values())
    bar = keras.utils.Progbar(max(total, 1), unit_name="image", verbose=1 if progress else 0)
    results, done, layers, map_sizes = {}, [0], {}, {}
    for name, model in models.items():
        explainer = make_explainer(model, method, layer, min_map_size)
        layers[name] = explainer.layer_name
        map_sizes[name] = list(explainer.map_size)
        results[name] = {source: _explain(model, data[source]["images"][name], explainer, fractions, seed, bar, done)
                         for source in SOURCES}

    report = {
        "settings": {"method": method, "layer": layers, "map_size": map_sizes, "max_images": int(max_images),
                     "seed": int(seed), "min_map_size": int(min_map_size), "confidence": 0.95,
                     "interval": "percentile bootstrap over images, 2000 resamples",
                     "deletion_fill": "per-image mean colour", "fractions": list(fractions),
                     "maps_for": "each model's predicted class", "eval_workdir": str(eval_workdir),
                     "synthetic_dir": None if synthetic_dir is None else str(synthetic_dir)},
        "models": {name: _model_info(eval_workdir, name) for name in MODELS},
        "class_names": class_names,
        "groups": {},
    }
    for name in MODELS:
        report["groups"][name] = {}
        for group in GROUPS:
            source = group.split("_")[0]
            masks = data[source]["masks"][name] if data[source]["masks"] else None
            report["groups"][name][group] = _group_metrics(
                results[name][source], masks, _in_group(group, data, results, name), fractions, seed)
    report["comparison"] = {}
    for scope, sources in (("all", SOURCES), ("real", ("real",)), ("generated", ("generated",))):
        areas = {name: np.concatenate([metrics.area(results[name][s]["maps"]) for s in sources]) for name in MODELS}
        interval = metrics.paired_difference_interval(areas["best_augmented"], areas["real"], seed=seed)
        report["comparison"][scope] = {"area_difference": _interval_dict(interval), "verdict": _verdict(interval)}
    report["narrower"] = _verdict(metrics.Interval(**report["comparison"]["all"]["area_difference"]))

    grids = {}
    for group in GROUPS:
        columns = _grid_columns(group, data, results, _GRID_COLUMNS, seed)
        title = f"{group.replace('_', ' ')} (columns: images in this group for either model)"
        grids[group] = _draw_grid(out_dir / "grids" / f"{group}.png", title, columns, class_names)
    io.write_json(out_dir / "metrics.json", report)
    _write_html(out_dir / "report.html", report, grids)
    return report


def _model_info(eval_workdir, name):
    info_path = Path(eval_workdir) / "models" / f"{name}.json"
    info = io.read_json(info_path) if info_path.is_file() else {}
    info["path"] = str(Path(eval_workdir) / "models" / f"{name}.keras")
    return info


def _format(value):
    if value == "n/a":
        return "n/a"
    if value["n"] == 0:
        return "empty"
    return f"{value['mean']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"


def _write_html(path, report, grids):
    esc = html.escape
    fractions = [str(f) for f in report["settings"]["fractions"]]
    header = ["model", "group", "n", "area", "mask energy", "pointing game"] + [
        f"drop top {float(f) * 100:.0f} % (map / random)" for f in fractions]
    rows = []
    for name in MODELS:
        for group in GROUPS:
            entry = report["groups"][name][group]
            cells = [MODEL_TITLES[name], group.replace("_", " "), str(entry["n"]), _format(entry["area"]),
                     _format(entry["mask_energy"]), _format(entry["pointing_game"])]
            cells += [f"{_format(entry['deletion'][f]['map'])} / {_format(entry['deletion'][f]['random'])}"
                      for f in fractions]
            rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    comparison = "".join(f"<li>{esc(scope)} images: {esc(entry['verdict'])}</li>"
                         for scope, entry in report["comparison"].items())
    images = []
    for group, grid in grids.items():
        encoded = base64.b64encode(Path(grid).read_bytes()).decode("ascii")
        images.append(f"<h3>{esc(group.replace('_', ' '))}</h3><img alt='{esc(group)}' "
                      f"src='data:image/png;base64,{encoded}'>")
    settings = report["settings"]
    models = "".join(
        f"<li>{esc(MODEL_TITLES[name])}: {esc(str(info.get('run_id', info['path'])))}"
        + (f", test accuracy {info['test_accuracy']:.3f}" if isinstance(info.get("test_accuracy"), float) else "")
        + "</li>"
        for name, info in report["models"].items()
    )
    layers = ", ".join(f"{name}: {settings['layer'][name]} ({'x'.join(map(str, settings['map_size'][name]))} map)"
                       for name in settings["layer"])
    document = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Grad-CAM report</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:3px 6px;font-size:13px}} img{{max-width:100%}}</style></head><body>
<h1>Grad-CAM: baseline vs best augmented classifier</h1>
<p><b>Are the augmented model's maps narrower?</b> {esc(report['narrower'])}.</p>
<ul>{comparison}</ul>
<p>Models:</p><ul>{models}</ul>
<p>Method {esc(settings['method'])} on layer(s) {esc(layers)}; maps for {esc(settings['maps_for'])};
up to {settings['max_images']} real test and {settings['max_images']} generated images, seed {settings['seed']}.
Cells: mean [95 % interval], {esc(settings['interval'])}. Area: share of pixels with normalised map &ge; 0.5.
Mask energy: share of the map on the object. Pointing game: share of maps whose maximum is on the object
("n/a" without masks). Deletion: drop of the predicted class's probability when the map's top pixels are
filled with the image's mean colour, against as many pixels at random (a faithful map drops more).</p>
<table><tr>{''.join(f'<th>{esc(h)}</th>' for h in header)}</tr>
{''.join(rows)}</table>
<h2>Grids</h2>
<p>Each column: the image, then the baseline's and the augmented model's overlays; T is the true label, P the
model's prediction (green: correct, red: wrong).</p>
{''.join(images)}
</body></html>
"""
    with io.atomic_write(path, "w") as f:
        f.write(document)
    return path
