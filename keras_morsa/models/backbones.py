"""Convolutional backbones for the classifiers: the one place in keras-morsa that knows KerasCV.

KerasCV's preset aliases (``MobileNetV3SmallBackbone``, ``from_preset``) fetch their configuration from a
model hub and fail offline, so the backbones here are built from explicit architecture arguments: the
MobileNetV3 stacks are Tables 1 (Large) and 2 (Small) of Howard et al., "Searching for MobileNetV3"
(arXiv 1905.02244); VGG16 is KerasCV's fixed 13-convolution stack. A KerasHub backbone plugs in by adding a
branch to :func:`build_backbone`; nothing else in the package names a backbone class.

Every backbone takes float images in [0, 255] (it rescales internally), returns the last spatial feature
map (no pooling, no top) and is named ``"backbone"`` so that a classifier can nest it as one layer.
"""

import keras_cv

from keras_morsa.errors import UserError

ARCHITECTURES = ("vgg16", "mobilenet_v3_small", "mobilenet_v3_large")

_RE, _HS = "relu", "hard_swish"

# One entry per bottleneck block: (expansion size, output channels, depthwise kernel, stride, SE, activation).
# The expansion ratio KerasCV wants is expansion size / input channels of the block.
_MOBILENET_V3_SMALL = (
    (16, 16, 3, 2, True, _RE),
    (72, 24, 3, 2, False, _RE),
    (88, 24, 3, 1, False, _RE),
    (96, 40, 5, 2, True, _HS),
    (240, 40, 5, 1, True, _HS),
    (240, 40, 5, 1, True, _HS),
    (120, 48, 5, 1, True, _HS),
    (144, 48, 5, 1, True, _HS),
    (288, 96, 5, 2, True, _HS),
    (576, 96, 5, 1, True, _HS),
    (576, 96, 5, 1, True, _HS),
)
_MOBILENET_V3_LARGE = (
    (16, 16, 3, 1, False, _RE),
    (64, 24, 3, 2, False, _RE),
    (72, 24, 3, 1, False, _RE),
    (72, 40, 5, 2, True, _RE),
    (120, 40, 5, 1, True, _RE),
    (120, 40, 5, 1, True, _RE),
    (240, 80, 3, 2, False, _HS),
    (200, 80, 3, 1, False, _HS),
    (184, 80, 3, 1, False, _HS),
    (184, 80, 3, 1, False, _HS),
    (480, 112, 3, 1, True, _HS),
    (672, 112, 3, 1, True, _HS),
    (672, 160, 5, 2, True, _HS),
    (960, 160, 5, 1, True, _HS),
    (960, 160, 5, 1, True, _HS),
)
# The stem convolution of both MobileNetV3 variants has 16 channels.
_MOBILENET_V3_STEM = 16


def mobilenet_v3_arguments(table):
    """Turns a paper table (rows as in ``_MOBILENET_V3_SMALL``) into ``MobileNetV3Backbone`` keyword arguments."""
    in_channels = [_MOBILENET_V3_STEM] + [row[1] for row in table[:-1]]
    return {
        "stackwise_expansion": [row[0] / c for row, c in zip(table, in_channels)],
        "stackwise_filters": [row[1] for row in table],
        "stackwise_kernel_size": [row[2] for row in table],
        "stackwise_stride": [row[3] for row in table],
        "stackwise_se_ratio": [0.25 if row[4] else None for row in table],
        "stackwise_activation": [row[5] for row in table],
    }


def build_backbone(arch, image_size):
    """Builds a randomly initialised backbone for ``arch`` on square RGB images of ``image_size`` pixels.

    Args:
        arch: one of :data:`ARCHITECTURES`.
        image_size: side of the input images in pixels (at least 32: every backbone downsamples by 32).

    Returns:
        A functional ``keras.Model`` named ``"backbone"``: float images in [0, 255], shape
        ``[B, image_size, image_size, 3]`` -> feature map ``[B, image_size // 32, image_size // 32, C]``
        (C = 512 for VGG16, 576 for MobileNetV3-Small, 960 for MobileNetV3-Large).

    Example:
        >>> build_backbone("mobilenet_v3_small", 64).output.shape
        (None, 2, 2, 576)
    """
    if arch not in ARCHITECTURES:
        raise UserError(f"unknown architecture {arch!r}; accepted: {', '.join(ARCHITECTURES)}")
    if int(image_size) < 32:
        raise UserError(f"image_size={image_size} is too small; backbones need at least 32 pixels")
    input_shape = (int(image_size), int(image_size), 3)
    if arch == "vgg16":
        return keras_cv.models.VGG16Backbone(
            include_rescaling=True, include_top=False, input_shape=input_shape, name="backbone"
        )
    table = _MOBILENET_V3_SMALL if arch == "mobilenet_v3_small" else _MOBILENET_V3_LARGE
    return keras_cv.models.MobileNetV3Backbone(
        **mobilenet_v3_arguments(table), include_rescaling=True, input_shape=input_shape, name="backbone"
    )
