"""The GAN train step's gradient and state plumbing for the active Keras backend, chosen once at import.

``train_step(model, *args)`` runs one FastGAN iteration (see ``keras_morsa.training.fastgan``) on the
backend's terms: ``(data)`` on TensorFlow and torch, ``(state, data) -> (logs, state)`` on JAX.
``replica_position()`` returns ``(replica index, replica count)`` of the running step (``(0, 1)`` unless a
``tf.distribute`` strategy runs it on several replicas); ``replica_share`` draws random values for the global
batch and returns the running replica's rows, so that N replicas draw what one device draws.
"""

import keras

_BACKEND = keras.backend.backend()
if _BACKEND == "tensorflow":
    from keras_morsa.backend.tensorflow_gan import replica_position, train_step
elif _BACKEND == "jax":
    from keras_morsa.backend.jax_gan import replica_position, train_step
elif _BACKEND == "torch":
    from keras_morsa.backend.torch_gan import replica_position, train_step
else:
    raise ImportError(f"KERAS_BACKEND={_BACKEND!r}: the GAN step supports tensorflow, jax and torch")

__all__ = ["replica_position", "replica_share", "train_step"]


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
