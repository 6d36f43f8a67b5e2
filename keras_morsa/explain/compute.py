"""Class activation maps of one model on one set of images: the computing step of the Grad-CAM report.

:func:`explain` runs a classifier and its explainer (:func:`make_explainer`) over images in fixed-size
batches and returns an :class:`Explained`: the predictions, the maps for each image's predicted class and the
deletion drops. Scoring (:mod:`keras_morsa.explain.scores`) and drawing (:mod:`keras_morsa.explain.render`)
read these records; nothing here knows about groups, files or pages.
"""

import dataclasses

import numpy as np

from keras_morsa.explain import metrics
from keras_morsa.explain.gradcam import GradCAM, check_method
from keras_morsa.models.classifier import MIN_MAP_SIZE

#: Images per forward pass; every batch is padded to this size (one input shape: JAX and tf.function compile
#: once, not once more for the tail).
BATCH = 16
OUTCOMES = ("correct", "wrong")


def make_explainer(model, method="gradcam", layer=None, min_map_size=MIN_MAP_SIZE):
    """The explainer for ``method``: keras.ops ``GradCAM`` (every backend) or tf-keras-vis (TF only)."""
    check_method(method)
    if method == "gradcam":
        return GradCAM(model, layer_name=layer, min_map_size=min_map_size)
    from keras_morsa.explain.tfkv import TfKerasVisCAM

    return TfKerasVisCAM(model, method=method, layer_name=layer, min_map_size=min_map_size)


@dataclasses.dataclass(frozen=True, eq=False)
class Explained:
    """One model on one source of images (e.g. the baseline on the real test images).

    Attributes:
        model: the model's key in the report (``"real"``, ``"best_augmented"``).
        source: ``"real"`` (test split) or ``"generated"``.
        images: float32 [N, S, S, 3] in 0..255, at the model's input size.
        labels: int64 [N], the true classes.
        masks: bool [N, S, S] object masks, or None (not every image has one).
        pred: int64 [N], the predicted classes.
        maps: float32 [N, S, S] in [0, 1], each for the image's predicted class.
        drops: ``{fraction: {"map": [N], "random": [N]}}`` as :func:`metrics.deletion_drop` gives them.
    """

    model: str
    source: str
    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None
    pred: np.ndarray
    maps: np.ndarray
    drops: dict

    def members(self, outcome):
        """bool [N]: the images this model classified correctly (``"correct"``) or not (``"wrong"``)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome={outcome!r}; accepted: {', '.join(OUTCOMES)}")
        correct = self.pred == self.labels
        return correct if outcome == "correct" else ~correct


def explain(
    model,
    explainer,
    images,
    labels,
    masks=None,
    *,
    model_key,
    source,
    fractions=metrics.DEFAULT_FRACTIONS,
    seed=0,
    progress=None,
):
    """Predictions, maps and deletion drops of ``model`` on ``images``, in batches of :data:`BATCH`.

    Args:
        model: the classifier (probabilities out).
        explainer: its explainer (:func:`make_explainer`), called with each image's predicted class.
        images: float [N, S, S, 3] at the model's input size; labels: int [N]; masks: bool [N, S, S] or None.
        model_key, source: what the result is of (:class:`Explained`).
        fractions: pixel shares removed for deletion faithfulness.
        seed: seeds the random deletion baseline (batch starting at image i: ``seed + i``).
        progress: a ``keras.utils.Progbar`` advanced by each batch's images, or None.

    Returns:
        :class:`Explained`.
    """
    images = np.asarray(images, np.float32)
    num = len(images)
    padded = np.concatenate([images, np.zeros((-num % BATCH, *images.shape[1:]), images.dtype)])
    pred = np.zeros(len(padded), np.int64)
    maps = np.zeros(padded.shape[:3], np.float32)
    drops = {f: {kind: np.zeros(len(padded), np.float32) for kind in ("map", "random")} for f in fractions}

    def predict(x):
        x = np.asarray(x, np.float32)
        return np.concatenate([np.asarray(model.predict_on_batch(x[i : i + BATCH])) for i in range(0, len(x), BATCH)])

    for start in range(0, num, BATCH):
        batch, rows = padded[start : start + BATCH], slice(start, start + BATCH)
        pred[rows] = np.argmax(predict(batch), axis=-1)
        maps[rows] = explainer(batch, targets=pred[rows])
        for fraction, values in metrics.deletion_drop(
            predict, batch, maps[rows], pred[rows], fractions, seed=seed + start
        ).items():
            for kind in ("map", "random"):
                drops[fraction][kind][rows] = values[kind]
        if progress is not None:
            progress.add(min(BATCH, num - start))
    return Explained(
        model=model_key,
        source=source,
        images=images,
        labels=np.asarray(labels, np.int64),
        masks=masks,
        pred=pred[:num],
        maps=maps[:num],
        drops={f: {kind: v[:num] for kind, v in d.items()} for f, d in drops.items()},
    )
