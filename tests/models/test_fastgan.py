"""FastGAN networks: reference parity, shapes at 64/128 px, quarter selection, spectral norm, attention,
serialization and cross-backend agreement."""

import re
import runpy
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from keras_morsa.errors import UserError
from keras_morsa.models.fastgan import Discriminator, Generator, reconstruction_targets
from keras_morsa.models.fastgan.layers import (
    NoiseInjection,
    SelfAttention,
    SpectralConv2D,
    SpectralConv2DTranspose,
    batch_norm,
    select_quarter,
)

import helpers

BACKEND = keras.backend.backend()
NZ = helpers.TINY_NZ


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def tiny_models(size, **generator_kwargs):
    """The tiny generator and discriminator at ``size`` px, seeded with ``size``; D gets G's attention_resolutions."""
    keras.utils.set_random_seed(size)
    attention = generator_kwargs.get("attention_resolutions", ())
    g = helpers.tiny_generator(image_size=size, seed=size, **generator_kwargs)
    return g, helpers.tiny_discriminator(image_size=size, attention_resolutions=attention)


def latents(batch=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, NZ)).astype("float32")


def part_tensor(part):
    return ops.convert_to_tensor(part, dtype="int32")


@pytest.fixture(scope="module")
def models64():
    return tiny_models(64, attention_resolutions=(16,))


def test_parameter_counts_match_reference_at_256():
    g = Generator(ngf=64, nz=256, image_size=256)
    g.build((None, 256))
    d = Discriminator(ndf=64, image_size=256)
    d.build((None, 256, 256, 3), (None, 128, 128, 3))
    assert trainable_count(g) == 29_127_846
    assert trainable_count(d) == 11_526_160
    # Power-iteration vectors and batch-norm statistics are state, not parameters.
    assert not any(v.name in ("u", "moving_mean", "moving_variance") for v in g.trainable_variables)
    assert any(v.name == "u" for v in d.non_trainable_variables)


@pytest.mark.multibackend
@pytest.mark.parametrize("size", [64, 128])
def test_output_shapes_and_ranges(size, request):
    # 64 px: GLU with attention at 16 in G and D (the shared fixture); 128 px: the study's LeakyReLU variant.
    g, d = request.getfixturevalue("models64") if size == 64 else tiny_models(size, activation="leaky_relu")
    small = size // 2
    images, images_small = g(latents(), training=True)
    images, images_small = g(latents(), training=False)
    assert tuple(images.shape) == (2, size, size, 3)
    assert tuple(images_small.shape) == (2, small, small, 3)
    for out in (images, images_small):
        values = ops.convert_to_numpy(out)
        assert np.all(np.abs(values) <= 1.0) and np.std(values) > 0
    logits = ops.convert_to_numpy(d(images, images_small))
    assert logits.shape == (2, 50) and np.all(np.isfinite(logits))
    logits, reconstructions = d.call_with_reconstructions(images, images_small, part_tensor(3))
    targets = reconstruction_targets(images, part_tensor(3), d.reconstruction_size)
    assert tuple(logits.shape) == (2, 50)
    for rec, target in zip(reconstructions, targets):
        assert tuple(rec.shape) == tuple(target.shape) == (2, small, small, 3)
        assert np.all(np.abs(ops.convert_to_numpy(rec)) <= 1.0)


@pytest.mark.multibackend
def test_fit_updates_spectral_norm_state_and_batch_norm_statistics():
    # A conv + noise + BN stack is enough to show Keras threads the state assigned in `call` through `fit`
    # (under JAX via stateless_call); the whole networks use the same layers.
    keras.utils.set_random_seed(8)
    model = keras.Sequential([keras.Input((8, 8, 3)), SpectralConv2D(4, 3), NoiseInjection(seed=8), batch_norm("bn")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    state = {v.path: ops.convert_to_numpy(v).copy() for v in model.non_trainable_variables}
    trainable = {v.path: ops.convert_to_numpy(v).copy() for v in model.trainable_variables}
    x = np.random.default_rng(8).normal(size=(4, 8, 8, 3)).astype("float32")
    model.fit(x, np.ones((4, 8, 8, 4), "float32"), batch_size=2, epochs=1, verbose=0)
    for v in model.non_trainable_variables + model.trainable_variables:
        before = state.get(v.path, trainable.get(v.path))
        assert not np.array_equal(ops.convert_to_numpy(v), before), v.path


def crop(x, part):
    half_h, half_w = x.shape[1] // 2, x.shape[2] // 2
    rows = slice(None, half_h) if part < 2 else slice(half_h, None)
    cols = slice(None, half_w) if part % 2 == 0 else slice(half_w, None)
    return x[:, rows, cols]


def mean_pool(x, factor):
    b, h, w, c = x.shape
    return x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


@pytest.mark.multibackend
def test_quarter_selection_matches_explicit_crops(models64):
    g, d = models64
    x = np.random.default_rng(1).normal(size=(2, 16, 16, 4)).astype("float32")
    images = np.random.default_rng(2).uniform(-1, 1, size=(2, 64, 64, 3)).astype("float32")
    images_small = mean_pool(images, 2)
    _, _, _, part_map = d._encode(images, images_small, training=False)
    part_map = ops.convert_to_numpy(part_map)
    assert part_map.shape[1:3] == (16, 16)
    for part in range(4):
        np.testing.assert_array_equal(ops.convert_to_numpy(select_quarter(x, part_tensor(part))), crop(x, part))
        whole, whole_again, target_part = reconstruction_targets(images, part_tensor(part), 16)
        np.testing.assert_allclose(ops.convert_to_numpy(whole), mean_pool(images, 4), atol=1e-6)
        np.testing.assert_allclose(ops.convert_to_numpy(target_part), mean_pool(crop(images, part), 2), atol=1e-6)
        _, (_, _, rec_part) = d.call_with_reconstructions(images, images_small, part_tensor(part), training=False)
        expected = d.decoder_part(crop(part_map, part), training=False)
        np.testing.assert_allclose(ops.convert_to_numpy(rec_part), ops.convert_to_numpy(expected), atol=1e-5)


@pytest.mark.multibackend
def test_compiled_quarter_selection_serves_every_part_without_retracing():
    traces = []

    def select(x, part):
        traces.append(1)
        return select_quarter(x, part)

    if BACKEND == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(select, jit_compile=True)
    elif BACKEND == "jax":
        import jax

        compiled = jax.jit(select)
    else:
        pytest.skip("torch runs eagerly: nothing is traced")
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 3)).astype("float32")
    for part in (0, 1, 2, 3, 1):
        np.testing.assert_array_equal(ops.convert_to_numpy(compiled(x, part_tensor(part))), crop(x, part))
    assert len(traces) == 1


def matrix_with_singular_values(rows, cols, values, seed):
    rng = np.random.default_rng(seed)
    left, _ = np.linalg.qr(rng.normal(size=(rows, cols)))
    right, _ = np.linalg.qr(rng.normal(size=(cols, cols)))
    return (left * np.asarray(values)) @ right.T


@pytest.mark.multibackend
@pytest.mark.parametrize("transposed", [False, True])
def test_spectral_norm_converges_and_updates_only_in_training(transposed):
    values = [3.0, 1.0, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1]
    if transposed:
        layer = SpectralConv2DTranspose(8, 4)
        layer.build((None, 1, 1, 5))
        matrix = matrix_with_singular_values(4 * 4 * 5, 8, values, seed=4)  # [k*k*in, out]
        kernel = np.transpose(matrix.reshape(4, 4, 5, 8), (0, 1, 3, 2))
        x = np.ones((1, 1, 1, 5), "float32")
    else:
        layer = SpectralConv2D(8, 3)
        layer.build((None, 5, 5, 4))
        kernel = matrix_with_singular_values(3 * 3 * 4, 8, values, seed=5).reshape(3, 3, 4, 8)
        x = np.ones((1, 5, 5, 4), "float32")
    layer.kernel.assign(kernel.astype("float32"))
    u_start = ops.convert_to_numpy(layer.u)
    layer(x, training=False)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer.u), u_start)
    layer(x, training=True)
    assert not np.allclose(ops.convert_to_numpy(layer.u), u_start)
    for _ in range(10):
        layer(x, training=True)
    largest = np.linalg.svd(kernel.reshape(-1, 8) if not transposed else matrix, compute_uv=False)[0]
    assert largest == pytest.approx(3.0, rel=1e-6)
    assert float(ops.convert_to_numpy(layer.spectral_norm())) == pytest.approx(largest, rel=1e-4)
    np.testing.assert_allclose(ops.convert_to_numpy(layer.normalized_kernel()), kernel / largest, atol=1e-5)
    u_trained = ops.convert_to_numpy(layer.u)
    layer(x, training=False)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer.u), u_trained)


@pytest.mark.multibackend
def test_self_attention_starts_as_identity():
    keras.utils.set_random_seed(6)
    layer = SelfAttention()
    x = np.random.default_rng(6).normal(size=(2, 4, 4, 16)).astype("float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), x)
    assert layer.gamma in layer.trainable_variables
    assert tuple(layer.query.kernel.shape) == (1, 1, 16, 2) and tuple(layer.value.kernel.shape) == (1, 1, 16, 16)
    layer.gamma.assign(0.5)
    assert np.abs(ops.convert_to_numpy(layer(x)) - x).max() > 1e-3


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: Generator(image_size=100), "image_size=100 is not supported; accepted: 64, 128, 256, 512, 1024"),
        (lambda: Discriminator(image_size=32), "image_size=32 is not supported"),
        (lambda: Generator(activation="relu"), "activation='relu' is not supported; accepted: glu, leaky_relu"),
        (
            lambda: Generator(image_size=64, attention_resolutions=(128,)),
            "attention resolution 128 does not exist in this generator; accepted: 4, 8, 16, 32, 64",
        ),
        (
            lambda: Discriminator(image_size=128, attention_resolutions=(4,)),
            "attention resolution 4 does not exist in this discriminator; accepted: 8, 16, 32, 64, 128",
        ),
        (
            lambda: Generator(ngf=8, nz=16, image_size=64).build((None, 32)),
            "latents of shape (None, 32) do not fit this generator; expected [B, 16]",
        ),
        (
            lambda: Discriminator(ndf=8, image_size=64).build((None, 128, 128, 3), (None, 64, 64, 3)),
            "images of shape (None, 128, 128, 3) do not fit this discriminator; expected [B, 64, 64, 3]",
        ),
        (lambda: Discriminator(image_size=64, decoder_width=0), "decoder_width=0: expected a positive integer"),
        (lambda: Discriminator(image_size=64, decoder_width=8.0), "decoder_width=8.0: expected a positive integer"),
    ],
)
def test_bad_arguments_raise_user_errors(build, message):
    with pytest.raises(UserError, match=re.escape(message)):
        build()


def test_decoder_width_scales_only_the_decoders():
    # 128 px: decoders up to 64x64, i.e. up-blocks to 16, 32 and 64 (multipliers 4, 2, 2 of the width).
    reference = helpers.tiny_discriminator(image_size=128)
    narrow = helpers.tiny_discriminator(image_size=128, decoder_width=4)
    assert [up.filters for up in reference.decoder_big.ups] == [128, 64, 64]
    assert [up.filters for up in narrow.decoder_part.ups] == [16, 8, 8]

    def encoder(d):  # (path below the model's own name, shape) of every non-decoder weight
        return [(v.path.split("/", 1)[1], tuple(v.shape)) for v in d.trainable_variables if "decoder" not in v.path]

    assert encoder(narrow) == encoder(reference)
    assert trainable_count(narrow) < trainable_count(reference)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 128, 128, 3)).astype("float32")
    _, reconstructions = narrow.call_with_reconstructions(images, images[:, ::2, ::2], part_tensor(1), training=False)
    assert [tuple(r.shape) for r in reconstructions] == [(2, 64, 64, 3)] * 3
    assert Discriminator.from_config(narrow.get_config()).decoder_width == 4


@pytest.mark.multibackend
def test_config_round_trip_and_keras_file_reload(models64, tmp_path):
    g, d = models64
    z = latents(seed=7)
    # A training call moves the power-iteration vectors and batch-norm statistics away from their start.
    images, images_small = g(z, training=True)
    d.call_with_reconstructions(images, images_small, part_tensor(0), training=True)
    for model, cls in ((g, Generator), (d, Discriminator)):
        assert cls.from_config(model.get_config()).get_config() == model.get_config()
    g.save(tmp_path / "g.keras")
    d.save(tmp_path / "d.keras")
    g2 = keras.saving.load_model(tmp_path / "g.keras")
    d2 = keras.saving.load_model(tmp_path / "d.keras")
    assert isinstance(g2, Generator) and g2.attention_resolutions == (16,)
    for model, loaded in ((g, g2), (d, d2)):
        pairs = list(zip(model.weights, loaded.weights, strict=True))
        for before, after in pairs:
            np.testing.assert_array_equal(ops.convert_to_numpy(after), ops.convert_to_numpy(before))
    # Noise is drawn afresh on every call (as in the reference): silence it to compare outputs.
    for model in (g, g2):
        for v in model.weights:
            if v.name == "weight":
                v.assign(0.0)
    images, images_small = g(z)
    logits = d(images, images_small)
    images2, images_small2 = g2(z)
    for before, after in ((images, images2), (images_small, images_small2), (logits, d2(images, images_small))):
        np.testing.assert_allclose(ops.convert_to_numpy(after), ops.convert_to_numpy(before), atol=1e-6)


CROSS_BACKEND_SCRIPT = textwrap.dedent(
    """
    import sys, zlib
    import keras, numpy as np
    from keras import ops
    from keras_morsa.models.fastgan import Discriminator, Generator

    def set_weights(model):
        for v in model.variables:
            path = v.path.split("/", 1)[1]
            if "seed_generator" in path:
                continue
            rng = np.random.default_rng(zlib.crc32(path.encode()))
            shape = tuple(v.shape)
            if v.name == "u":
                value = rng.normal(size=shape)
                value /= np.linalg.norm(value)
            elif v.name == "moving_variance":
                value = rng.uniform(0.5, 1.5, size=shape)
            elif v.name == "gamma":
                value = 1.0 + 0.1 * rng.normal(size=shape)
            elif v.name == "weight":  # noise strength: per-backend random draws cannot agree
                value = np.zeros(shape)
            else:
                value = 0.1 * rng.normal(size=shape)
            v.assign(value.astype("float32"))

    def outputs():
        g = Generator(ngf=8, nz=16, image_size=64, attention_resolutions=(16,))
        d = Discriminator(ndf=8, image_size=64, attention_resolutions=(16,))
        g.build((None, 16))
        d.build((None, 64, 64, 3), (None, 32, 32, 3))
        set_weights(g)
        set_weights(d)
        z = np.random.default_rng(0).normal(size=(2, 16)).astype("float32")
        images, images_small = g(z, training=False)
        logits, recs = d(images, images_small, part=ops.convert_to_tensor(2, "int32"), training=False)
        names = ("images", "images_small", "logits", "rec_big", "rec_small", "rec_part")
        return {n: ops.convert_to_numpy(t) for n, t in zip(names, (images, images_small, logits, *recs))}

    if __name__ == "__main__":
        np.savez(sys.argv[1], **outputs())
    """
)


def test_forward_passes_agree_across_backends(tmp_path):
    script = tmp_path / "forward.py"
    script.write_text(CROSS_BACKEND_SCRIPT)
    runs = {
        backend: subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / f"{backend}.npz")],
            env=helpers.checkout_env(KERAS_BACKEND=backend),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for backend in ("jax", "torch")
    }
    reference = runpy.run_path(str(script))["outputs"]()
    assert np.abs(reference["images"]).max() > 1e-2 and np.abs(reference["logits"]).max() > 1e-2
    for backend, run in runs.items():
        output, _ = run.communicate(timeout=300)
        assert run.returncode == 0, output[-2000:]
        with np.load(tmp_path / f"{backend}.npz") as other:
            for name, value in reference.items():
                np.testing.assert_allclose(other[name], value, atol=1e-4, err_msg=f"{backend}: {name}")
