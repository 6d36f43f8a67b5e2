"""Numbers for class activation maps: area, energy in the object mask, pointing game, deletion faithfulness.

All functions take NumPy arrays: ``maps`` is float [B, H, W] normalised to [0, 1] (as
:class:`keras_morsa.explain.gradcam.GradCAM` returns them), ``masks`` is [B, H, W] with the object where the
value is > 0, ``images`` is float [B, H, W, 3] in the model's input range. Per-image values come back as
arrays of length B; :func:`bootstrap_interval` and :func:`paired_difference_interval` turn them into a mean
with a seeded percentile-bootstrap confidence interval over images.

Deletion faithfulness removes pixels by *mean filling*: each removed pixel takes the image's own per-channel
mean colour. Mean filling keeps the image's average colour, so the probability drop measures missing
structure rather than a shift in colour; it is also cheaper and less ambiguous than a blur radius. The
same number of pixels removed at random positions (seeded) is the baseline a useful map must beat.
"""

import collections

import numpy as np

from keras_morsa.errors import UserError

DEFAULT_FRACTIONS = (0.1, 0.2, 0.5)

Interval = collections.namedtuple("Interval", ["mean", "low", "high", "n"])
Interval.__doc__ = """A mean over images with its confidence interval; all None when there are no values."""


def _check_maps(maps, other=None, name="masks"):
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise UserError(f"maps must be [batch, height, width], got shape {maps.shape}")
    if other is not None:
        other = np.asarray(other)
        if other.shape != maps.shape:
            raise UserError(f"{name} shape {other.shape} does not match maps shape {maps.shape}")
    return maps, other


def area(maps, threshold=0.5):
    """Fraction of each map's pixels where the normalised map is >= ``threshold``.

    Example:
        >>> maps = np.zeros((1, 4, 4)); maps[0, :2, :2] = 1.0
        >>> area(maps)
        array([0.25], dtype=float32)
    """
    maps, _ = _check_maps(maps)
    return np.mean(maps >= threshold, axis=(1, 2)).astype(np.float32)


def mask_energy(maps, masks):
    """Share of each map's total energy that falls on the object: sum(map * mask) / sum(map).

    1.0 means the whole map is on the object, 0.0 none of it. A map that is zero everywhere has no energy
    to share out and gives NaN (left out of intervals).
    """
    maps, masks = _check_maps(maps, masks)
    inside = np.sum(maps * (masks > 0), axis=(1, 2))
    total = np.sum(maps, axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / total, np.nan).astype(np.float32)


def pointing_game(maps, masks):
    """1.0 where the map's maximum (first in row-major order on ties) lies on the object, else 0.0."""
    maps, masks = _check_maps(maps, masks)
    pixels = maps.shape[1] * maps.shape[2]
    peak = np.argmax(maps.reshape(len(maps), pixels), axis=1)
    return (masks.reshape(len(masks), pixels)[np.arange(len(maps)), peak] > 0).astype(np.float32)


def remove_pixels(images, order, fraction):
    """Mean-fills the first ``fraction`` of each image's pixels in ``order``.

    Args:
        images: float [B, H, W, C].
        order: int [B, H * W], pixel indices (row-major) from most to least important.
        fraction: share of the pixels to remove, in [0, 1].

    Returns:
        A new float32 array; each removed pixel holds its image's per-channel mean.
    """
    images = np.asarray(images, dtype=np.float32)
    batch, height, width, channels = images.shape
    count = int(round(fraction * height * width))
    flat = images.reshape(batch, height * width, channels).copy()
    means = flat.mean(axis=1, keepdims=True)
    rows = np.arange(batch)[:, None]
    flat[rows, order[:, :count]] = np.broadcast_to(means, (batch, count, channels))
    return flat.reshape(images.shape)


def deletion_drop(predict, images, maps, classes, fractions=DEFAULT_FRACTIONS, seed=0):
    """Probability drop when the map's top pixels are removed, against removing as many at random.

    Args:
        predict: function from images [N, H, W, C] to class probabilities [N, K] (NumPy).
        images: float [B, H, W, C] in the model's input range.
        maps: normalised maps [B, H, W].
        classes: int [B], the class whose probability is followed (the predicted class in the report).
        fractions: shares of the pixels removed, each in (0, 1].
        seed: seeds the random removal order.

    Returns:
        ``{fraction: {"map": drops [B], "random": drops [B]}}`` where a drop is p(original) - p(removed) of
        ``classes``; a faithful map has larger "map" drops than "random" ones.
    """
    maps, _ = _check_maps(maps)
    images = np.asarray(images, dtype=np.float32)
    if images.shape[:3] != maps.shape:
        raise UserError(f"images shape {images.shape} does not match maps shape {maps.shape}")
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise UserError(f"deletion fractions must lie in (0, 1], got {bad}")
    classes = np.asarray(classes, dtype=np.int64)
    rows = np.arange(len(images))
    flat_maps = maps.reshape(len(maps), -1)
    # A stable sort keeps tie-breaking (flat maps) deterministic across runs and platforms.
    by_map = np.argsort(-flat_maps, axis=1, kind="stable")
    rng = np.random.default_rng(seed)
    at_random = np.argsort(rng.random(flat_maps.shape), axis=1)
    base = np.asarray(predict(images))[rows, classes]
    drops = {}
    for fraction in fractions:
        removed = np.concatenate([remove_pixels(images, by_map, fraction), remove_pixels(images, at_random, fraction)])
        probs = np.asarray(predict(removed))
        drops[fraction] = {
            "map": (base - probs[: len(images)][rows, classes]).astype(np.float32),
            "random": (base - probs[len(images) :][rows, classes]).astype(np.float32),
        }
    return drops


def bootstrap_interval(values, confidence=0.95, num_resamples=2000, seed=0):
    """Mean of ``values`` (NaNs left out) with a seeded percentile-bootstrap interval over them.

    Returns:
        :class:`Interval`; with no values all fields but ``n`` are None, with one value the interval is
        that value.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return Interval(None, None, None, 0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(num_resamples, len(values)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(values.mean()), float(low), float(high), int(len(values)))


def paired_difference_interval(a, b, confidence=0.95, num_resamples=2000, seed=0):
    """Mean of ``a - b`` over the same images with a paired bootstrap interval (pairs with a NaN dropped)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise UserError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    return bootstrap_interval(a - b, confidence, num_resamples, seed)
