"""Classifier construction, saving, weights loading, flat view and BatchNorm helpers, on the backbones of
every library (KerasCV, KerasHub; ``helpers.BACKBONE_LIBRARIES``)."""

import sys

import keras
import numpy as np
import pytest

from keras_morsa.errors import UserError
from keras_morsa.models.backbones import build_backbone
from keras_morsa.models.classifier import (
    build_classifier,
    class_names_of,
    flat_view,
    last_spatial_layer,
    reestimate_bn_statistics,
    set_bn_momentum,
)

import helpers

NAMES = ["jaw", "nut", "pin"]


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module", params=helpers.BACKBONE_LIBRARIES)
def library(request):
    return request.param


@pytest.fixture(scope="module")
def small(library):
    return build_classifier("mobilenet_v3_small", 3, 32, bn_momentum=0.8, class_names=NAMES, backbone_library=library)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")


@pytest.mark.multibackend
def test_structure_names_and_bn_momentum(small, images):
    assert [layer.name for layer in small.layers] == [
        "images",
        "backbone",
        "pool",
        "dropout",
        "logits",
        "probabilities",
    ]
    assert class_names_of(small) == NAMES
    probabilities = _numpy(small(images))
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # KerasHub's BatchNorm layers sit inside its block layers: every one is found and set.
    norms = [layer for layer in small._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 34 and {layer.momentum for layer in norms} == {0.8}


@pytest.mark.multibackend
def test_keras_round_trip_keeps_outputs_and_labels(small, images, tmp_path):
    small.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(_numpy(loaded(images)), _numpy(small(images)))
    assert class_names_of(loaded) == NAMES


@pytest.mark.multibackend
def test_flat_view_shares_weights_and_outputs(small, images):
    flat = flat_view(small)
    assert {id(v) for v in flat.weights} == {id(v) for v in small.weights}
    np.testing.assert_allclose(_numpy(flat(images)), _numpy(small(images)), atol=1e-6)
    name = last_spatial_layer(small)
    assert flat.get_layer(name) is small.get_layer("backbone").get_layer(name)
    # At 32 px the last map larger than 1x1 sits before a stride-2 block's ZeroPadding2D: never pick the pad.
    assert not isinstance(flat.get_layer(name), keras.layers.ZeroPadding2D)
    assert flat.get_layer(name).output.shape[1] > 1


@pytest.mark.multibackend
def test_weights_file_reproduces_outputs_and_errors(small, library, images, tmp_path):
    small.save_weights(tmp_path / "all.weights.h5")
    same = build_classifier("mobilenet_v3_small", 3, 32, weights=tmp_path / "all.weights.h5", backbone_library=library)
    np.testing.assert_array_equal(_numpy(same(images)), _numpy(small(images)))
    # A backbone-only file (the pretrained use case) loads into the backbone of a different head.
    small.get_layer("backbone").save_weights(tmp_path / "backbone.weights.h5")
    other = build_classifier(
        "mobilenet_v3_small", 5, 32, weights=tmp_path / "backbone.weights.h5", backbone_library=library
    )
    np.testing.assert_array_equal(
        _numpy(other.get_layer("backbone")(images)), _numpy(small.get_layer("backbone")(images))
    )
    with pytest.raises(UserError, match="does not exist"):
        build_classifier("mobilenet_v3_small", 3, 32, weights=tmp_path / "missing.weights.h5")
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="unsupported name"):
        build_classifier("mobilenet_v3_small", 3, 32, weights=tmp_path / "w.bin")


def test_bad_arguments_name_the_value(monkeypatch):
    with pytest.raises(UserError, match="resnet"):
        build_backbone("resnet", 64)
    with pytest.raises(UserError, match="image_size=16"):
        build_backbone("vgg16", 16)
    with pytest.raises(UserError, match="class_names has 2"):
        build_classifier("mobilenet_v3_small", 3, 32, class_names=["a", "b"])
    with pytest.raises(UserError, match=r"backbone_library='timm'; accepted: keras_cv, keras_hub"):
        build_classifier("vgg16", 3, 32, backbone_library="timm")
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # as if keras-hub were not installed
    with pytest.raises(UserError, match=r'needs the keras-hub package.*pip install -e "\.\[hub\]"'):
        build_backbone("vgg16", 32, library="keras_hub")


@pytest.mark.multibackend
def test_he_normal_conv_init_redraws_every_convolution_kernel_from_the_seed():
    def kernels(conv_init, seed):
        keras.utils.set_random_seed(seed)
        model = build_classifier("mobilenet_v3_small", 3, 32, conv_init=conv_init)
        layers = model.get_layer("backbone")._flatten_layers()
        return [_numpy(layer.kernel) for layer in layers if isinstance(layer, keras.layers.Conv2D)]

    he, again, default = kernels("he_normal", 0), kernels("he_normal", 0), kernels("default", 0)
    assert len(he) > 10 and [k.shape for k in he] == [k.shape for k in default]
    for index, kernel in enumerate(he):
        np.testing.assert_array_equal(kernel, again[index])  # seeded: the same draw again
        fan_in = np.prod(kernel.shape[:-1])
        # He-normal: truncated normal with std sqrt(2 / fan_in) (Glorot's is sqrt(2 / (fan_in + fan_out))).
        assert kernel.std() == pytest.approx(np.sqrt(2.0 / fan_in), rel=0.25 if kernel.size > 400 else 0.6), index
        assert not np.array_equal(kernel, default[index])
    with pytest.raises(UserError, match="conv_init='orthogonal'; accepted: default, he_normal"):
        build_classifier("mobilenet_v3_small", 3, 32, conv_init="orthogonal")


@pytest.mark.parametrize("library", helpers.BACKBONE_LIBRARIES)
def test_paper_tables_give_the_same_parameter_counts_in_both_libraries(library):
    # KerasCV 0.9.0's own preset arguments (same tables) build these counts; its hub metadata says
    # 933,502 and 2,994,518, which no argument set in its source reproduces. KerasHub 0.32.0's preset
    # metadata lists these very counts for its mobilenet_v3_{small,large}_100 presets.
    small = build_backbone("mobilenet_v3_small", 32, library=library)
    large = build_backbone("mobilenet_v3_large", 32, library=library)
    assert (small.count_params(), large.count_params()) == (939_120, 2_996_352)
    assert small.name == large.name == "backbone"
    assert (tuple(small.output.shape), tuple(large.output.shape)) == ((None, 1, 1, 576), (None, 1, 1, 960))


@pytest.mark.parametrize("library", helpers.BACKBONE_LIBRARIES)
def test_vgg16_classifier(library, images, tmp_path):
    model = build_classifier("vgg16", 3, 32, class_names=NAMES, backbone_library=library)
    assert model.get_layer("backbone").count_params() == 14_714_688
    assert set_bn_momentum(model, 0.9) == 0
    # At 32 px block5_conv3's map is 2x2, so the last one of at least 4x4 (the default) is block4_conv3's.
    assert last_spatial_layer(model) == "block4_conv3"
    assert last_spatial_layer(model, min_map_size=2) == "block5_conv3"
    model.save(tmp_path / "vgg.keras")
    loaded = keras.saving.load_model(tmp_path / "vgg.keras")
    np.testing.assert_array_equal(_numpy(loaded(images)), _numpy(model(images)))


@pytest.mark.multibackend
def test_reestimate_bn_statistics_averages_batch_statistics():
    inputs = keras.Input((4,))
    norm = keras.layers.BatchNormalization(momentum=0.999)
    model = keras.Model(inputs, keras.layers.Dense(2)(norm(inputs)))
    rng = np.random.default_rng(1)
    batches = [rng.normal(loc=3.0 * k, scale=1.0 + k, size=(8, 4)).astype("float32") for k in range(3)]
    used = reestimate_bn_statistics(model, [(b, np.zeros(8)) for b in batches], steps=5)
    assert used == 3
    np.testing.assert_allclose(_numpy(norm.moving_mean), np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-5)
    np.testing.assert_allclose(
        _numpy(norm.moving_variance), np.mean([b.var(axis=0) for b in batches], axis=0), rtol=1e-4
    )
    assert norm.momentum == 0.999
    with pytest.raises(UserError, match="steps=0"):
        reestimate_bn_statistics(model, batches, steps=0)
