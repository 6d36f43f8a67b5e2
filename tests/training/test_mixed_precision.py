"""FastGAN under the ``mixed_bfloat16`` dtype policy: bfloat16 compute, float32 weights, losses and EMA."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_morsa.errors import UserError
from keras_morsa.models.fastgan import Discriminator, Generator
from keras_morsa.training.callbacks import images_to_uint8
from keras_morsa.training.fastgan import LOSS_NAMES, FastGAN

pytestmark = pytest.mark.multibackend


def _numpy(variables):
    return [ops.convert_to_numpy(v).astype(np.float32) for v in variables]


@pytest.fixture(scope="module")
def trained():
    """A 64-px FastGAN built and trained for 2 steps under mixed_bfloat16; the global policy is restored after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        gan = FastGAN(
            Generator(ngf=8, nz=16, image_size=64, seed=0), Discriminator(ndf=8, image_size=64), ema_decay=0.9, seed=0
        )
        gan.compile(
            g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5), d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5)
        )
        # The EMA generator is not trainable: its copies of G's trainable weights are paired by position.
        ema = [e for e, g in zip(gan.ema_generator.variables, gan.generator.variables) if g.trainable]
        weights = (gan.generator.trainable_variables, gan.discriminator.trainable_variables, ema)
        before = [_numpy(w) for w in weights]
        images = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 3)).astype("float32")
        logs = [gan.train_on_batch(images, return_dict=True) for _ in range(2)]
        after = [_numpy(w) for w in weights]
        samples = gan(ops.convert_to_tensor(np.random.default_rng(1).standard_normal((2, 16)).astype("float32")))
    finally:
        keras.config.set_dtype_policy(previous)
    return gan, logs, before, after, samples


def test_losses_are_finite_float32(trained):
    _, logs, _, _, _ = trained
    for step in logs:
        assert set(step) == set(LOSS_NAMES)
        assert all(np.isfinite(float(value)) for value in step.values()), step


def test_layers_compute_in_bfloat16_on_float32_variables(trained):
    gan = trained[0]
    for network in (gan.generator, gan.discriminator, gan.ema_generator):
        with_weights = [layer for layer in network._flatten_layers(include_self=False) if layer.weights]
        assert with_weights
        assert {layer.compute_dtype for layer in with_weights} == {"bfloat16"}, network.name
        assert {v.dtype for v in network.weights} == {"float32"}, network.name
    # Adam's moments (the iteration counters aside) and the EMA copy are float32 too.
    moments = [v for opt in (gan.g_optimizer, gan.d_optimizer) for v in opt.variables if "iteration" not in v.path]
    assert moments and {v.dtype for v in moments} == {"float32"}


def test_weights_and_ema_change(trained):
    _, _, before, after, _ = trained
    for name, old, new in zip(("generator", "discriminator", "ema_generator"), before, after):
        changed = sum(not np.array_equal(a, b) for a, b in zip(old, new))
        assert changed > len(old) // 2, f"{name}: only {changed} of {len(old)} weights changed"


def test_samples_are_float32_images(trained):
    # The policy is restored here: whatever the networks compute in, a sample is float32 in [-1, 1].
    assert keras.config.dtype_policy().name == "float32"
    samples = trained[4]
    assert keras.backend.standardize_dtype(samples.dtype) == "float32"
    values = ops.convert_to_numpy(samples)
    assert values.shape == (2, 64, 64, 3) and np.all(np.abs(values) <= 1.0) and values.std() > 0
    pixels = images_to_uint8(samples)
    assert pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, np.round((values + 1.0) * 127.5).astype(np.uint8))


def test_mixed_float16_is_refused_with_the_accepted_policies():
    # The GAN steps do not scale their losses, so float16 would underflow silently: refused at compile.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        gan = FastGAN(Generator(ngf=8, nz=16, image_size=64, seed=0), Discriminator(ndf=8, image_size=64), seed=0)
    finally:
        keras.config.set_dtype_policy(previous)
    with pytest.raises(UserError, match="'mixed_float16'.*accepted: 'float32' or 'mixed_bfloat16'"):
        gan.compile(g_optimizer=keras.optimizers.Adam(), d_optimizer=keras.optimizers.Adam())
