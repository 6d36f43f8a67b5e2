"""Convolutional backbones for the classifiers: the one place in keras-morsa that knows KerasCV and KerasHub.

Two libraries (:data:`LIBRARIES`) build each architecture: KerasCV (the default) and KerasHub (the optional
``keras-hub`` package, ``pip install -e ".[hub]"``). The preset constructors of both (``from_preset``, KerasCV's
``MobileNetV3SmallBackbone``) fetch their configuration from a model hub and fail offline, so the backbones
here are built from explicit architecture arguments: the MobileNetV3 stacks are Tables 1 (Large) and 2
(Small) of Howard et al., "Searching for MobileNetV3" (arXiv 1905.02244); VGG16 is the fixed 13-convolution
stack. Nothing else in the package names a backbone class.

Every backbone takes float images in [0, 255] (it rescales internally), returns the last spatial feature
map (no pooling, no top) and is named ``"backbone"`` so that a classifier can nest it as one layer.

The two libraries' MobileNetV3 from the same table have the same parameter counts (939,120 Small,
2,996,352 Large; VGG16 14,714,688 in both; ``tests/models/test_classifier.py``) but are not the same
network to the last detail. As built here, both follow the tables except the paper's SE on Small's last
1x1 convolution (neither library has it), and both end with a 1x1 convolution of 6 x the last block's
channels (576, 960). KerasHub differs from KerasCV in: BatchNorm epsilon 1e-5 and momentum 0.9 (KerasCV
1e-3 and 0.999); symmetric zero padding before every strided convolution (KerasCV pads "same", one pixel
less on the top and left); and whole bottleneck blocks are single layers (``block_1_0`` ...), so Grad-CAM's
candidate layers are block outputs, not the convolutions inside them. One KerasHub name is unstable: its
first block (``DepthwiseConvBlock``) appends ``_0`` to its name on every construction, so it is
``block_0_0_0`` here and gains ``_0`` at each ``.keras`` reload (an early, large map, never Grad-CAM's
default); every other name survives a reload. In both, the first bottleneck has no
expansion convolution (both tables expand 16 -> 16 there).
"""

import keras
import keras_cv

from keras_morsa.errors import UserError

ARCHITECTURES = ("vgg16", "mobilenet_v3_small", "mobilenet_v3_large")
#: The libraries a backbone can come from: ``"keras_cv"`` (the default) or ``"keras_hub"`` (optional package).
LIBRARIES = ("keras_cv", "keras_hub")

_RE, _HS = "relu", "hard_swish"
# The squeeze-and-excite ratio of the blocks the tables mark SE (both libraries take it as se_ratio).
_SE = 0.25

# One entry per bottleneck block: (expansion size, output channels, depthwise kernel, stride, SE ratio (_SE, or
# None for no SE), activation).
# The expansion ratio KerasCV wants is expansion size / input channels of the block.
_MOBILENET_V3_SMALL = (
    (16, 16, 3, 2, _SE, _RE),
    (72, 24, 3, 2, None, _RE),
    (88, 24, 3, 1, None, _RE),
    (96, 40, 5, 2, _SE, _HS),
    (240, 40, 5, 1, _SE, _HS),
    (240, 40, 5, 1, _SE, _HS),
    (120, 48, 5, 1, _SE, _HS),
    (144, 48, 5, 1, _SE, _HS),
    (288, 96, 5, 2, _SE, _HS),
    (576, 96, 5, 1, _SE, _HS),
    (576, 96, 5, 1, _SE, _HS),
)
_MOBILENET_V3_LARGE = (
    (16, 16, 3, 1, None, _RE),
    (64, 24, 3, 2, None, _RE),
    (72, 24, 3, 1, None, _RE),
    (72, 40, 5, 2, _SE, _RE),
    (120, 40, 5, 1, _SE, _RE),
    (120, 40, 5, 1, _SE, _RE),
    (240, 80, 3, 2, None, _HS),
    (200, 80, 3, 1, None, _HS),
    (184, 80, 3, 1, None, _HS),
    (184, 80, 3, 1, None, _HS),
    (480, 112, 3, 1, _SE, _HS),
    (672, 112, 3, 1, _SE, _HS),
    (672, 160, 5, 2, _SE, _HS),
    (960, 160, 5, 1, _SE, _HS),
    (960, 160, 5, 1, _SE, _HS),
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
        "stackwise_se_ratio": [row[4] for row in table],
        "stackwise_activation": [row[5] for row in table],
    }


def keras_hub_mobilenet_v3_arguments(table):
    """Turns a paper table into KerasHub ``MobileNetBackbone`` keyword arguments (image shape aside).

    KerasHub builds the first bottleneck as its ``DepthwiseConvBlock`` (no expansion: 16 -> 16 channels in
    both tables, with the stride, SE and residual connection of the table's first row) and the rest as
    stages of ``InvertedResidualBlock`` with absolute expansion sizes. A stage starts at every stride-2 row,
    so layer names say the resolution (``block_<stage>_<index>``); padding is half the kernel (symmetric).
    """
    first, rows = table[0], table[1:]
    stages = []
    for row in rows:
        if row[3] == 2 or not stages:
            stages.append([])
        stages[-1].append(row)

    def per_stage(value):
        return [[value(row) for row in stage] for stage in stages]

    return {
        "stackwise_expansion": per_stage(lambda row: row[0]),
        "stackwise_num_blocks": [len(stage) for stage in stages],
        "stackwise_num_filters": per_stage(lambda row: row[1]),
        "stackwise_kernel_size": per_stage(lambda row: row[2]),
        "stackwise_num_strides": per_stage(lambda row: row[3]),
        "stackwise_se_ratio": per_stage(lambda row: row[4]),
        "stackwise_activation": per_stage(lambda row: row[5]),
        "stackwise_padding": per_stage(lambda row: row[2] // 2),
        "input_num_filters": _MOBILENET_V3_STEM,
        "input_activation": _HS,
        "depthwise_filters": first[1],
        "depthwise_stride": first[3],
        "depthwise_residual": first[3] == 1 and first[1] == _MOBILENET_V3_STEM,
        "squeeze_and_excite": first[4],
        # KerasCV's last 1x1 convolution: 6 x the last block's channels.
        "last_layer_filter": 6 * table[-1][1],
        # The width of KerasHub's classifier-head convolution, which is not built here (the backbone ignores it).
        "output_num_filters": None,
    }


def check_library(library):
    """Raises ``UserError`` naming ``library`` and the accepted ones unless it is one of :data:`LIBRARIES`."""
    if library not in LIBRARIES:
        raise UserError(f"backbone_library={library!r}; accepted: {', '.join(LIBRARIES)}")


def _import_keras_hub():
    try:
        import keras_hub
    except ImportError as error:
        raise UserError(
            f"backbone_library='keras_hub' needs the keras-hub package, which does not import ({error}); "
            "install it with pip install -e \".[hub]\", or use backbone_library='keras_cv'"
        ) from None
    return keras_hub


def _keras_hub_backbone(arch, input_shape):
    """A KerasHub backbone behind a ``Rescaling(1/255)``, as one flat graph named ``"backbone"``.

    KerasHub's backbones do not rescale their inputs. Their layers (a chain: every layer feeds the next) are
    re-applied after the rescaling, so Grad-CAM sees them in the backbone itself, not one model deeper; the
    graph is then cloned, which gives every layer a single graph (the temporary KerasHub model's is dropped),
    as it will have after a ``.keras`` reload.
    """
    models = _import_keras_hub().models
    if arch == "vgg16":
        # VGG16: 13 convolutions in five blocks, each block ending in a 2x2 max pool (as KerasCV's).
        library_backbone = models.VGGBackbone(
            stackwise_num_repeats=[2, 2, 3, 3, 3],
            stackwise_num_filters=[64, 128, 256, 512, 512],
            image_shape=input_shape,
        )
    else:
        table = _MOBILENET_V3_SMALL if arch == "mobilenet_v3_small" else _MOBILENET_V3_LARGE
        library_backbone = models.MobileNetBackbone(**keras_hub_mobilenet_v3_arguments(table), image_shape=input_shape)
    images = keras.Input(input_shape, name="images")
    x = keras.layers.Rescaling(1 / 255, name="rescaling")(images)
    for layer in library_backbone.layers[1:]:
        x = layer(x)
    return keras.models.clone_model(keras.Model(images, x, name="backbone"))


def build_backbone(arch, image_size, library="keras_cv"):
    """Builds a randomly initialised backbone for ``arch`` on square RGB images of ``image_size`` pixels.

    Args:
        arch: one of :data:`ARCHITECTURES`.
        image_size: side of the input images in pixels (at least 32: every backbone downsamples by 32).
        library: where the layers come from, one of :data:`LIBRARIES`; ``"keras_hub"`` needs the optional
            keras-hub package (a ``UserError`` says how to install it).

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
    check_library(library)
    input_shape = (int(image_size), int(image_size), 3)
    if library == "keras_hub":
        return _keras_hub_backbone(arch, input_shape)
    if arch == "vgg16":
        return keras_cv.models.VGG16Backbone(
            include_rescaling=True, include_top=False, input_shape=input_shape, name="backbone"
        )
    table = _MOBILENET_V3_SMALL if arch == "mobilenet_v3_small" else _MOBILENET_V3_LARGE
    return keras_cv.models.MobileNetV3Backbone(
        **mobilenet_v3_arguments(table), include_rescaling=True, input_shape=input_shape, name="backbone"
    )
