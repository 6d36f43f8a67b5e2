"""Serving signatures of a FastGAN generator (TensorFlow by nature: builds a ``keras.export.ExportArchive``).

- ``serving_default``: ``num_images`` (int32, one value in [1, max_num_images]) and ``seed`` (int64, one
  value) -> ``images``, uint8 [num_images, S, S, 3], from the latents :func:`latents_for_seed`.
- ``from_latents``: ``latents``, float32 [n, nz], and ``seed`` -> the same ``images``;
  ``from_latents(latents_for_seed(n, s), s)`` equals ``serving_default(n, s)``.
- A class-conditional generator (``num_classes`` in its config, ``train_gan``'s ``model.conditional``) takes
  one more input in both signatures: ``class_id`` (int32, one value in [0, num_classes)), the label of every
  image of the request (the index into the run's ``done.json`` ``class_names``).

FastGAN's noise-injection layers draw fresh noise on every call, inference included, from their
``SeedGenerator``s. A served model must not depend on how many requests came before (nor race on that
state between concurrent requests), so :func:`seeded_images` runs the generator statelessly with every
noise seed derived from the request's ``seed``: the same request always gives the same images.

Images are the generator's first output mapped from [-1, 1] to grey levels: ``round((x + 1) * 127.5)``,
clipped to [0, 255]. Export the EMA generator (``generator_ema.keras`` of a GAN workdir): it is the one
``bin/generate`` samples from.
"""

import keras
import tensorflow as tf

from keras_morsa.errors import UserError
from keras_morsa.export.requests import padded_shape, require, scalar_int
from keras_morsa.models.fastgan.layers import call_with_labels


def generator_sizes(model):
    """``(nz, image_size)`` of a FastGAN ``Generator`` read from its config, or a ``UserError``."""
    config = model.get_config()
    try:
        return int(config["nz"]), int(config["image_size"])
    except (KeyError, TypeError, ValueError):
        raise UserError(
            f"model {model.name!r} is not a FastGAN generator: its config lacks integer 'nz' and 'image_size'"
        ) from None


def latents_for_seed(num_images, seed, nz):
    """The float32 [num_images, nz] standard-normal latents the ``serving_default`` signature draws for ``seed``.

    Stateless (``tf.random.stateless_normal`` with seed ``[seed, 0]``), so a client can reproduce a served
    batch through ``from_latents``.
    """
    seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    return tf.random.stateless_normal(tf.stack([num_images, nz]), seed=seed, dtype=tf.float32)


def generator_classes(model):
    """``num_classes`` of a generator's config: 0 for an unconditional generator."""
    return int(model.get_config().get("num_classes", 0) or 0)


def seeded_images(model, latents, seed, labels=None):
    """The generator's images for ``latents`` with its noise seeds fixed by ``seed``, without changing its state.

    Every ``SeedGenerator`` of the model (FastGAN's noise injection) reads ``[seed, i + 1]`` (``i`` its
    index) inside a ``keras.StatelessScope``, so the result depends only on the weights, ``latents`` and
    ``seed``. Under the TensorFlow backend this is exactly what the export computes (the tests compare the
    two); other backends draw the noise with their own random generators, so their images differ.

    Args:
        model: a generator, ``call(z, training=False) -> (images, images_small)``.
        latents: float32 [n, nz].
        seed: integer (Python or scalar tensor).
        labels: int32 [n] class labels, for a conditional generator only.

    Returns:
        float32 [n, S, S, 3] in [-1, 1].
    """
    states = [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]
    mapping = [
        (state, keras.ops.cast(keras.ops.stack([keras.ops.cast(seed, "int64"), i + 1]), state.dtype))
        for i, state in enumerate(states)
    ]
    with keras.StatelessScope(state_mapping=mapping):
        return call_with_labels(model, latents, labels=labels, training=False)[0]


def to_grey_levels(images):
    """uint8 images from generator output in [-1, 1]: ``round((x + 1) * 127.5)`` clipped to [0, 255]."""
    levels = tf.round((tf.cast(images, tf.float32) + 1.0) * 127.5)
    return tf.cast(tf.clip_by_value(levels, 0.0, 255.0), tf.uint8)


def generator_archive(model, max_num_images=64):
    """An ``ExportArchive`` tracking ``model`` with the ``serving_default`` and ``from_latents`` endpoints.

    Args:
        model: a ``keras_morsa.models.fastgan.Generator`` (``call(z) -> (images, images_small)``), loaded
            under the TensorFlow backend.
        max_num_images: the largest ``num_images`` one request may ask for (bounds a request's memory).

    Returns:
        A ``keras.export.ExportArchive``; call ``write_out(path)`` to save it.
    """
    nz, _ = generator_sizes(model)
    num_classes = generator_classes(model)
    max_num_images = int(max_num_images)
    if max_num_images < 1:
        raise UserError(f"max_num_images={max_num_images}; expected a positive integer")

    def checked_latents(latents):
        dims = padded_shape(latents, 2)
        ok = tf.reduce_all([tf.equal(tf.rank(latents), 2), tf.equal(dims[1], nz), dims[0] > 0])
        latents = require(
            ok, latents, f"latents must be float32 [n, {nz}] with n > 0; got shape {{}}", tf.shape(latents)
        )
        return tf.ensure_shape(latents, [None, nz])

    archive = keras.export.ExportArchive()
    archive.track(model)
    # Unknown shapes on purpose: the checks above then stay in the graph (see keras_morsa.export.requests).
    names = [tf.TensorSpec(None, tf.int32, name="num_images"), tf.TensorSpec(None, tf.int64, name="seed")]
    latent_names = [tf.TensorSpec(None, tf.float32, name="latents"), tf.TensorSpec(None, tf.int64, name="seed")]
    if not num_classes:
        # One traced graph of the generator, shared by both endpoints.
        @tf.function(
            autograph=False, input_signature=[tf.TensorSpec([None, nz], tf.float32), tf.TensorSpec([], tf.int64)]
        )
        def generate(latents, seed):
            return {"images": to_grey_levels(seeded_images(model, latents, seed))}

        def serving_default(num_images, seed):
            num_images = scalar_int(num_images, "num_images", 1, max_num_images)
            seed = scalar_int(seed, "seed")
            return generate(latents_for_seed(num_images, seed, nz), seed)

        def from_latents(latents, seed):
            return generate(checked_latents(latents), scalar_int(seed, "seed"))
    else:

        @tf.function(
            autograph=False,
            input_signature=[
                tf.TensorSpec([None, nz], tf.float32),
                tf.TensorSpec([], tf.int64),
                tf.TensorSpec([], tf.int32),
            ],
        )
        def generate(latents, seed, class_id):
            labels = tf.fill(tf.shape(latents)[:1], class_id)
            return {"images": to_grey_levels(seeded_images(model, latents, seed, labels))}

        def serving_default(num_images, seed, class_id):
            num_images = scalar_int(num_images, "num_images", 1, max_num_images)
            seed = scalar_int(seed, "seed")
            class_id = scalar_int(class_id, "class_id", 0, num_classes - 1)
            return generate(latents_for_seed(num_images, seed, nz), seed, class_id)

        def from_latents(latents, seed, class_id):
            return generate(
                checked_latents(latents), scalar_int(seed, "seed"), scalar_int(class_id, "class_id", 0, num_classes - 1)
            )

        names.append(tf.TensorSpec(None, tf.int32, name="class_id"))
        latent_names.append(tf.TensorSpec(None, tf.int32, name="class_id"))
    archive.add_endpoint("serving_default", tf.function(serving_default, autograph=False), input_signature=names)
    archive.add_endpoint("from_latents", tf.function(from_latents, autograph=False), input_signature=latent_names)
    return archive
