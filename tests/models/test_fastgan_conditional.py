"""The class-conditional FastGAN networks: shapes, where the label goes, that it matters, and their errors."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_morsa.errors import UserError
from keras_morsa.models.fastgan import Discriminator, Generator
from keras_morsa.models.fastgan.layers import ConditionalBatchNorm
from keras_morsa.training.fastgan import FastGAN

from helpers import TINY_NZ, TINY_SIZE, run_layer_check, tiny_discriminator, tiny_generator

CLASSES = 3


def _numpy(x):
    return ops.convert_to_numpy(x)


def _latents(batch=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, TINY_NZ)).astype("float32")


def _labels(*values):
    return np.asarray(values, "int32")


def _images(batch=2, seed=1):
    rng = np.random.default_rng(seed)
    return (
        np.tanh(rng.normal(size=(batch, TINY_SIZE, TINY_SIZE, 3))).astype("float32"),
        np.tanh(rng.normal(size=(batch, TINY_SIZE // 2, TINY_SIZE // 2, 3))).astype("float32"),
    )


@pytest.fixture(scope="module")
def networks():
    keras.utils.set_random_seed(0)
    g = tiny_generator(build=False, num_classes=CLASSES)
    g(_latents(), labels=_labels(0, 1))
    # Fresh class scales are all ~1 and offsets 0: give each class its own, so a label visibly matters.
    rng = np.random.default_rng(5)
    for layer in g._flatten_layers():
        if isinstance(layer, ConditionalBatchNorm):
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.3, layer.beta.shape).astype("float32"))
    d = tiny_discriminator(num_classes=CLASSES)
    return g, d


@pytest.mark.multibackend
def test_conditional_shapes(networks):
    g, d = networks
    images, small = g(_latents(4), labels=_labels(0, 1, 2, 1))
    assert images.shape == (4, 64, 64, 3) and small.shape == (4, 32, 32, 3)
    assert d(images, small, labels=_labels(0, 1, 2, 1)).shape == (4, 50)
    logits, reconstructions = d.call_with_reconstructions(
        images, small, ops.convert_to_tensor(2, "int32"), _labels(0, 1, 2, 1), training=False
    )
    assert logits.shape == (4, 50) and [r.shape for r in reconstructions] == [(4, 32, 32, 3)] * 3


@pytest.mark.multibackend
def test_the_label_changes_the_generator_output_for_a_fixed_latent_and_each_row_gets_its_own(networks):
    g, _ = networks
    z = _latents(1)
    outputs = [_numpy(g(z, labels=_labels(c))[0]) for c in range(CLASSES)]
    np.testing.assert_array_equal(_numpy(g(z, labels=_labels(1))[0]), outputs[1])  # inference: deterministic
    for a in range(CLASSES):
        for b in range(a + 1, CLASSES):
            assert np.abs(outputs[a] - outputs[b]).mean() > 1e-3, (a, b)
    # A mixed batch routes each row's label to that row only.
    mixed = _numpy(g(np.concatenate([z, z, z]), labels=_labels(2, 0, 1))[0])
    np.testing.assert_allclose(mixed, np.concatenate([outputs[2], outputs[0], outputs[1]]), atol=1e-5)


@pytest.mark.multibackend
def test_the_label_reaches_the_init_layer_and_every_up_block(networks):
    g, _ = networks
    assert g.init_conv.kernel.shape[-1] == TINY_NZ + g.label_dim  # embedding joined to the latent
    assert isinstance(g.init_norm, ConditionalBatchNorm)
    assert all(isinstance(norm, ConditionalBatchNorm) for up in g.ups for norm in up.norms)


@pytest.mark.multibackend
def test_the_discriminator_projects_the_label_onto_each_paths_logits(networks):
    _, d = networks
    images, small = _images()
    base = _numpy(d(images, small, labels=_labels(0, 0)))
    big, small_projection = d.projections
    before = [_numpy(p.embeddings) for p in d.projections]
    try:
        big.embeddings.assign(ops.convert_to_tensor(before[0] + np.eye(CLASSES, before[0].shape[1], dtype="float32")))
        shifted = _numpy(d(images, small, labels=_labels(0, 0)))
        other = _numpy(d(images, small, labels=_labels(1, 1)))
    finally:
        for projection, value in zip(d.projections, before):
            projection.embeddings.assign(value)
    # Moving class 0's big-path vector shifts the 25 big-path logits of class-0 images by one scalar each.
    delta = shifted - base
    assert np.abs(delta[:, :25]).min() > 0 and np.ptp(delta[:, :25], axis=1).max() < 1e-4
    np.testing.assert_allclose(delta[:, 25:], 0, atol=1e-6)
    assert np.abs(other - shifted).max() > 0


@pytest.mark.multibackend
def test_labels_are_required_exactly_by_conditional_networks(networks):
    g, d = networks
    images, small = _images()
    with pytest.raises(UserError, match="call it with labels"):
        g(_latents())
    with pytest.raises(UserError, match="call it with labels"):
        d(images, small)
    plain = tiny_generator()
    with pytest.raises(UserError, match="takes no labels"):
        plain(_latents(), labels=_labels(0, 1))
    with pytest.raises(UserError, match="num_classes"):
        FastGAN(tiny_generator(build=False, num_classes=2), tiny_discriminator(build=False))
    with pytest.raises(UserError, match="num_classes=-1"):
        Generator(ngf=8, nz=TINY_NZ, image_size=TINY_SIZE, num_classes=-1)


@pytest.mark.multibackend
def test_conditional_generator_passes_the_layer_check(tmp_path):
    run_layer_check(
        lambda: Generator(ngf=4, nz=8, image_size=64, seed=3, num_classes=2),
        (np.random.default_rng(0).normal(size=(2, 8)).astype("float32"), _labels(0, 1)),
        tmp_path,
    )


def test_parameter_counts_at_the_paper_size():
    # Documented in keras_morsa/models/fastgan/__init__.py and the README: 10 classes, 256 px, ngf = ndf = 64.
    def count(model):
        return sum(int(np.prod(v.shape)) for v in model.trainable_variables)

    g = Generator(ngf=64, nz=256, image_size=256, num_classes=10)
    g.build((None, 256))
    d = Discriminator(ndf=64, image_size=256, num_classes=10)
    d.build((None, 256, 256, 3), (None, 128, 128, 3))
    assert (count(g), count(d)) == (31_328_166, 11_538_960)
