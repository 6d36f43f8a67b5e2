"""Image classifiers on the backbones of :mod:`keras_morsa.models.backbones`, and the helpers later stages use.

The classifier is one functional graph::

    Input("images", [S, S, 3] float 0..255) -> backbone (nested sub-model "backbone")
      -> GlobalAveragePooling2D("pool") -> Dropout("dropout") -> Dense("logits") -> Probabilities("probabilities")

The backbone stays nested because a flat KerasCV MobileNetV3 graph does not reload from ``.keras`` (its
``HardSigmoidActivation`` rejects the ``name`` keyword on deserialisation); nested, every architecture
round-trips with identical outputs. Tools that need one flat graph (tf-keras-vis Grad-CAM) get
:func:`flat_view`, which reuses the same layers in memory; save the classifier, not its flat view.

BatchNorm: KerasCV's MobileNetV3 uses momentum 0.999, so from scratch its moving statistics trail the weights
by ~1000 steps and inference-mode predictions can collapse to one class. :func:`build_classifier` sets the
momentum (``bn_momentum``) and :func:`reestimate_bn_statistics` recomputes the statistics on training images.
"""

import warnings
from pathlib import Path

import keras
import numpy as np

from keras_morsa.errors import UserError
from keras_morsa.models.backbones import build_backbone
from keras_morsa.models.probabilities import Probabilities

#: Kernel initialisations :func:`build_classifier` accepts (``conv_init``).
CONV_INITS = ("default", "he_normal")


def build_classifier(
    arch,
    num_classes,
    image_size,
    dropout=0.2,
    bn_momentum=0.9,
    weights=None,
    class_names=None,
    backbone_library="keras_cv",
    conv_init="default",
):
    """Builds a classifier: backbone, global average pooling, dropout, ``logits`` and ``probabilities``.

    Args:
        arch: backbone architecture, one of ``keras_morsa.models.backbones.ARCHITECTURES``.
        num_classes: number of classes (>= 2).
        image_size: side of the square input images in pixels (>= 32).
        dropout: dropout rate before the ``logits`` layer.
        bn_momentum: momentum given to every BatchNormalization layer of the backbone. 0.9 suits training
            from scratch; ``None`` keeps the library's own (KerasCV 0.999, for fine-tuning pretrained weights;
            KerasHub 0.9). Only affects training; note a reloaded ``.keras`` backbone is rebuilt by its library
            with the library's momentum: call :func:`set_bn_momentum` again before training a reloaded model
            further.
        weights: optional path of a local weights file (``.weights.h5`` or ``.keras``) saved from a
            classifier of the same shape, or from a backbone of the same architecture (then only the backbone
            is loaded; the head stays fresh). Nothing is ever downloaded.
        class_names: optional list of ``num_classes`` label names stored in the ``probabilities`` layer's
            config (default ``class_0``, ``class_1``, ...).
        backbone_library: ``"keras_cv"`` or ``"keras_hub"`` (``keras_morsa.models.backbones.LIBRARIES``): which
            library builds the backbone; both give the same contract and parameter counts.
        conv_init: "default" keeps the backbone library's kernel initialiser; "he_normal" redraws every
            convolution kernel of the backbone He-normal (from the global seed; what VGG16 needs to learn
            from scratch, :mod:`keras_morsa.training.recipes`). Loaded ``weights`` replace either.

    Returns:
        A functional ``keras.Model`` taking float images in [0, 255] and returning class probabilities.

    Example:
        >>> model = build_classifier("mobilenet_v3_small", 3, 64, class_names=["a", "b", "c"])
        >>> model.output.shape, class_names_of(model)
        ((None, 3), ['a', 'b', 'c'])
    """
    num_classes = int(num_classes)
    if num_classes < 2:
        raise UserError(f"num_classes={num_classes}; a classifier needs at least 2 classes")
    if not 0.0 <= float(dropout) < 1.0:
        raise UserError(f"dropout={dropout}; accepted: a rate in [0, 1)")
    if class_names is None:
        class_names = [f"class_{i}" for i in range(num_classes)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != num_classes:
        raise UserError(f"class_names has {len(class_names)} names; expected num_classes={num_classes}")
    if conv_init not in CONV_INITS:
        raise UserError(f"conv_init={conv_init!r}; accepted: {', '.join(CONV_INITS)}")

    backbone = build_backbone(arch, image_size, library=backbone_library)
    if conv_init == "he_normal":
        for layer in backbone._flatten_layers():
            if isinstance(layer, keras.layers.Conv2D):
                layer.kernel.assign(keras.initializers.HeNormal()(layer.kernel.shape))
    if bn_momentum is not None:
        set_bn_momentum(backbone, bn_momentum)
    images = keras.Input(shape=(int(image_size), int(image_size), 3), name="images")
    x = backbone(images)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(float(dropout), name="dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    probabilities = Probabilities(class_names, name="probabilities")(logits)
    model = keras.Model(images, probabilities, name=f"{arch}_classifier")
    if weights is not None:
        _load_weights(model, weights)
    return model


def _load_weights(model, path):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {str(path)!r} does not exist; pass a local .weights.h5 or .keras file")
    if not (path.name.endswith(".weights.h5") or path.suffix == ".keras"):
        raise UserError(f"weights file {str(path)!r} has an unsupported name; accepted: *.weights.h5, *.keras")
    try:
        # A backbone-only file fails this first attempt after one warning per layer; keep the log readable.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_weights(path)
        return
    except ValueError:
        pass
    # Not a whole classifier of this shape: a pretrained backbone file is the other accepted content.
    try:
        model.get_layer("backbone").load_weights(path)
    except ValueError as error:
        raise UserError(f"weights file {str(path)!r} fits neither this classifier nor its backbone ({error})") from None


def set_bn_momentum(model, momentum):
    """Sets ``momentum`` on every BatchNormalization layer inside ``model`` (nested models included).

    Returns the number of layers changed (0 for VGG16, which has no BatchNorm).
    """
    if not 0.0 <= float(momentum) < 1.0:
        raise UserError(f"bn_momentum={momentum}; accepted: a float in [0, 1)")
    layers = _batch_norm_layers(model)
    for layer in layers:
        layer.momentum = float(momentum)
    return len(layers)


def _batch_norm_layers(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]


def reestimate_bn_statistics(model, dataset, steps):
    """Recomputes every BatchNorm layer's moving mean and variance as the average over ``steps`` batches.

    The training-mode forward passes see the images as training saw them; each BatchNorm layer's moving
    statistics become the plain mean of its per-batch statistics (the momentum is set to k / (k + 1) on
    batch k, then restored). Weights are untouched. Runs eagerly on any backend; ``dataset`` is any
    iterable of ``images`` or ``(images, labels, ...)`` batches (a ``tf.data.Dataset`` included).

    Args:
        model: a model containing BatchNormalization layers (a model without any is returned unchanged).
        dataset: batches of float images in the model's input range.
        steps: number of batches to average over (>= 1).

    Returns:
        The number of batches used (fewer than ``steps`` if the dataset ran out).
    """
    steps = int(steps)
    if steps < 1:
        raise UserError(f"steps={steps}; re-estimating BatchNorm statistics needs at least 1 batch")
    layers = _batch_norm_layers(model)
    if not layers:
        return 0
    saved = [layer.momentum for layer in layers]
    used = 0
    try:
        iterator = dataset.as_numpy_iterator() if hasattr(dataset, "as_numpy_iterator") else iter(dataset)
        for batch in iterator:
            if used == steps:
                break
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            for layer in layers:
                layer.momentum = used / (used + 1.0)
            model(keras.ops.convert_to_tensor(np.asarray(images, dtype="float32")), training=True)
            used += 1
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return used


def class_names_of(model):
    """The label names stored in a classifier's ``probabilities`` layer, in class-index order."""
    try:
        layer = model.get_layer("probabilities")
    except ValueError:
        raise UserError(
            f"model {model.name!r} has no 'probabilities' layer; expected a classifier from build_classifier"
        ) from None
    return list(layer.class_names)


def flat_view(classifier):
    """The classifier as one flat graph over the same layer objects (no weight copy), for tf-keras-vis.

    The view starts at the backbone's own input and re-applies the classifier's head (every layer after
    ``backbone``, in order) to the backbone's output, so its predictions equal the classifier's and training
    either one trains both. Use it in memory; save the classifier itself.
    """
    backbone = classifier.get_layer("backbone")
    head = classifier.layers[classifier.layers.index(backbone) + 1 :]
    x = backbone.output
    for layer in head:
        x = layer(x)
    return keras.Model(backbone.input, x, name=f"{classifier.name}_flat")


#: The smallest map side Grad-CAM's default layer may have. Upsampled, a 2x2 map puts its maximum in a corner
#: whatever the image (MobileNetV3-Small's last map larger than 1x1 at 64 px: the pointing game read 0 % for
#: every group of the README run; its 4x4 layer gave 17-28 %). On a known answer (a tiny CNN whose class is
#: a patch's colour, tests/explain/test_gradcam.py) the pointing game was 0.0 at 2x2, 0.5 at 4x4 and 1.0 at
#: 8x8; 4x4 is the default because it is the deepest map every supported backbone has at the study's 64 px.
MIN_MAP_SIZE = 4


def map_size(layer):
    """``(height, width)`` of ``layer``'s output when it is a 4-D spatial map, else ``None`` (also for a
    layer called in several graphs, which has no single output)."""
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return None
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])


def nested_backbone(model):
    """The nested ``backbone`` sub-model of a classifier from :func:`build_classifier`, else ``None``."""
    try:
        backbone = model.get_layer("backbone")
    except ValueError:
        return None
    return backbone if isinstance(backbone, keras.Model) else None


def spatial_layers(model, min_map_size=2):
    """The layers whose output is a spatial map at least ``min_map_size`` a side (:func:`map_size`), in order.

    This is the one test of "a layer Grad-CAM can explain": input layers are left out, and for a classifier
    with a nested backbone the search runs inside it, so every name is a layer of the backbone and of
    :func:`flat_view`. The default (2) takes every map larger than 1x1.
    """
    search = nested_backbone(model) or model
    return [
        layer
        for layer in search.layers
        if not isinstance(layer, keras.layers.InputLayer) and min(map_size(layer) or (0,)) >= min_map_size
    ]


def last_spatial_layer(model, min_map_size=MIN_MAP_SIZE):
    """Name of the last layer whose output is a spatial map at least ``min_map_size`` a side (Grad-CAM's target).

    For a classifier from :func:`build_classifier` the search runs inside its backbone, so the name is a
    layer of ``model.get_layer("backbone")`` and of :func:`flat_view` (e.g. ``block5_conv3`` for VGG16 at 64
    px). Padding layers are skipped: their map is shifted against the image by the padding, so a heatmap of
    it would be offset.

    Raises:
        UserError: no layer's map is that large (the message names the largest map found).
    """
    candidates = [
        layer for layer in spatial_layers(model, min_map_size=1) if not isinstance(layer, keras.layers.ZeroPadding2D)
    ]
    large = [layer for layer in candidates if min(map_size(layer)) >= min_map_size]
    if not large:
        largest = max((min(map_size(layer)) for layer in candidates), default=0)
        raise UserError(
            f"model {model.name!r} has no layer with a spatial map of at least {min_map_size}x"
            f"{min_map_size} (largest: {largest}x{largest}); lower min_map_size or name a layer"
        )
    return large[-1].name
