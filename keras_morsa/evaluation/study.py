"""The real/synthetic ratio study: which training sets make a classifier better on the real test split?

A sweep trains one classifier per run, a run being (architecture, regime, ratio, seed):

- ``real``: the real train split only.
- ``traditional``: the real train split with classic augmentation in the tf.data pipeline
  (``config.augment``: flip, colour jitter, Gaussian noise).
- ``synthetic`` at ratio ``r``: per class all real train images plus ``round(r * n_real)`` synthetic ones.
- ``synthetic_only``: synthetic images only, ``round(config.synthetic_only_ratio * n_real)`` per class
  (the classification accuracy score: train on synthetic, test on real).
- ``traditional+synthetic`` at ratio ``r``: the synthetic mix with classic augmentation.

Every run gets the same budget: ``config.steps`` optimizer steps of ``config.batch_size`` images, so more data
never means more compute, and is evaluated on the same real test split every ``config.eval_every`` steps.
Runs with the same seed share their initial weights, data order seed and synthetic draw, which makes
per-seed differences against ``real`` paired.

Layout of ``workdir``::

    split_manifest.csv            a copy of the split used (the original stays beside the data; for read-only
                                  data it is the only one)
    runs/<run_id>/curve.csv       test accuracy every eval_every steps (rewritten as it grows)
    runs/<run_id>/result.json     written last: marks the run finished (a resumed sweep skips it)
    runs/<run_id>/model.keras     kept for the first seed's real run and the best augmented run so far
    results.csv, curves.csv       one row per run / per evaluation (built by merge_study)
    report.md, report.html, *.png the summary (built by merge_study)
    models/real.keras, models/best_augmented.keras   for Grad-CAM and export

A killed sweep resumes: finished runs are skipped and a partial run restarts from scratch. ``shard=(i, n)``
runs every n-th run starting at i, so n processes (or machines, their ``runs/`` folders copied together
afterwards) share a sweep; :func:`merge_study` then builds one report. A single process does both.

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
from keras_morsa.data import pipeline, splits
from keras_morsa.errors import DataError, UserError
from keras_morsa.evaluation import stats
from keras_morsa.models.classifier import build_classifier, reestimate_bn_statistics
from keras_morsa.training import distribute

REGIMES = ("real", "traditional", "synthetic", "synthetic_only", "traditional+synthetic")
RATIO_REGIMES = ("synthetic", "traditional+synthetic")
SYNTHETIC_REGIMES = ("synthetic", "synthetic_only", "traditional+synthetic")
AUGMENTED_REGIMES = ("traditional", "traditional+synthetic")

RESULT_NAME = "result.json"
CURVE_FIELDS = ("step", "test_accuracy", "train_loss", "train_accuracy")


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run of the sweep; ``ratio`` is None for regimes without one."""

    arch: str
    regime: str
    ratio: float | None
    seed: int

    @property
    def run_id(self):
        ratio = "" if self.ratio is None else f"-r{self.ratio:g}"
        return f"{self.arch}-{self.regime.replace('+', '_')}{ratio}-s{self.seed}"

    @property
    def cell(self):
        """The regime label shown in reports: ``synthetic@0.5``, ``real``, ..."""
        return self.regime if self.ratio is None else f"{self.regime}@{self.ratio:g}"


def plan_runs(config):
    """All runs of ``config`` in sweep order: architecture, then regime and ratio, then seed.

    Raises:
        UserError: an unknown regime, no seeds, or a ratio regime without ratios.
    """
    unknown = [r for r in config.regimes if r not in REGIMES]
    if unknown:
        raise UserError(f"unknown regime(s) {unknown}; accepted: {', '.join(REGIMES)}")
    if not list(config.seeds):
        raise UserError("config.seeds is empty; expected at least one seed")
    if any(r in RATIO_REGIMES for r in config.regimes) and not list(config.ratios):
        raise UserError("config.ratios is empty but a synthetic ratio regime is requested; give ratios > 0")
    for key, values in (("ratios", list(config.ratios)), ("synthetic_only_ratio", [config.synthetic_only_ratio])):
        if not all(_is_positive_number(v) for v in values):
            raise UserError(f"config.{key}={getattr(config, key)!r}; expected numbers > 0, e.g. "
                            "--config.ratios='(0.5, 1.0)' --config.synthetic_only_ratio=1.0")
    runs = []
    for arch in config.archs:
        for regime in config.regimes:
            ratios = [float(r) for r in config.ratios] if regime in RATIO_REGIMES else [None]
            for ratio in ratios:
                runs.extend(Run(arch, regime, ratio, int(seed)) for seed in config.seeds)
    return runs


def _is_positive_number(value):
    try:
        return not isinstance(value, (bool, str)) and float(value) > 0
    except (TypeError, ValueError):
        return False


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


def _resolve_data_dir(config, data_dir):
    if data_dir:
        return Path(data_dir)
    from keras_morsa.data import morsa_parts  # the built-in dataset; built (and cached) on first use

    return morsa_parts.load(
        images_per_class=config.data.images_per_class, image_size=config.data.image_size, seed=config.data.seed
    )


def _load_images(files, labels, config):
    """The test split as one float32 array in [0, 255] and an int array of labels."""
    ds = pipeline.classifier_dataset(
        files, labels, config.image_size, config.eval_batch_size, seed=0, training=False
    )
    images = [batch for batch, _ in ds.as_numpy_iterator()]
    return np.concatenate(images).astype(np.float32), np.asarray(labels, np.int64)


class _Trainer:
    """One compiled classifier per architecture, reset to a seed's initial state before each run.

    Compiling MobileNetV3 costs ~30 s on TF and JAX; resetting weights, optimizer slots and the dropout
    seed instead of rebuilding keeps that cost once per sweep and gives the same result as a fresh model.
    """

    def __init__(self, arch, config, class_names, strategy):
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
        self.model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=float(config.learning_rates[arch])),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
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
    """Test accuracy every epoch (= eval_every steps), after optional BatchNorm re-estimation."""

    def __init__(self, run_dir, test_images, config, train_ds, bar):
        super().__init__()
        self.run_dir = run_dir
        self.test_images = test_images
        self.config = config
        self.train_ds = train_ds
        self.bar = bar
        self.curve = []
        self.predictions = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.config.bn_reestimate_batches > 0:
            reestimate_bn_statistics(self.model, self.train_ds, self.config.bn_reestimate_batches)
        images, labels = self.test_images
        probabilities = self.model.predict(images, batch_size=self.config.eval_batch_size, verbose=0)
        self.predictions = np.argmax(probabilities[: len(labels)], axis=-1)
        accuracy = float(np.mean(self.predictions == labels))
        self.curve.append({
            "step": (epoch + 1) * self.config.eval_every,
            "test_accuracy": accuracy,
            "train_loss": float(logs.get("loss", np.nan)),
            "train_accuracy": float(logs.get("accuracy", np.nan)),
        })
        io.write_csv(self.run_dir / "curve.csv", self.curve, CURVE_FIELDS)
        self.bar.add(self.config.eval_every, [("test_acc", accuracy)])


def _training_set(run, manifest, synthetic, config):
    """(files, labels, n_real, n_synthetic) for one run."""
    real_files, real_labels = manifest.files("train"), manifest.labels("train")
    if run.regime in ("real", "traditional"):
        return real_files, real_labels, len(real_files), 0
    ratio = float(config.synthetic_only_ratio) if run.regime == "synthetic_only" else run.ratio
    files, labels = pipeline.mix_real_synthetic(
        real_files, real_labels, synthetic[0], synthetic[1], ratio, run.seed, class_names=manifest.class_names
    )
    if run.regime == "synthetic_only":
        real = set(map(str, real_files))
        kept = [(f, label) for f, label in zip(files, labels) if str(f) not in real]
        files, labels = [f for f, _ in kept], [label for _, label in kept]
        return files, labels, 0, len(files)
    return files, labels, len(real_files), len(files) - len(real_files)


def _pad_to_batches(images, batch_size):
    """Repeats the last image up to a whole number of batches: under ``keras.distribution.DataParallel``
    every predict batch must split evenly over the devices (the padded predictions are dropped)."""
    missing = -len(images) % batch_size
    return np.concatenate([images, np.repeat(images[-1:], missing, axis=0)]) if missing else images


def _check_budget(config):
    if int(config.steps) < 1 or int(config.eval_every) < 1 or int(config.steps) % int(config.eval_every):
        raise UserError(
            f"steps={config.steps}, eval_every={config.eval_every}; expected positive integers with eval_every "
            "dividing steps"
        )
    missing = [arch for arch in config.archs if arch not in config.learning_rates]
    if missing:
        raise UserError(f"config.learning_rates has no entry for {missing}; add one per architecture")


def _keep_model(run, accuracy, model, run_dir, workdir, config):
    """Saves the model of the first seed's ``real`` run and of the best augmented run so far (per arch)."""
    if not config.keep_models:
        return False
    if run.regime == "real":
        if run.seed != int(list(config.seeds)[0]):
            return False
        model.save(run_dir / "model.keras")
        return True
    rivals = [
        row for row in load_results(workdir)
        if row["arch"] == run.arch and row["regime"] != "real" and row["has_model"]
    ]
    if any(row["test_accuracy"] >= accuracy for row in rivals):
        return False
    model.save(run_dir / "model.keras")
    for row in rivals:
        (workdir / "runs" / row["run_id"] / "model.keras").unlink(missing_ok=True)
        row["has_model"] = False
        io.write_json(workdir / "runs" / row["run_id"] / RESULT_NAME, row)
    return True


def _train_one(run, training_set, trainer, manifest, test, config, workdir, bar):
    run_dir = workdir / "runs" / run.run_id
    if run_dir.exists():
        logging.info("restarting partial run %s", run.run_id)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    start = time.time()
    files, labels, n_real, n_synthetic = training_set
    augment = None
    if run.regime in AUGMENTED_REGIMES:
        augment = augment_lib.make_augment(
            config.augment.ops, seed=run.seed, brightness=config.augment.brightness,
            contrast=config.augment.contrast, saturation=config.augment.saturation,
            noise_stddev=config.augment.noise_stddev,
        )
    train_ds = pipeline.classifier_dataset(
        files, labels, config.image_size, config.batch_size, seed=run.seed, training=True, augment=augment,
        repeat=True,
    )
    model = trainer.reset(run.seed)
    evaluate = _Evaluate(run_dir, test, config, train_ds, bar)
    model.fit(
        train_ds, epochs=int(config.steps) // int(config.eval_every), steps_per_epoch=int(config.eval_every),
        callbacks=[evaluate], verbose=0, shuffle=False,
    )
    matrix = stats.confusion_matrix(test[1], evaluate.predictions, len(manifest.class_names))
    metrics = stats.classification_metrics(matrix)
    wall = time.time() - start
    result = {
        "run_id": run.run_id, "arch": run.arch, "regime": run.regime, "ratio": run.ratio, "seed": run.seed,
        "cell": run.cell, "steps": int(config.steps), "batch_size": int(config.batch_size),
        "train_images": len(files), "real_images": n_real, "synthetic_images": n_synthetic,
        "test_images": int(len(test[1])), "test_accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
        "per_class_accuracy": dict(zip(manifest.class_names, metrics["per_class_accuracy"])),
        "confusion": matrix.tolist(), "class_names": list(manifest.class_names), "wall_time_s": wall,
        "bn": _bn_description(config), "has_model": False,
    }
    result["has_model"] = _keep_model(run, metrics["accuracy"], model, run_dir, workdir, config)
    io.write_json(run_dir / RESULT_NAME, result)
    logging.info("%s: test accuracy %.3f, macro-F1 %.3f (%.0f s)", run.run_id, metrics["accuracy"],
                 metrics["macro_f1"], wall)
    return result


def _bn_description(config):
    text = f"momentum {config.bn_momentum:g}" if config.bn_momentum is not None else "KerasCV momentum"
    if config.bn_reestimate_batches > 0:
        text += f", re-estimated on {config.bn_reestimate_batches} training batches before each evaluation"
    return text


def load_results(workdir):
    """The result dicts of every finished run under ``<workdir>/runs``, in run-id order."""
    paths = sorted((Path(workdir) / "runs").glob(f"*/{RESULT_NAME}"))
    return [io.read_json(path) for path in paths]


def run_study(config, workdir, synthetic_dir=None, data_dir=None, shard=None, strategy="none"):
    """Runs the sweep of ``config`` (or one shard of it) in ``workdir``; without a shard, also the report.

    Args:
        config: an ``ml_collections.ConfigDict`` like ``configs/eval_ratios.py``'s.
        workdir: output folder (created); a second call resumes, skipping finished runs.
        synthetic_dir: a synthetic image folder (``<dir>/<class>/*.png``, from ``bin/generate``, or any folder
            with the dataset's class names). Without it the synthetic regimes are skipped with a warning, or
            refused when ``config.require_synthetic`` is set.
        data_dir: the real dataset folder; default the built-in ``morsa_parts`` dataset of ``config.data``.
        shard: ``(i, n)`` to run only every n-th run starting at i (see :func:`parse_shard`); then call
            :func:`merge_study` once all shards are done.
        strategy: a ``keras_morsa.training.distribute.STRATEGIES`` name; every training runs in its scope
            (``"mirrored"`` on TF, ``"data_parallel"`` on JAX; the batch size must divide among replicas).

    Returns:
        The result dicts of the runs this call trained (finished runs skipped).
    """
    workdir = Path(workdir)
    _check_budget(config)
    replicas = distribute.check_batch_split(
        strategy, **{"config.batch_size": config.batch_size, "config.eval_batch_size": config.eval_batch_size})
    runs = plan_runs(config)
    if synthetic_dir is None:
        skipped = [r for r in runs if r.regime in SYNTHETIC_REGIMES]
        if skipped and config.require_synthetic:
            raise UserError(
                "config.require_synthetic is set but no synthetic_dir was given; pass --synthetic_dir=<folder "
                "from bin/generate> or drop the synthetic regimes"
            )
        if skipped:
            logging.warning(
                "no synthetic_dir given: skipping the %d runs of the synthetic regimes (%s); only real and "
                "traditional are trained", len(skipped), ", ".join(sorted({r.regime for r in skipped})))
            runs = [r for r in runs if r.regime not in SYNTHETIC_REGIMES]
            if not runs:
                raise UserError("every regime of the config needs synthetic images; pass --synthetic_dir")
    # One process per study workdir, or per shard of it: the shards of one sweep may share a workdir.
    with io.folder_lock(workdir, io.LOCK_NAME if shard is None else f"{io.LOCK_NAME}-shard{shard[0]}of{shard[1]}"):
        return _run(config, workdir, shard_runs(runs, shard), synthetic_dir, data_dir, shard, strategy, replicas)


def _run(config, workdir, runs, synthetic_dir, data_dir, shard, strategy, replicas):
    """The body of :func:`run_study`, under the workdir's lock."""
    if shard is None:  # shards may share the workdir: another shard's temporary files may be live
        io.remove_temp_files(workdir)
    done = {row["run_id"] for row in load_results(workdir)}
    todo = [r for r in runs if r.run_id not in done]
    logging.info("%d runs in this %s: %d finished, %d to train", len(runs), "shard" if shard else "sweep",
                 len(runs) - len(todo), len(todo))
    trained = []
    if todo:
        # The split lives next to the data, where the GAN stage reads and writes it too: one split for all.
        manifest = splits.load_or_create_split(
            _resolve_data_dir(config, data_dir), test_fraction=config.data.test_fraction,
            seed=config.data.split_seed, read_only_fallback=workdir,
        )
        untested = [name for name, count in manifest.counts().items() if count["test"] == 0]
        if untested:
            raise DataError(
                f"class(es) {', '.join(untested)} have no test images in the split of {manifest.image_root}: "
                "their accuracy (and the overall figure) would be undefined; add images or raise "
                "data.test_fraction, then delete the split_manifest.csv to split again")
        splits.check_no_leak(manifest, [synthetic_dir] if synthetic_dir else [])
        # A copy for the later stages (Grad-CAM reads the study's split from its workdir).
        manifest.save(workdir / splits.MANIFEST_NAME)
        synthetic = pipeline.list_synthetic(synthetic_dir, manifest.class_names) if synthetic_dir else None
        # Every training set is drawn up front, so too few synthetic images fail before any training.
        training_sets = {run: _training_set(run, manifest, synthetic, config) for run in todo}
        test = _load_images(manifest.files("test"), manifest.labels("test"), config)
        if replicas > 1:
            test = (_pad_to_batches(test[0], int(config.eval_batch_size)), test[1])
        bar = keras.utils.Progbar(len(todo) * int(config.steps), unit_name="step",
                                  stateful_metrics=["test_acc"])
        with distribute.distribution_scope(strategy):
            # All trainers first: they seed TensorFlow, which must happen before anything is compiled.
            trainers = {arch: _Trainer(arch, config, manifest.class_names, strategy)
                        for arch in dict.fromkeys(run.arch for run in todo)}
            for run in todo:
                trained.append(
                    _train_one(run, training_sets[run], trainers[run.arch], manifest, test, config, workdir, bar))
    if shard is None:
        _merge(config, workdir)
    else:
        logging.info("shard %d/%d done; run with --merge once every shard has finished", *shard)
    return trained


def merge_study(config, workdir):
    """Builds ``results.csv``, ``curves.csv``, the report, the plots and ``models/`` from finished runs.

    Call it after all shards have finished (their ``runs/`` folders under one ``workdir``); a plain
    :func:`run_study` calls it itself.

    Raises:
        UserError: no finished run in ``workdir``.
    """
    with io.folder_lock(workdir):
        return _merge(config, workdir)


def _merge(config, workdir):
    from keras_morsa.evaluation import report

    workdir = Path(workdir)
    results = load_results(workdir)
    if not results:
        raise UserError(f"no finished runs under {workdir / 'runs'}; run the sweep (or its shards) first")
    expected = {r.run_id for r in plan_runs(config)}
    missing = sorted(expected - {row["run_id"] for row in results})
    if missing:
        logging.warning("%d planned runs have no result (skipped or unfinished shard): %s", len(missing),
                        ", ".join(missing[:5]))
    class_names = results[0]["class_names"]
    fields = ["run_id", "arch", "regime", "ratio", "seed", "steps", "batch_size", "train_images",
              "real_images", "synthetic_images", "test_images", "test_accuracy", "macro_f1"]
    fields += [f"acc_{name}" for name in class_names] + ["wall_time_s", "bn"]
    rows = []
    for row in results:
        flat = {key: row[key] for key in fields if key in row}
        flat["ratio"] = "" if row["ratio"] is None else row["ratio"]
        flat.update({f"acc_{name}": row["per_class_accuracy"][name] for name in class_names})
        rows.append(flat)
    io.write_csv(workdir / "results.csv", rows, fields)
    curves = []
    for row in results:
        for point in io.read_csv(workdir / "runs" / row["run_id"] / "curve.csv"):
            curves.append({"run_id": row["run_id"], **point})
    io.write_csv(workdir / "curves.csv", curves, ("run_id",) + CURVE_FIELDS)
    _copy_models(results, config, workdir)
    report.write_report(results, curves, config, workdir)
    return results


def _copy_models(results, config, workdir):
    """``models/real.keras`` and ``models/best_augmented.keras`` of the first architecture."""
    arch = config.archs[0]
    kept = [row for row in results if row["arch"] == arch and row["has_model"]]
    real = sorted((row for row in kept if row["regime"] == "real"), key=lambda row: row["seed"])
    augmented = sorted((row for row in kept if row["regime"] != "real"), key=lambda row: -row["test_accuracy"])
    for name, rows in (("real", real), ("best_augmented", augmented)):
        if not rows:
            continue
        source = workdir / "runs" / rows[0]["run_id"] / "model.keras"
        with open(source, "rb") as src, io.atomic_write(workdir / "models" / f"{name}.keras") as dst:
            shutil.copyfileobj(src, dst)
        io.write_json(workdir / "models" / f"{name}.json", {key: rows[0][key] for key in (
            "run_id", "arch", "regime", "ratio", "seed", "test_accuracy", "macro_f1")})


def describe_budget(config):
    """One sentence stating the training budget every run gets."""
    return (
        f"Every run trains for {config.steps} optimizer steps of batch {config.batch_size} "
        f"({int(config.steps) * int(config.batch_size)} images seen) at {config.image_size} px from "
        f"{'the weights in ' + config.weights if config.weights else 'scratch'}, whatever its training set "
        f"size, and is evaluated on the real test split every {config.eval_every} steps. BatchNorm: "
        f"{_bn_description(config)}."
    )


def summarize(results, confidence=0.95):
    """Per-cell statistics and paired differences against ``real``.

    Returns:
        A list of dicts, one per (arch, cell) in sweep order: ``arch``, ``regime``, ``ratio``, ``cell``,
        ``accuracy`` (``stats.t_interval`` of test accuracy over seeds), ``macro_f1`` (its mean) and
        ``vs_real`` (``stats.paired_difference`` against the same arch's ``real`` runs; None for ``real``).
    """
    cells = {}
    for row in results:
        cells.setdefault((row["arch"], row["regime"], row["ratio"]), []).append(row)
    order = {regime: i for i, regime in enumerate(REGIMES)}
    summary = []
    for (arch, regime, ratio), rows in sorted(
        cells.items(), key=lambda item: (item[0][0], order[item[0][1]], item[0][2] or 0.0)
    ):
        by_seed = {row["seed"]: row["test_accuracy"] for row in rows}
        real = {row["seed"]: row["test_accuracy"] for row in cells.get((arch, "real", None), [])}
        summary.append({
            "arch": arch, "regime": regime, "ratio": ratio, "cell": rows[0]["cell"],
            "accuracy": stats.t_interval(by_seed.values(), confidence),
            "macro_f1": float(np.mean([row["macro_f1"] for row in rows])),
            "vs_real": None if regime == "real" or not real else stats.paired_difference(by_seed, real, confidence),
            "seeds": sorted(by_seed),
        })
    return summary

