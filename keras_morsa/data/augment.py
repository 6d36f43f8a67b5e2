"""Traditional augmentation for classifier training: horizontal flip, colour jitter, Gaussian noise.

TensorFlow by nature: these are TF ops meant for the ``tf.data`` pipeline, which feeds ``fit`` on every Keras
backend (``keras.layers.GaussianNoise`` cannot run inside ``Dataset.map`` under JAX or torch, and KerasCV has
no noise layer, so the ops are written here directly). They work eagerly and inside ``Dataset.map``.

Images are float32 ``[B, S, S, 3]`` in [0, 255] (the classifier range) and stay in that range: every op clips.
Each image gets its own random draw. The randomness is stateless: a batch's draws are a function of the seed
and of the batch's pixels, so a parallel ``map`` gives the same result whatever order it runs batches in.

Example:
    >>> augment = make_augment(["flip", "color_jitter", "gaussian_noise"], seed=0)
    >>> ds = pipeline.classifier_dataset(files, labels, 64, 32, seed=0, training=True,
    ...                                  augment=augment)  # doctest: +SKIP
"""

import tensorflow as tf

from keras_morsa.errors import UserError

AUGMENTATIONS = ("flip", "color_jitter", "gaussian_noise")

# ITU-R BT.601 luma weights, the grey that saturation jitter moves towards.
_LUMA = (0.299, 0.587, 0.114)


def _per_image(images, seed, salt, minval, maxval):
    """One uniform draw per image, shaped [B, 1, 1, 1] for broadcasting."""
    shape = tf.stack([tf.shape(images)[0], 1, 1, 1])
    return tf.random.stateless_uniform(shape, seed=seed + [0, salt], minval=minval, maxval=maxval)


def random_flip(images, seed):
    """Flips each image left-right with probability 1/2.

    Args:
        images: float32 ``[B, H, W, C]``.
        seed: int32/int64 ``[2]`` stateless seed.
    """
    flip = _per_image(images, seed, 1, 0.0, 1.0) < 0.5
    return tf.where(flip, tf.reverse(images, axis=[2]), images)


def color_jitter(images, seed, brightness=25.0, contrast=0.2, saturation=0.2):
    """Random brightness shift, contrast and saturation scaling per image, clipped to [0, 255].

    Args:
        images: float32 ``[B, H, W, 3]`` in [0, 255].
        seed: ``[2]`` stateless seed.
        brightness: largest shift added to every pixel, in pixel units (0 disables).
        contrast: factors drawn from [1 - contrast, 1 + contrast] scale each image around its channel means.
        saturation: factors drawn from [1 - saturation, 1 + saturation] scale the distance from grey.
    """
    x = images + _per_image(images, seed, 2, -brightness, brightness)
    mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    x = (x - mean) * _per_image(images, seed, 3, 1.0 - contrast, 1.0 + contrast) + mean
    grey = tf.reduce_sum(x * tf.constant(_LUMA, x.dtype), axis=-1, keepdims=True)
    x = grey + (x - grey) * _per_image(images, seed, 4, 1.0 - saturation, 1.0 + saturation)
    return tf.clip_by_value(x, 0.0, 255.0)


def gaussian_noise(images, seed, stddev=8.0):
    """Adds zero-mean Gaussian noise of ``stddev`` pixel units to every pixel, clipped to [0, 255]."""
    noise = tf.random.stateless_normal(tf.shape(images), seed=seed + [0, 5], stddev=stddev, dtype=images.dtype)
    return tf.clip_by_value(images + noise, 0.0, 255.0)


def make_augment(ops, seed, brightness=25.0, contrast=0.2, saturation=0.2, noise_stddev=8.0):
    """Builds the ``augment`` callable of ``pipeline.classifier_dataset`` from a list of op names.

    Args:
        ops: names from :data:`AUGMENTATIONS`, applied in the given order (an empty list returns ``None``:
            no augmentation).
        seed: integer seed; same seed and same batch, same augmentation.
        brightness, contrast, saturation: see :func:`color_jitter`.
        noise_stddev: see :func:`gaussian_noise`.

    Returns:
        ``(images, labels) -> (images, labels)`` for ``Dataset.map``, or ``None`` when ``ops`` is empty.
    """
    ops = list(ops)
    unknown = [op for op in ops if op not in AUGMENTATIONS]
    if unknown:
        raise UserError(f"unknown augmentation(s) {unknown}; accepted: {', '.join(AUGMENTATIONS)}")
    if not ops:
        return None
    functions = {
        "flip": random_flip,
        "color_jitter": lambda x, s: color_jitter(x, s, brightness, contrast, saturation),
        "gaussian_noise": lambda x, s: gaussian_noise(x, s, noise_stddev),
    }

    def augment(images, labels):
        # Seeding from the pixels keeps a parallel map deterministic (no shared generator state).
        content = tf.cast(tf.reduce_sum(tf.cast(images, tf.int64)), tf.int32)
        base = tf.stack([tf.constant(int(seed), tf.int32), content])
        for index, op in enumerate(ops):
            images = functions[op](images, base + [index * 7919, 0])
        return images, labels

    return augment
