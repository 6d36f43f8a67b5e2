"""The perceptual reconstruction option: the distance, a FastGAN trained with it, and its config errors."""

import keras
import numpy as np
import pytest
from keras import ops

from configs.fastgan_cpu import get_config
from keras_morsa.errors import UserError
from keras_morsa.models.backbones import build_backbone
from keras_morsa.training.checkpoint import CheckpointManager
from keras_morsa.training.perceptual import FEATURE_LAYERS, PerceptualDistance
from keras_morsa.training.train_gan import build_gan, reconstruction_loss

pytestmark = pytest.mark.multibackend


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    """A local VGG16 weights file, as a user would supply (seeded random weights: no download in tests)."""
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg16.weights.h5"
    build_backbone("vgg16", 32).save_weights(path)
    return path


@pytest.fixture(scope="module")
def distance(vgg_weights):
    return PerceptualDistance(vgg_weights, image_size=32)


def _images(seed, n=2, size=32):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


def test_distance_is_zero_for_identical_images_and_positive_otherwise(distance):
    a, b = _images(0), _images(1)
    same = float(distance(a, a.copy()))
    assert abs(same) < 1e-6
    different = float(distance(a, b))
    # Each depth contributes a mean squared distance of unit vectors, in [0, 4].
    assert 0.0 < different <= 4.0 * len(FEATURE_LAYERS)
    # A small change is nearer than an unrelated image.
    assert 0.0 < float(distance(a, np.clip(a + 0.05, -1, 1))) < different


def test_network_is_frozen_and_loaded_from_the_file(distance, vgg_weights):
    assert distance.network.trainable_variables == []
    keras.utils.set_random_seed(1)
    other = build_backbone("vgg16", 32)
    other.load_weights(vgg_weights)
    loaded = ops.convert_to_numpy(distance.network.get_layer("block1_conv1").kernel)
    np.testing.assert_array_equal(loaded, ops.convert_to_numpy(other.get_layer("block1_conv1").kernel))


def test_missing_or_wrong_weights_raise_user_errors(tmp_path):
    config = get_config("smoke")
    config.train.reconstruction = "perceptual"
    for weights in ("", str(tmp_path / "absent.weights.h5")):
        config.train.perceptual_weights = weights
        with pytest.raises(UserError, match=r"train\.perceptual_weights=.*\*\.weights\.h5.*'l1'"):
            reconstruction_loss(config.train, 32)
    not_vgg = tmp_path / "small.weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(not_vgg)
    config.train.perceptual_weights = str(not_vgg)
    with pytest.raises(UserError, match="do not fit KerasCV's VGG16Backbone"):
        reconstruction_loss(config.train, 32)
    config.train.reconstruction = "lpips"
    with pytest.raises(UserError, match=r"train\.reconstruction='lpips'; accepted: 'l1' .* 'perceptual'"):
        reconstruction_loss(config.train, 32)
    config.train.reconstruction = "l1"
    assert reconstruction_loss(config.train, 32) is None


def test_training_with_perceptual_reconstruction(vgg_weights, tmp_path):
    config = get_config("smoke")  # 64 px: D reconstructs at 32 px
    config.train.reconstruction = "perceptual"
    config.train.perceptual_weights = str(vgg_weights)
    gan = build_gan(config)
    network = gan.reconstruction_loss.network
    vgg_before = [ops.convert_to_numpy(v) for v in network.weights]
    d_before = [ops.convert_to_numpy(v) for v in gan.discriminator.trainable_variables]
    logs = [gan.train_on_batch(_images(2, n=4, size=64), return_dict=True) for _ in range(2)]
    for step in logs:
        assert all(np.isfinite(float(v)) for v in step.values()), step
        assert float(step["rec_loss"]) > 0.0
    # D learned; the frozen VGG16 did not.
    assert any(
        not np.array_equal(a, ops.convert_to_numpy(b)) for a, b in zip(d_before, gan.discriminator.trainable_variables)
    )
    for a, b in zip(vgg_before, network.weights):
        np.testing.assert_array_equal(a, ops.convert_to_numpy(b))
    # The frozen network is not training state: no checkpoint holds it, and a checkpoint round-trips.
    vgg_ids = {id(v) for v in network.weights}
    assert not vgg_ids & {id(v) for v in gan.state_variables()}
    manager = CheckpointManager(tmp_path / "checkpoints", gan)
    with np.load(manager.save(2)) as stored:
        assert not [key for key in stored.files if "block1_conv" in key]
    saved = [ops.convert_to_numpy(v) for v in gan.discriminator.trainable_variables]
    gan.train_on_batch(_images(3, n=4, size=64))
    assert manager.restore_latest() == 2
    for a, b in zip(saved, gan.discriminator.trainable_variables):
        np.testing.assert_array_equal(a, ops.convert_to_numpy(b))
