"""Differentiable augmentation (DiffAugment, Zhao et al. 2020, arXiv 2006.10738) in ``keras.ops``.

The same random transform is applied to real and generated images before the discriminator sees them, and
gradients flow through it to the generator. Written once in ``keras.ops``: identical maths on TensorFlow,
JAX and torch, usable eagerly and inside a compiled train step (every random draw has a static shape; the
random values only enter as tensors, never as Python numbers).

Operations, applied in the order of the policy string (each draws independently per sample):

- ``color``: brightness ``x + b`` with ``b ~ U[-0.5, 0.5)``; then saturation ``m + (x - m) * s`` with ``m``
  the per-pixel channel mean and ``s ~ U[0, 2)``; then contrast ``m + (x - m) * c`` with ``m`` the
  per-image mean over pixels and channels and ``c ~ U[0.5, 1.5)``. Values are not clipped.
- ``translation``: integer shifts ``dy, dx`` uniform in ``[-r, r]`` with ``r = int(size / 8 + 0.5)``;
  pixels shifted in from outside are 0.
- ``cutout``: a square of side ``int(size / 2 + 0.5)`` set to 0; its centre is uniform over the image and
  it is clipped at the borders.

Several images of one batch (FastGAN's full image and its small copy) can be augmented together: they get
the same draws, with the translation and the cutout square scaled to each image's size.

Example:
    seed_generator = keras.random.SeedGenerator(0)
    big, small = diff_augment([images, images_small], "color,translation", seed_generator)
"""

from keras import ops, random

from keras_morsa import backend
from keras_morsa.errors import UserError

#: Operation names a policy string may contain, in no particular order.
POLICIES = ("color", "translation", "cutout")

_TRANSLATION_RATIO = 0.125
_CUTOUT_RATIO = 0.5


def parse_policy(policy):
    """Splits a policy string such as ``"color,translation"`` into a tuple of operation names.

    An empty string (or ``None``) means no augmentation.

    Raises:
        UserError: an unknown operation name; the message lists the accepted ones.
    """
    names = tuple(name.strip() for name in (policy or "").split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise UserError(
            f"DiffAugment policy {policy!r}: unknown operation {unknown[0]!r}; "
            f"accepted: comma-separated names from {', '.join(POLICIES)} (or empty for none)"
        )
    return names


def diff_augment(images, policy, seed_generator):
    """Applies the DiffAugment ``policy`` to ``images``.

    Args:
        images: float tensor ``[B, H, W, C]`` (square images), or a list/tuple of such tensors with the same
            batch size (e.g. ``[full, small]``); all of them get the same random draws.
        policy: comma-separated operation names from :data:`POLICIES`, e.g. ``"color,translation,cutout"``;
            empty for the identity.
        seed_generator: the ``keras.random.SeedGenerator`` every draw comes from (its state advances).

    Returns:
        The augmented tensor, or a list of tensors in the order given.

    Raises:
        UserError: an unknown operation name in ``policy``.
    """
    single = not isinstance(images, (list, tuple))
    batch = list([images] if single else images)
    for name in parse_policy(policy):
        batch = _OPERATIONS[name](batch, seed_generator)
    return batch[0] if single else batch


def _per_sample(batch, seed_generator, minval, maxval):
    return backend.replica_share(
        lambda shape, seed: random.uniform(shape, minval, maxval, seed=seed),
        ops.shape(batch[0])[0],
        (1, 1, 1),
        seed_generator,
    )


def _positions(batch, seed_generator, low, high):
    """One integer in ``[low, high)`` per sample; drawn for the global batch under data parallelism, so two
    replicas augment their halves as one device augments the whole batch."""
    return backend.replica_share(
        lambda shape, seed: random.randint(shape, low, high, dtype="int32", seed=seed),
        ops.shape(batch[0])[0],
        (),
        seed_generator,
    )


def _color(batch, seed_generator):
    brightness = _per_sample(batch, seed_generator, -0.5, 0.5)
    saturation = _per_sample(batch, seed_generator, 0.0, 2.0)
    contrast = _per_sample(batch, seed_generator, 0.5, 1.5)
    out = []
    for x in batch:
        x = x + ops.cast(brightness, x.dtype)
        mean = ops.mean(x, axis=3, keepdims=True)
        x = mean + (x - mean) * ops.cast(saturation, x.dtype)
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        out.append(mean + (x - mean) * ops.cast(contrast, x.dtype))
    return out


def _size(x):
    return int(x.shape[1])


def _scale(offset, size, reference_size):
    """Maps an integer position on the first image's grid onto an image of ``size`` pixels."""
    if size == reference_size:
        return offset
    return ops.cast(ops.round(ops.cast(offset, "float32") * (size / reference_size)), "int32")


def _shift_axis(x, shift, axis):
    """Moves ``x`` by ``shift[b]`` pixels along ``axis`` (1 or 2), filling with zeros."""
    size = x.shape[axis]
    source = ops.arange(size, dtype="int32")[None, :] - shift[:, None]  # [B, size]
    valid = ops.logical_and(source >= 0, source < size)
    source = ops.clip(source, 0, size - 1)
    view = (-1, size, 1, 1) if axis == 1 else (-1, 1, size, 1)
    index = ops.broadcast_to(ops.reshape(source, view), ops.shape(x))
    return ops.take_along_axis(x, index, axis=axis) * ops.cast(ops.reshape(valid, view), x.dtype)


def _translation(batch, seed_generator):
    reference = _size(batch[0])
    limit = int(reference * _TRANSLATION_RATIO + 0.5)
    dy = _positions(batch, seed_generator, -limit, limit + 1)
    dx = _positions(batch, seed_generator, -limit, limit + 1)
    out = []
    for x in batch:
        size = _size(x)
        x = _shift_axis(x, _scale(dy, size, reference), 1)
        out.append(_shift_axis(x, _scale(dx, size, reference), 2))
    return out


def _cutout(batch, seed_generator):
    reference = _size(batch[0])
    side = int(reference * _CUTOUT_RATIO + 0.5)
    # Centres range over the whole image (one extra position for even sides keeps the choice symmetric).
    high = reference + (1 - side % 2)
    top = _positions(batch, seed_generator, 0, high) - side // 2
    left = _positions(batch, seed_generator, 0, high) - side // 2
    out = []
    for x in batch:
        size = _size(x)
        side_k = int(size * _CUTOUT_RATIO + 0.5)
        grid = ops.arange(size, dtype="int32")[None, :]
        top_k = _scale(top, size, reference)[:, None]
        left_k = _scale(left, size, reference)[:, None]
        rows = ops.logical_and(grid >= top_k, grid < top_k + side_k)  # [B, size]
        cols = ops.logical_and(grid >= left_k, grid < left_k + side_k)
        hole = ops.logical_and(rows[:, :, None], cols[:, None, :])[..., None]
        out.append(x * (1.0 - ops.cast(hole, x.dtype)))
    return out


_OPERATIONS = {"color": _color, "translation": _translation, "cutout": _cutout}
