"""The only place for backend-specific code; everything else in keras-morsa is written in ``keras.ops``.

Like Keras's own ``keras/src/backend``, one module per backend (``tensorflow.py``, ``jax.py``, ``torch.py``)
holds what differs, and the active one is chosen once, here, at import, from ``keras.backend.backend()``.
Importing this package therefore imports the active backend's module only. Each module provides:

- ``train_step(model, *args)``: one FastGAN iteration (see ``keras_morsa.training.fastgan``) on the
  backend's terms: ``(data)`` on TensorFlow and torch, ``(state, data) -> (logs, state)`` on JAX.
- ``replica_position()``: ``(replica index, replica count)`` of the running step (``(0, 1)`` unless a
  ``tf.distribute`` strategy runs it on several replicas).
- ``value_and_grad(fn, x)``: ``fn(x)`` and its gradient with respect to ``x`` (Grad-CAM's one
  backend-specific call).
- ``accelerators()``: the names of the GPUs/TPUs the framework sees (empty on a CPU-only machine).
- ``devices()``: ``[(name, model or None)]`` of every device, accelerators first, for the scripts' first line
  (listed without starting TensorFlow's runtime, so a CPU split stays possible).
- ``conv_kernel(kernel)``: a convolution kernel laid out in memory so that the backend's convolution can
  differentiate it (the identity except on torch, see ``torch.py``).

``tensorflow.global_batch_norm`` (global-batch BatchNorm statistics under ``tf.distribute``) exists on
TensorFlow only and is imported from there by ``keras_morsa.training.distribute``.

``replica_share`` below is backend-neutral: it draws random values for the global batch and returns the
running replica's rows, so that N replicas draw what one device draws.
"""

import importlib

import keras

_BACKEND = keras.backend.backend()
if _BACKEND not in ("tensorflow", "jax", "torch"):
    raise ImportError(f"KERAS_BACKEND={_BACKEND!r}: keras-morsa supports tensorflow, jax and torch")
_ACTIVE = importlib.import_module(f"{__name__}.{_BACKEND}")  # the active backend's module only
accelerators = _ACTIVE.accelerators
conv_kernel = _ACTIVE.conv_kernel
devices = _ACTIVE.devices
replica_position = _ACTIVE.replica_position
train_step = _ACTIVE.train_step
value_and_grad = _ACTIVE.value_and_grad

__all__ = [
    "accelerators",
    "conv_kernel",
    "devices",
    "replica_position",
    "replica_share",
    "train_step",
    "value_and_grad",
]


def replica_share(draw, batch_size, shape, seed):
    """This replica's ``batch_size`` rows of a draw for the global batch (all of it on one device).

    Args:
        draw: a ``keras.random`` function taking ``(shape, seed=...)`` (wrap one with fixed bounds in a
            lambda).
        batch_size: the batch size of this replica (a tensor inside a compiled step is fine).
        shape: the shape of one example's draw (a tuple).
        seed: the ``keras.random.SeedGenerator`` to draw from (every replica holds the same state).

    Returns:
        A ``[batch_size, *shape]`` tensor: rows ``index * batch_size`` onwards of
        ``draw((batch_size * count, *shape))``.

    Example:
        z = replica_share(keras.random.normal, batch_size, (latent_dim,), seed_generator)
    """
    index, count = replica_position()
    shape = tuple(shape)
    values = draw((batch_size * count, *shape), seed=seed)
    return keras.ops.slice(values, [index * batch_size] + [0] * len(shape), (batch_size, *shape))
