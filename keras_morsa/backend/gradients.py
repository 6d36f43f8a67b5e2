"""Gradient of a scalar function with respect to a tensor, on the running Keras backend.

Grad-CAM needs d(score)/d(activation) for an intermediate activation. Everything around that call is
``keras.ops``; only the gradient itself differs per backend, so it lives here and is chosen once, at import,
from ``keras.backend.backend()``:

- TensorFlow: ``tf.GradientTape`` watching the activation.
- JAX: ``jax.value_and_grad`` of the function of the activation.
- torch: ``torch.autograd.grad`` on a leaf copy of the activation.

The backend's own package is imported inside its function, so importing this module never pulls in another
backend's framework.
"""

import keras

from keras_morsa.errors import UserError


def _tensorflow_value_and_grad(fn, x):
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        value = fn(x)
    return value, tape.gradient(value, x)


def _jax_value_and_grad(fn, x):
    import jax
    import jax.numpy as jnp

    return jax.value_and_grad(fn)(jnp.asarray(x))


def _torch_value_and_grad(fn, x):
    import torch

    # A fresh leaf: the caller's tensor (maybe produced under no_grad) is never given requires_grad.
    x = keras.ops.convert_to_tensor(x).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        value = fn(x)
        (grad,) = torch.autograd.grad(value, x)
    return value.detach(), grad


_BY_BACKEND = {
    "tensorflow": _tensorflow_value_and_grad,
    "jax": _jax_value_and_grad,
    "torch": _torch_value_and_grad,
}
_BACKEND = keras.backend.backend()


def value_and_grad(fn, x):
    """Evaluates ``fn(x)`` and its gradient with respect to ``x`` on the running backend.

    Args:
        fn: a function of one tensor returning a scalar tensor, written in ``keras.ops`` (it is traced by
            ``jax.value_and_grad`` on JAX, so it must not convert to NumPy inside).
        x: the point (array or backend tensor).

    Returns:
        ``(value, gradient)`` as backend tensors; ``gradient`` has the shape of ``x``.

    Raises:
        UserError: on a Keras backend without automatic differentiation (only tensorflow, jax and torch
            are supported).
    """
    if _BACKEND not in _BY_BACKEND:
        raise UserError(
            f"gradients need KERAS_BACKEND in {sorted(_BY_BACKEND)}, got {_BACKEND!r}"
        )
    return _BY_BACKEND[_BACKEND](fn, x)
