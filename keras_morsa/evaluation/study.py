"""The real/synthetic ratio study: which training sets make a classifier better on the real test split?

A sweep trains one classifier per run, a run being (architecture, regime, parameter, seed); the regimes
(``real``, ``traditional``, ``synthetic@r``, ``synthetic_only``, ``traditional+synthetic@r``, ``share@p``,
``weighted+synthetic@r``, ``pretrain_synthetic``) and the plan are in :mod:`keras_morsa.evaluation.regimes`.

Every run gets the same budget: ``config.steps`` optimizer steps of ``config.batch_size`` images, so more data
never means more compute, and is evaluated on the same real test split every ``config.eval_every`` steps.
Runs with the same seed share their initial weights, data order seed and synthetic draw, which makes
per-seed differences against ``real`` paired. Each architecture trains with its recipe
(``config.recipes.<arch>``: optimizer, rate, warm-up, clipping, kernel initialisation;
:mod:`keras_morsa.training.recipes`), the same in every regime. After the warm-up the learning rate is
constant or follows a cosine decay to 0 at the end of the budget (``config.lr_schedule``); a run's final
accuracy is the mean of its last ``config.final_evals`` evaluations (test accuracy jumps between
consecutive evaluations under a constant rate). Nothing is chosen by looking at the test split: it gives
the final numbers only.

Layout of ``workdir``::

    split_manifest.csv            a copy of the split used (the original stays beside the data; for read-only
                                  data it is the only one)
    runs/<run_id>/curve.csv       test accuracy every eval_every steps (rewritten as it grows)
    runs/<run_id>/result.json     written last: marks the run finished (a resumed sweep skips it)
    runs/<run_id>/model.keras     kept for the first seed's real run and the best augmented run so far
    results.csv, curves.csv       one row per run / per evaluation (built by results.merge_study)
    report.md, report.html, *.png the summary (built by results.merge_study)
    models/real.keras, models/best_augmented.keras   for Grad-CAM and export
    synthetic_quality.json        the synthetic folder's bin/gan_quality file, when it has a current one: the
                                  report shows each class's quality beside its accuracy

A killed sweep resumes: finished runs are skipped and a partial run restarts from scratch. ``shard=(i, n)``
runs every n-th run starting at i, so n processes (or machines, their ``runs/`` folders copied together
afterwards) share a sweep; :func:`keras_morsa.evaluation.results.merge_study` then builds one report. A
single process does both.

BatchNorm: KerasCV's MobileNetV3 momentum (0.999) leaves from-scratch moving statistics ~1000 steps behind
the weights, so inference-mode accuracy collapses to one class. The study trains with
``config.bn_momentum`` and, when ``config.bn_reestimate_batches > 0``, recomputes the statistics on that many
training batches before every evaluation (see ``keras_morsa.models.classifier``).
"""

import dataclasses
import shutil
import time
from pathlib import Path

import keras
import numpy as np
from absl import logging

from keras_morsa import io
from keras_morsa.data import augment as augment_lib
from keras_morsa.data import morsa_parts, pipeline, splits
from keras_morsa.errors import DataError, UserError
from keras_morsa.evaluation import results as results_lib
from keras_morsa.evaluation import stats
from keras_morsa.evaluation import summary as summary_lib
from keras_morsa.evaluation.regimes import AUGMENTED_REGIMES, SYNTHETIC_REGIMES, check_sources, plan_runs
from keras_morsa.evaluation.results import chooses
from keras_morsa.evaluation.summary import bn_description
from keras_morsa.models.backbones import check_library
from keras_morsa.models.classifier import build_classifier, reestimate_bn_statistics
from keras_morsa.quality import files as quality_files
from keras_morsa.training import distribute, recipes


def parse_shard(text):
    """Parses ``"i/n"`` (0 <= i < n) into ``(i, n)``; ``None`` or ``""`` means no sharding."""
    if not text:
        return None
    try:
        index, count = (int(part) for part in str(text).split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise UserError(f"shard={text!r}; expected i/n with 0 <= i < n, e.g. 0/4")
    return index, count


def shard_runs(runs, shard):
    """The runs shard ``(i, n)`` owns: every n-th run starting at i (all runs when ``shard`` is None)."""
    if shard is None:
        return list(runs)
    index, count = shard
    return list(runs)[index::count]


class _Trainer:
    """One compiled classifier per architecture, reset to a seed's initial state before each run.

    Compiling MobileNetV3 costs ~30 s on TF and JAX; resetting weights, optimizer slots and the dropout
    seed instead of rebuilding keeps that cost once per sweep and gives the same result as a fresh model.
    """

    def __init__(self, arch, config, class_names, strategy, lr_schedule):
        self.arch = arch
        self.config = config
        self.class_names = class_names
        # Initial states for every seed of the sweep are drawn now: seeding TensorFlow after the first
        # fit would make it re-instantiate the compiled functions (~17 s per run on 2 cores).
        self._initial = {}
        for seed in config.seeds:
            keras.utils.set_random_seed(int(seed))
            fresh = self._build()
            self._initial[int(seed)] = (
                [np.array(w) for w in fresh.weights],
                np.array(fresh.get_layer("dropout").seed_generator.state),
            )
        self.model = self._build()
        distribute.synchronize_batch_norm(self.model, strategy)
        optimizer = recipes.build_optimizer(config.recipes[arch], config.steps, lr_schedule)
        # One-hot targets and per-row weights for every regime: the same loss whether or not a regime smooths
        # or down-weights its synthetic rows (with hard targets and weight 1 it equals the sparse loss).
        self.model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
        self.model.optimizer.build(self.model.trainable_variables)
        self._optimizer_state = [np.array(v) for v in self.model.optimizer.variables]

    def _build(self):
        return build_classifier(
            self.arch,
            len(self.class_names),
            self.config.image_size,
            dropout=self.config.dropout,
            bn_momentum=self.config.bn_momentum,
            weights=self.config.weights or None,
            class_names=self.class_names,
            conv_init=self.config.recipes[self.arch].conv_init,
            backbone_library=self.config.backbone_library,
        )

    def reset(self, seed):
        """Puts the model in the state a fresh ``build_classifier`` under ``seed`` would have."""
        weights, dropout_state = self._initial[seed]
        self.model.set_weights(weights)
        self.model.get_layer("dropout").seed_generator.state.assign(dropout_state)
        for variable, value in zip(self.model.optimizer.variables, self._optimizer_state):
            variable.assign(value)
        return self.model


class _Evaluate(keras.callbacks.Callback):
    """Accuracy on ``split`` (test, or val for the validation choice) every epoch (= eval_every steps), after
    optional BatchNorm re-estimation."""

    def __init__(self, run_dir, images, config, train_ds, bar, split="test"):
        super().__init__()
        self.run_dir = run_dir
        self.images = images
        self.key = f"{split}_accuracy"
        self.config = config
        self.train_ds = train_ds
        self.bar = bar
        self.curve = []
        self.predictions = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.config.bn_reestimate_batches > 0:
            reestimate_bn_statistics(self.model, self.train_ds, self.config.bn_reestimate_batches)
        images, labels = self.images
        probabilities = self.model.predict(images, batch_size=self.config.eval_batch_size, verbose=0)
        self.predictions = np.argmax(probabilities[: len(labels)], axis=-1)
        accuracy = float(np.mean(self.predictions == labels))
        self.curve.append(
            {
                "step": (epoch + 1) * self.config.eval_every,
                self.key: accuracy,
                "train_loss": float(logs.get("loss", np.nan)),
                "train_accuracy": float(logs.get("accuracy", np.nan)),
            }
        )
        io.write_csv(self.run_dir / "curve.csv", self.curve, ("step", self.key) + results_lib.CURVE_FIELDS[2:])
        self.bar.add(self.config.eval_every, [(self.key.replace("accuracy", "acc"), accuracy)])


@dataclasses.dataclass
class _TrainingSet:
    """What one run trains on: rows (file, label, is-synthetic), optional phases and a synthetic pool.

    ``pretrain`` holds the rows of ``pretrain_synthetic``'s first phase; ``pool`` the synthetic rows the
    ``share`` regime draws from with probability ``share``.
    """

    files: list
    labels: list
    synthetic: list
    pretrain: tuple = None
    pool: tuple = None

    @property
    def counts(self):
        """(real images, synthetic images) the run can see."""
        n_synthetic = sum(self.synthetic) + sum(len(part[0]) for part in (self.pretrain, self.pool) if part)
        return len(self.files) - sum(self.synthetic), n_synthetic


def _training_set(run, manifest, synthetic, config):
    """The :class:`_TrainingSet` of one run; ``manifest``: the split it trains on (its train rows),
    ``synthetic``: ``{source: (files, labels)}``."""
    real_files, real_labels = manifest.files("train"), manifest.labels("train")
    real = _TrainingSet(list(real_files), list(real_labels), [False] * len(real_files))
    if run.regime in ("real", "traditional"):
        return real
    synthetic = synthetic[run.source]
    if run.regime == "share":
        return dataclasses.replace(real, pool=(list(synthetic[0]), list(synthetic[1])))
    ratio = run.ratio if run.ratio is not None else float(config.synthetic_only_ratio)
    files, labels = pipeline.mix_real_synthetic(
        real_files, real_labels, synthetic[0], synthetic[1], ratio, run.seed, class_names=manifest.class_names
    )
    real_set = set(map(str, real_files))
    flags = [str(f) not in real_set for f in files]
    if run.regime in ("synthetic_only", "pretrain_synthetic"):
        only = ([f for f, s in zip(files, flags) if s], [label for label, s in zip(labels, flags) if s])
        if run.regime == "pretrain_synthetic":
            return dataclasses.replace(real, pretrain=only)
        return _TrainingSet(only[0], only[1], [True] * len(only[0]))
    return _TrainingSet(list(files), list(labels), flags)


def _dataset(files, labels, flags, run, config, num_classes, augment):
    """The endless training pipeline of ``files``: one-hot targets, synthetic rows weighted and smoothed as
    the regime says (only ``weighted+synthetic`` changes them)."""
    weighted = run.regime == "weighted+synthetic"
    flags = np.asarray(flags, bool)
    weights = np.where(flags, float(config.synthetic_weight), 1.0) if weighted else None
    smoothing = np.where(flags, float(config.synthetic_label_smoothing), 0.0) if weighted else None
    return pipeline.classifier_dataset(
        files,
        labels,
        config.image_size,
        config.batch_size,
        seed=run.seed,
        training=True,
        augment=augment,
        repeat=True,
        num_classes=num_classes,
        label_smoothing=smoothing,
        sample_weights=weights,
    )


def _pipelines(run, training_set, config, num_classes):
    """``[(dataset, epochs)]`` in training order; the epochs (of ``eval_every`` steps) sum to the budget."""
    augment = None
    if run.regime in AUGMENTED_REGIMES:
        augment = augment_lib.make_augment(
            config.augment.ops,
            seed=run.seed,
            brightness=config.augment.brightness,
            contrast=config.augment.contrast,
            saturation=config.augment.saturation,
            noise_stddev=config.augment.noise_stddev,
        )
    epochs = int(config.steps) // int(config.eval_every)
    t = training_set
    main = _dataset(t.files, t.labels, t.synthetic, run, config, num_classes, augment)
    if t.pool is not None:
        pool = _dataset(t.pool[0], t.pool[1], [True] * len(t.pool[0]), run, config, num_classes, None)
        main = pipeline.weighted_mixture(main, pool, run.ratio, seed=run.seed)
    if t.pretrain is None:
        return [(main, epochs)]
    first = min(max(1, round(float(config.pretrain_share) * epochs)), epochs - 1)
    pretrain = _dataset(t.pretrain[0], t.pretrain[1], [True] * len(t.pretrain[0]), run, config, num_classes, None)
    return [(pretrain, first), (main, epochs - first)]


def _pad_to_batches(images, batch_size):
    """Repeats the last image up to a whole number of batches: under ``keras.distribution.DataParallel``
    every predict batch must split evenly over the devices (the padded predictions are dropped)."""
    missing = -len(images) % batch_size
    return np.concatenate([images, np.repeat(images[-1:], missing, axis=0)]) if missing else images


def _evaluation_images(manifest, split, config, replicas):
    """``(images, labels)`` of ``split`` ("test", or "val" of a hold-out) for :class:`_Evaluate`, padded to
    whole eval batches across ``replicas`` devices."""
    images = pipeline.load_images(manifest.files(split), config.image_size, config.eval_batch_size)
    if replicas > 1:
        images = _pad_to_batches(images, int(config.eval_batch_size))
    return images, np.asarray(manifest.labels(split), np.int64)


def _check_budget(config):
    if int(config.steps) < 1 or int(config.eval_every) < 1 or int(config.steps) % int(config.eval_every):
        raise UserError(
            f"steps={config.steps}, eval_every={config.eval_every}; expected positive integers with eval_every "
            "dividing steps"
        )
    check_library(config.backbone_library)
    missing = [arch for arch in config.archs if arch not in config.recipes]
    if missing:
        raise UserError(
            f"config.recipes has no entry for {missing}; add one per architecture (keys: {', '.join(recipes.KEYS)})"
        )
    for arch in config.archs:
        recipes.check_recipe(config.recipes[arch], config.steps, f"config.recipes.{arch}")
    if config.lr_schedule not in recipes.LR_SCHEDULES:
        raise UserError(f"config.lr_schedule={config.lr_schedule!r}; accepted: {', '.join(recipes.LR_SCHEDULES)}")
    evaluations = int(config.steps) // int(config.eval_every)
    if not 1 <= int(config.final_evals) <= evaluations:
        raise UserError(
            f"config.final_evals={config.final_evals}; expected 1 to the {evaluations} evaluations "
            "of a run (steps / eval_every)"
        )
    if "pretrain_synthetic" in config.regimes and evaluations < 2:
        raise UserError("pretrain_synthetic needs at least 2 evaluations (steps / eval_every) to split the budget")
    choose = config.choose
    unknown = sorted(set(choose) - {"lr_schedule", "final_evals", "regimes"})
    if unknown:
        raise UserError(f"config.choose has unknown key(s) {unknown}; accepted: lr_schedule, final_evals, regimes")
    if not chooses(config):
        return
    if float(config.validation_share) <= 0:
        candidates = dict(lr_schedule=tuple(choose.lr_schedule), final_evals=tuple(choose.final_evals))
        raise UserError(
            f"config.choose lists candidates {candidates} but config.validation_share is 0: a choice "
            "needs a validation share of the train split (the test split is never used for one), e.g. 0.2"
        )
    bad = [s for s in choose.lr_schedule if s not in recipes.LR_SCHEDULES]
    bad += [k for k in choose.final_evals if not 1 <= int(k) <= evaluations]
    if bad:
        raise UserError(
            f"config.choose candidate(s) {bad}; accepted: lr_schedule from {', '.join(recipes.LR_SCHEDULES)}, "
            f"final_evals from 1 to the {evaluations} evaluations of a run"
        )
    if not list(choose.regimes) or any(r not in summary_lib.BASELINES for r in choose.regimes):
        raise UserError(
            f"config.choose.regimes={tuple(choose.regimes)}; accepted: a non-empty subset of "
            f"{', '.join(summary_lib.BASELINES)} (the choice never looks at synthetic runs)"
        )


def _keep_model(run, accuracy, model, run_dir, workdir, config):
    """Saves the model of the first seed's ``real`` run and of the best augmented run so far (per arch)."""
    if not config.keep_models:
        return False
    if run.regime == "real":
        first_split = None if run.split is None else int(list(config.validation_seeds)[0])
        if run.seed != int(list(config.seeds)[0]) or run.split != first_split:
            return False
        model.save(run_dir / "model.keras")
        return True
    rivals = [
        row
        for row in results_lib.load_results(workdir)
        if row["arch"] == run.arch and row["regime"] != "real" and row["has_model"]
    ]
    if any(row["test_accuracy"] >= accuracy for row in rivals):
        return False
    model.save(run_dir / "model.keras")
    for row in rivals:
        (workdir / "runs" / row["run_id"] / "model.keras").unlink(missing_ok=True)
        row["has_model"] = False
        io.write_json(workdir / "runs" / row["run_id"] / results_lib.RESULT_NAME, row)
    return True


def _fit(run, training_set, trainer, images, split, config, run_dir, num_classes, bar):
    """Trains ``run`` from its seed's initial state in a fresh ``run_dir``, evaluating on ``images`` (of
    ``split``) every ``eval_every`` steps; returns the model and the evaluation callback (curve, predictions)."""
    if run_dir.exists():
        logging.info("restarting partial run %s", run_dir.name)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    phases = _pipelines(run, training_set, config, num_classes)
    model = trainer.reset(run.seed)
    # BatchNorm statistics are re-estimated on the run's main training set (the one it ends on).
    evaluate = _Evaluate(run_dir, images, config, phases[-1][0], bar, split)
    done = 0
    for dataset, epochs in phases:
        model.fit(
            dataset,
            initial_epoch=done,
            epochs=done + epochs,
            steps_per_epoch=int(config.eval_every),
            callbacks=[evaluate],
            verbose=0,
            shuffle=False,
        )
        done += epochs
    return model, evaluate


def _train_one(run, training_set, trainer, manifest, test, config, workdir, bar):
    run_dir = workdir / "runs" / run.run_id
    start = time.time()
    model, evaluate = _fit(run, training_set, trainer, test, "test", config, run_dir, len(manifest.class_names), bar)
    matrix = stats.confusion_matrix(test[1], evaluate.predictions, len(manifest.class_names))
    metrics = stats.classification_metrics(matrix)
    final = [point["test_accuracy"] for point in evaluate.curve[-int(config.final_evals) :]]
    wall = time.time() - start
    n_real, n_synthetic = training_set.counts
    result = {
        "run_id": run.run_id,
        "arch": run.arch,
        "regime": run.regime,
        "ratio": run.ratio,
        "seed": run.seed,
        "source": run.source,
        "split": run.split,
        "cell": run.cell,
        "steps": int(config.steps),
        "batch_size": int(config.batch_size),
        "train_images": n_real + n_synthetic,
        "real_images": n_real,
        "synthetic_images": n_synthetic,
        "test_images": int(len(test[1])),
        "test_accuracy": float(np.mean(final)),
        "last_test_accuracy": metrics["accuracy"],
        "final_evals": len(final),
        "macro_f1": metrics["macro_f1"],
        "per_class_accuracy": dict(zip(manifest.class_names, metrics["per_class_accuracy"])),
        "confusion": matrix.tolist(),
        "class_names": list(manifest.class_names),
        "wall_time_s": wall,
        "bn": bn_description(config),
        "lr_schedule": config.lr_schedule,
        "recipe": recipes.describe(config.recipes[run.arch]),
        "has_model": False,
    }
    result["has_model"] = _keep_model(run, result["test_accuracy"], model, run_dir, workdir, config)
    io.write_json(run_dir / results_lib.RESULT_NAME, result)
    logging.info(
        "%s: test accuracy %.3f, macro-F1 %.3f (%.0f s)", run.run_id, result["test_accuracy"], metrics["macro_f1"], wall
    )
    return result


def synthetic_sources(synthetic_dir):
    """``{name: Path}`` of the synthetic folders: ``{"": path}`` for one unnamed folder, ``{}`` for None."""
    if synthetic_dir is None:
        return {}
    if isinstance(synthetic_dir, dict):
        if not synthetic_dir:
            raise UserError("synthetic_dir={}: give at least one named synthetic folder, or None")
        return {str(name): Path(path) for name, path in synthetic_dir.items()}
    return {"": Path(synthetic_dir)}


def parse_sources(values):
    """``{name: path}`` from ``--synthetic_source`` values ``name=path`` (see :func:`regimes.check_sources`)."""
    found = {}
    for value in values or ():
        name, sep, path = str(value).partition("=")
        if not sep or not path or name in found:
            raise UserError(
                f"--synthetic_source={value!r}; expected name=folder once per name, e.g. "
                "--synthetic_source=unfiltered=runs/synthetic --synthetic_source=filtered=runs/filtered"
            )
        found[name] = path
    check_sources(list(found))
    return found


def run_study(config, workdir, synthetic_dir=None, data_dir=None, shard=None, strategy="none", choose_only=False):
    """Runs the sweep of ``config`` (or one shard of it) in ``workdir``; without a shard, also the report.

    Args:
        config: an ``ml_collections.ConfigDict`` like ``configs/eval_ratios.py``'s.
        workdir: output folder (created); a second call resumes, skipping finished runs.
        synthetic_dir: a synthetic image folder (``<dir>/<class>/*.png``, from ``bin/generate``, or any folder
            with the dataset's class names), or ``{name: folder}`` for several sources (e.g. ``unfiltered`` and
            ``filtered``): every synthetic regime runs on each, and the report compares them paired by seed.
            Without it the synthetic regimes are skipped with a warning, or refused when
            ``config.require_synthetic`` is set.
        data_dir: the real dataset folder; default the built-in ``morsa_parts`` dataset of ``config.data``.
        shard: ``(i, n)`` to run only every n-th run starting at i (see :func:`parse_shard`); then call
            :func:`keras_morsa.evaluation.results.merge_study` once all shards are done. With a validation
            choice to make (``config.choose``), make it first with ``choose_only``.
        strategy: a ``keras_morsa.training.distribute.STRATEGIES`` name; every training runs in its scope
            (``"mirrored"`` on TF, ``"data_parallel"`` on JAX; the batch size must divide among replicas).
        choose_only: only make the validation choice (``validation/choice.json``); the test split is not read.

    Returns:
        The result dicts of the runs this call trained (finished runs skipped; the validation choice's runs
        are not among them).
    """
    workdir = Path(workdir)
    _check_budget(config)
    replicas = distribute.check_batch_split(
        strategy, **{"config.batch_size": config.batch_size, "config.eval_batch_size": config.eval_batch_size}
    )
    sources = synthetic_sources(synthetic_dir)
    check_sources(list(sources) or [""], config.reference_source)
    runs = plan_runs(config, list(sources) or [""])
    if choose_only and not chooses(config):
        raise UserError("choose_only: config.choose lists no candidate (lr_schedule, final_evals) to choose")
    if shard is not None and chooses(config) and not (workdir / results_lib.CHOICE_FILE).is_file():
        raise UserError(
            f"no validation choice in {workdir / results_lib.CHOICE_DIR} yet: make it first without a "
            "shard (bin/eval_ratios ... --choose_only), then start the shards"
        )
    if not sources:
        skipped = [r for r in runs if r.regime in SYNTHETIC_REGIMES]
        if skipped and config.require_synthetic:
            raise UserError(
                "config.require_synthetic is set but no synthetic_dir was given; pass --synthetic_dir=<folder "
                "from bin/generate> or drop the synthetic regimes"
            )
        if skipped:
            logging.warning(
                "no synthetic_dir given: skipping the %d runs of the synthetic regimes (%s); only real and "
                "traditional are trained",
                len(skipped),
                ", ".join(sorted({r.regime for r in skipped})),
            )
            runs = [r for r in runs if r.regime not in SYNTHETIC_REGIMES]
            if not runs:
                raise UserError("every regime of the config needs synthetic images; pass --synthetic_dir")
    # One process per study workdir, or per shard of it: the shards of one sweep may share a workdir.
    with io.folder_lock(workdir, io.LOCK_NAME if shard is None else f"{io.LOCK_NAME}-shard{shard[0]}of{shard[1]}"):
        return _run(config, workdir, shard_runs(runs, shard), sources, data_dir, shard, strategy, replicas, choose_only)


def _keep_quality(sources, workdir):
    """Copies each synthetic folder's current ``quality.json`` (``bin/gan_quality``) into the workdir, where
    the report finds it even at a ``--merge`` without the folders; a stale or missing one removes an old copy."""
    for stale in workdir.glob("synthetic_quality*.json"):  # of a folder this sweep no longer reads
        if stale.name not in {results_lib.quality_copy(name) for name in sources}:
            stale.unlink()
    for name, directory in sources.items():
        quality = quality_files.synthetic_quality(directory)
        copy = workdir / results_lib.quality_copy(name)
        if quality is None:
            copy.unlink(missing_ok=True)
        else:
            io.write_json(copy, quality)


def _choice_runs(config):
    """``[(lr_schedule, run)]`` the validation choice trains: ``config.choose.regimes`` for every arch,
    hold-out and seed, once per candidate schedule."""
    schedules = list(config.choose.lr_schedule) or [config.lr_schedule]
    baselines = config.copy_and_resolve_references()
    baselines.regimes = tuple(config.choose.regimes)
    return [(schedule, run) for schedule in schedules for run in plan_runs(baselines)]


def _choice_dir(workdir, schedule, run):
    return workdir / results_lib.CHOICE_DIR / "runs" / f"lr_{schedule}" / run.run_id


def _choose(config, workdir, held_out, trainers, bar, replicas=1):
    """Trains the choice's unfinished runs (evaluated on each hold-out's val split only), then writes and
    returns ``validation/choice.json`` (:func:`keras_morsa.evaluation.summary.choose_setting`)."""
    finished, images = [], {}
    for schedule, run in _choice_runs(config):
        run_dir = _choice_dir(workdir, schedule, run)
        if (run_dir / results_lib.RESULT_NAME).is_file():
            finished.append(io.read_json(run_dir / results_lib.RESULT_NAME))
            continue
        manifest = held_out[run.split]
        if run.split not in images:
            images[run.split] = _evaluation_images(manifest, "val", config, replicas)
        val = images[run.split]
        start = time.time()
        _, evaluate = _fit(
            run,
            _training_set(run, manifest, None, config),
            trainers[run.arch, schedule],
            val,
            "val",
            config,
            run_dir,
            len(manifest.class_names),
            bar,
        )
        result = {
            "run_id": run.run_id,
            "arch": run.arch,
            "regime": run.regime,
            "seed": run.seed,
            "split": run.split,
            "lr_schedule": schedule,
            "val_images": int(len(val[1])),
            "val_curve": [point["val_accuracy"] for point in evaluate.curve],
            "wall_time_s": time.time() - start,
        }
        io.write_json(run_dir / results_lib.RESULT_NAME, result)
        finished.append(result)
    choice = summary_lib.choose_setting(
        finished,
        list(config.choose.lr_schedule) or [config.lr_schedule],
        [int(k) for k in config.choose.final_evals] or [int(config.final_evals)],
        config.confidence,
    )
    choice.update(
        validation_share=float(config.validation_share),
        regimes=list(config.choose.regimes),
        validation_seeds=[int(v) for v in config.validation_seeds],
        val_images={str(v): len(m.files("val")) for v, m in held_out.items()},
    )
    io.write_json(workdir / results_lib.CHOICE_FILE, choice)
    logging.info("validation choice: %s (mean validation accuracy %.3f)", choice["chosen"], choice["score"])
    return choice


def _run(config, workdir, runs, sources, data_dir, shard, strategy, replicas, choose_only):
    """The body of :func:`run_study`, under the workdir's lock."""
    if shard is None:  # shards may share the workdir: another shard's temporary files may be live
        io.remove_temp_files(workdir)
    elif chooses(config):  # made beforehand (run_study checked): the shard trains with its settings
        config = results_lib.with_choice(config, io.read_json(workdir / results_lib.CHOICE_FILE))
    _keep_quality(sources, workdir)
    # A list of pairs: the order given is kept (the first source is the default reference).
    io.write_json(workdir / results_lib.SOURCES_NAME, [[name, str(path)] for name, path in sources.items()])
    done = {row["run_id"] for row in results_lib.load_results(workdir)}
    todo = [] if choose_only else [r for r in runs if r.run_id not in done]
    choosing = chooses(config) and shard is None
    logging.info(
        "%d runs in this %s: %d finished, %d to train",
        len(runs),
        "shard" if shard else "sweep",
        len(runs) - len(todo),
        len(todo),
    )
    trained = []
    if todo or choosing:
        # The split lives next to the data, where the GAN stage reads and writes it too: one split for all.
        manifest = splits.load_or_create_split(
            morsa_parts.dataset_root(config.data, data_dir or None),
            test_fraction=config.data.test_fraction,
            seed=config.data.split_seed,
            read_only_fallback=workdir,
        )
        untested = [name for name, count in manifest.counts().items() if count["test"] == 0]
        if untested:
            raise DataError(
                f"class(es) {', '.join(untested)} have no test images in the split of {manifest.image_root}: "
                "their accuracy (and the overall figure) would be undefined; add images or raise "
                "data.test_fraction, then delete the split_manifest.csv to split again"
            )
        splits.check_no_leak(manifest, list(sources.values()))
        # A copy for the later stages (Grad-CAM reads the study's split from its workdir).
        manifest.save(workdir / splits.MANIFEST_NAME)
        # What each run trains on: the train split, or its hold-out's train rows (the rest is validation).
        held_out = {None: manifest}
        if float(config.validation_share) > 0:
            held_out = {
                int(v): splits.hold_out_validation(manifest, float(config.validation_share), int(v))
                for v in config.validation_seeds
            }
        synthetic = {name: pipeline.list_synthetic(path, manifest.class_names) for name, path in sources.items()}
        # Every training set is drawn up front, so too few synthetic images fail before any training.
        training_sets = {run: _training_set(run, held_out[run.split], synthetic, config) for run in todo}
        pending = [
            (schedule, run)
            for schedule, run in (_choice_runs(config) if choosing else [])
            if not (_choice_dir(workdir, schedule, run) / results_lib.RESULT_NAME).is_file()
        ]
        if choosing and not pending:
            config = results_lib.with_choice(config, _choose(config, workdir, held_out, {}, None))
        # All trainers first: they seed TensorFlow, which must happen before anything is compiled. While the
        # choice is pending the study's schedule is one of its candidates, so every candidate gets a trainer.
        schedules = [config.lr_schedule]
        if pending:
            schedules = list(config.choose.lr_schedule) or schedules
        keys = dict.fromkeys(
            [(run.arch, schedule) for schedule, run in pending]
            + [(run.arch, schedule) for run in todo for schedule in schedules]
        )
        if keys:
            bar = keras.utils.Progbar(
                (len(pending) + len(todo)) * int(config.steps),
                unit_name="step",
                stateful_metrics=["test_acc", "val_acc"],
            )
            with distribute.distribution_scope(strategy):
                trainers = {key: _Trainer(key[0], config, manifest.class_names, strategy, key[1]) for key in keys}
                if pending:
                    choice = _choose(config, workdir, held_out, trainers, bar, replicas)
                    config = results_lib.with_choice(config, choice)
                if todo:
                    test = _evaluation_images(manifest, "test", config, replicas)
                    for run in todo:
                        trained.append(
                            _train_one(
                                run,
                                training_sets[run],
                                trainers[run.arch, config.lr_schedule],
                                manifest,
                                test,
                                config,
                                workdir,
                                bar,
                            )
                        )
    if choose_only:
        return trained
    if shard is None:
        results_lib.build_outputs(config, workdir)
    else:
        logging.info("shard %d/%d done; run with --merge once every shard has finished", *shard)
    return trained
