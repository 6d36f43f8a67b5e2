"""Per-architecture training recipes for the classifiers of the ratio study (``config.recipes.<arch>``).

A recipe is what one architecture needs to learn from scratch in the study's step budget; every regime of a
study trains an architecture with the same recipe, so a regime never gets settings of its own. Keys:

    optimizer      "adam" or "sgd" (SGD with Nesterov momentum 0.9)
    learning_rate  the peak rate (after the warm-up)
    warmup_steps   linear warm-up from 0 over that many steps (0: none); then the study's lr_schedule
    clipnorm       clip each gradient to this L2 norm (0: no clipping)
    conv_init      "default" (the backbone library's initialiser) or "he_normal" (every convolution kernel
                   of the backbone redrawn He-normal: VGG16 has no BatchNorm, and with KerasCV's Glorot
                   kernels its 13 ReLU convolutions shrink the signal until the loss stays at ln(classes))

The measurements that chose each architecture's recipe are in the README ("Classifier recipes").
"""

import keras

from keras_morsa.errors import UserError
from keras_morsa.models.classifier import CONV_INITS

OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "cosine")
KEYS = ("optimizer", "learning_rate", "warmup_steps", "clipnorm", "conv_init")


def check_recipe(recipe, steps, where):
    """Raises a UserError naming ``where`` (e.g. ``config.recipes.vgg16``) unless ``recipe`` is valid."""
    keys = set(recipe)
    if keys != set(KEYS):
        raise UserError(
            f"{where} has keys {sorted(keys)}; expected exactly {', '.join(KEYS)} "
            f"(missing {sorted(set(KEYS) - keys)}, unknown {sorted(keys - set(KEYS))})"
        )
    if recipe["optimizer"] not in OPTIMIZERS:
        raise UserError(f"{where}.optimizer={recipe['optimizer']!r}; accepted: {', '.join(OPTIMIZERS)}")
    if recipe["conv_init"] not in CONV_INITS:
        raise UserError(f"{where}.conv_init={recipe['conv_init']!r}; accepted: {', '.join(CONV_INITS)}")
    if not float(recipe["learning_rate"]) > 0:
        raise UserError(f"{where}.learning_rate={recipe['learning_rate']}; expected a positive rate")
    if float(recipe["clipnorm"]) < 0:
        raise UserError(f"{where}.clipnorm={recipe['clipnorm']}; expected 0 (no clipping) or a positive norm")
    if not 0 <= int(recipe["warmup_steps"]) < int(steps):
        raise UserError(f"{where}.warmup_steps={recipe['warmup_steps']}; expected 0 to steps - 1 ({int(steps) - 1})")


def describe(recipe):
    """The recipe in words, e.g. ``Adam 0.0003, 40-step warm-up, clipnorm 1, He-normal kernels``."""
    parts = [f"{'Adam' if recipe['optimizer'] == 'adam' else 'SGD-Nesterov 0.9'} {float(recipe['learning_rate']):g}"]
    if int(recipe["warmup_steps"]):
        parts.append(f"{int(recipe['warmup_steps'])}-step warm-up")
    if float(recipe["clipnorm"]) > 0:
        parts.append(f"clipnorm {float(recipe['clipnorm']):g}")
    if recipe["conv_init"] == "he_normal":
        parts.append("He-normal kernels")
    return ", ".join(parts)


def build_optimizer(recipe, steps, lr_schedule):
    """The optimizer of ``recipe`` for a run of ``steps`` steps under ``lr_schedule`` (constant or cosine).

    The warm-up rises linearly from 0 to the recipe's rate; "cosine" then decays it to 0 at ``steps``,
    "constant" holds it (Keras's CosineDecay with ``alpha=1`` is constant after its warm-up).
    """
    if lr_schedule not in LR_SCHEDULES:
        raise UserError(f"lr_schedule={lr_schedule!r}; accepted: {', '.join(LR_SCHEDULES)}")
    rate, warmup = float(recipe["learning_rate"]), int(recipe["warmup_steps"])
    if warmup or lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else rate,
            decay_steps=int(steps) - warmup,
            alpha=1.0 if lr_schedule == "constant" else 0.0,
            warmup_target=rate if warmup else None,
            warmup_steps=warmup,
        )
    clip = dict(clipnorm=float(recipe["clipnorm"])) if float(recipe["clipnorm"]) > 0 else {}
    if recipe["optimizer"] == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, **clip)
    return keras.optimizers.Adam(rate, **clip)
