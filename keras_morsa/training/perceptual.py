"""A perceptual (LPIPS-like) image distance on a frozen VGG16, for FastGAN's reconstruction loss.

The FastGAN reference trains the discriminator's decoders with LPIPS-VGG, which needs pretrained weights. Here
the distance is the uncalibrated form of LPIPS (Zhang et al., arXiv 1801.03924, without its learned
per-channel weights): both images go through VGG16, and at each of five depths (the last convolution of
each block, after its ReLU) the feature vector of every position is scaled to unit length over the
channels; the squared Euclidean distance between the two unit vectors (in [0, 4]) is averaged over the
positions, summed over the depths, and averaged over the batch.

The VGG16 weights come only from a local file the user supplies (a ``.weights.h5`` of
``keras_morsa.models.backbones.build_backbone("vgg16", ...)``, i.e. KerasCV's ``VGG16Backbone``);
nothing is downloaded. The network is frozen and held outside Keras's tracking: it is not trained, and it
is not part of a model's ``variables`` or of a training checkpoint.
"""

import warnings
from pathlib import Path

import keras
from keras import ops

from keras_morsa.errors import UserError
from keras_morsa.models.backbones import build_backbone

#: The VGG16 layers whose (post-ReLU) outputs are compared: the last convolution of each block.
FEATURE_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")

# Keeps an all-zero feature vector (a dead ReLU position) at zero instead of 0/0, with a finite gradient.
_EPSILON = 1e-10


class PerceptualDistance:
    """Callable ``distance(images, targets) -> float32 scalar`` on images in [-1, 1] (see the module docstring).

    A plain Python object, not a Keras layer, on purpose: a ``keras.Model`` holding it as an attribute does
    not track the frozen VGG16, so the network stays out of ``model.variables`` and checkpoints.

    Args:
        weights: path of a local VGG16 weights file (``*.weights.h5``) saved from
            ``build_backbone("vgg16", size)`` (any ``size``: the convolutions do not depend on it).
        image_size: side of the square RGB images compared (at least 32).

    Raises:
        UserError: the file does not exist, has another suffix, or does not hold VGG16 weights.

    Example:
        backbone = build_backbone("vgg16", 32)
        backbone.save_weights("vgg16.weights.h5")   # in practice: pretrained weights you already have
        distance = PerceptualDistance("vgg16.weights.h5", image_size=128)
        loss = distance(reconstructions, targets)   # 0.0 when they are equal
    """

    def __init__(self, weights, image_size):
        path = Path(weights)
        if not path.name.endswith(".weights.h5") or not path.is_file():
            raise UserError(
                f"VGG16 weights {str(path)!r}: no such file; accepted: an existing local *.weights.h5 "
                "saved from build_backbone('vgg16', ...) (nothing is downloaded)"
            )
        backbone = build_backbone("vgg16", image_size)
        try:
            # A mismatching file fails after one warning per layer; the error below says it once.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                backbone.load_weights(path)
        except ValueError as error:
            raise UserError(f"VGG16 weights {str(path)!r} do not fit KerasCV's VGG16Backbone ({error})") from None
        self.weights = str(path)
        self.image_size = int(image_size)
        self.network = keras.Model(
            backbone.input, [backbone.get_layer(name).output for name in FEATURE_LAYERS], name="perceptual_vgg16"
        )
        self.network.trainable = False

    def __call__(self, images, targets):
        """The mean distance between ``images`` and ``targets`` ([B, S, S, 3] in [-1, 1]); float32 scalar."""
        # One pass over both; the backbone takes [0, 255] and rescales to [0, 1] itself.
        both = (ops.concatenate([ops.cast(images, "float32"), ops.cast(targets, "float32")], axis=0) + 1.0) * 127.5
        distance = 0.0
        for features in self.network(both, training=False):
            features = ops.cast(features, "float32")
            unit = features * ops.rsqrt(ops.sum(ops.square(features), axis=-1, keepdims=True) + _EPSILON)
            unit_images, unit_targets = ops.split(unit, 2, axis=0)
            distance = distance + ops.mean(ops.sum(ops.square(unit_images - unit_targets), axis=-1))
        return distance
