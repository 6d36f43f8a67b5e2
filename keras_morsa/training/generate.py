"""Synthetic image folders from trained FastGAN runs (behind ``bin/generate``), and interpolation GIFs.

``generate(gan_workdir, out_dir, num_images)`` loads each finished class's EMA generator, by default the best
checkpoint's (``<gan_workdir>/<class>/generator_best.keras``, lowest KID against the train images) where
:func:`~keras_morsa.training.train_gan.train_gan` kept one, else the final one (``generator_ema.keras``),
and writes the synthetic-folder layout of ``docs/DESIGN.md``:

- ``<out_dir>/<class>/<class>_seed<seed>_<index>.png``: image ``index`` comes from the latent drawn with
  ``numpy.random.default_rng([seed, index])``, so each file is reproducible on its own;
- ``<out_dir>/manifest.csv``: one row per image (path, class_name, checkpoint_step, seed, latent_index,
  checkpoint: ``best`` or ``final``; score: the filter classifier's probability, train_distance: the distance
  to the nearest training image with ``dedupe``, else empty);
- ``<out_dir>/sources.txt``: the union of the GAN runs' ``sources.txt`` (SHA-256 of their training images),
  which ``splits.check_no_leak`` reads; written before the first image, so a killed run's partial folder
  is checked as strictly as a finished one;
- with ``interpolate=True``, ``<out_dir>/interpolation_<class>.gif``: a loop through a few fixed latents
  (outside the class folders, so the folder stays an ImageFolder of PNGs).

A class-conditional run (``<gan_workdir>/conditional/``, ``train_gan`` with ``model.conditional``) gives the
same layout, manifest and ``sources.txt``: its classes are the ``class_names`` of its ``done.json``, and class
``c``'s images come from the one generator given label ``c`` (image ``i`` of every class starts from the same
latent ``latent(seed, i)``); the manifest's ``class_name`` records the class asked for, ``checkpoint_step`` and
``checkpoint`` the conditional run's.

It is idempotent and resumable: images already present for the same seed are kept, not redrawn (unless the
manifest says another checkpoint step drew them); every file is written atomically, so a killed run leaves no
half-written PNG behind.
"""

import contextlib
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from keras_morsa import io
from keras_morsa.data import folder
from keras_morsa.data.splits import read_sources
from keras_morsa.errors import DataError, UserError
from keras_morsa.models.saving import load_model
from keras_morsa.training.callbacks import images_to_uint8, save_png

# train_gan imports keras_morsa.models.fastgan, which registers Generator for load_model.
from keras_morsa.training.train_gan import (
    BEST_FILE,
    BEST_INFO_FILE,
    CONDITIONAL_DIR,
    DONE_FILE,
    GENERATOR_FILE,
    SOURCES_FILE,
)

MANIFEST_FIELDS = (
    "path",
    "class_name",
    "checkpoint_step",
    "seed",
    "latent_index",
    "checkpoint",
    "score",
    "train_distance",
)
CHECKPOINTS = ("best", "final")
FILTERS = ("none", "classifier")
YIELD_FILE = "yield.json"
DEDUPE_PERCENTILE = 5.0
# Keyframe latents of the GIFs are drawn from their own stream, apart from the image latents.
_INTERPOLATION_STREAM = 1 << 20


def finished_classes(gan_workdir):
    """Names of the classes of a GAN workdir that have a final generator (``done.json``), sorted."""
    root = Path(gan_workdir)
    if not root.is_dir():
        raise UserError(f"--gan_workdir={gan_workdir}: no such folder; expected the --workdir of bin/train_gan")
    return sorted(d.name for d in root.iterdir() if (d / DONE_FILE).exists() and (d / GENERATOR_FILE).exists())


def conditional_run(gan_workdir, conditional=None):
    """The finished conditional run folder of a GAN workdir to generate from, or ``None`` (per-class runs).

    Args:
        gan_workdir: the ``--workdir`` of ``bin/train_gan``.
        conditional: ``True`` (the conditional run, which must exist), ``False`` (the per-class runs) or
            ``None``: the conditional run when the workdir has one and no per-class run.

    Raises:
        UserError: ``True`` without a finished conditional run, or ``None`` with both kinds finished.
    """
    finished = finished_classes(gan_workdir)
    has_conditional = CONDITIONAL_DIR in finished
    per_class = [name for name in finished if name != CONDITIONAL_DIR]
    if conditional is None:
        if has_conditional and per_class:
            raise UserError(
                f"--gan_workdir={gan_workdir} holds a conditional run ({CONDITIONAL_DIR}/) and per-class "
                f"runs ({', '.join(per_class)}); choose with --conditional or --noconditional"
            )
        conditional = has_conditional
    if conditional and not has_conditional:
        raise UserError(
            f"--conditional: {gan_workdir} has no finished {CONDITIONAL_DIR}/ run (bin/train_gan "
            "--class=all --config.model.conditional=True)"
        )
    return Path(gan_workdir) / CONDITIONAL_DIR if conditional else None


class ClassGenerator:
    """A class-conditional generator with its label fixed, called like a per-class generator.

    ``ClassGenerator(generator, label)(z, training=False)`` is ``generator(z, labels=[label] * B)``; ``nz`` and
    ``image_size`` are the generator's.
    """

    def __init__(self, generator, label):
        self.generator = generator
        self.label = int(label)
        self.nz, self.image_size = generator.nz, generator.image_size

    def __call__(self, z, training=False):
        labels = keras.ops.full((keras.ops.shape(z)[0],), self.label, "int32")
        return self.generator(z, labels=labels, training=training)


def latent(seed, index, nz):
    """The latent vector of image ``index`` for ``seed`` (float32 [nz])."""
    return np.random.default_rng([seed, index]).standard_normal(nz).astype("float32")


def resolve_checkpoint(class_dir, checkpoint=None):
    """``"best"`` or ``"final"``: ``checkpoint`` itself, or (``None``) best where ``train_gan`` kept one.

    Raises:
        UserError: an unknown name, or ``"best"`` for a run without ``generator_best.keras``.
    """
    class_dir = Path(class_dir)
    has_best = (class_dir / BEST_FILE).exists() and (class_dir / BEST_INFO_FILE).exists()
    if checkpoint is None:
        return "best" if has_best else "final"
    if checkpoint not in CHECKPOINTS:
        raise UserError(f"--checkpoint={checkpoint}; accepted: {', '.join(CHECKPOINTS)}")
    if checkpoint == "best" and not has_best:
        raise UserError(
            f"--checkpoint=best: {class_dir} has no {BEST_FILE} (trained with quality.enabled=False or "
            "before the quality monitor existed); use --checkpoint=final"
        )
    return checkpoint


def load_generator(class_dir, checkpoint="final"):
    """An EMA generator saved by ``train_gan`` in ``class_dir`` and the step it was saved at.

    Args:
        class_dir: ``<gan_workdir>/<class>``.
        checkpoint: ``"final"`` (``generator_ema.keras``) or ``"best"`` (``generator_best.keras``).
    """
    class_dir = Path(class_dir)
    if checkpoint == "best":
        generator = load_model(class_dir / BEST_FILE)
        return generator, int(io.read_json(class_dir / BEST_INFO_FILE)["step"])
    generator = load_model(class_dir / GENERATOR_FILE)
    return generator, int(io.read_json(class_dir / DONE_FILE)["step"])


def _images(generator, latents, batch_size):
    out = []
    for start in range(0, len(latents), batch_size):
        chunk = latents[start : start + batch_size]
        # Every call gets the same input shape: eager JAX compiles each op per shape, so ragged last
        # batches would recompile the whole network. Inference-mode outputs do not depend on batch mates.
        padded = np.zeros((batch_size, latents.shape[1]), "float32")
        padded[: len(chunk)] = chunk
        images, _ = generator(keras.ops.convert_to_tensor(padded), training=False)
        out.append(images_to_uint8(images)[: len(chunk)])
    return np.concatenate(out)


def generate(
    gan_workdir,
    out_dir,
    num_images,
    class_names=None,
    seed=0,
    interpolate=False,
    batch_size=16,
    progress=True,
    checkpoint=None,
    filter="none",
    classifier=None,
    min_confidence=0.5,
    max_draws_per_image=10,
    dedupe=False,
    data_dir=None,
    dedupe_percentile=DEDUPE_PERCENTILE,
    conditional=None,
):
    """Writes ``num_images`` EMA-generator PNGs per class, the manifest and ``sources.txt``.

    Args:
        gan_workdir: the ``--workdir`` of ``bin/train_gan`` (``<gan_workdir>/<class>/generator_ema.keras``).
        out_dir: the synthetic folder to write (created; existing images for ``seed`` are reused).
        num_images: images per class (>= 1).
        class_names: classes to generate; ``None``: every finished class of ``gan_workdir``.
        seed: latent seed; image ``i`` uses ``latent(seed, i, nz)``.
        interpolate: also write ``interpolation_<class>.gif`` per class (:func:`interpolation_gif`).
        batch_size: latents per generator call.
        progress: show a progress bar.
        checkpoint: ``"best"``, ``"final"`` or ``None`` (best where the run kept one, else final); see
            :func:`resolve_checkpoint`.
        filter: ``"none"``, or ``"classifier"``: keep only images that ``classifier`` assigns to their
            intended class with probability >= ``min_confidence``, drawing latents 0, 1, 2, ... until
            ``num_images`` are kept. A kept image keeps its latent index in its name and gets its probability
            as ``score`` in the manifest; this seed's other PNGs of the class are removed. The yield per class
            (passing / drawn) is printed and saved in ``<out_dir>/yield.json``. Filtered classes are redrawn on
            every call (deterministic: same seed, same classifier, same images).
        classifier: with ``filter="classifier"``, a ``.keras`` classifier trained on the real train split
            (e.g. a study's ``models/real.keras``) whose class names include the generated classes.
        min_confidence: the probability threshold of the filter, in [0, 1].
        max_draws_per_image: the bound: at most ``num_images * max_draws_per_image`` latents per class.
        dedupe: also drop near-copies of the class's training images, drawing more latents as the filter does
            (alone or with it): an image is a near-copy when its distance to the nearest training image is
            below the ``dedupe_percentile`` of the training images' distances to their nearest other training
            image (:func:`~keras_morsa.quality.metrics.train_spacing`; no test image is used), in the seeded
            random-CNN features (``features.random_cnn``, seed 0). Pixel-level likeness is what a
            copy is, and this embedding needs no classifier. Each kept image's distance goes into the manifest
            (``train_distance``), the threshold and the copies dropped into ``yield.json``.
        data_dir: with ``dedupe``, the folder ``bin/train_gan`` learned from; default the one its ``done.json``
            records. Its class folder's files are matched to the run's ``sources.txt`` by SHA-256.
        dedupe_percentile: the percentile of the threshold, in (0, 100).
        conditional: generate from the workdir's conditional run (``True``), its per-class runs (``False``), or
            (``None``) whichever it holds (:func:`conditional_run`).

    Returns:
        The manifest rows of this call's images (dicts with the keys of ``MANIFEST_FIELDS``).

    Raises:
        UserError: no such workdir, an unfinished or unknown class, or ``num_images`` < 1.
        DataError: a class folder lacks its ``sources.txt`` (the leak check could not be trusted).

    Example:
        generate("workdirs/gan", "workdirs/synthetic", 100)   # every finished class, 100 PNGs each
    """
    if int(num_images) < 1:
        raise UserError(f"--num_images={num_images}: expected a positive number of images per class")
    run = conditional_run(gan_workdir, conditional)
    if run is not None:
        finished = list(io.read_json(run / DONE_FILE)["class_names"])
        labels = {name: label for label, name in enumerate(finished)}
        run_of = dict.fromkeys(finished, run)
    else:
        finished = [name for name in finished_classes(gan_workdir) if name != CONDITIONAL_DIR]
        labels, run_of = {}, {name: Path(gan_workdir) / name for name in finished}
    if class_names is None:
        class_names = finished
        if not class_names:
            raise UserError(
                f"--gan_workdir={gan_workdir} has no finished class (<class>/{DONE_FILE} and "
                f"{GENERATOR_FILE}); run bin/train_gan first"
            )
    for name in class_names:
        if name not in finished:
            raise UserError(
                f"--class={name!r} has no finished generator in {gan_workdir}; finished classes: "
                + (", ".join(finished) or "none")
            )
    if int(max_draws_per_image) < 1:
        raise UserError(f"max_draws_per_image={max_draws_per_image}: expected a bound >= 1")
    scorer = _filter_scorer(filter, classifier, min_confidence)
    if dedupe and not 0.0 < float(dedupe_percentile) < 100.0:
        raise UserError(f"--dedupe_percentile={dedupe_percentile}; expected a value in (0, 100)")
    out_dir = Path(out_dir)
    class_dirs = [run_of[name] for name in class_names]
    for class_dir in class_dirs:
        if not (class_dir / SOURCES_FILE).exists():
            raise DataError(
                f"{class_dir / SOURCES_FILE} is missing: the images its generator learned from are "
                "unknown, so the leak check could not be trusted; retrain this class"
            )
    choices = {class_dir: resolve_checkpoint(class_dir, checkpoint) for class_dir in class_dirs}
    options = {
        "num_images": int(num_images),
        "seed": seed,
        "interpolate": interpolate,
        "batch_size": batch_size,
        "progress": progress,
        "scorer": scorer,
        "min_confidence": min_confidence,
        "max_draws": int(num_images) * int(max_draws_per_image),
        "dedupe": dedupe,
        "data_dir": data_dir,
        "dedupe_percentile": float(dedupe_percentile),
        "labels": labels,
    }
    with contextlib.ExitStack() as held:
        return _generate(out_dir, class_names, class_dirs, choices, options, held)


def _generate(out_dir, class_names, class_dirs, choices, options, held):
    """The image loop of :func:`generate`; ``held`` (an ExitStack) keeps ``out_dir``'s lock until it returns."""
    num_images, seed, batch_size = options["num_images"], options["seed"], options["batch_size"]
    rows = []
    bar = keras.utils.Progbar(len(class_names) * num_images, verbose=int(options["progress"]))
    for name, class_dir in zip(class_names, class_dirs):
        which = choices[class_dir]
        with io.folder_lock(class_dir):  # not while train_gan continues this class
            generator, step = load_generator(class_dir, which)
        if name in options["labels"]:
            generator = ClassGenerator(generator, options["labels"][name])
        if not rows:  # once a generator loads (a corrupt one writes nothing), before the first image
            held.enter_context(io.folder_lock(out_dir))  # one generate per synthetic folder
            io.remove_temp_files(out_dir)  # a killed run's half-written PNGs
            _write_sources(out_dir, class_dirs)
            drawn_by = {row["path"]: row["checkpoint_step"] for row in _read_manifest(out_dir)}
        copies = (
            _CopyCheck(
                _training_files(class_dir, name, options["data_dir"]),
                generator.image_size,
                options["dedupe_percentile"],
            )
            if options["dedupe"]
            else None
        )
        if options["scorer"] is not None or copies is not None:
            rows += _generate_selected(
                generator,
                options["scorer"],
                copies,
                name,
                out_dir,
                options,
                bar,
                {"checkpoint_step": step, "checkpoint": which},
            )
            continue
        paths = [out_dir / name / f"{name}_seed{seed}_{i:05d}.png" for i in range(num_images)]
        todo = [
            i
            for i, path in enumerate(paths)
            if not path.exists() or drawn_by.get(path.relative_to(out_dir).as_posix(), str(step)) != str(step)
        ]
        bar.add(len(paths) - len(todo))
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            z = np.stack([latent(seed, i, generator.nz) for i in batch])
            for i, image in zip(batch, _images(generator, z, batch_size)):
                save_png(paths[i], image)
            bar.add(len(batch))
        rows += [
            {
                "path": p.relative_to(out_dir).as_posix(),
                "class_name": name,
                "checkpoint_step": step,
                "seed": seed,
                "latent_index": i,
                "checkpoint": which,
                "score": "",
                "train_distance": "",
            }
            for i, p in enumerate(paths)
        ]
        if options["interpolate"]:
            interpolation_gif(generator, out_dir / f"interpolation_{name}.gif", seed=seed)
    _write_manifest(out_dir, rows)
    print(f"{len(rows)} images of {len(class_names)} class(es) in {out_dir} (manifest.csv, sources.txt)")
    return rows


def _write_sources(out_dir, class_dirs):
    """Merges the classes' ``sources.txt`` into ``out_dir/sources.txt`` before any image is written, so a
    folder left by a killed run is leak-checked against the same real images as a finished one."""
    path = out_dir / SOURCES_FILE
    sources = read_sources(path) if path.exists() else set()
    for class_dir in class_dirs:
        sources |= read_sources(class_dir / SOURCES_FILE)
    with io.atomic_write(path, "w") as f:
        f.writelines(f"{sha}\n" for sha in sorted(sources))


def _filter_scorer(filter, classifier, min_confidence):
    """The classifier :class:`~keras_morsa.quality.features.Embedding` of ``filter``, or None."""
    if filter not in FILTERS:
        raise UserError(f"--filter={filter}; accepted: {', '.join(FILTERS)}")
    if filter == "none":
        return None
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise UserError(f"--min_confidence={min_confidence}: expected a probability in [0, 1]")
    if not classifier or not Path(classifier).is_file():
        raise UserError(
            f"--filter=classifier needs --classifier=<a .keras classifier trained on the real train "
            f"split>; got {classifier!r}"
        )
    from keras_morsa.quality.features import classifier_embedding  # KerasCV classifiers: only when filtering

    scorer = classifier_embedding(load_model(classifier))
    if not scorer.has_probabilities:
        raise UserError(f"--classifier={classifier} has no 'probabilities' layer; expected a build_classifier model")
    return scorer


def _training_files(class_dir, name, data_dir):
    """The files of class ``name`` that the run in ``class_dir`` learned from (``--dedupe``'s reference)."""
    root = data_dir or io.read_json(class_dir / DONE_FILE).get("data_root")
    if not root:
        raise UserError(
            f"--dedupe needs --data_dir=<the folder bin/train_gan learned {name!r} from>: "
            f"{class_dir / DONE_FILE} does not record it (a run from before keras-morsa recorded it)"
        )
    sources = read_sources(class_dir / SOURCES_FILE)
    _, _, files, _ = folder.list_image_files(root)
    found = [path for path, class_name in files if class_name == name and io.sha256_file(path) in sources]
    if len(found) < 2:
        raise DataError(
            f"{len(found)} of the {len(sources)} training images of {name!r} ({class_dir / SOURCES_FILE}) "
            f"are in {root}/{name}; --dedupe needs at least 2: pass --data_dir=<the folder bin/train_gan "
            "learned from>"
        )
    return found


class _CopyCheck:
    """``--dedupe``'s test (see :func:`generate`): distances to the nearest training image and the threshold."""

    def __init__(self, train_files, image_size, percentile):
        from keras_morsa.quality import features, metrics  # TensorFlow's input pipeline: only when deduping

        self.embedding = features.random_cnn(image_size, seed=0)
        train = self.embedding.embed_files(train_files)
        self.index = metrics.nearest_train(train)
        self.threshold = float(np.percentile(metrics.train_spacing(train, self.index), percentile))
        self.percentile = percentile

    def distances(self, images):
        """Each image's distance to its nearest training image, float [N]."""
        features = self.embedding.embed(images.astype(np.float32), batch_size=len(images))
        return self.index.kneighbors(features)[0][:, 0]


def _confidences(scorer, images, label):
    """The classifier's probability of ``label`` per image and whether it is the arg-max, or ``None``s."""
    from keras_morsa.data.pipeline import resize_like_training  # TensorFlow: the training resize

    if scorer is None:
        return [None] * len(images), np.ones(len(images), bool)
    resized = (
        np.asarray(resize_like_training(images, scorer.image_size))
        if (images.shape[1] != scorer.image_size)
        else images.astype(np.float32)
    )
    _, probabilities = scorer.embed(resized, len(images))
    return [float(p[label]) for p in probabilities], np.argmax(probabilities, axis=1) == label


def _generate_selected(generator, scorer, copies, name, out_dir, options, bar, fields):
    """Draws latents 0, 1, ... of the seed until ``num_images`` pass the classifier filter and the copy check
    (either may be ``None``); writes them, records the yield and returns their manifest rows."""
    num_images, seed, batch_size, min_confidence = (
        options["num_images"],
        options["seed"],
        options["batch_size"],
        options["min_confidence"],
    )
    max_draws = options["max_draws"]
    if scorer is not None and name not in scorer.class_names:
        raise UserError(
            f"the filter classifier does not know class {name!r}; its classes: " + ", ".join(scorer.class_names)
        )
    label = scorer.class_names.index(name) if scorer is not None else None
    kept, drawn, passed, near_copies = [], 0, 0, 0
    while len(kept) < num_images and drawn < max_draws:
        batch = list(range(drawn, min(drawn + batch_size, max_draws)))
        images = _images(generator, np.stack([latent(seed, i, generator.nz) for i in batch]), batch_size)
        scores, top = _confidences(scorer, images, label)
        distances = copies.distances(images) if copies is not None else [None] * len(images)
        for i, image, score, is_top, distance in zip(batch, images, scores, top, distances):
            confident = score is None or (is_top and score >= min_confidence)
            original = distance is None or distance >= copies.threshold
            near_copies += not original
            if confident and original:
                passed += 1
                if len(kept) < num_images:
                    kept.append((i, image, "" if score is None else score, "" if distance is None else float(distance)))
                    bar.add(1)
        drawn += len(batch)
    share = passed / drawn  # whole batches are drawn: a few passing images past num_images count, unkept
    tests = ([f"confidence >= {min_confidence:g}"] if scorer is not None else []) + (
        [f"no nearer to a training image than {copies.threshold:.4g}"] if copies is not None else []
    )
    print(
        f"{name}: kept {len(kept)}; {passed} of {drawn} drawn images passed (yield {100 * share:.1f} %, "
        f"{', '.join(tests)}" + (f"; {near_copies} near-copies" if copies is not None else "") + ")"
    )
    yields = io.read_json(out_dir / YIELD_FILE) if (out_dir / YIELD_FILE).exists() else {}
    yields[name] = {"kept": len(kept), "passed": passed, "drawn": drawn, "yield": share, "seed": seed}
    if scorer is not None:
        yields[name]["min_confidence"] = float(min_confidence)
    if copies is not None:
        yields[name].update(
            near_copies=near_copies, copy_threshold=copies.threshold, dedupe_percentile=copies.percentile
        )
    io.write_json(out_dir / YIELD_FILE, yields)
    if len(kept) < num_images:
        raise UserError(
            f"class {name!r}: only {len(kept)} of {drawn} drawn images (yield {100 * share:.1f} %) pass "
            f"({', '.join(tests)}), short of --num_images={num_images} within the bound of {max_draws} "
            "draws; "
            + ("lower --min_confidence, " if scorer is not None else "")
            + ("lower --dedupe_percentile, " if copies is not None else "")
            + "ask for fewer images or train the GAN longer"
        )
    keep = {out_dir / name / f"{name}_seed{seed}_{i:05d}.png" for i, _, _, _ in kept}
    for stale in (out_dir / name).glob(f"{name}_seed{seed}_*.png") if (out_dir / name).is_dir() else ():
        if stale not in keep:
            stale.unlink()
    rows = []
    for i, image, score, distance in kept:
        path = out_dir / name / f"{name}_seed{seed}_{i:05d}.png"
        save_png(path, image)
        rows.append(
            {
                "path": path.relative_to(out_dir).as_posix(),
                "class_name": name,
                "seed": seed,
                "latent_index": i,
                "score": score,
                "train_distance": distance,
                **fields,
            }
        )
    return rows


def _read_manifest(out_dir):
    path = Path(out_dir) / "manifest.csv"
    return io.read_csv(path) if path.exists() else []


def _write_manifest(out_dir, rows):
    """Merges ``rows`` into ``out_dir/manifest.csv``, keeping earlier rows whose images still exist."""
    path = out_dir / "manifest.csv"
    merged = {row["path"]: row for row in _read_manifest(out_dir) if (out_dir / row["path"]).exists()}
    merged.update({row["path"]: row for row in rows})
    ordered = sorted(merged.values(), key=lambda r: (r["class_name"], int(r["seed"]), int(r["latent_index"])))
    io.write_csv(path, ordered, MANIFEST_FIELDS)


def slerp(a, b, t):
    """Spherical interpolation between latents ``a`` and ``b`` at ``t`` in [0, 1] (linear when parallel)."""
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return (1.0 - t) * a + t * b
    return (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def interpolation_gif(generator, path, num_keyframes=4, frames_between=8, seed=0, frame_ms=80):
    """Writes a looping GIF that walks the latent space through ``num_keyframes`` fixed latents.

    Consecutive keyframes (the last back to the first) are joined by spherical interpolation, so the GIF
    has ``num_keyframes * frames_between`` frames.

    Args:
        generator: a FastGAN ``Generator`` (attribute ``nz``).
        path: the ``.gif`` to write (atomically).
        num_keyframes: latents visited (>= 2), drawn from ``seed``.
        frames_between: frames from one keyframe to the next (>= 1).
        seed: keyframe seed.
        frame_ms: display time of each frame.

    Returns:
        The number of frames.
    """
    if num_keyframes < 2 or frames_between < 1:
        raise UserError(f"num_keyframes={num_keyframes}, frames_between={frames_between}: expected >= 2 and >= 1")
    keys = np.random.default_rng([seed, _INTERPOLATION_STREAM]).standard_normal((num_keyframes, generator.nz))
    z = np.stack(
        [
            slerp(keys[k], keys[(k + 1) % num_keyframes], t / frames_between)
            for k in range(num_keyframes)
            for t in range(frames_between)
        ]
    ).astype("float32")
    frames = [Image.fromarray(image) for image in _images(generator, z, 16)]
    with io.atomic_write(path) as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return len(frames)
