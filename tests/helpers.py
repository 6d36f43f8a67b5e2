"""The test harness: tiny image folders, tiny FastGAN networks and classifiers, the layer check, and the
environment of a child process.

Imported by the tests as ``helpers`` (pytest puts ``tests/`` on ``sys.path`` for its rootdir conftest; the name
``tests`` itself is taken by a package tf-keras-vis installs). Everything here is tiny, seeded and written once:
a test states what its data or network looks like and leaves the plumbing to these helpers. In the style of
keras-hub's ``src/tests/test_case.py``, :func:`run_layer_check` takes any layer through the checks every
registered layer must pass (tests/models/test_registered_layers.py runs it on each).
"""

import importlib.util
import os
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops
from PIL import Image

from keras_morsa.models.fastgan import Discriminator, Generator
from keras_morsa.models.probabilities import Probabilities
from keras_morsa.training.fastgan import FastGAN

#: pytest parameters for every backbone library (``keras_morsa.models.backbones.LIBRARIES``): a test of the
#: backbones runs on both; keras_hub is skipped where the optional keras-hub package is not installed.
BACKBONE_LIBRARIES = (
    "keras_cv",
    pytest.param(
        "keras_hub",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("keras_hub") is None, reason='keras-hub not installed (pip install -e ".[hub]")'
        ),
    ),
)

# Tiny FastGAN: 64 px (the smallest size), widths of 8 and a 16-d latent.
TINY_SIZE = 64
TINY_NZ = 16

REPO = Path(__file__).resolve().parents[1]


# --- image folders ---------------------------------------------------------------------------------------------


def write_image_folder(root, classes, draw, pattern="{class_name}_{index}.png"):
    """Writes an ImageFolder ``root/<class>/<file>``: one image per (class, index), in the order given.

    Args:
        root: the folder (created with its class folders; existing files stay).
        classes: ``{class_name: count}``, or ``{class_name: iterable of indices}`` for indices that do not start
            at 0 for every class.
        draw: ``draw(class_name, index)`` -> the image, a uint8 array ([H, W, 3] or [H, W]) or a PIL image. It is
            called in the order the files are written, so a seeded generator it draws from gives the same files
            every time.
        pattern: file name, formatted with ``class_name`` and ``index``; its suffix picks the format.

    Returns:
        ``{path: index}`` of the files written, in order.
    """
    written = {}
    for class_name, indices in classes.items():
        (root / class_name).mkdir(parents=True, exist_ok=True)
        for index in range(indices) if isinstance(indices, int) else indices:
            image = draw(class_name, index)
            path = root / class_name / pattern.format(class_name=class_name, index=index)
            (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(path)
            written[path] = index
    return written


def write_solid_images(root, counts, start=0):
    """Writes 8x8 PNGs of one colour each, ``root/<class>/<class>_<id>.png``; ids encode the colour.

    Ids run on from ``start`` across the classes; image ``id`` is filled with ``(id % 256, id // 256, 7)``, so
    every file has distinct bytes and a decoded (even resized) image tells which file it came from (see
    :func:`image_id`). Returns ``{path: id}``.
    """
    classes, next_id = {}, start
    for class_name, count in counts.items():
        classes[class_name] = range(next_id, next_id + count)
        next_id += count
    return write_image_folder(root, classes, lambda _, i: Image.new("RGB", (8, 8), (i % 256, i // 256, 7)))


def image_id(image):
    """The id of an image written by :func:`write_solid_images` (any size, uint8 or float 0..255)."""
    pixel = np.rint(np.asarray(image, np.float64)[0, 0])
    return int(pixel[0]) + 256 * int(pixel[1])


def squares_on_white(classes, colours, size=48, side=24, seed=0):
    """A ``draw`` for :func:`write_image_folder`: a square of the class's colour at a random place on white.

    Args:
        classes: the class names, in the order of ``colours``.
        colours: one RGB colour per class.
        size: image side; ``side``: square side (its corner is drawn in [4, size - side - 4)).
        seed: seed of the corners, drawn in call order.
    """
    rng = np.random.default_rng(seed)
    colour_of = dict(zip(classes, colours, strict=True))

    def draw(class_name, index):
        image = np.full((size, size, 3), 240, np.uint8)
        y, x = rng.integers(4, size - side - 4, 2)
        image[y : y + side, x : x + side] = colour_of[class_name]
        return image

    return draw


def noisy_colours(colours, size, sigma=25, seed=0):
    """A ``draw`` for :func:`write_image_folder`: the class's colour plus Gaussian noise (``sigma``) per pixel.

    Args:
        colours: ``{class_name: RGB colour}``.
        size: image side.
        sigma: standard deviation of the noise (clipped to 0..255).
        seed: seed of the noise, drawn in call order.
    """
    rng = np.random.default_rng(seed)

    def draw(class_name, index):
        noise = rng.normal(0, sigma, (size, size, 3))
        return np.clip(np.array(colours[class_name]) + noise, 0, 255).astype(np.uint8)

    return draw


# --- networks ----------------------------------------------------------------------------------------------------


def tiny_generator(ngf=8, nz=TINY_NZ, image_size=TINY_SIZE, seed=0, build=True, **kwargs):
    """A FastGAN generator at the tiny defaults (64 px, ngf 8, nz 16), built unless ``build=False``."""
    generator = Generator(ngf=ngf, nz=nz, image_size=image_size, seed=seed, **kwargs)
    if build:
        generator.build((None, nz))
    return generator


def tiny_discriminator(ndf=8, image_size=TINY_SIZE, build=True, **kwargs):
    """A FastGAN discriminator at the tiny defaults (64 px, ndf 8), built unless ``build=False``."""
    discriminator = Discriminator(ndf=ndf, image_size=image_size, **kwargs)
    if build:
        small = discriminator.small_size
        discriminator.build((None, image_size, image_size, 3), (None, small, small, 3))
    return discriminator


def tiny_fastgan(seed=0, g_lr=1e-4, d_lr=4e-4, compile=True, **fastgan_kwargs):
    """The FastGAN game on a tiny generator and discriminator, compiled with Adam (beta_1 0.5) unless told not to.

    Seeds Keras's global generators with ``seed`` first (the networks' initial weights are drawn from them), so
    two calls with one seed give the same networks and the same first steps.
    """
    keras.utils.set_random_seed(seed)
    gan = FastGAN(tiny_generator(seed=seed, build=False), tiny_discriminator(build=False), seed=seed, **fastgan_kwargs)
    if compile:
        gan.compile(
            g_optimizer=keras.optimizers.Adam(g_lr, beta_1=0.5), d_optimizer=keras.optimizers.Adam(d_lr, beta_1=0.5)
        )
    return gan


def tiny_classifier(size=16, names=("a", "b"), strides=1, batch_norm=False):
    """A build_classifier-shaped graph without a KerasCV backbone: ``images`` -> /255 -> 3x3 conv (4 channels,
    ReLU; batch norm if asked) -> ``pool`` -> ``logits`` -> ``probabilities`` (the real Probabilities layer)."""
    images = keras.Input((size, size, 3), name="images")
    x = keras.layers.Conv2D(4, 3, strides=strides, activation="relu")(keras.layers.Rescaling(1 / 255)(images))
    if batch_norm:
        x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(len(names), name="logits")(x)
    return keras.Model(images, Probabilities(list(names), name="probabilities")(logits))


# --- the layer check ---------------------------------------------------------------------------------------------


def _numpy(x):
    return ops.convert_to_numpy(x)


def _assert_same_config(layer, cls):
    config = layer.get_config()
    assert cls.from_config(config).get_config() == config, f"{cls.__name__}: from_config(get_config()) differs"
    # By its registered name, as a .keras file refers to it.
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is cls and revived.get_config() == config, f"{cls.__name__}: serialization round trip"


def run_layer_check(make_layer, inputs, tmp_path, call_kwargs=None, seed=0, run_eagerly=None):
    """Takes a layer through what every registered layer must pass, on the active backend.

    1. Config round trip: ``from_config(get_config())`` and Keras (de)serialization by the registered name give
       the same config (before and after building).
    2. ``fit`` of a functional model around the layer for two steps (Adam, MSE to seeded random targets): the
       loss is finite and every trainable variable moved, so each is reached by the example's call (two steps,
       because a gate that starts at 0, like SelfAttention's ``gamma``, lets gradients through from the second).
       By default the train step is compiled on JAX (whose eager mode compiles every operation on its own) and
       eager elsewhere (tracing the whole networks would be most of the check's cost on TensorFlow); the FastGAN
       game's tests (tests/training/) train the networks compiled on every backend.
    3. ``.keras`` save and load of that model: the reloaded layer is of the same class, every weight is equal, and
       so are the outputs. Keras does not store ``SeedGenerator`` states in the file (a reloaded one restarts
       from its seed), so the reloaded model is given the trained one's states before the outputs are compared:
       a layer that draws noise at inference is compared on the same draws.

    Args:
        make_layer: ``make_layer()`` -> a new, unbuilt layer.
        inputs: the example input, an array or a tuple of arrays (one per positional call argument); the first
            axis is the batch.
        tmp_path: folder for the ``.keras`` file.
        call_kwargs: constant keyword arguments of the call (plain Python values).
        seed: seed of Keras's global generators and of the targets.
        run_eagerly: ``True`` or ``False`` to choose the train step's mode (None: see 2.).

    Returns:
        The trained functional model (for further, layer-specific assertions).
    """
    keras.utils.set_random_seed(seed)
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    inputs = tuple(np.asarray(x) for x in inputs)
    layer = make_layer()
    cls = type(layer)
    _assert_same_config(layer, cls)

    symbolic = [keras.Input(x.shape[1:], batch_size=x.shape[0], dtype=str(x.dtype)) for x in inputs]
    model = keras.Model(symbolic, layer(*symbolic, **(call_kwargs or {})))
    _assert_same_config(layer, cls)
    rng = np.random.default_rng([seed, 1])  # not the stream an example input may come from
    targets = [rng.normal(size=tuple(out.shape)).astype("float32") for out in model.outputs]
    if run_eagerly is None:
        run_eagerly = keras.backend.backend() == "tensorflow"
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", run_eagerly=run_eagerly)
    before = [_numpy(v).copy() for v in layer.trainable_variables]
    twice = [np.concatenate([x, x]) for x in inputs]
    history = model.fit(
        twice,
        [np.concatenate([t, t]) for t in targets],
        batch_size=inputs[0].shape[0],
        epochs=1,
        shuffle=False,
        verbose=0,
    )
    assert np.isfinite(history.history["loss"][0]), f"{cls.__name__}: loss {history.history['loss']}"
    unchanged = [v.path for v, old in zip(layer.trainable_variables, before) if np.array_equal(_numpy(v), old)]
    assert not unchanged, f"{cls.__name__}: two fit steps left these trainable variables unchanged: {unchanged}"

    path = tmp_path / f"{cls.__name__}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.get_layer(layer.name)) is cls
    for before_var, after_var in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(_numpy(after_var), _numpy(before_var), err_msg=before_var.path)
    for source, target in zip(model.variables, loaded.variables, strict=True):
        if "seed_generator_state" in source.path:
            target.assign(source)
    expected = keras.tree.flatten(model(list(inputs)))
    for out, again in zip(expected, keras.tree.flatten(loaded(list(inputs))), strict=True):
        np.testing.assert_allclose(_numpy(again), _numpy(out), rtol=1e-6, atol=1e-6, err_msg=cls.__name__)
    return model


# --- child processes ---------------------------------------------------------------------------------------------


def checkout_env(**changes):
    """The environment of a child process that imports this checkout's ``keras_morsa``, not an installed one:
    ``os.environ`` with the repository root first on ``PYTHONPATH``, then ``changes`` (``NAME=None`` removes
    ``NAME``, e.g. ``TF_CPP_MIN_LOG_LEVEL=None`` for a user's default logging)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env
