"""The FastGAN training run behind ``bin/train_gan``: one class (or all) of a dataset, resumable.

``train_gan(config, workdir, class_name)`` trains a :class:`~keras_morsa.training.fastgan.FastGAN` on the
train split of one class and writes ``<workdir>/<class>/``:

- ``checkpoints/ckpt_<step>.npz``: every variable (G, D, EMA G, both optimizers, seed states) every
  ``checkpoint_every`` steps and at the end; the last ``keep_checkpoints`` kept (:mod:`.checkpoint`).
- ``samples/step_<step>.png``: the EMA generator on ``num_samples`` fixed latents every ``sample_every``
  steps; ``reconstructions/step_<step>.png``: per row, a real image, D's two whole-image reconstructions,
  then quarter 0 and D's reconstruction of it.
- ``log.csv`` (step, mean losses over the last ``log_every`` steps, it/s) and ``tb/`` (TensorBoard scalars
  and the two grids).
- ``sources.txt``: SHA-256 of the training images (for the leak check), ``generator_ema.keras``: the final
  EMA generator, and ``done.json``, written last: the class is finished.
- with ``quality.enabled`` (the default): at every checkpoint, KID and coverage of ``quality.num_samples``
  fixed EMA samples against the class's train images (:mod:`keras_morsa.quality.monitor`; test images are
  never used) as ``kid``/``coverage`` in ``log.csv`` and TensorBoard, the curve ``quality_<class>.png``, and
  the EMA generator of the lowest KID so far as ``generator_best.keras`` (its step, KID, coverage and
  features in ``generator_best.json``). The features (``quality.features``) are by default the penultimate
  features of a classifier trained on every class's real **train** images at the ``quality.classifier``
  budget: trained once per workdir, before the first class, into ``<workdir>/quality_classifier.keras``
  (``quality_classifier.json`` states its budget, data and train accuracy) and reused by every class and
  resume while those match (:func:`keras_morsa.quality.classifier.cached_classifier`). The seeded random
  CNN (``quality.features="random"``, the smoke configs' choice, no training) picked step-500 blobs as the
  best of three built-in classes (issue 11): it sees background texture, not a thin part. :func:`rescore_best`
  (``bin/train_gan --rescore``) chooses a finished run's best again in other features, training nothing.

Resuming: rerunning on the same workdir restores the newest checkpoint and continues. Training is split in
segments of ``checkpoint_every`` steps, each fed by a dataset seeded with ``(seed, first step of the
segment)``; with every variable and seed state restored, a run killed at any moment and resumed sees the
same batches and random draws as an uninterrupted one and ends at the same step. Rows of ``log.csv``
after the restored step are dropped, so no step is logged twice. A finished class (``done.json`` at
``num_steps`` or more) is skipped; raising ``train.num_steps`` continues it.

What may change on resume: the checkpoint records the config it was written with. Keys under ``model.``
(the networks' shape) must not change: the run stops naming the differing keys. Everything else
(``train.num_steps``, the learning rates ``train.g_lr``/``train.d_lr``, intervals, ...) applies from the
restored step on, and the changed keys are printed; the learning rates are set over the ones the
checkpoint's optimizer state restored (so a rerun after a NaN stop with lower rates really uses them).
A truncated newest checkpoint is skipped with a warning and the newest readable one restored
(:meth:`~keras_morsa.training.checkpoint.CheckpointManager.restore_latest`).

One class-conditional model for every class (``model.conditional=True``, with ``class_name="all"``): one
FastGAN whose generator and discriminator take the class label (:mod:`keras_morsa.models.fastgan`) trains on
class-balanced batches of every class's train images (``pipeline.conditional_gan_dataset``) into
``<workdir>/conditional/``, with the same files, resume and data parallelism as a class. Its sample grid cycles
through the classes (sample ``i`` has label ``i % num_classes``), its quality monitor scores samples of every
class (the same cycle) against all train images, ``sources.txt`` lists every class's training images and
``done.json`` records ``class_names`` (the label order); ``bin/generate`` writes per-class folders from it.

A non-finite loss stops the run before anything of that epoch is written, and raises
:class:`NonFiniteLoss` naming the loss, the step and the last good checkpoint (which stays intact).
"""

import datetime
import json
import math
import warnings
from pathlib import Path

import keras
import numpy as np

from keras_morsa import backend, hardware, io
from keras_morsa.data import morsa_parts, pipeline, splits
from keras_morsa.errors import DataError, PerformanceWarning, UserError
from keras_morsa.models.fastgan import Discriminator, Generator, downscale, reconstruction_targets
from keras_morsa.models.fastgan.layers import call_with_labels
from keras_morsa.models.saving import load_model, save_model
from keras_morsa.training import callbacks as cbs
from keras_morsa.training import distribute
from keras_morsa.training.checkpoint import CheckpointManager, CheckpointMismatch
from keras_morsa.training.fastgan import FastGAN

GENERATOR_FILE = "generator_ema.keras"
#: The run folder of a class-conditional model (``model.conditional``), beside the per-class folders.
CONDITIONAL_DIR = "conditional"
BEST_FILE = "generator_best.keras"
BEST_INFO_FILE = "generator_best.json"
#: The classifier behind ``quality.features="classifier"``, one per workdir (its JSON twin beside it).
QUALITY_CLASSIFIER_FILE = "quality_classifier.keras"
# The quality monitor's latents come from their own stream, apart from the sample grid's.
_QUALITY_STREAM = 2
DONE_FILE = "done.json"
SOURCES_FILE = "sources.txt"
#: The dtype policies the FastGAN step supports (``train.dtype_policy``).
DTYPE_POLICIES = ("float32", "mixed_bfloat16")


class NonFiniteLoss(UserError):
    """Training produced a NaN or infinite loss; the message names the last good checkpoint."""


def build_gan(config, strategy="none", num_classes=0):
    """The compiled :class:`FastGAN` of ``config`` (weights from ``config.seed``).

    Args:
        config: the keys of ``configs/common.py``'s ``fastgan_base()``.
        strategy: one of ``distribute.STRATEGIES``; call this inside its ``distribution_scope``, where
            ``fit`` runs too.
        num_classes: with ``model.conditional``, the number of classes (>= 1) the networks are conditioned on.
    """
    conditional = bool(config.model.get("conditional", False))
    if conditional and num_classes < 1:
        raise UserError(f"model.conditional=True needs the number of classes; got num_classes={num_classes}")
    num_classes = int(num_classes) if conditional else 0
    distribute.check_batch_split(strategy, **{"train.batch_size": config.train.batch_size})
    m, t = config.model, config.train
    check_dtype_policy(t.dtype_policy)
    keras.utils.set_random_seed(config.seed)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(t.dtype_policy)  # layers take the global policy when they are created
    try:
        # What the two networks must agree on.
        shared = dict(
            image_size=m.image_size, attention_resolutions=tuple(m.attention_resolutions), num_classes=num_classes
        )
        generator = Generator(ngf=m.ngf, nz=m.nz, activation=m.activation, seed=config.seed, name="generator", **shared)
        discriminator = Discriminator(ndf=m.ndf, decoder_width=m.decoder_width, name="discriminator", **shared)
        gan = FastGAN(
            generator,
            discriminator,
            ema_decay=t.ema_decay,
            policy=t.policy,
            seed=config.seed,
            reconstruction_loss=reconstruction_loss(t, discriminator.reconstruction_size),
        )
    finally:
        keras.config.set_dtype_policy(previous)
    distribute.synchronize_batch_norm(gan, strategy)
    gan.compile(
        g_optimizer=keras.optimizers.Adam(t.g_lr, beta_1=t.beta_1, beta_2=t.beta_2),
        d_optimizer=keras.optimizers.Adam(t.d_lr, beta_1=t.beta_1, beta_2=t.beta_2),
    )
    return gan


def check_dtype_policy(policy, cpu=None):
    """Refuses an unsupported ``train.dtype_policy``; warns when bfloat16 would be emulated on this machine.

    Args:
        policy: the policy name.
        cpu: a :class:`keras_morsa.hardware.CpuInfo` (default: this machine's).

    Raises:
        UserError: ``policy`` is not one of :data:`DTYPE_POLICIES`.
    """
    if policy not in DTYPE_POLICIES:
        raise UserError(f"train.dtype_policy={policy!r}; accepted: " + ", ".join(map(repr, DTYPE_POLICIES)))
    if policy != "mixed_bfloat16" or backend.accelerators():
        return
    cpu = cpu or hardware.cpu_info()
    if not cpu.has_bf16:
        warnings.warn(
            f"train.dtype_policy='mixed_bfloat16' on a CPU without bf16 instructions ({cpu.describe()}): "
            f"bfloat16 is emulated there ({hardware.BF16_EMULATED_COST}); use train.dtype_policy='float32'",
            PerformanceWarning,
            stacklevel=2,
        )


def reconstruction_loss(train, image_size):
    """The ``reconstruction_loss`` of :class:`FastGAN` for ``train.reconstruction``: ``None`` (L1) or a
    :class:`~keras_morsa.training.perceptual.PerceptualDistance` on ``image_size``-pixel reconstructions.

    Raises:
        UserError: an unknown ``train.reconstruction``, or ``"perceptual"`` without an existing local
            ``train.perceptual_weights`` file.
    """
    if train.reconstruction == "l1":
        return None
    if train.reconstruction != "perceptual":
        raise UserError(
            f"train.reconstruction={train.reconstruction!r}; accepted: 'l1' (default) or 'perceptual' "
            "(with train.perceptual_weights)"
        )
    # Imported only when asked for: it brings in KerasCV.
    from keras_morsa.training.perceptual import PerceptualDistance

    try:
        return PerceptualDistance(train.perceptual_weights, image_size)
    except UserError as error:
        raise UserError(
            f"train.perceptual_weights={train.perceptual_weights!r} (train.reconstruction='perceptual'): "
            f"{error}; or use train.reconstruction='l1'"
        ) from None


def sample_labels(config, count, num_classes):
    """Labels of ``count`` fixed samples of a conditional run, ``i % num_classes``; ``None`` unconditionally."""
    if not config.model.get("conditional", False):
        return None
    return keras.ops.convert_to_tensor(np.arange(count) % num_classes, "int32")


def sample_latents(config):
    """The fixed latents of the sample grids: ``num_samples`` x ``nz`` standard normals from ``seed``."""
    rng = np.random.default_rng(config.seed)
    return rng.standard_normal((config.num_samples, config.model.nz)).astype("float32")


def is_finished(class_dir, num_steps):
    """True when ``class_dir/done.json`` records at least ``num_steps`` steps."""
    done = Path(class_dir) / DONE_FILE
    return done.exists() and io.read_json(done).get("step", -1) >= num_steps


def _dataset(config, data_dir, class_name, workdir):
    """Validates the class name, then returns the split manifest of the built-in dataset or ``data_dir``."""
    if data_dir is None:
        _check_class(class_name, morsa_parts.CLASS_NAMES, "the built-in dataset")
    root = morsa_parts.dataset_root(config.data, data_dir)
    manifest = splits.load_or_create_split(
        root,
        test_fraction=config.data.test_fraction,
        val_fraction=config.data.val_fraction,
        seed=config.data.split_seed,
        read_only_fallback=workdir,
    )
    _check_class(class_name, manifest.class_names, str(root))
    return manifest


def check_quality_features(spec):
    """Refuses a ``quality.features`` that is neither ``"classifier"``, ``"random"`` nor an existing file.

    Raises:
        UserError: naming the value and what is accepted.
    """
    from keras_morsa.quality.features import FEATURE_KINDS

    if spec in FEATURE_KINDS or Path(spec).is_file():
        return
    raise UserError(
        f"quality.features={spec!r}; accepted: 'classifier' (a classifier trained on the real train split, the "
        "default), 'random' (the seeded random CNN) or the path of an existing local .keras / .weights.h5 file"
    )


def quality_embedding(config, workdir, manifest, progress=True):
    """The features-only embedding of ``quality.features``, at ``quality.image_size``; for ``"classifier"``,
    the workdir's cached classifier (trained now when missing or trained otherwise)."""
    # Imported here: the quality package (and, for a classifier, KerasCV) only when the monitor is on.
    from keras_morsa.quality.classifier import cached_classifier
    from keras_morsa.quality.features import load_embedding

    q = config.quality
    check_quality_features(q.features)
    classifier = None
    if q.features == "classifier":
        classifier, _ = cached_classifier(
            q.classifier, manifest, q.image_size, config.seed, Path(workdir) / QUALITY_CLASSIFIER_FILE, progress
        )
    return load_embedding(q.features, q.image_size, seed=config.seed, classifier=classifier).features_only()


def _run_names(config, manifest, class_name):
    """The run folders ``class_name`` names: one class, every class (``"all"``), or with ``model.conditional``
    the one conditional model (``"all"`` only)."""
    if config.model.get("conditional", False):
        if class_name != "all":
            raise UserError(
                f"--class={class_name!r} with model.conditional=True: a conditional model learns every "
                "class at once; use --class=all (or model.conditional=False for one class)"
            )
        return [CONDITIONAL_DIR]
    return manifest.class_names if class_name == "all" else [class_name]


def _check_class(class_name, valid, where):
    if class_name != "all" and class_name not in valid:
        raise UserError(
            f"--class={class_name!r} is not a class of {where}; expected 'all' or one of: " + ", ".join(valid)
        )


def train_gan(config, workdir, class_name, data_dir=None, strategy="none"):
    """Trains FastGAN on one class's train images (or every class, ``class_name="all"``), resuming.

    Args:
        config: a ``ConfigDict`` with the keys of ``configs/common.py``'s ``fastgan_base()`` (documented
            there; ``configs/fastgan_*.py``).
        workdir: the run folder; results go to ``<workdir>/<class>/``.
        class_name: a class of the dataset, or ``"all"`` to train every class in turn (finished ones are
            skipped); with ``model.conditional``, ``"all"`` only: one conditional model in
            ``<workdir>/conditional/``.
        data_dir: a user image folder (``<dir>/<class>/*``); its ``split_manifest.csv`` is created on first
            use (in ``workdir`` when the folder is read-only, with a warning saying so). ``None``: the built-in
            dataset, built (or reused from the cache) at ``config.data`` sizes.
        strategy: data parallelism, one of ``distribute.STRATEGIES`` (see :mod:`.distribute`); the global
            batch ``train.batch_size`` is split over the replicas.

    Returns:
        ``{class_name: class folder}`` for the classes trained or already finished (``{"conditional": folder}``
        for a conditional model).

    Raises:
        UserError: an unknown class, a bad folder, or a workdir written with another config.
        NonFiniteLoss: a loss became NaN or infinite; the last good checkpoint is kept.

    Example:
        train_gan(get_config(), "workdirs/gan", "jaw")   # -> {"jaw": Path("workdirs/gan/jaw")}
    """
    distribute.check_strategy(strategy)
    if config.quality.enabled:
        check_quality_features(config.quality.features)
    manifest = _dataset(config, data_dir, class_name, workdir)
    names = _run_names(config, manifest, class_name)
    done = {}
    for name in names:
        class_dir = Path(workdir) / name
        if is_finished(class_dir, config.train.num_steps):
            print(f"{name}: finished already ({class_dir / DONE_FILE}); samples in {class_dir / 'samples'}")
        else:
            _train_class(config, class_dir, manifest, name, strategy)
        done[name] = class_dir
    return done


def rescore_best(config, workdir, class_name, data_dir=None):
    """Chooses ``generator_best.keras`` of finished runs again in the features of ``quality.features``; trains nothing.

    For runs whose monitor scored in other features (before ``"classifier"`` was the default, the random CNN
    chose step-500 blobs for three built-in classes, issue 11). The candidates are the EMA generators of the
    kept checkpoints (``keep_checkpoints``: the deleted ones cannot be candidates) and the current
    ``generator_best.keras``. Each is scored as the monitor scores a checkpoint: the same fixed latents, KID
    and coverage against the class's **train** images. The lowest KID becomes ``generator_best.keras``, and
    ``generator_best.json`` records it with every candidate's scores under ``"rescored"``. The old curve
    and ``log.csv`` keep the old features' figures.

    Args:
        config: the config the runs were trained with (a change under ``model.`` is refused); its
            ``quality`` section chooses the features (``quality.enabled`` must be on).
        workdir, class_name, data_dir: as for :func:`train_gan`; every class named must be finished.

    Returns:
        ``{class_name: class folder}``, like :func:`train_gan`.

    Raises:
        UserError: the monitor is off, a class is unknown or unfinished, or a checkpoint has another network.
    """
    if not config.quality.enabled:
        raise UserError("rescoring needs quality.enabled=True: the monitor's features choose the best generator")
    check_quality_features(config.quality.features)
    manifest = _dataset(config, data_dir, class_name, workdir)
    names = _run_names(config, manifest, class_name)
    unfinished = [name for name in names if not (Path(workdir) / name / DONE_FILE).exists()]
    if unfinished:
        raise UserError(
            f"cannot rescore {', '.join(unfinished)} in {workdir}: not finished (no {DONE_FILE}); train first"
        )
    embedding = quality_embedding(config, workdir, manifest)
    gan = build_gan(config, num_classes=len(manifest.class_names))
    done = {}
    for name in names:
        class_dir = done[name] = Path(workdir) / name
        with io.folder_lock(class_dir):
            _rescore_class(config, class_dir, manifest, name, gan, embedding)
    return done


def _rescore_class(config, class_dir, manifest, class_name, gan, embedding):
    # Imported here: the quality package is only needed when the monitor is on.
    from keras_morsa.quality.monitor import score_samples

    q = config.quality
    # The run's own record first: the old best file has no metadata of its own.
    _refuse_other_network(config, class_dir / DONE_FILE, io.read_json(class_dir / DONE_FILE))
    manager = CheckpointManager(class_dir / "checkpoints", gan, keep=config.keep_checkpoints)
    make_images, train = _monitor_inputs(config, manifest, class_name, gan, embedding)

    def restore_checkpoint(step):
        manager.restore(step, check=lambda path, meta: _refuse_other_network(config, path, meta))

    def restore_best():
        gan.ema_generator.set_weights(load_model(class_dir / BEST_FILE).get_weights())

    # {step: how to load that step's EMA generator into gan}; a checkpoint and the old best of one step agree.
    candidates = {step: (lambda step=step: restore_checkpoint(step)) for step in manager.steps()}
    old = io.read_json(class_dir / BEST_INFO_FILE) if (class_dir / BEST_INFO_FILE).exists() else None
    if old is not None and (class_dir / BEST_FILE).exists():
        candidates.setdefault(int(old["step"]), restore_best)
    if not candidates:
        raise UserError(f"{class_dir}: no checkpoint and no {BEST_FILE} to rescore")
    scores = []
    for step in sorted(candidates):
        candidates[step]()
        values = score_samples(make_images(), embedding, train, k=q.k, kid_subsets=q.kid_subsets, seed=config.seed)
        scores.append({"step": step, **values})
        print(
            f"{class_name}: step {step}: KID {values['kid']:.3g} ± {values['kid_std']:.2g}, "
            f"coverage {values['coverage']:.2f}"
        )
    best = min(scores, key=lambda row: row["kid"] if math.isfinite(row["kid"]) else math.inf)
    candidates[best["step"]]()
    save_model(gan.ema_generator, class_dir / BEST_FILE)
    info = {**best, "features": embedding.description, "rescored": scores}
    io.write_json(class_dir / BEST_INFO_FILE, info)
    was = "none" if old is None else f"step {old['step']}"
    print(f"{class_name}: best generator: step {best['step']} (was {was}), {embedding.description}")


def _train_class(config, class_dir, manifest, class_name, strategy):
    num_steps, every = config.train.num_steps, config.checkpoint_every
    intervals = (num_steps, config.log_every, config.sample_every, every, config.keep_checkpoints)
    if min(intervals) < 1:
        raise UserError(
            f"num_steps, log_every, sample_every, checkpoint_every, keep_checkpoints={intervals}: each must be >= 1"
        )
    conditional = bool(config.model.get("conditional", False))
    train_rows = [r for r in manifest.rows if (conditional or r["class_name"] == class_name) and r["split"] == "train"]
    if not train_rows:
        raise DataError(f"class {class_name!r} has no train images in the split of {manifest.image_root}")
    # One process per class folder: a second train_gan (or a generate reading it) stops naming this one.
    with io.folder_lock(class_dir):
        for leftover in io.remove_temp_files(class_dir):
            print(f"{class_name}: removed {leftover}, left by a killed run")
        (class_dir / DONE_FILE).unlink(missing_ok=True)
        with io.atomic_write(class_dir / SOURCES_FILE, "w") as f:
            f.writelines(f"{sha}\n" for sha in sorted({r["sha256"] for r in train_rows}))

        # Before the GAN is built (build_gan seeds Keras again) and outside any distribution scope.
        embedding = quality_embedding(config, class_dir.parent, manifest) if config.quality.enabled else None
        with distribute.distribution_scope(strategy):
            gan = build_gan(config, strategy, num_classes=len(manifest.class_names))
            _fit(config, class_dir, manifest, class_name, gan, embedding)
        save_model(gan.ema_generator, class_dir / GENERATOR_FILE)
        io.write_json(
            class_dir / DONE_FILE,
            {
                "class_name": class_name,
                "step": num_steps,
                "backend": keras.backend.backend(),
                "data_root": str(manifest.image_root),  # where bin/generate --dedupe finds the training images
                "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "config": config.to_dict(),
                **({"conditional": True, "class_names": list(manifest.class_names)} if conditional else {}),
            },
        )
    print(f"{class_name}: done; samples in {class_dir / 'samples'}, generator {class_dir / GENERATOR_FILE}")


def _fit(config, class_dir, manifest, class_name, gan, embedding=None):
    """Restores the newest checkpoint, then fits segment by segment up to ``num_steps`` (module docstring);
    ``embedding``: the quality monitor's features (:func:`quality_embedding`), ``None`` without a monitor."""
    num_steps, every = config.train.num_steps, config.checkpoint_every
    # One fit epoch is the largest chunk every interval is a multiple of, so epoch ends hit each of them.
    chunk = math.gcd(num_steps, config.log_every, config.sample_every, every)
    manager = CheckpointManager(class_dir / "checkpoints", gan, keep=config.keep_checkpoints)
    start = _resume(config, manager, gan, class_name)
    size, batch = config.model.image_size, config.train.batch_size
    selection = _selection(config, class_name)
    count = len(manifest.files("train", selection))
    print(
        f"{class_name}: {count} train images, {size} px, steps {start} -> {num_steps}; "
        f"samples in {class_dir / 'samples'}"
    )

    latents = keras.ops.convert_to_tensor(sample_latents(config))
    labels = sample_labels(config, config.num_samples, len(manifest.class_names))
    real = next(iter(_gan_dataset(manifest, selection, size, batch, seed=config.seed, flip=False)))
    real, real_labels = real if selection is None else (real, None)
    real = keras.ops.convert_to_tensor(real)
    writer = cbs.SummaryWriter(class_dir / "tb")
    guard = cbs.NonFiniteGuard()
    # Before the CSV log: it records the kid and coverage the monitor adds to the epoch's logs.
    monitor = (
        [] if embedding is None else [_quality_monitor(config, class_dir, manifest, class_name, gan, start, embedding)]
    )
    callbacks = [
        guard,
        cbs.ProgressBar(start, num_steps),
        cbs.TimeEstimate(num_steps, class_name, ", ".join(backend.accelerators()) or hardware.cpu_info().describe()),
        *monitor,
        cbs.CsvLog(class_dir / "log.csv", start, writer),
        cbs.ImageGrid(
            class_dir / "samples",
            lambda: _samples(gan, latents, labels),
            config.sample_every,
            num_steps,
            columns=math.ceil(math.sqrt(config.num_samples)),
            writer=writer,
            tag="samples",
        ),
        cbs.ImageGrid(
            class_dir / "reconstructions",
            lambda: _reconstructions(gan, real, real_labels),
            config.sample_every,
            num_steps,
            columns=5,
            writer=writer,
            tag="reconstructions",
        ),
        cbs.CheckpointSaver(manager, every, num_steps, {"class_name": class_name, "config": config.to_dict()}),
    ]
    for segment in range(start, num_steps, every):
        dataset = _gan_dataset(
            manifest, selection, size, batch, seed=_data_seed(config.seed, segment), flip=config.data.flip
        )
        gan.fit(
            dataset,
            epochs=min(segment + every, num_steps) // chunk,
            initial_epoch=segment // chunk,
            steps_per_epoch=chunk,
            callbacks=callbacks,
            shuffle=False,
            verbose=0,
        )
        if guard.failure:
            step, name, value = guard.failure
            last = manager.latest_step()
            kept = f"step {last} in {manager.directory}" if last is not None else "none yet"
            raise NonFiniteLoss(
                f"{class_name}: {name} became {value} at step {step}; training stopped, last good "
                f"checkpoint: {kept}; lower train.g_lr/train.d_lr (or change the seed) and rerun (if "
                f"it stops again at once, that checkpoint is already damaged: delete "
                f"{manager.directory})"
            )


def _selection(config, class_name):
    """The class whose train images a run reads: ``class_name``, or ``None`` (every class) when conditional."""
    return None if config.model.get("conditional", False) else class_name


def _gan_dataset(manifest, selection, size, batch, seed, flip):
    """One class's image batches, or (``selection`` None) class-balanced ``(images, labels)`` of every class."""
    if selection is None:
        return pipeline.conditional_gan_dataset(manifest, size, batch, seed=seed, flip=flip)
    return pipeline.gan_dataset(manifest, selection, size, batch, seed=seed, flip=flip)


def _resume(config, manager, gan, class_name):
    """Restores the newest intact checkpoint under the resume rules of the module docstring; returns its step.

    The checkpoint's config (its metadata) is compared with ``config`` first: a change under ``model.``
    (the networks' shape) is refused, naming the keys; any other change is applied from the restored step
    on and printed. The learning rates are optimizer variables, so the checkpoint restored the old ones:
    they are set from ``config`` again.
    """

    def check(path, meta):
        changed = _refuse_other_network(config, path, meta)
        if changed:
            print(
                f"{class_name}: resuming step {meta['step']} with changed settings (applied from here on): "
                + "; ".join(line for _, line in changed)
            )

    start = manager.restore_latest(check=check) or 0
    gan.g_optimizer.learning_rate = config.train.g_lr
    gan.d_optimizer.learning_rate = config.train.d_lr
    return start


def _refuse_other_network(config, path, meta):
    """``[(key, line)]`` where checkpoint ``path``'s config (its ``meta``) differs from ``config``; raises
    :class:`CheckpointMismatch` naming them when a key under ``model.`` (the networks' shape) differs."""
    if "config" not in meta:
        return []
    changed = _changed_keys(meta["config"], config.to_dict())
    shape = [line for key, line in changed if key.startswith("model.")]
    if shape:
        raise CheckpointMismatch(
            f"{path} was written with another network: {'; '.join(shape)}; a run's network cannot change "
            "(on resume or --rescore): use another --workdir, or the checkpoint's values"
        )
    return changed


# Keys added to the config after checkpoints were written without them: {key: the value that means what the
# checkpoints did}, so that an older run resumes.
_ADDED_KEYS = {"model.conditional": False, "quality.features": "random"}


def _changed_keys(old, new):
    """``[(dotted key, "key: old -> new")]`` where two config dicts differ (compared as JSON values)."""

    def flat(tree, prefix=""):
        items = {}
        for key, value in tree.items():
            if isinstance(value, dict):
                items.update(flat(value, f"{prefix}{key}."))
            else:
                items[f"{prefix}{key}"] = value
        return items

    new = flat(json.loads(json.dumps(new, default=str)))
    # A key added since ``old`` was written counts at its old behaviour, where the new config has it at all
    # (the pipeline compares other sections with this too).
    old = {**{key: value for key, value in _ADDED_KEYS.items() if key in new}, **flat(old)}
    return [
        (key, f"{key}: {old.get(key, '(absent)')!r} -> {new.get(key, '(absent)')!r}")
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def _monitor_inputs(config, manifest, class_name, gan, embedding):
    """``(make_images, train_features)`` of the quality monitor: the EMA generator on its fixed latents (their
    own seeded stream) and the embedding of the class's train images."""
    q = config.quality
    train = embedding.embed_files(manifest.files("train", _selection(config, class_name)))
    latents = keras.ops.convert_to_tensor(
        np.random.default_rng([config.seed, _QUALITY_STREAM])
        .standard_normal((q.num_samples, config.model.nz))
        .astype("float32")
    )
    labels = sample_labels(config, q.num_samples, len(manifest.class_names))
    return (lambda: _samples(gan, latents, labels)), train


def _quality_monitor(config, class_dir, manifest, class_name, gan, start, embedding):
    # Imported here: the quality package is only needed when the monitor is on.
    from keras_morsa.quality.monitor import QualityMonitor

    q = config.quality
    make_images, train = _monitor_inputs(config, manifest, class_name, gan, embedding)
    log = class_dir / "log.csv"
    history = [
        row
        for row in (io.read_csv(log) if log.exists() else [])
        if (row.get("step") or "").isdigit() and int(row["step"]) <= start
    ]
    return QualityMonitor(
        make_images,
        embedding,
        train,
        config.checkpoint_every,
        config.train.num_steps,
        save_best=lambda: save_model(gan.ema_generator, class_dir / BEST_FILE),
        best_file=class_dir / BEST_INFO_FILE,
        curve_path=class_dir / f"quality_{class_name}.png",
        history=history,
        k=q.k,
        kid_subsets=q.kid_subsets,
        seed=config.seed,
        title=f"{class_name}: KID and coverage of {q.num_samples} EMA samples vs the train images",
    )


def _data_seed(seed, step):
    # Distinct per (seed, segment start) and stable across processes: what makes resume deterministic.
    return seed * 1_000_003 + step


def _samples(gan, latents, labels=None):
    images, _ = call_with_labels(gan.ema_generator, latents, labels=labels)
    return cbs.images_to_uint8(images)


def _reconstructions(gan, real, labels=None):
    """Rows of [real, D's big-path and small-path reconstructions, real quarter 0, D's reconstruction]."""
    part = keras.ops.convert_to_tensor(0, "int32")
    _, (rec_big, rec_small, rec_part) = gan.discriminator.call_with_reconstructions(
        real, downscale(real, gan.small_size), part, labels, training=False
    )
    whole, _, quarter = reconstruction_targets(real, part, int(rec_big.shape[1]))
    columns = [cbs.images_to_uint8(x) for x in (whole, rec_big, rec_small, quarter, rec_part)]
    return np.stack(columns, axis=1).reshape(-1, *columns[0].shape[1:])
