"""The whole pipeline on one image folder (behind ``bin/run_pipeline``), resumable stage by stage.

``run_pipeline(config, workdir, data_dir)`` runs, in this order (``configs/pipeline.py``):

1. ``split``: the train/test split of the data (``split_manifest.csv`` beside it, a copy in ``split/``).
2. ``gan``: one FastGAN per class (:func:`~keras_morsa.training.train_gan.train_gan`) in ``gan/<class>/``.
3. ``baseline``: the study's runs that need no synthetic images (``real``, ``traditional``) in ``study/``;
   it leaves ``study/models/real.keras``, the real-trained classifier the next stage filters with. The
   study stage reuses these runs (a finished run is skipped), so they are trained once.
4. ``generate``: synthetic images in ``synthetic/`` (:func:`~keras_morsa.training.generate.generate`), with
   ``generate.filter="classifier"`` kept only where ``study/models/real.keras`` assigns them to their class
   (without a ``real`` regime there is no such classifier, and nothing is filtered). ``generate.num_images``
   0 draws as many per class as the study's largest ratio needs.
5. ``quality``: the quality report of ``synthetic/`` in ``quality/``. With unfiltered images it uses the
   baseline classifier (features and CAS); with filtered ones the random-CNN features and no CAS, since
   that classifier chose the images and would score its own choice.
6. ``study``: the whole ratio study in ``study/`` (report, ``models/``).
7. ``gradcam``: the Grad-CAM report of the study's two classifiers in ``gradcam/``.
8. ``export``: the study's ``models/<export.model>.keras`` (``real`` by default, or ``best_augmented``) as a
   TF Serving SavedModel in ``export/<export.model_name>/<version>``. Not the one with the higher test
   accuracy: that would choose on the test split; the study's verdicts say whether augmenting helped.

After each stage, ``done/<stage>.json`` is written atomically (the stage's settings, outputs, time) and
``index.html`` is rewritten: one page linking every stage's report and pictures, with relative links. A
rerun skips every stage with a marker. A killed stage has none: the rerun calls its library function again,
which resumes (a GAN class from its newest checkpoint, the study from its finished runs, generate from the
images present). Stage markers hold their settings: a rerun with other settings for a finished stage is
refused, naming the keys, unless ``redo`` names that stage (or an earlier one), which runs it again with the
new settings and forgets the markers from there on. A stage that runs always forgets the markers after it
(their inputs may change). One pipeline per workdir at a time (``<workdir>/.lock``).
"""

import copy
import dataclasses
import datetime
import json
import time
from pathlib import Path

from keras_morsa import io
from keras_morsa.data import morsa_parts, splits
from keras_morsa.errors import UserError
from keras_morsa.pipeline.index import Section, write_index

STAGES = ("split", "gan", "baseline", "generate", "quality", "study", "gradcam", "export")
TITLES = {
    "split": "Split",
    "gan": "GAN per class",
    "baseline": "Baseline classifier",
    "generate": "Synthetic images",
    "quality": "Synthetic image quality",
    "study": "Ratio study",
    "gradcam": "Grad-CAM",
    "export": "Export",
}
# The config section whose settings a stage's marker records (and a rerun compares).
SECTIONS = {
    "split": "data",
    "gan": "gan",
    "baseline": "study",
    "generate": "generate",
    "quality": "quality",
    "study": "study",
    "gradcam": "gradcam",
    "export": "export",
}
DONE_DIR = "done"
INDEX_FILE = "index.html"
EXPORT_MODELS = ("real", "best_augmented")
FILTERS = ("none", "classifier")


@dataclasses.dataclass
class _Context:
    config: object
    workdir: Path
    root: Path  # the image root every stage works on (a user folder, or the built-in build)
    progress: bool
    _manifest: object = None

    def path(self, *parts):
        return self.workdir.joinpath(*parts)

    @property
    def manifest(self):
        if self._manifest is None:
            data = self.config.data
            self._manifest = splits.load_or_create_split(
                self.root, test_fraction=data.test_fraction, seed=data.split_seed, read_only_fallback=self.path("split")
            )
        return self._manifest

    @property
    def real_classifier(self):
        return self.path("study", "models", "real.keras")


def _check_config(config):
    g = config.generate
    if g.filter not in FILTERS:
        raise UserError(f"config.generate.filter={g.filter!r}; accepted: {', '.join(FILTERS)}")
    if g.checkpoint not in ("", "best", "final"):
        raise UserError(f"config.generate.checkpoint={g.checkpoint!r}; accepted: '' (best where kept), best, final")
    if isinstance(g.num_images, bool) or int(g.num_images) < 0:
        raise UserError(
            f"config.generate.num_images={g.num_images!r}; expected images per class, or 0 for as many "
            "as the study needs"
        )
    if config.export.model not in EXPORT_MODELS:
        raise UserError(f"config.export.model={config.export.model!r}; accepted: {', '.join(EXPORT_MODELS)}")
    if not str(config.export.model_name) or "/" in str(config.export.model_name):
        raise UserError(f"config.export.model_name={config.export.model_name!r}; expected a folder name")


def run_pipeline(config, workdir, data_dir=None, redo=None, progress=True):
    """Runs every stage not done yet (module docstring) and writes ``<workdir>/index.html``.

    Args:
        config: ``configs/pipeline.py``.
        workdir: the run folder (created).
        data_dir: a user image folder (``<dir>/<class>/*``); ``None``: the built-in dataset at ``config.data``.
        redo: a stage name: run it and every later stage again (their markers are removed first), e.g. after
            raising ``gan.train.num_steps``.
        progress: show progress bars.

    Returns:
        ``{stage: its done marker}``.

    Raises:
        UserError: a bad setting, a finished stage whose settings changed (without ``redo``), or any stage's
            own refusal (a bad folder, too few synthetic images for the study, ...).
    """
    if redo is not None and redo not in STAGES:
        raise UserError(f"--redo={redo}; accepted: {', '.join(STAGES)}")
    _check_config(config)
    workdir = Path(workdir)
    with io.folder_lock(workdir):
        ctx = _Context(config, workdir, morsa_parts.dataset_root(config.data, data_dir), progress)
        if redo is not None:
            _forget(workdir, STAGES[STAGES.index(redo) :])
        markers = {name: _read_marker(workdir, name) for name in STAGES}
        for number, name in enumerate(STAGES, 1):
            settings = _settings(ctx, name)
            head = f"[{number}/{len(STAGES)}] {name}"
            if markers[name] is not None:
                _check_unchanged(markers[name], settings, name, workdir)
                print(f"{head}: done already ({markers[name]['finished']}), skipped")
                continue
            print(f"{head}: {TITLES[name].lower()} ...")
            start = time.monotonic()
            outputs = _RUN[name](ctx)
            later = STAGES[number:]
            _forget(workdir, later)
            markers.update(dict.fromkeys(later))
            markers[name] = {
                "stage": name,
                "settings": settings,
                "outputs": outputs,
                "wall_time_s": round(time.monotonic() - start, 1),
                "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            }
            io.write_json(_marker_path(workdir, name), markers[name])
            _write_index(ctx, markers)
        _write_index(ctx, markers)
    print(f"pipeline done: {workdir / INDEX_FILE}")
    return markers


def _marker_path(workdir, name):
    return Path(workdir) / DONE_DIR / f"{name}.json"


def _read_marker(workdir, name):
    path = _marker_path(workdir, name)
    return io.read_json(path) if path.is_file() else None


def _forget(workdir, names):
    for name in names:
        _marker_path(workdir, name).unlink(missing_ok=True)


def _normalised(value):
    return json.loads(json.dumps(value, default=str))


def _settings(ctx, name):
    settings = ctx.config[SECTIONS[name]].to_dict()
    if name == "split":
        settings = {**settings, "root": str(ctx.root)}
    return _normalised(settings)


def _check_unchanged(marker, settings, name, workdir):
    # The config diff train_gan prints on resume.
    from keras_morsa.training.train_gan import _changed_keys

    changed = [line for _, line in _changed_keys(marker["settings"], settings)]
    if changed:
        raise UserError(
            f"stage {name} of {workdir} was done with other settings ({'; '.join(changed[:3])}); pass --redo={name} "
            "to run it (and the stages after it) again with these, or use another --workdir"
        )


def _split(ctx):
    ctx.manifest.save(ctx.path("split", splits.MANIFEST_NAME))
    return {"root": str(ctx.root), "counts": ctx.manifest.counts()}


def _gan(ctx):
    from keras_morsa.training.train_gan import train_gan

    done = train_gan(ctx.config.gan, ctx.path("gan"), "all", data_dir=ctx.root)
    return {"classes": sorted(done)}


def _baseline_config(config):
    """The study config restricted to its regimes without synthetic images, or None if it has no ``real``."""
    from keras_morsa.evaluation.regimes import SYNTHETIC_REGIMES

    regimes = tuple(r for r in config.study.regimes if r not in SYNTHETIC_REGIMES)
    if "real" not in regimes or not config.study.keep_models:
        return None
    baseline = copy.deepcopy(config.study)
    baseline.regimes = regimes
    return baseline


def _baseline(ctx):
    from keras_morsa.evaluation.study import run_study

    baseline = _baseline_config(ctx.config)
    if baseline is None:
        print(
            "baseline: the study has no real regime (or keep_models is off): no real-trained classifier to filter with"
        )
        return {"classifier": None}
    run_study(baseline, ctx.path("study"), data_dir=ctx.root)
    return {"classifier": ctx.real_classifier.relative_to(ctx.workdir).as_posix(), "regimes": list(baseline.regimes)}


def images_needed(study, manifest):
    """Synthetic images per class the study's regimes draw at most: its largest ratio (or
    ``synthetic_only_ratio``) times the largest class's train count; at least 1. The ``share`` regime draws
    from a pool of any size; it gets as many as the class has real train images."""
    from keras_morsa.data.pipeline import synthetic_count
    from keras_morsa.evaluation.regimes import RATIO_REGIMES, SHARE_REGIMES

    ratios = [float(r) for r in study.ratios] if any(r in RATIO_REGIMES for r in study.regimes) else []
    if {"synthetic_only", "pretrain_synthetic"} & set(study.regimes):
        ratios.append(float(study.synthetic_only_ratio))
    if any(r in SHARE_REGIMES for r in study.regimes):
        ratios.append(1.0)
    largest = max(count["train"] for count in manifest.counts().values())
    return max([1] + [synthetic_count(ratio, largest) for ratio in ratios])


def _filtered(ctx):
    return ctx.config.generate.filter == "classifier" and ctx.real_classifier.is_file()


def _generate(ctx):
    from keras_morsa.training.generate import generate

    g = ctx.config.generate
    if g.filter == "classifier" and not _filtered(ctx):
        print(f"generate: no {ctx.real_classifier} (the baseline made none): the images are not filtered")
    num_images = int(g.num_images) or images_needed(ctx.config.study, ctx.manifest)
    rows = generate(
        ctx.path("gan"),
        ctx.path("synthetic"),
        num_images,
        seed=int(g.seed),
        interpolate=bool(g.interpolate),
        progress=ctx.progress,
        checkpoint=g.checkpoint or None,
        filter="classifier" if _filtered(ctx) else "none",
        classifier=str(ctx.real_classifier) if _filtered(ctx) else None,
        min_confidence=float(g.min_confidence),
        max_draws_per_image=int(g.max_draws_per_image),
    )
    return {"num_images": num_images, "images": len(rows), "filtered": _filtered(ctx)}


def _quality(ctx):
    from keras_morsa.quality.report import gan_quality

    if _filtered(ctx):
        options = {"features": "random"}
        print(
            "quality: the images were chosen by the baseline classifier, so they are measured with the random-CNN "
            "features and without CAS (that classifier would score its own choice)"
        )
    else:
        options = {"classifier": str(ctx.real_classifier) if ctx.real_classifier.is_file() else None}
    report = gan_quality(
        ctx.config.quality,
        ctx.path("quality"),
        synthetic_dir=ctx.path("synthetic"),
        data_dir=ctx.root,
        progress=ctx.progress,
        **options,
    )
    return {"mean": report["mean"]}


def _study(ctx):
    from keras_morsa.evaluation.study import run_study

    run_study(ctx.config.study, ctx.path("study"), synthetic_dir=ctx.path("synthetic"), data_dir=ctx.root)
    return {"models": sorted(p.name for p in ctx.path("study", "models").glob("*.keras"))}


def _gradcam(ctx):
    from keras_morsa.explain.report import gradcam_report

    c = ctx.config.gradcam
    report = gradcam_report(
        ctx.path("study"),
        ctx.path("gradcam"),
        synthetic_dir=ctx.path("synthetic"),
        data_dir=ctx.root,
        max_images=int(c.max_images),
        method=c.method,
        seed=int(c.seed),
        progress=ctx.progress,
        min_map_size=int(c.min_map_size),
    )
    return {"narrower": report["narrower"]}


def study_classifier(study_dir, name):
    """``(path, info)`` of the study's ``models/<name>.keras`` and its test accuracy (``models/<name>.json``)."""
    path, info = Path(study_dir) / "models" / f"{name}.keras", Path(study_dir) / "models" / f"{name}.json"
    if not (path.is_file() and info.is_file()):
        raise UserError(
            f"{study_dir}/models has no {name}.keras with its .json; the study keeps real.keras and "
            "best_augmented.keras with config.study.keep_models"
        )
    return path, {"model": name, "test_accuracy": float(io.read_json(info)["test_accuracy"])}


def _export(ctx):
    from keras_morsa.export.saved_model import export_model

    path, info = study_classifier(ctx.path("study"), str(ctx.config.export.model))
    version = export_model(path, ctx.path("export", str(ctx.config.export.model_name)), kind="classifier")
    print(f"export: {info['model']} (test accuracy {info['test_accuracy']:.3f}) -> {version}")
    return {**info, "version_dir": Path(version).relative_to(ctx.workdir).as_posix()}


_RUN = {
    "split": _split,
    "gan": _gan,
    "baseline": _baseline,
    "generate": _generate,
    "quality": _quality,
    "study": _study,
    "gradcam": _gradcam,
    "export": _export,
}


# The index: what each stage left, as links and pictures relative to the workdir.


def _rel(ctx, path):
    return Path(path).relative_to(ctx.workdir).as_posix()


def _existing(ctx, pairs):
    return [(label, _rel(ctx, path)) for label, path in pairs if Path(path).exists()]


def _report(ctx, label, path):
    return (label, _rel(ctx, path)) if Path(path).exists() else None


def _newest_grid(folder):
    grids = sorted(Path(folder).glob("step_*.png"), key=lambda p: int(p.stem.split("_")[1]))
    return grids[-1] if grids else None


def _section(ctx, name, marker):
    status = "not run yet" if marker is None else f"done {marker['finished']} ({marker['wall_time_s']:g} s)"
    section = Section(name, TITLES[name], status)
    outputs = (marker or {}).get("outputs", {})
    if name == "split":
        section.text.append(f"Data: {ctx.root}")
        if "counts" in outputs:
            section.table = [["class", "train", "val", "test"]] + [
                [cls, *(str(counts[split]) for split in ("train", "val", "test"))]
                for cls, counts in outputs["counts"].items()
            ]
        section.report = _report(ctx, "split manifest", ctx.path("split", splits.MANIFEST_NAME))
    elif name == "gan":
        for class_dir in sorted(p for p in ctx.path("gan").glob("*") if p.is_dir()):
            grid = _newest_grid(class_dir / "samples")
            if grid is not None:
                section.images.append((_rel(ctx, grid), f"{class_dir.name}: EMA samples, {grid.stem}"))
            curve = class_dir / f"quality_{class_dir.name}.png"
            if curve.is_file():
                section.images.append((_rel(ctx, curve), f"{class_dir.name}: KID and coverage per checkpoint"))
            section.links += _existing(ctx, [(f"{class_dir.name}: log.csv", class_dir / "log.csv")])
    elif name == "baseline":
        section.text.append(
            "The study's runs without synthetic images, trained first: their real-only classifier "
            "filters the synthetic images. The study stage reuses them."
        )
        section.report = _report(ctx, "real-trained classifier (models/real.keras)", ctx.real_classifier)
    elif name == "generate":
        if outputs:
            section.text.append(
                f"{outputs['num_images']} images per class, "
                + ("filtered by the baseline classifier." if outputs["filtered"] else "unfiltered.")
            )
        synthetic = ctx.path("synthetic")
        section.links = _existing(
            ctx, [("manifest.csv", synthetic / "manifest.csv"), ("yield of the filter", synthetic / "yield.json")]
        )
        for gif in sorted(synthetic.glob("interpolation_*.gif")):
            section.images.append((_rel(ctx, gif), f"{gif.stem.split('_', 1)[1]}: latent interpolation"))
        for class_dir in sorted(p for p in synthetic.glob("*") if p.is_dir()):
            first = next(iter(sorted(class_dir.glob("*.png"))), None)
            if first is not None:
                section.images.append((_rel(ctx, first), f"{class_dir.name}: {first.name}"))
    elif name == "quality":
        quality = ctx.path("quality")
        section.report = _report(ctx, "quality report", quality / "quality.html")
        section.links = _existing(
            ctx, [("quality.md", quality / "quality.md"), ("quality.json", quality / "quality.json")]
        )
        section.images = [
            (_rel(ctx, p), f"{p.stem}: closest generated/train pairs")
            for p in sorted((quality / "nearest").glob("*.png"))
        ]
    elif name == "study":
        study = ctx.path("study")
        section.report = _report(ctx, "study report", study / "report.html")
        section.links = _existing(ctx, [("report.md", study / "report.md"), ("results.csv", study / "results.csv")])
        section.images = [(_rel(ctx, p), p.stem.replace("_", " ")) for p in sorted(study.glob("*.png"))]
    elif name == "gradcam":
        gradcam = ctx.path("gradcam")
        if "narrower" in outputs:
            section.text.append(f"Are the augmented model's maps narrower? {outputs['narrower']}.")
        section.report = _report(ctx, "Grad-CAM report", gradcam / "report.html")
        section.links = _existing(ctx, [("metrics.json", gradcam / "metrics.json")])
        section.images = [(_rel(ctx, p), p.stem.replace("_", " ")) for p in sorted((gradcam / "grids").glob("*.png"))]
    elif name == "export" and outputs:
        section.text.append(
            f"Exported {outputs['model']} (test accuracy {outputs['test_accuracy']:.3f}) for TF Serving."
        )
        model = ctx.path(outputs["version_dir"], "saved_model.pb")
        section.report = _report(ctx, _rel(ctx, model), model)
    return section


def _write_index(ctx, markers):
    done = sum(marker is not None for marker in markers.values())
    intro = [
        f"Workdir {ctx.workdir}; data {ctx.root}. {done} of {len(STAGES)} stages done. Rerun the same "
        "bin/run_pipeline command to continue: finished stages are skipped, a killed one resumes."
    ]
    sections = [_section(ctx, name, markers[name]) for name in STAGES]
    write_index(ctx.path(INDEX_FILE), "keras-morsa pipeline", intro, sections)
