"""Grad-CAM in keras.ops on every backend, checked against known maps, a NumPy reference and tf-keras-vis."""

import keras
import numpy as np
import pytest

from keras_morsa.errors import UserError
from keras_morsa.explain.gradcam import GradCAM
from keras_morsa.models.classifier import build_classifier
from keras_morsa.models.probabilities import Probabilities

import helpers


def _square_model():
    """Logit 0 = mean brightness of the image (through a stride-2 conv); logit 1 = minus twice that.

    Built like ``build_classifier`` (a nested "backbone", then pool, dropout, logits, probabilities), so it
    goes through ``flat_view``. Weights are set by hand, so with an image that is dark except one bright
    square the Grad-CAM of class 0 is known exactly: v / 32 on the square's 4x4 feature cells (v =
    brightness), 0 elsewhere.
    """
    backbone_input = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(2, 2, strides=2, activation="relu", name="features")(backbone_input)
    backbone = keras.Model(backbone_input, features, name="backbone")
    images = keras.Input((16, 16, 3), name="images")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(images))
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    logits = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(images, Probabilities(["square", "other"], name="probabilities")(logits))
    backbone.get_layer("features").set_weights([np.full((2, 2, 3, 2), 1 / 12, np.float32), np.zeros(2, np.float32)])
    model.get_layer("logits").set_weights([np.array([[1, 0], [1, -2]], np.float32), np.zeros(2, np.float32)])
    return model


def _square_image(value=240.0, corner=(0, 0)):
    image = np.zeros((16, 16, 3), np.float32)
    top, left = corner
    image[top : top + 8, left : left + 8] = value
    return image


@pytest.fixture(scope="module")
def square_model():
    return _square_model()


@pytest.mark.multibackend
def test_known_map_of_a_model_looking_at_one_square(square_model):
    images = np.stack([_square_image(), _square_image(120.0, corner=(8, 8))])
    cam = GradCAM(square_model)
    assert cam.layer_name == "features"
    raw = cam(images, targets=0, expand=False, normalize=False)
    expected = np.zeros((2, 8, 8), np.float32)
    expected[0, :4, :4] = 240.0 / 32
    expected[1, 4:, 4:] = 120.0 / 32
    np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-6)
    maps = cam(images, targets=[0, 0])
    assert maps.shape == (2, 16, 16) and maps.dtype == np.float32
    assert maps[0, :6, :6].min() > 0.99 and maps[0, 9:, :].max() == 0.0 and maps[1, 10:, 10:].min() > 0.99
    # Class 1's logit falls with the square's brightness: relu leaves nothing.
    assert cam(images, targets=1).max() == 0.0
    # None explains each image's predicted class (class 0 here); a score callable picks a logit itself.
    np.testing.assert_allclose(cam(images), maps)
    np.testing.assert_allclose(cam(images, targets=lambda logits: logits[:, 0]), maps)


def _reference_model(seed=0):
    """Conv 1x1 -> average pool (the explained layer) -> GAP -> Dense relu -> Dense logits, NumPy weights."""
    rng = np.random.default_rng(seed)
    images = keras.Input((8, 8, 3), name="images")
    x = keras.layers.Conv2D(5, 1, activation="relu", name="conv")(images)
    x = keras.layers.AveragePooling2D(2, name="cells")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(6, activation="relu", name="hidden")(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(images, keras.layers.Softmax(name="probabilities")(logits))
    weights = {
        "conv": [rng.normal(0, 0.02, (1, 1, 3, 5)), rng.normal(0, 0.1, 5)],
        "hidden": [rng.normal(0, 1, (5, 6)), rng.normal(0, 0.1, 6)],
        "logits": [rng.normal(0, 1, (6, 3)), rng.normal(0, 0.1, 3)],
    }
    for name, values in weights.items():
        model.get_layer(name).set_weights([v.astype(np.float32) for v in values])
    return model, {k: [v.astype(np.float64) for v in w] for k, w in weights.items()}


def _numpy_gradcam(weights, images, targets):
    """Grad-CAM of _reference_model in float64 NumPy with the gradient worked out by hand."""
    (ck, cb), (hk, hb), (lk, _) = weights["conv"], weights["hidden"], weights["logits"]
    conv = np.maximum(images.astype(np.float64) @ ck[0, 0] + cb, 0)
    cells = conv.reshape(len(images), 4, 2, 4, 2, 5).mean(axis=(2, 4))
    hidden_pre = cells.mean(axis=(1, 2)) @ hk + hb
    # d logit_t / d cells[i, j, c] = (1 / 16) * sum_m hk[c, m] * [hidden_pre_m > 0] * lk[m, t], the same
    # for every cell, so the spatial mean of the gradient is that value.
    channel_weights = np.einsum("cm,bm,mb->bc", hk, (hidden_pre > 0).astype(np.float64), lk[:, targets]) / 16
    return np.maximum(np.einsum("bijc,bc->bij", cells, channel_weights), 0)


@pytest.mark.multibackend
def test_raw_maps_match_a_numpy_reference_on_every_backend():
    model, weights = _reference_model()
    images = np.random.default_rng(7).uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)
    targets = np.array([0, 1, 2, 1])
    expected = _numpy_gradcam(weights, images, targets)
    assert expected.max() > 0.01, "the reference must have non-trivial maps"
    raw = GradCAM(model, layer_name="cells")(images, targets=targets, expand=False, normalize=False, batch_size=2)
    # One NumPy truth for all three passes: the backends agree with each other through it.
    np.testing.assert_allclose(raw, expected, rtol=1e-4, atol=1e-5 * expected.max())


@pytest.mark.multibackend
def test_layer_choice_errors_name_the_candidates():
    model, _ = _reference_model()
    with pytest.raises(UserError, match=r"'nope'.*accepted: conv, cells"):
        GradCAM(model, layer_name="nope")
    with pytest.raises(UserError, match="pre-softmax"):
        GradCAM(model, output_layer="scores")
    with pytest.raises(UserError, match="got 2 targets for 4 images"):
        GradCAM(model)(np.zeros((4, 8, 8, 3)), targets=[0, 1])
    with pytest.raises(UserError, match=r"class ids \[7\] out of range"):
        GradCAM(model)(np.zeros((1, 8, 8, 3)), targets=[7])


@pytest.mark.multibackend
def test_a_layer_inside_a_skip_connection_is_refused_with_a_suggestion():
    images = keras.Input((8, 8, 3), name="images")
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(images)
    y = keras.layers.Conv2D(4, 3, padding="same", name="inside")(x)
    x = keras.layers.Activation("relu", name="merged")(keras.layers.Add(name="add")([x, y]))
    logits = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(images, logits)
    with pytest.raises(UserError, match="skip connection.*'merged'"):
        GradCAM(model, layer_name="inside")
    assert GradCAM(model).layer_name == "merged"


def _fingerprint(model, images):
    return (
        keras.ops.convert_to_numpy(model(images, training=False)),
        model.get_config(),
        [keras.ops.convert_to_numpy(w) for w in model.weights],
    )


@pytest.mark.multibackend
def test_the_callers_model_is_left_unchanged(square_model):
    # Dim squares keep the logits small, so a softmax and a linear output would differ visibly.
    images = np.stack([_square_image(2.0), _square_image(1.0, corner=(8, 0))])
    before = _fingerprint(square_model, images)
    GradCAM(square_model)(images, targets=[0, 1])
    probabilities, config, weights = _fingerprint(square_model, images)
    np.testing.assert_array_equal(probabilities, before[0])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert 0.0 < probabilities.min() and probabilities.max() < 1.0, "still a softmax, not a linear output"
    assert config == before[1] and all(np.array_equal(a, b) for a, b in zip(weights, before[2]))
    assert isinstance(square_model.get_layer("probabilities"), Probabilities)
    assert square_model.get_layer("logits").activation is keras.activations.linear


def _fresh_classifier(arch, library):
    model = build_classifier(arch, 3, 64, class_names=["a", "b", "c"], backbone_library=library)
    # A fresh MobileNetV3 gives tiny raw maps; larger logit weights give them some structure.
    kernel = model.get_layer("logits").kernel
    kernel.assign(np.random.default_rng(0).normal(0, 10, kernel.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module", params=helpers.BACKBONE_LIBRARIES)
def classifier(request):
    return _fresh_classifier("mobilenet_v3_small", request.param)


# The default layer at 64 px of each KerasHub backbone (KerasCV's MobileNetV3 layers have generated names).
_HUB_DEFAULT_LAYERS = {"mobilenet_v3_small": "block_2_4", "mobilenet_v3_large": "block_3_5", "vgg16": "block5_conv3"}


@pytest.mark.multibackend
@pytest.mark.parametrize("library", helpers.BACKBONE_LIBRARIES)
@pytest.mark.parametrize("arch", sorted(_HUB_DEFAULT_LAYERS))
def test_the_default_layer_of_every_backbone_survives_a_keras_round_trip(arch, library, tmp_path):
    model = _fresh_classifier(arch, library)
    cam = GradCAM(model)
    # The last map of at least 4x4 (MIN_MAP_SIZE) at 64 px is at stride 16, the one before the last block.
    assert cam.map_size == (4, 4)
    if library == "keras_hub":
        assert cam.layer_name == _HUB_DEFAULT_LAYERS[arch]
    images = np.random.default_rng(4).uniform(0, 255, (6, 64, 64, 3)).astype(np.float32)
    targets = [0, 1, 2, 0, 1, 2]
    raw = cam(images, targets=targets, expand=False, normalize=False)
    assert raw.shape == (6, 4, 4) and np.isfinite(raw).all() and raw.max() > 0
    model.save(tmp_path / "m.keras")
    loaded = GradCAM(keras.saving.load_model(tmp_path / "m.keras"))
    # KerasCV rebuilds its MobileNetV3 on load and numbers the unnamed layers afresh (multiply_102 became
    # multiply_138): the same layer under another name. KerasHub's names are kept.
    assert loaded.layer_name == cam.layer_name or (library == "keras_cv" and arch != "vgg16")
    reloaded = loaded(images, targets=targets, expand=False, normalize=False)
    np.testing.assert_allclose(reloaded, raw, rtol=1e-4, atol=1e-5 * raw.max())


@pytest.mark.tf_backend
def test_keras_ops_raw_maps_agree_with_tf_keras_vis_gradcam(classifier, square_model):
    from keras_morsa.explain.tfkv import TfKerasVisCAM

    images = np.random.default_rng(2).uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    before = _fingerprint(classifier, images)
    ours = GradCAM(classifier)(images, targets=[0, 1, 2], expand=False, normalize=False)
    theirs = TfKerasVisCAM(classifier, "gradcam")(images, targets=[0, 1, 2], expand=False, normalize=False)
    # Raw maps of a fresh MobileNetV3 are ~1e-8: compare relative to their scale, and require structure.
    assert ours.max() > 0 and np.count_nonzero(ours) >= 3
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * ours.max())
    model, _ = _reference_model()
    small = np.random.default_rng(3).uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)
    ours_small = GradCAM(model, "cells")(small, targets=[2, 1, 0, 2], expand=False, normalize=False)
    theirs_small = TfKerasVisCAM(model, layer_name="cells")(small, [2, 1, 0, 2], expand=False, normalize=False)
    assert ours_small.max() > 0.01
    np.testing.assert_allclose(ours_small, theirs_small, rtol=1e-4, atol=1e-4 * ours_small.max())
    square_images = np.stack([_square_image(), _square_image(90.0, corner=(4, 8))])
    np.testing.assert_allclose(
        GradCAM(square_model)(square_images, targets=0),
        TfKerasVisCAM(square_model)(square_images, targets=0),
        atol=1e-4,
    )
    assert ours.shape == (3, 4, 4), "MobileNetV3-Small's last map of at least 4x4 at 64 px (the default)"
    probabilities, config, weights = _fingerprint(classifier, images)
    np.testing.assert_array_equal(probabilities, before[0])
    assert config == before[1] and all(np.array_equal(a, b) for a, b in zip(weights, before[2]))


@pytest.mark.tf_backend
@pytest.mark.parametrize("method", ["gradcam++", "scorecam"])
def test_other_tf_keras_vis_methods_find_the_square(square_model, method):
    from keras_morsa.explain.tfkv import TfKerasVisCAM

    # A dim square: Grad-CAM++ takes exp(logit), which overflows float32 above ~88 (NaN maps).
    maps = TfKerasVisCAM(square_model, method)(np.stack([_square_image(24.0)]), targets=None)
    assert maps.shape == (1, 16, 16) and maps.max() == pytest.approx(1.0, abs=1e-5)
    assert maps[0, :6, :6].min() > 0.9 and maps[0, 9:, :].max() < 1e-6


@pytest.mark.multibackend
def test_tf_keras_vis_is_refused_off_tensorflow_and_for_unknown_methods(square_model):
    from keras_morsa.explain.tfkv import TfKerasVisCAM

    if keras.backend.backend() != "tensorflow":
        with pytest.raises(UserError, match="tensorflow only.*GradCAM"):
            TfKerasVisCAM(square_model)
    else:
        with pytest.raises(UserError, match="accepted: gradcam, gradcam\\+\\+, scorecam"):
            TfKerasVisCAM(square_model, method="lime")
        with pytest.raises(UserError, match="got 1 targets for 2 images"):
            TfKerasVisCAM(square_model)(np.zeros((2, 16, 16, 3)), targets=[0])


def _patch_images(count, rng):
    """32-px grey-noise images with an 8x8 patch at a random place, red, green or blue for classes 0, 1, 2.

    Returns images (float 0..255), labels and the patch masks: only the patch tells the classes apart.
    """
    images = np.repeat(rng.uniform(40, 200, (count, 32, 32, 1)), 3, axis=-1).astype("float32")
    labels = np.arange(count) % 3
    masks = np.zeros((count, 32, 32), bool)
    for i, label in enumerate(labels):
        y, x = rng.integers(0, 25, 2)
        images[i, y : y + 8, x : x + 8] = np.roll((230, 30, 30), label)
        masks[i, y : y + 8, x : x + 8] = True
    return images, labels, masks


@pytest.mark.multibackend
def test_the_default_layer_finds_the_patch_that_decides_the_class():
    # A known answer: only the patch's colour decides the class, so a usable map points at the patch.
    from keras_morsa.explain import metrics
    from keras_morsa.models.classifier import last_spatial_layer, map_size

    keras.utils.set_random_seed(0)
    images = keras.Input((32, 32, 3), name="images")
    x = keras.layers.Rescaling(1 / 255.0)(images)
    for i, filters in enumerate((8, 16, 16)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool{i}")(x)  # 16, 8, then 4 cells a side
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.MaxPooling2D(name="pool3")(x)  # 2x2: too coarse for the default
    logits = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(images, Probabilities(["red", "green", "blue"], name="probabilities")(logits))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train, labels, _ = _patch_images(256, np.random.default_rng(0))
    model.fit(train, labels, epochs=8, batch_size=32, verbose=0)

    layer = last_spatial_layer(model)
    assert layer == "conv3" and map_size(model.get_layer(layer)) == (4, 4)
    assert last_spatial_layer(model, min_map_size=2) == "pool3"
    test, test_labels, masks = _patch_images(40, np.random.default_rng(1))
    predicted = np.argmax(keras.ops.convert_to_numpy(model(test)), axis=-1)
    assert (predicted == test_labels).mean() >= 0.9
    # Chance is the patch's share of the image, 1/16. Measured on TF: 8x8 map 1.0, the default 4x4 map 0.5,
    # the 2x2 map (the last map larger than 1x1, the old default) 0.0.
    pointing = {
        name: metrics.pointing_game(GradCAM(model, layer_name=name)(test, targets=test_labels), masks).mean()
        for name in (None, "pool3")
    }
    assert pointing[None] >= 0.3 and pointing["pool3"] <= pointing[None] - 0.2, pointing
    with pytest.raises(UserError, match=r"spatial map of at least 64x64 \(largest: 32x32\)"):
        last_spatial_layer(model, min_map_size=64)
