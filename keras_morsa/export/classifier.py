"""Serving signatures of a classifier (TensorFlow by nature: builds a ``keras.export.ExportArchive``).

Two signatures, both returning ``probabilities`` (float32 [batch, classes]), ``class_id`` (int64 [batch]) and
``class_name`` (string [batch]; the names are a constant inside the graph, read from the model's
``probabilities`` layer, so no side file travels with the export):

- ``serving_default``: ``images``, uint8 [batch, height, width, 3] of any height and width.
- ``predict_bytes``: ``image_bytes``, string [batch] (or one string) of encoded JPEG or PNG files; REST
  clients send each as ``{"b64": ...}``. An image whose header declares more than ``max_pixels``
  (height x width, 40 megapixels by default, fixed at export) is refused before it is decoded.

Every image is resized to the model's input size the way the training pipeline resizes
(``keras_morsa.data.pipeline.load_resized``: bilinear with antialiasing, aspect ratio not kept, rounded to
whole grey levels), so a served image is classified as it would have been seen in training. The byte
signature decodes with TensorFlow (EXIF orientation is ignored and transparency dropped, where the training
pipeline's Pillow loader rotates and composites on white); send upright, opaque images.
"""

import keras
import tensorflow as tf

from keras_morsa.data.pipeline import resize_like_training
from keras_morsa.errors import UserError
from keras_morsa.export.requests import padded_shape, require
from keras_morsa.models.classifier import class_names_of

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The default pixel limit of predict_bytes: 40 megapixels, about 120 MB decoded (uint8 RGB).
MAX_PIXELS = 40_000_000


def _header_size(one):
    """(height, width) int64 of one JPEG or PNG string, read from its header without decoding the pixels.

    JPEG: ``tf.image.extract_jpeg_shape`` parses the frame header. PNG: the IHDR chunk, which must come
    first, holds width and height as big-endian uint32 at bytes 16-23. A string too short for its header
    gives (0, 0), and the decoder then reports it as it did before.
    """

    def png():
        field = tf.io.decode_raw(tf.strings.substr(one, 16, 8), tf.uint8)
        field = tf.cast(tf.concat([field, tf.zeros([8], tf.uint8)], 0)[:8], tf.int64)
        big_endian = tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64)
        width, height = tf.reduce_sum(field[:4] * big_endian), tf.reduce_sum(field[4:] * big_endian)
        return tf.where(tf.strings.length(one) >= 24, tf.stack([height, width]), tf.zeros([2], tf.int64))

    def jpeg():
        return tf.cast(tf.image.extract_jpeg_shape(one)[:2], tf.int64)

    return tf.cond(tf.equal(tf.strings.substr(one, 0, len(_PNG_MAGIC)), _PNG_MAGIC), png, jpeg)


def classifier_input_size(model):
    """The side ``S`` of a classifier's square ``images`` input, or a ``UserError`` naming the shape."""
    shape = tuple(model.input.shape) if not isinstance(model.input, (list, tuple, dict)) else None
    if shape is None or len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
        raise UserError(
            f"model {model.name!r} takes input of shape {shape}; expected one images input [batch, S, S, 3]"
        )
    return int(shape[1])


def _checked_images(images):
    dims = padded_shape(images, 4)
    ok = tf.reduce_all([tf.equal(tf.rank(images), 4), tf.equal(dims[3], 3), dims[1] > 0, dims[2] > 0])
    images = require(
        ok,
        images,
        "images must be uint8 [batch, height, width, 3] with height, width > 0; got shape {}",
        tf.shape(images),
    )
    return tf.ensure_shape(images, [None, None, None, 3])


def _checked_bytes(image_bytes):
    image_bytes = require(
        tf.rank(image_bytes) <= 1,
        image_bytes,
        "image_bytes must be a batch (a list) of encoded JPEG or PNG strings; got shape {}",
        tf.shape(image_bytes),
    )
    image_bytes = tf.reshape(image_bytes, [-1])
    known = tf.logical_or(
        tf.equal(tf.strings.substr(image_bytes, 0, len(_JPEG_MAGIC)), _JPEG_MAGIC),
        tf.equal(tf.strings.substr(image_bytes, 0, len(_PNG_MAGIC)), _PNG_MAGIC),
    )
    bad = tf.where(tf.logical_not(known))[:, 0]
    return require(
        tf.reduce_all(known),
        image_bytes,
        "image_bytes must hold JPEG or PNG files; the strings at indices {} are neither",
        bad,
    )


def classifier_archive(model, max_pixels=MAX_PIXELS):
    """An ``ExportArchive`` tracking ``model`` with the ``serving_default`` and ``predict_bytes`` endpoints.

    Args:
        model: a classifier from ``keras_morsa.models.classifier.build_classifier`` (or any model with one
            ``images`` input [batch, S, S, 3] float in [0, 255] and a ``probabilities`` layer carrying the
            class names), loaded under the TensorFlow backend.
        max_pixels: ``predict_bytes`` refuses an image whose header declares more pixels (height x width),
            before decoding it; the limit is a constant of the exported graph.

    Returns:
        A ``keras.export.ExportArchive``; call ``write_out(path)`` to save it.
    """
    max_pixels = int(max_pixels)
    if max_pixels < 1:
        raise UserError(f"max_pixels={max_pixels}; expected a positive number of pixels")
    image_size = classifier_input_size(model)
    class_names = class_names_of(model)
    names = tf.constant(class_names, dtype=tf.string)

    # One traced graph of the model, shared by both endpoints (tracing a backbone is the slow part).
    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32)])
    def predict(images):
        probabilities = tf.convert_to_tensor(model(images, training=False))
        class_id = tf.argmax(probabilities, axis=-1)
        return {"probabilities": probabilities, "class_id": class_id, "class_name": tf.gather(names, class_id)}

    def serving_default(images):
        images = tf.cast(_checked_images(images), tf.float32)
        return predict(resize_like_training(images, image_size))

    def predict_bytes(image_bytes):
        def decode(one):
            # Checked before decoding: a small compressed file can decode to gigabytes.
            size = _header_size(one)
            one = require(
                size[0] * size[1] <= max_pixels,
                one,
                f"an image of image_bytes is {{}} x {{}} pixels (height x width), over the limit of "
                f"{max_pixels} pixels set at export; send a smaller image",
                size[0],
                size[1],
            )
            image = tf.io.decode_image(one, channels=3, dtype=tf.uint8, expand_animations=False)
            return resize_like_training(tf.cast(image, tf.float32), image_size)

        images = tf.map_fn(
            decode,
            _checked_bytes(image_bytes),
            fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
        )
        return predict(images)

    archive = keras.export.ExportArchive()
    archive.track(model)
    # Unknown shapes on purpose: the checks above then stay in the graph (see keras_morsa.export.requests).
    archive.add_endpoint(
        "serving_default",
        tf.function(serving_default, autograph=False),
        input_signature=[tf.TensorSpec(None, tf.uint8, name="images")],
    )
    archive.add_endpoint(
        "predict_bytes",
        tf.function(predict_bytes, autograph=False),
        input_signature=[tf.TensorSpec(None, tf.string, name="image_bytes")],
    )
    return archive
