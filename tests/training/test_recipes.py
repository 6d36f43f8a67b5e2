"""Per-architecture classifier recipes: the optimizer, its schedule and clipping, and strict checking."""

import keras
import numpy as np
import pytest

from keras_morsa.errors import UserError
from keras_morsa.training import recipes

VGG = dict(optimizer="adam", learning_rate=3e-4, warmup_steps=40, clipnorm=1.0, conv_init="he_normal")


def _rates(optimizer, steps):
    schedule = optimizer._learning_rate
    return [float(keras.ops.convert_to_numpy(schedule(s))) if callable(schedule) else float(schedule) for s in steps]


@pytest.mark.multibackend
def test_warm_up_then_constant_or_cosine():
    constant = recipes.build_optimizer(VGG, 1000, "constant")
    assert isinstance(constant, keras.optimizers.Adam) and constant.clipnorm == 1.0
    np.testing.assert_allclose(_rates(constant, [0, 20, 40, 500, 1000]), [0, 1.5e-4, 3e-4, 3e-4, 3e-4], rtol=1e-5)
    cosine = recipes.build_optimizer(VGG, 1000, "cosine")
    # After the warm-up the cosine runs over the remaining 960 steps: half the rate at their middle, 0 at the end.
    np.testing.assert_allclose(_rates(cosine, [20, 40, 520, 1000]), [1.5e-4, 3e-4, 1.5e-4, 0], rtol=1e-5, atol=1e-9)


@pytest.mark.multibackend
def test_plain_recipe_is_a_constant_rate_without_clipping_and_sgd_is_nesterov():
    plain = dict(VGG, optimizer="sgd", learning_rate=0.01, warmup_steps=0, clipnorm=0.0, conv_init="default")
    sgd = recipes.build_optimizer(plain, 100, "constant")
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9 and sgd.clipnorm is None
    assert _rates(sgd, [0, 99]) == pytest.approx([0.01, 0.01])
    assert recipes.describe(plain) == "SGD-Nesterov 0.9 0.01"
    assert recipes.describe(VGG) == "Adam 0.0003, 40-step warm-up, clipnorm 1, He-normal kernels"


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(momentum=0.9), r"unknown \['momentum'\]"),
        (dict(optimizer="rmsprop"), "optimizer='rmsprop'; accepted: adam, sgd"),
        (dict(conv_init="glorot"), "conv_init='glorot'; accepted: default, he_normal"),
        (dict(learning_rate=0), "learning_rate=0; expected a positive rate"),
        (dict(clipnorm=-1), "clipnorm=-1"),
        (dict(warmup_steps=100), r"warmup_steps=100; expected 0 to steps - 1 \(99\)"),
    ],
)
def test_bad_recipes_name_the_key_and_what_is_accepted(change, match):
    with pytest.raises(UserError, match=match):
        recipes.check_recipe(dict(VGG, **change), 100, "config.recipes.vgg16")
    missing = {key: value for key, value in VGG.items() if key != "clipnorm"}
    with pytest.raises(UserError, match=r"config.recipes.vgg16 has keys .*missing \['clipnorm'\]"):
        recipes.check_recipe(missing, 100, "config.recipes.vgg16")
    with pytest.raises(UserError, match="lr_schedule='step'; accepted: constant, cosine"):
        recipes.build_optimizer(VGG, 100, "step")
