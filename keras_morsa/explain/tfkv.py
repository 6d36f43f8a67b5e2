"""tf-keras-vis Gradcam, GradcamPlusPlus and Scorecam on a keras-morsa classifier (TensorFlow backend only).

tf-keras-vis is TensorFlow by nature. It is imported inside :class:`TfKerasVisCAM` only, because importing it
sets ``KERAS_BACKEND=tensorflow`` when the variable is unset. Three traps of tf-keras-vis 0.8.7 are avoided:

- a classifier that nests its backbone fails ("Output with path ... is not connected to inputs"): the
  explainer runs on :func:`keras_morsa.models.classifier.flat_view`, which shares the weights;
- its automatic layer choice takes MobileNetV3's last 1x1 convolution: the layer is chosen here, as in
  :class:`keras_morsa.explain.gradcam.GradCAM` (the last layer with a spatial map larger than 1x1);
- ``ReplaceToLinear`` with ``clone=False`` swaps the caller's softmax for good: no model modifier is used;
  tf-keras-vis gets a new model over the same layers ending at the ``logits`` layer (Scorecam applies its own
  softmax to that output, as it expects).

Known limit of tf-keras-vis's Grad-CAM++: it multiplies the gradients by exp(logit), which overflows
float32 for a logit above ~88 and then gives NaN maps.
"""

import keras
import numpy as np

from keras_morsa.errors import UserError
from keras_morsa.explain.gradcam import check_method, logits_model, resolve_layer
from keras_morsa.models.classifier import MIN_MAP_SIZE, map_size


class TfKerasVisCAM:
    """A tf-keras-vis class activation map explainer, built once, called like ``GradCAM``.

    Args:
        model: a classifier from ``build_classifier`` (or a functional model with an ``output_layer``). It is
            not modified.
        method: ``"gradcam"``, ``"gradcam++"`` or ``"scorecam"``.
        layer_name: the layer to explain; default the last layer whose spatial map is at least
            ``min_map_size`` a side.
        output_layer: the pre-softmax layer giving the class scores.
        min_map_size: the smallest map side of the default layer (ignored with ``layer_name``).

    Raises:
        UserError: on a backend other than TensorFlow (use ``keras_morsa.explain.gradcam.GradCAM``, which
            runs on every backend), or for an unknown method or layer.

    Example:
        >>> cam = TfKerasVisCAM(model, method="gradcam++")
        >>> maps = cam(images, targets=[0, 2])    # [2, H, W] float32 in [0, 1]
    """

    def __init__(self, model, method="gradcam", layer_name=None, output_layer="logits", min_map_size=MIN_MAP_SIZE):
        if keras.backend.backend() != "tensorflow":
            raise UserError(
                f"tf-keras-vis runs on KERAS_BACKEND=tensorflow only, got {keras.backend.backend()!r}; "
                "use keras_morsa.explain.gradcam.GradCAM (method='gradcam') on this backend"
            )
        check_method(method)
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.scorecam import Scorecam

        self.model = model
        self.method = method
        self.layer_name = resolve_layer(model, layer_name, min_map_size)
        # Same layers, logits out, one flat graph: nothing of the caller's model is rewired.
        self._logits_model = logits_model(model, output_layer)
        self.map_size = map_size(self._visualized_layer())
        visualizer = {"gradcam": Gradcam, "gradcam++": GradcamPlusPlus, "scorecam": Scorecam}[method]
        self._visualizer = visualizer(self._logits_model, clone=False)

    def __call__(self, images, targets=None, expand=True, normalize=True, batch_size=32):
        """Maps of ``images`` for ``targets`` (class id(s), or None for each image's predicted class).

        Returns:
            float32 NumPy array [B, H, W] (or [B, h, w] when ``expand=False``), normalised to [0, 1] when
            ``normalize``.
        """
        from tf_keras_vis.utils.scores import CategoricalScore

        images = np.asarray(images, dtype="float32")
        if images.ndim != 4:
            raise UserError(f"images must be [batch, height, width, channels], got shape {images.shape}")
        if len(images) == 0:
            return np.zeros((0, *images.shape[1:3]), np.float32)
        if targets is None:
            targets = np.argmax(self._logits_model.predict(images, batch_size=batch_size, verbose=0), axis=-1)
        ids = np.asarray(targets, dtype=np.int64)
        if ids.ndim == 1 and len(ids) != len(images):
            raise UserError(f"got {len(ids)} targets for {len(images)} images; pass one per image or one id")
        ids = np.broadcast_to(ids, (len(images),))
        maps = []
        for start in range(0, len(images), batch_size):
            batch_ids = ids[start : start + batch_size]
            maps.append(
                np.asarray(
                    self._visualizer(
                        CategoricalScore([int(i) for i in batch_ids]),
                        images[start : start + batch_size],
                        penultimate_layer=self._visualized_layer(),
                        seek_penultimate_conv_layer=False,
                        expand_cam=expand,
                        normalize_cam=normalize,
                    ),
                    dtype=np.float32,
                ).reshape(len(batch_ids), *self._map_shape(images, expand))
            )
        return np.concatenate(maps)

    def _visualized_layer(self):
        return self._logits_model.get_layer(self.layer_name)

    def _map_shape(self, images, expand):
        return tuple(images.shape[1:3]) if expand else self.map_size
