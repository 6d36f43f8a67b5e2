"""The FastGAN game trained through ``fit`` on the active backend (64 px, ngf = ndf = 8, nz = 16)."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_morsa.errors import UserError
from keras_morsa.models.fastgan import Discriminator, Generator
from keras_morsa.training.fastgan import LOSS_NAMES, FastGAN

DECAY = 0.9  # far enough from 1 that one EMA step is well above float32 rounding


def _numpy(variables):
    return [ops.convert_to_numpy(v) for v in variables]


def _make_gan(seed=0):
    keras.utils.set_random_seed(seed)
    gan = FastGAN(
        Generator(ngf=8, nz=16, image_size=64, seed=seed),
        Discriminator(ndf=8, image_size=64),
        ema_decay=DECAY,
        policy="color,translation,cutout",
        seed=seed,
    )
    gan.compile(
        g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.999),
        d_optimizer=keras.optimizers.Adam(4e-4, beta_1=0.5, beta_2=0.999),
    )
    return gan


def _train(gan, snapshots):
    """Two steps, then one more (three fit batches); returns the per-batch logs."""
    images = np.random.default_rng(0).uniform(-1, 1, (8, 64, 64, 3)).astype("float32")
    history = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs=None: history.append({k: float(v) for k, v in logs.items()})
    )
    gan.fit(images, batch_size=4, shuffle=False, verbose=0, callbacks=[record])
    snapshots.append((_numpy(gan.generator.variables), _numpy(gan.ema_generator.variables)))
    gan.fit(images[:4], batch_size=4, shuffle=False, verbose=0, callbacks=[record])
    snapshots.append((_numpy(gan.generator.variables), _numpy(gan.ema_generator.variables)))
    return history


@pytest.fixture(scope="module")
def trained():
    gan = _make_gan()
    before = {
        "g": _numpy(gan.generator.trainable_variables),
        "d": _numpy(gan.discriminator.trainable_variables),
        "g_state": _numpy(gan.generator.non_trainable_variables),
        "d_state": _numpy(gan.discriminator.non_trainable_variables),
        "ema": _numpy(gan.ema_generator.variables),
    }
    snapshots = []
    logs = _train(gan, snapshots)
    return gan, before, snapshots, logs


def _changed(old, new):
    return sum(not np.array_equal(a, b) for a, b in zip(old, new))


@pytest.mark.multibackend
def test_losses_are_finite_and_consistent(trained):
    _, _, _, logs = trained
    assert len(logs) == 3
    for step in logs:
        assert set(LOSS_NAMES) <= set(step)
        assert all(math.isfinite(step[name]) for name in LOSS_NAMES)
    last = logs[-1]  # a new fit resets the means: this is the third step's own losses
    assert math.isclose(last["d_loss"], last["d_real"] + last["d_fake"] + last["rec_loss"], rel_tol=1e-5)
    assert last["d_real"] >= 0 and last["d_fake"] >= 0 and last["rec_loss"] > 0


@pytest.mark.multibackend
def test_weights_and_batch_norm_statistics_change(trained):
    gan, before, _, _ = trained
    assert _changed(before["g"], _numpy(gan.generator.trainable_variables)) == len(before["g"])
    assert _changed(before["d"], _numpy(gan.discriminator.trainable_variables)) > 0.9 * len(before["d"])
    for network, key in ((gan.generator, "g_state"), (gan.discriminator, "d_state")):
        paths = [v.path for v in network.non_trainable_variables]
        new = _numpy(network.non_trainable_variables)
        changed = {p for p, a, b in zip(paths, before[key], new) if not np.array_equal(a, b)}
        statistics = {p for p in paths if "moving_mean" in p or "moving_variance" in p}
        assert statistics and statistics <= changed, f"unchanged batch-norm statistics: {statistics - changed}"


@pytest.mark.multibackend
def test_both_optimizers_count_three_steps(trained):
    gan, _, _, _ = trained
    assert gan.optimizer is gan.g_optimizer
    assert int(ops.convert_to_numpy(gan.g_optimizer.iterations)) == 3
    assert int(ops.convert_to_numpy(gan.d_optimizer.iterations)) == 3


@pytest.mark.multibackend
def test_ema_step_is_exact_and_moves_toward_generator(trained):
    gan, before, snapshots, _ = trained
    (_, ema_1), (g_2, ema_2) = snapshots
    for source, ema_old, ema_new, g_new in zip(gan.generator.variables, ema_1, ema_2, g_2):
        if source.trainable:
            np.testing.assert_allclose(ema_new, DECAY * ema_old + (1 - DECAY) * g_new, rtol=1e-5, atol=1e-7)
        else:  # batch-norm statistics, spectral-norm vectors, seeds: copied
            np.testing.assert_array_equal(ema_new, g_new)
    trainable = [i for i, v in enumerate(gan.generator.variables) if v.trainable]
    distance_before = sum(np.sum((before["ema"][i] - g_2[i]) ** 2) for i in trainable)
    distance_after = sum(np.sum((ema_2[i] - g_2[i]) ** 2) for i in trainable)
    assert distance_after < 0.9 * distance_before


@pytest.mark.multibackend
def test_samples_come_from_the_ema_generator(trained):
    gan, _, _, _ = trained
    z = keras.random.normal((2, 16), seed=3)
    # Noise injection draws on every call: replay the EMA generator's seed states for the comparison.
    state = _numpy(gan.ema_generator.non_trainable_variables)
    images = ops.convert_to_numpy(gan(z))
    for variable, value in zip(gan.ema_generator.non_trainable_variables, state):
        variable.assign(value)
    np.testing.assert_allclose(images, ops.convert_to_numpy(gan.ema_generator(z)[0]), atol=1e-6)
    assert images.shape == (2, 64, 64, 3) and np.abs(images).max() <= 1
    raw = ops.convert_to_numpy(gan.generator(z)[0])
    assert not np.allclose(images, raw)


@pytest.mark.multibackend
def test_state_variables_hold_the_whole_training_state(trained):
    gan, _, _, _ = trained
    ids = [id(v) for v in gan.state_variables()]
    assert len(ids) == len(set(ids))
    held = set(ids)
    for group in (
        gan.generator.variables,
        gan.discriminator.variables,
        gan.ema_generator.variables,
        gan.g_optimizer.variables,
        gan.d_optimizer.variables,
        [gan.seed_generator.state],
    ):
        assert {id(v) for v in group} <= held
    # The D optimizer travels with the model's own variables (JAX state, checkpoints).
    assert {id(v) for v in gan.d_optimizer.variables} <= {id(v) for v in gan.variables}


@pytest.mark.multibackend
def test_same_seed_same_first_three_losses(trained):
    _, _, _, logs = trained
    again = _train(_make_gan(), [])
    for first, second in zip(logs, again):
        for name in LOSS_NAMES:
            assert math.isclose(first[name], second[name], rel_tol=1e-5, abs_tol=1e-6), name


def test_bad_arguments_are_user_errors(trained):
    gan, _, _, _ = trained
    with pytest.raises(UserError, match="ema_decay=1.0"):
        FastGAN(gan.generator, gan.discriminator, ema_decay=1.0)
    with pytest.raises(UserError, match="'blur'"):
        FastGAN(gan.generator, gan.discriminator, policy="color,blur")
    optimizer = keras.optimizers.Adam()
    fresh = FastGAN(gan.generator, gan.discriminator)
    with pytest.raises(UserError, match="same object"):
        fresh.compile(g_optimizer=optimizer, d_optimizer=optimizer)
