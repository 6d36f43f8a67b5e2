"""Grad-CAM written in ``keras.ops``: runs on TensorFlow, JAX and torch.

For a chosen class c and a layer with activation A [h, w, C]:

- the score is the class's *logit* (the ``logits`` layer, before the softmax; a softmax score saturates and
  mixes in the other classes);
- the gradient of the score with respect to A is taken on the running backend
  (:func:`keras_morsa.backend.value_and_grad`);
- the channel weights are the spatial means of that gradient, and the raw map is relu(sum_c w_c A_c);
- the raw map is upsampled to the image size with ``scipy.ndimage.zoom(order=1)`` and min-max normalised
  per image to [0, 1], exactly as tf-keras-vis does, so both give the same maps (checked to 1e-4 relative on
  the raw maps in ``tests/explain/test_gradcam.py``).

The explainer splits the model once, at construction, into a feature part (images -> A) and a head
(A -> logits) built over the same layer objects: the caller's model is never cloned, rewired or changed. A
classifier from :func:`keras_morsa.models.classifier.build_classifier` nests its backbone; it is explained
through :func:`~keras_morsa.models.classifier.flat_view`, so the layer may be any backbone layer.
"""

import keras
import numpy as np
from scipy import ndimage

from keras_morsa.backend import value_and_grad
from keras_morsa.errors import UserError
from keras_morsa.models.classifier import MIN_MAP_SIZE, flat_view, last_spatial_layer, nested_backbone, spatial_layers

#: The class activation map methods: "gradcam" is :class:`GradCAM` (keras.ops, every backend); all three are
#: also :class:`keras_morsa.explain.tfkv.TfKerasVisCAM` (tf-keras-vis, TensorFlow only).
METHODS = ("gradcam", "gradcam++", "scorecam")


def check_method(method):
    """Raises ``UserError`` naming ``method`` and the accepted ones unless it is one of :data:`METHODS`."""
    if method not in METHODS:
        raise UserError(f"method={method!r}; accepted: {', '.join(METHODS)}")


def explainable_graph(model):
    """The flat functional graph Grad-CAM works on: the flat view of a classifier with a nested backbone,
    otherwise ``model`` itself."""
    return flat_view(model) if nested_backbone(model) is not None else model


def _tensor_in_graph(graph, layer_name):
    """The output KerasTensor of the layer named ``layer_name`` inside ``graph`` (None if absent).

    Walks back from the graph's outputs, so a layer also called in another graph (the head layers that
    :func:`flat_view` re-applies) yields the tensor of *this* graph.
    """
    stack, seen = list(graph.outputs), set()
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        operation, node_index, _ = tensor._keras_history
        if operation.name == layer_name:
            return tensor
        stack.extend(operation._inbound_nodes[node_index].input_tensors)
    return None


def resolve_layer(model, layer_name=None, min_map_size=MIN_MAP_SIZE):
    """The Grad-CAM layer name: ``layer_name`` checked against the candidates, or the last layer whose map is
    at least ``min_map_size`` a side (:func:`~keras_morsa.models.classifier.last_spatial_layer`).

    Raises:
        UserError: if ``layer_name`` is not a layer of the model with a spatial map larger than 1x1; the
            message lists the accepted names.
    """
    if layer_name is None:
        return last_spatial_layer(model, min_map_size)
    candidates = [layer.name for layer in spatial_layers(model)]
    if layer_name not in candidates:
        shown = ", ".join(candidates[-12:])
        more = f" (last 12 of {len(candidates)})" if len(candidates) > 12 else ""
        raise UserError(
            f"layer {layer_name!r} is not a layer with a spatial map > 1x1 in {model.name!r}; accepted{more}: {shown}"
        )
    return layer_name


def _output_tensor(model, graph, output_layer):
    outputs = _tensor_in_graph(graph, output_layer)
    if outputs is None:
        raise UserError(
            f"model {model.name!r} has no layer {output_layer!r}; pass output_layer= naming its pre-softmax "
            "(linear) layer"
        )
    return outputs


def logits_model(model, output_layer="logits"):
    """A new flat model over the same layers from the images to ``output_layer`` (the logits)."""
    graph = explainable_graph(model)
    return keras.Model(graph.input, _output_tensor(model, graph, output_layer), name=f"{model.name}_logits")


def split_at(model, layer_name, output_layer="logits"):
    """Splits ``model`` at ``layer_name``: ``(features, head)`` over the same layer objects.

    ``features`` maps images to the layer's activation, ``head`` maps that activation to the
    ``output_layer`` tensor.
    """
    graph = explainable_graph(model)
    activation = _tensor_in_graph(graph, layer_name)
    outputs = _output_tensor(model, graph, output_layer)
    if activation is None:
        raise UserError(f"layer {layer_name!r} is not on the path to {output_layer!r} in {model.name!r}")
    features = keras.Model(graph.input, activation, name=f"{model.name}_to_{layer_name}")
    try:
        head = keras.Model(activation, outputs, name=f"{model.name}_from_{layer_name}")
    except ValueError:
        raise UserError(
            f"layer {layer_name!r} does not cut {model.name!r} in two: a skip connection bypasses it; "
            f"choose a layer after the last merge, e.g. {last_spatial_layer(model)!r}"
        ) from None
    return features, head


def class_score(targets):
    """A score function (logits [B, K] -> scores [B]) from class ids, or ``targets`` if already callable.

    ``targets`` may be one class id for every image, one id per image, ``None`` (each image's predicted
    class) or a callable such as ``lambda logits: logits[:, 3]``.
    """
    if callable(targets):
        return targets
    if targets is None:

        def predicted(logits):
            return keras.ops.max(logits, axis=-1)

        return predicted
    ids = np.asarray(targets, dtype="int32")

    def chosen(logits):
        num_classes = keras.ops.shape(logits)[-1]
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            raise UserError(f"class ids {ids.tolist()} out of range; accepted: 0 .. {num_classes - 1}")
        one_hot = keras.ops.one_hot(np.broadcast_to(ids, (keras.ops.shape(logits)[0],)), num_classes)
        return keras.ops.sum(logits * keras.ops.cast(one_hot, logits.dtype), axis=-1)

    return chosen


def expand_maps(raw, image_size):
    """Upsamples raw maps [B, h, w] to ``image_size`` (H, W) with ``scipy.ndimage.zoom(order=1)``."""
    raw = np.asarray(raw, dtype=np.float32)
    if len(raw) == 0:
        return np.zeros((0, *image_size), np.float32)
    factors = (image_size[0] / raw.shape[1], image_size[1] / raw.shape[2])
    return np.stack([ndimage.zoom(m, factors, order=1) for m in raw])


def normalize_maps(maps):
    """Min-max normalises each map to [0, 1] (a constant map becomes 0)."""
    maps = np.asarray(maps, dtype=np.float32)
    low = maps.min(axis=(1, 2), keepdims=True) if len(maps) else 0.0
    high = maps.max(axis=(1, 2), keepdims=True) if len(maps) else 0.0
    return (maps - low) / (high - low + keras.config.epsilon())


class GradCAM:
    """Grad-CAM of a Keras classifier on any backend, built once and called with images and target classes.

    Args:
        model: a functional model; a classifier from ``build_classifier`` or any functional graph with a
            pre-softmax ``output_layer``. It is not modified.
        layer_name: the layer to explain; default the last layer whose spatial map is at least
            ``min_map_size`` a side (``last_spatial_layer``). A wrong name raises ``UserError`` listing the
            candidates.
        output_layer: the layer whose outputs are the class scores (logits, never the softmax).
        min_map_size: the smallest map side of the default layer (ignored with ``layer_name``).

    Attributes:
        layer_name: the layer explained; map_size: its map's ``(height, width)``.

    Example:
        >>> cam = GradCAM(model)
        >>> maps = cam(images, targets=[3, 1])    # [2, H, W] float32 in [0, 1]
        >>> raw = cam(images, targets=3, expand=False, normalize=False)    # [2, h, w] at the layer's size
    """

    def __init__(self, model, layer_name=None, output_layer="logits", min_map_size=MIN_MAP_SIZE):
        self.model = model
        self.layer_name = resolve_layer(model, layer_name, min_map_size)
        self.output_layer = output_layer
        self._features, self._head = split_at(model, self.layer_name, output_layer)
        self.map_size = tuple(int(side) for side in self._features.output.shape[1:3])

    def __call__(self, images, targets=None, expand=True, normalize=True, batch_size=32):
        """Class activation maps of ``images`` for ``targets``.

        Args:
            images: float [B, H, W, 3] in the model's input range.
            targets: class id(s), None for each image's predicted class, or a score callable on logits.
            expand: upsample to the image size (else the layer's h x w).
            normalize: min-max normalise each map to [0, 1] (else the raw relu(sum w A)).
            batch_size: images per forward pass.

        Returns:
            float32 NumPy array [B, H, W] (or [B, h, w] when ``expand=False``).
        """
        images = np.asarray(images, dtype="float32")
        if images.ndim != 4:
            raise UserError(f"images must be [batch, height, width, channels], got shape {images.shape}")
        per_image = not callable(targets) and targets is not None and np.ndim(targets) == 1
        if per_image and len(targets) != len(images):
            raise UserError(f"got {len(targets)} targets for {len(images)} images; pass one per image or one id")
        raw = []
        for start in range(0, len(images), batch_size):
            batch_targets = targets[start : start + batch_size] if per_image else targets
            raw.append(self._raw(images[start : start + batch_size], class_score(batch_targets)))
        raw = np.concatenate(raw) if raw else np.zeros((0, 1, 1), "float32")
        maps = expand_maps(raw, images.shape[1:3]) if expand else raw
        return normalize_maps(maps) if normalize else maps

    def _raw(self, images, score):
        # predict_on_batch: compiled, inference mode, and no autograd graph kept for the feature part.
        activation = self._features.predict_on_batch(images)

        def total_score(a):
            # Images are independent in inference mode, so the gradient of the sum is per-image.
            return keras.ops.sum(score(self._head(a, training=False)))

        _, grads = value_and_grad(total_score, activation)
        weights = keras.ops.mean(grads, axis=(1, 2), keepdims=True)
        cam = keras.ops.relu(keras.ops.sum(keras.ops.convert_to_tensor(activation) * weights, axis=-1))
        return keras.ops.convert_to_numpy(cam)
