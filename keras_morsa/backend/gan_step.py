"""The GAN train step's gradient and state plumbing for the active Keras backend, chosen once at import.

``train_step(model, *args)`` runs one FastGAN iteration (see ``keras_morsa.training.fastgan``) on the
backend's terms: ``(data)`` on TensorFlow and torch, ``(state, data) -> (logs, state)`` on JAX.
``replica_position()`` returns ``(replica index, replica count)`` of the running step (``(0, 1)`` unless a
``tf.distribute`` strategy runs it on several replicas).
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

__all__ = ["replica_position", "train_step"]
