"""Every Keras object keras-morsa registers passes the harness's check, on every backend.

The registered objects are found, not listed: every module of the package is imported and each object in
``keras.saving.get_custom_objects()`` defined in ``keras_morsa`` is checked. A layer needs an example below (a
factory and a tiny input); a registered layer without one fails here by name, so a new layer cannot skip the
check.
"""

import importlib
import pkgutil

import keras
import numpy as np
import pytest
from keras import ops

import keras_morsa
from keras_morsa.models.fastgan import Discriminator, Generator
from keras_morsa.models.fastgan import layers as fl
from keras_morsa.models.probabilities import Probabilities

from helpers import run_layer_check

pytestmark = pytest.mark.multibackend


def _registered():
    """{registered name: object} of every Keras object registered by a keras_morsa module."""
    for module in pkgutil.walk_packages(keras_morsa.__path__, "keras_morsa."):
        # keras_morsa.scripts.* define the stages' absl flags (each stage's process imports one of them only)
        # and no Keras object.
        if not module.name.startswith("keras_morsa.scripts."):
            importlib.import_module(module.name)
    return {
        name: obj
        for name, obj in sorted(keras.saving.get_custom_objects().items())
        if getattr(obj, "__module__", "").split(".")[0] == "keras_morsa"
    }


REGISTERED = _registered()


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


# class -> (factory of a fresh layer, tiny example input: an array or a tuple of positional inputs,
#           constant call keyword arguments). Batch 2 throughout.
LAYER_EXAMPLES = {
    fl.SpectralConv2D: (lambda: fl.SpectralConv2D(4, 3, strides=2), _normal(2, 8, 8, 3), {}),
    fl.SpectralConv2DTranspose: (lambda: fl.SpectralConv2DTranspose(4, 4), _normal(2, 1, 1, 3), {}),
    fl.NoiseInjection: (lambda: fl.NoiseInjection(seed=1), _normal(2, 4, 4, 3), {}),
    fl.SkipLayerExcitation: (lambda: fl.SkipLayerExcitation(4), (_normal(2, 4, 4, 3), _normal(2, 8, 8, 4, seed=1)), {}),
    fl.SelfAttention: (fl.SelfAttention, _normal(2, 4, 4, 8), {}),
    fl.ConditionalBatchNorm: (lambda: fl.ConditionalBatchNorm(2), (_normal(2, 4, 4, 3), np.array([0, 1], "int32")), {}),
    fl.UpBlock: (lambda: fl.UpBlock(4, compound=True, seed=2), _normal(2, 4, 4, 3), {}),
    fl.DownBlock: (lambda: fl.DownBlock(4), _normal(2, 8, 8, 3), {}),
    fl.CompoundDownBlock: (lambda: fl.CompoundDownBlock(4), _normal(2, 8, 8, 3), {}),
    fl.ReconstructionDecoder: (lambda: fl.ReconstructionDecoder(32, width=2), _normal(2, 8, 8, 4), {}),
    Probabilities: (lambda: Probabilities(["jaw", "pin", "nut"]), _normal(2, 3), {}),
    Generator: (lambda: Generator(ngf=4, nz=8, image_size=64, seed=3), _normal(2, 8), {}),
    # With ``part`` the decoders are called too, so every trainable variable is reached.
    Discriminator: (
        lambda: Discriminator(ndf=4, image_size=64, decoder_width=2),
        (np.tanh(_normal(2, 64, 64, 3)), np.tanh(_normal(2, 32, 32, 3, seed=1))),
        {"part": 1},
    ),
}


def _layer_names():
    return [name for name, obj in REGISTERED.items() if isinstance(obj, type) and issubclass(obj, keras.layers.Layer)]


def test_the_registry_is_found_and_every_entry_is_checked():
    assert {"keras_morsa>SpectralConv2D", "keras_morsa>Generator", "keras_morsa>Probabilities"} <= set(REGISTERED)
    layers = {REGISTERED[name] for name in _layer_names()}
    unchecked = set(REGISTERED.values()) - layers - {fl.NumpyNormal}
    assert not unchecked, f"registered but neither a layer nor checked here: {sorted(map(str, unchecked))}"
    stale = set(LAYER_EXAMPLES) - layers
    assert not stale, f"LAYER_EXAMPLES has entries for layers that are not registered: {sorted(map(str, stale))}"


@pytest.mark.parametrize("name", _layer_names())
def test_registered_layer_passes_the_layer_check(name, tmp_path):
    cls = REGISTERED[name]
    if cls not in LAYER_EXAMPLES:
        pytest.fail(
            f"{name} ({cls.__module__}) is registered but has no entry in LAYER_EXAMPLES of {__file__}: "
            "add a factory and a tiny example input so that it goes through the layer check"
        )
    make_layer, inputs, call_kwargs = LAYER_EXAMPLES[cls]
    run_layer_check(make_layer, inputs, tmp_path, call_kwargs=call_kwargs)


def test_numpy_normal_initializer_round_trips_and_draws_the_same():
    initializer = fl.NumpyNormal(0.5, 2.0, unit_norm=True)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(initializer))
    assert type(revived) is fl.NumpyNormal and revived.get_config() == initializer.get_config()
    assert fl.NumpyNormal.from_config(initializer.get_config()).get_config() == initializer.get_config()
    draws = []
    for init in (initializer, revived):
        np.random.seed(4)
        draws.append(ops.convert_to_numpy(init((3, 5))))
    np.testing.assert_array_equal(draws[0], draws[1])
    assert np.linalg.norm(draws[0]) == pytest.approx(1.0, rel=1e-5)
