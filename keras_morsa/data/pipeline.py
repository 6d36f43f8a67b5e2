"""tf.data input pipelines for the GAN and the classifiers, and real/synthetic ratio mixing.

TensorFlow by nature: ``tf.data`` is the input pipeline on every backend (Keras's ``fit`` consumes a
``tf.data.Dataset`` under TensorFlow, JAX and torch), so this module imports TensorFlow whatever
``KERAS_BACKEND`` is.

Every image is decoded by ``folder.load_image`` (through ``tf.numpy_function``), so EXIF orientation, CMYK,
16-bit and transparency are handled exactly as when the folder was scanned. Images are resized to
``image_size x image_size`` (bilinear with antialiasing; the aspect ratio is not kept, nothing is cropped),
rounded to ``uint8`` and cached in memory, so each file is decoded once per pipeline; shuffling (seeded,
reshuffled each epoch), repetition, random flips, augmentation and scaling happen after the cache. The cache
holds ``N * S * S * 3`` bytes (2100 training images at 256 px: 413 MB; at 64 px: 26 MB). Decoding runs once
per pipeline, in parallel; after it, batches come from memory far faster than any model here trains.

Ranges: the GAN sees float32 in [-1, 1] (``x / 127.5 - 1``); classifiers see float32 in [0, 255] (the
backbones rescale inside the model).

Mixing synthetic images into a classifier's training set follows the study's semantics
(:func:`mix_real_synthetic`): at ratio ``r`` each class keeps all of its ``n_real`` real training images and
gains ``round(r * n_real)`` synthetic ones. :func:`weighted_mixture` instead draws each example of a batch
from the synthetic stream with a fixed probability.
"""

import math
import os

import numpy as np
import tensorflow as tf

from keras_morsa.data import folder, splits
from keras_morsa.errors import DataError, UserError

AUTOTUNE = tf.data.AUTOTUNE


def _load_uint8(path):
    # numpy_function hands over the string as bytes in graph mode and as a 0-d array when called eagerly.
    return folder.load_image(os.fsdecode(np.asarray(path).item()))


def load_resized(path, image_size):
    """Decodes one image file and resizes it: a TF op usable eagerly and inside ``Dataset.map``.

    Args:
      path: a scalar string tensor (or ``str``) naming the file.
      image_size: the output side ``S``.

    Returns:
      ``uint8 [S, S, 3]`` tensor.
    """
    image = tf.numpy_function(_load_uint8, [path], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    return tf.cast(resize_like_training(image, image_size), tf.uint8)


def resize_like_training(images, image_size):
    """The one resize of the toolkit: bilinear with antialiasing to ``S x S`` (aspect not kept), rounded.

    Training pipelines and exported serving signatures both call it, so a served image is resized exactly as
    the training images were.

    Args:
      images: ``[..., H, W, 3]`` tensor of pixel values in [0, 255] (any real or integer dtype).
      image_size: the output side ``S``.

    Returns:
      float32 ``[..., S, S, 3]`` holding whole numbers in [0, 255].
    """
    resized = tf.image.resize(images, [image_size, image_size], method="bilinear", antialias=True)
    return tf.clip_by_value(tf.round(resized), 0.0, 255.0)


def _check_batch(batch_size, image_size):
    if int(batch_size) < 1:
        raise UserError(f"batch_size={batch_size!r}; expected a positive integer")
    if int(image_size) < 1:
        raise UserError(f"image_size={image_size!r}; expected a positive integer")


def _decoded(files, image_size):
    """Dataset of cached ``uint8 [S, S, 3]`` images in file order (decoded once, in parallel)."""
    paths = tf.data.Dataset.from_tensor_slices([os.fspath(path) for path in files])
    return paths.map(lambda path: load_resized(path, image_size), num_parallel_calls=AUTOTUNE).cache()


def load_images(files, image_size, batch_size=32):
    """Every image of ``files`` decoded and resized as for training, in file order, as one NumPy array.

    Returns:
      float32 ``[N, S, S, 3]`` in [0, 255], the images :func:`classifier_dataset` gives for evaluation; no
      files give an empty array of that shape.
    """
    _check_batch(batch_size, image_size)
    files = list(files)
    if not files:
        return np.zeros((0, int(image_size), int(image_size), 3), np.float32)
    batches = _decoded(files, int(image_size)).batch(int(batch_size)).as_numpy_iterator()
    return np.concatenate(list(batches)).astype(np.float32)


def _to_gan_range(index, image, seed, flip):
    """A cached uint8 image in [-1, 1], flipped at random if ``flip``."""
    image = tf.cast(image, tf.float32) / 127.5 - 1.0
    if flip:
        # A stateless flip keyed by the example's position: deterministic for a seed, even in parallel.
        flip_seed = tf.stack([tf.cast(seed, tf.int64), index])
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return image


def gan_dataset(manifest, class_name, image_size, batch_size, seed, flip=True):
    """Endless batches of one class's train images for the GAN.

    Args:
      manifest: a ``splits.SplitManifest``; only its train split of ``class_name`` is read.
      class_name: the class the GAN learns.
      image_size: output side ``S``.
      batch_size: images per batch (batches are full: ``drop_remainder=True``).
      seed: shuffle and flip seed; same seed, same stream.
      flip: random horizontal flips.

    Returns:
      ``tf.data.Dataset`` of float32 ``[B, S, S, 3]`` in [-1, 1], repeated forever.

    Raises:
      DataError: the class has no train images.
    """
    _check_batch(batch_size, image_size)
    files = manifest.files("train", class_name)
    if not files:
        raise DataError(f"class {class_name!r} has no train images in the split of {manifest.image_root}")
    ds = _decoded(files, image_size)
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()

    ds = ds.enumerate().map(lambda index, image: _to_gan_range(index, image, seed, flip), num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def conditional_gan_dataset(manifest, image_size, batch_size, seed, flip=True):
    """Endless class-balanced batches of every class's train images, with their labels, for a conditional GAN.

    Each class is its own shuffled, repeated stream (as in :func:`gan_dataset`); every example is drawn from a
    class chosen uniformly at random (``tf.data.Dataset.sample_from_datasets``, seeded), so the rarest class is
    seen as often as the others, whatever the class sizes: a class of 20 images repeats ten times as often as
    one of 200.

    Args:
      manifest: a ``splits.SplitManifest``; its train split of every class is read.
      image_size, batch_size, seed, flip: as for :func:`gan_dataset` (same seed, same stream).

    Returns:
      ``tf.data.Dataset`` of ``(float32 [B, S, S, 3] in [-1, 1], int32 [B])``, labels indexing
      ``manifest.class_names``, repeated forever.

    Raises:
      DataError: a class has no train images.
    """
    _check_batch(batch_size, image_size)
    streams = []
    for label, class_name in enumerate(manifest.class_names):
        files = manifest.files("train", class_name)
        if not files:
            raise DataError(
                f"class {class_name!r} has no train images in the split of {manifest.image_root}; a "
                "conditional GAN needs every class"
            )
        images = (
            _decoded(files, image_size)
            .shuffle(len(files), seed=seed * 131 + label, reshuffle_each_iteration=True)
            .repeat()
        )
        streams.append(images.map(lambda image, label=label: (image, tf.constant(label, tf.int32))))
    count = len(streams)
    ds = tf.data.Dataset.sample_from_datasets(streams, weights=[1.0 / count] * count, seed=seed)

    ds = ds.enumerate().map(
        lambda index, example: (_to_gan_range(index, example[0], seed, flip), example[1]), num_parallel_calls=AUTOTUNE
    )
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def classifier_dataset(
    files,
    labels,
    image_size,
    batch_size,
    seed,
    training,
    augment=None,
    repeat=False,
    num_classes=None,
    label_smoothing=None,
    sample_weights=None,
):
    """Batches of ``(images, labels)`` for a classifier, or ``(images, targets, weights)`` with ``num_classes``.

    Args:
      files: image paths (e.g. ``manifest.files("train")`` or the output of :func:`mix_real_synthetic`).
      labels: integer labels aligned with ``files``.
      image_size: output side ``S``.
      batch_size: images per batch.
      seed: shuffle seed (training only).
      training: ``True`` shuffles (reshuffled every epoch) and drops the last partial batch, so every batch
        has the same shape; ``False`` keeps file order and every image, for evaluation.
      augment: optional ``(images, labels) -> (images, labels)`` applied to each training batch after
        decoding: float32 ``[B, S, S, 3]`` in [0, 255] and int32 ``[B]`` in, the same out. Training only.
      repeat: with ``training``, repeat forever (then pass ``steps_per_epoch`` to ``fit``).
      num_classes: when given, the labels become float32 one-hot targets ``[B, num_classes]`` and each batch
        carries float32 sample weights ``[B]`` (for ``categorical_crossentropy`` and per-row weighting).
      label_smoothing: with ``num_classes``, one smoothing value per file (``target = (1 - e) * one_hot +
        e / num_classes``); default 0 for every file.
      sample_weights: with ``num_classes``, one loss weight per file; default 1 for every file.

    Returns:
      ``tf.data.Dataset`` of ``(float32 [B, S, S, 3] in [0, 255], int32 [B])``, or with ``num_classes`` of
      ``(images, float32 [B, num_classes], float32 [B])``.

    Raises:
      UserError: mismatched lengths, no files, ``augment``/``repeat`` without ``training``, or fewer
        training images than ``batch_size``.
    """
    _check_batch(batch_size, image_size)
    files, labels = list(files), [int(label) for label in labels]
    if len(files) != len(labels):
        raise UserError(f"got {len(files)} files but {len(labels)} labels; expected one label per file")
    if not files:
        raise UserError("files is empty; expected at least one image path")
    if not training and (augment is not None or repeat):
        raise UserError("augment and repeat apply to training pipelines; pass training=True or leave them unset")
    if training and len(files) < batch_size:
        raise UserError(f"batch_size={batch_size} exceeds the {len(files)} training images; use a smaller batch")
    columns = [_decoded(files, image_size), tf.data.Dataset.from_tensor_slices(np.asarray(labels, np.int32))]
    if num_classes is not None:
        columns.append(tf.data.Dataset.from_tensor_slices(_soft_targets(labels, num_classes, label_smoothing)))
        columns.append(tf.data.Dataset.from_tensor_slices(_per_file(sample_weights, len(files), 1.0, "sample_weights")))
    elif label_smoothing is not None or sample_weights is not None:
        raise UserError("label_smoothing and sample_weights need num_classes (one-hot targets)")
    ds = tf.data.Dataset.zip(*columns)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=training)
    ds = ds.map(lambda image, label, *rest: (tf.cast(image, tf.float32), label, *rest), num_parallel_calls=AUTOTUNE)
    if augment is not None:
        # Sequential on purpose: augmentation layers draw from a shared seed state, which parallel calls would
        # consume in a racy order (same seed, different images). It works on whole batches, and prefetch
        # still overlaps it with training. It sees the integer labels; targets and weights pass through.
        ds = ds.map(lambda images, labels, *rest: (*augment(images, labels), *rest))
    if num_classes is not None:
        ds = ds.map(lambda images, labels, targets, weights: (images, targets, weights))
    return ds.prefetch(AUTOTUNE)


def _per_file(values, count, default, name):
    if values is None:
        return np.full(count, default, np.float32)
    values = np.asarray(values, np.float32)
    if values.shape != (count,):
        raise UserError(f"{name} has {values.size} values for {count} files; expected one per file")
    return values


def _soft_targets(labels, num_classes, label_smoothing):
    """One-hot targets with per-row label smoothing: ``(1 - e) * one_hot + e / num_classes``."""
    smoothing = _per_file(label_smoothing, len(labels), 0.0, "label_smoothing")
    if np.any((smoothing < 0) | (smoothing >= 1)):
        raise UserError(f"label_smoothing values must lie in [0, 1), got {sorted(set(smoothing.tolist()))}")
    labels = np.asarray(labels, np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"labels must lie in [0, {num_classes}) for num_classes={num_classes}")
    one_hot = np.eye(num_classes, dtype=np.float32)[labels]
    return (1.0 - smoothing[:, None]) * one_hot + smoothing[:, None] / num_classes


def synthetic_count(ratio, n_real):
    """How many synthetic images ratio ``r`` adds to a class of ``n_real`` real images: round(r * n), halves up."""
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise UserError(f"ratio={ratio!r}; expected a finite number >= 0 (0 = real only, 1.25 = 125 % synthetic)")
    return splits.round_half_up(value * n_real)


def mix_real_synthetic(real_files, real_labels, synthetic_files, synthetic_labels, ratio, seed, class_names=None):
    """Adds ``round(ratio * n_real)`` synthetic images to each class's ``n_real`` real images.

    Synthetic images of a class are drawn without replacement in the order of a seeded permutation of that
    class's synthetic files (sorted first, so the input order does not matter). The permutation depends only
    on ``seed`` and the label, so for one seed a smaller ratio uses a prefix of a larger ratio's draw.

    Args:
      real_files, real_labels: the real training images (all are kept).
      synthetic_files, synthetic_labels: the pool to draw from (see :func:`list_synthetic`).
      ratio: synthetic images per real image, per class (0 = real only; may exceed 1).
      seed: the draw seed.
      class_names: names for labels, used in error messages.

    Returns:
      ``(files, labels)``: per class (ascending label), its real files in input order, then its drawn
      synthetic files.

    Raises:
      DataError: a class has fewer synthetic images than needed (names the class, needed and available).
    """
    if len(real_files) != len(real_labels) or len(synthetic_files) != len(synthetic_labels):
        raise UserError("files and labels differ in length; expected one label per file")
    synthetic_count(ratio, 0)  # validates the ratio even when there is nothing to mix
    pools = {}
    for path, label in zip(synthetic_files, synthetic_labels):
        pools.setdefault(int(label), []).append(path)
    reals = {}
    for path, label in zip(real_files, real_labels):
        reals.setdefault(int(label), []).append(path)
    files, labels = [], []
    for label in sorted(reals):
        needed = synthetic_count(ratio, len(reals[label]))
        pool = sorted(pools.get(label, []), key=os.fspath)
        if needed > len(pool):
            name = class_names[label] if class_names is not None else f"label {label}"
            raise DataError(
                f"class {name!r} needs {needed} synthetic images for ratio {ratio} ({len(reals[label])} real) but "
                f"only {len(pool)} are available; generate more or lower the ratio"
            )
        order = np.random.default_rng([int(seed), label]).permutation(len(pool))[:needed]
        chosen = reals[label] + [pool[i] for i in order]
        files += chosen
        labels += [label] * len(chosen)
    return files, labels


def list_synthetic(synthetic_dir, class_names):
    """Lists a synthetic folder's images with labels in the order of ``class_names`` (e.g. a manifest's).

    Every image is checked with ``folder.scan_image_folder`` (unreadable files are skipped with a warning).
    Classes of ``class_names`` without a folder simply contribute nothing.

    Args:
      synthetic_dir: ``<dir>/<class_name>/*.png`` (as written by ``bin/generate``).
      class_names: the label order, e.g. ``manifest.class_names``.

    Returns:
      ``(files, labels)``.

    Raises:
      DataError: the folder is missing or empty, or holds a class folder not in ``class_names``.
    """
    scan = folder.scan_image_folder(synthetic_dir)
    index = {name: i for i, name in enumerate(class_names)}
    unknown = [name for name in scan.class_names if name not in index]
    if unknown:
        raise DataError(
            f"synthetic folder {scan.root} has class folder(s) {unknown} that are not dataset classes; expected "
            f"a subset of {list(class_names)}"
        )
    return [path for path, _ in scan.files], [index[name] for _, name in scan.files]


def weighted_mixture(real_ds, synthetic_ds, synthetic_share, seed):
    """Mixes two batched ``(images, labels)`` pipelines so each example is synthetic with a fixed probability.

    Both inputs (e.g. from :func:`classifier_dataset` with ``training=True``) are unbatched, repeated,
    sampled with weights ``(1 - share, share)`` and re-batched to the real pipeline's batch size. The result is
    endless: pass ``steps_per_epoch`` to ``fit``.

    Args:
      real_ds, synthetic_ds: batched datasets with a static batch size (``drop_remainder=True``).
      synthetic_share: probability in [0, 1] that an example comes from ``synthetic_ds``.
      seed: the sampling seed.

    Returns:
      ``tf.data.Dataset`` of batches like ``real_ds``'s.
    """
    if not 0.0 <= synthetic_share <= 1.0:
        raise UserError(f"synthetic_share={synthetic_share!r}; expected a probability in [0, 1]")
    batch_size = real_ds.element_spec[0].shape[0]
    if batch_size is None:
        raise UserError("real_ds has no static batch size; build it with classifier_dataset(training=True)")
    mixed = tf.data.Dataset.sample_from_datasets(
        [real_ds.unbatch().repeat(), synthetic_ds.unbatch().repeat()],
        weights=[1.0 - synthetic_share, synthetic_share],
        seed=seed,
    )
    return mixed.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)
