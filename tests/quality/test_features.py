"""Embeddings for the quality metrics: the seeded random CNN, a classifier's features, local files."""

import keras
import numpy as np
import pytest
from PIL import Image

from keras_morsa.errors import UserError
from keras_morsa.models.probabilities import Probabilities
from keras_morsa.quality import features

pytestmark = pytest.mark.multibackend


def tiny_classifier(size=16, names=("a", "b")):
    """A build_classifier-shaped graph (pool, logits, probabilities) without a KerasCV backbone."""
    images = keras.Input((size, size, 3), name="images")
    x = keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(images))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(len(names), name="logits")(x)
    return keras.Model(images, Probabilities(list(names), name="probabilities")(logits))


def images(n=5, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_random_cnn_is_fixed_by_its_seed():
    a, b, c = features.random_cnn(32, seed=0), features.random_cnn(32, seed=0), features.random_cnn(32, seed=1)
    x = images()
    fa = a.embed(x, batch_size=4)
    assert fa.shape == (5, features.RANDOM_CNN_WIDTHS[-1]) and fa.dtype == np.float32
    np.testing.assert_array_equal(fa, b.embed(x, batch_size=4))
    assert not np.allclose(fa, c.embed(x, batch_size=4))
    # Weights are NumPy draws, so they are the same on every backend.
    kernel = a.model.layers[2].get_weights()[0]
    expected = np.random.default_rng([0, 0]).standard_normal(kernel.shape) * np.sqrt(2.0 / 27)
    np.testing.assert_allclose(kernel, expected, rtol=1e-6)
    # Per-image: padding and batch mates change nothing.
    np.testing.assert_allclose(a.embed(x[:1], batch_size=4), fa[:1], rtol=1e-5, atol=1e-6)
    assert a.image_size == 32 and "seed 0" in a.description


def test_classifier_embedding_gives_pool_features_and_probabilities(tmp_path):
    model = tiny_classifier()
    embedding = features.classifier_embedding(model)
    x = images(size=16)
    feats, probs = embedding.embed(x, batch_size=4)
    assert feats.shape == (5, 4) and embedding.class_names == ["a", "b"]
    np.testing.assert_allclose(probs, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    # Files are read and resized like training images: a 20 px PNG is fed at the model's 16 px.
    for i in range(3):
        Image.fromarray(x[i].astype(np.uint8)).resize((20, 20)).save(tmp_path / f"{i}.png")
    feats, probs = embedding.embed_files(sorted(tmp_path.glob("*.png")), batch_size=2)
    assert feats.shape == (3, 4) and probs.shape == (3, 2)


def test_load_embedding_from_a_local_keras_file_and_refusals(tmp_path):
    model = tiny_classifier()
    model.save(tmp_path / "clf.keras")
    loaded = features.load_embedding(str(tmp_path / "clf.keras"), 16)
    assert loaded.class_names == ["a", "b"] and loaded.image_size == 16
    # Penultimate layer spatial: globally averaged to its 2 channels.
    plain = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(3, 3), keras.layers.Conv2D(2, 1), keras.layers.Flatten()]
    )
    plain.save(tmp_path / "plain.keras")
    other = features.load_embedding(str(tmp_path / "plain.keras"), 16)
    assert not other.has_probabilities and other.embed(images(size=16)).shape == (5, 2)
    assert features.load_embedding("random", 32).image_size == 32
    with pytest.raises(UserError, match="--features=nope.keras: not 'classifier' or 'random'"):
        features.load_embedding("nope.keras", 16)
    with pytest.raises(UserError, match="needs a real-trained classifier"):
        features.load_embedding("classifier", 16)
