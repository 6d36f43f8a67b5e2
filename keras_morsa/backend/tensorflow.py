"""TensorFlow backend: the GAN step's plumbing, Grad-CAM's gradient, global-batch BatchNorm statistics.

The GAN step uses two gradient tapes and distribution-aware loss scaling.

G runs once under an outer tape; the discriminator step runs with that tape paused, then the generator loss
(with the updated D) is recorded on it, so G's gradient flows through the same fakes D was trained on.
Under a ``tf.distribute`` strategy every replica computes a mean over its share of the batch and the
optimizers sum gradients over replicas, so the losses are divided by the replica count before
differentiation (the logged losses are not).
"""

import functools
import inspect

import keras
import tensorflow as tf


def replica_position():
    """``(replica index as an int32 tensor, replica count)`` of the running step."""
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: the whole batch is here
        return 0, 1
    return tf.cast(context.replica_id_in_sync_group, tf.int32), context.num_replicas_in_sync


def train_step(model, data):
    real, labels = model.real_images(data), model.real_labels(data)
    batch_size = tf.shape(real)[0]
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    generator, discriminator = model.generator, model.discriminator
    with tf.GradientTape() as g_tape:
        fakes = model.fake_images(batch_size, labels)
        with g_tape.stop_recording():
            with tf.GradientTape() as d_tape:
                d_loss, losses = model.discriminator_loss(real, [tf.stop_gradient(f) for f in fakes], labels)
                scaled = d_loss / replicas
            d_weights = discriminator.trainable_variables
            model.d_optimizer.apply(d_tape.gradient(scaled, d_weights), d_weights)
        g_loss = model.generator_loss(fakes, labels)
        scaled = g_loss / replicas
    g_weights = generator.trainable_variables
    model.g_optimizer.apply(g_tape.gradient(scaled, g_weights), g_weights)
    return model.finish_step({**losses, "g_loss": g_loss})


def value_and_grad(fn, x):
    """``fn(x)`` and its gradient with respect to ``x``: a ``tf.GradientTape`` watching ``x``."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        value = fn(x)
    return value, tape.gradient(value, x)


def conv_kernel(kernel):
    """The kernel as it is: TensorFlow's convolutions differentiate any layout."""
    return kernel


# The private Keras method global_batch_norm replaces, and the signature it was written against.
_MOMENTS_PARAMETERS = ["self", "inputs", "mask"]


def global_batch_norm(layer):
    """Makes ``layer`` (a ``BatchNormalization``) take its training statistics over the global batch.

    The statistics are those one device computes on the whole batch: the replicas all-reduce the mean first,
    then the squared deviations from it (two passes; Keras's own ``synchronized=True`` takes E[x^2] - E[x]^2,
    which in float32 cancels where a channel's mean is large against its spread). ``_moments`` is the one
    place ``BatchNormalization`` computes training statistics; an instance attribute replaces it for this
    layer only (a second call replaces it with the same).

    Raises:
        RuntimeError: the installed Keras no longer has ``BatchNormalization._moments(inputs, mask)``, so the
            replacement would silently not apply (update this function for the new Keras).
    """
    method = getattr(keras.layers.BatchNormalization, "_moments", None)
    if method is None or list(inspect.signature(method).parameters) != _MOMENTS_PARAMETERS:
        raise RuntimeError(
            f"keras {keras.__version__}: BatchNormalization._moments(self, inputs, mask) has changed, so "
            "keras_morsa.backend.tensorflow.global_batch_norm cannot synchronise the statistics; update it"
        )
    layer.synchronized = True
    layer._moments = functools.partial(_global_moments, layer)


def _global_moments(layer, inputs, mask):
    """Mean and variance of ``inputs`` over the global batch, two-pass like one device."""
    if mask is not None:  # masked statistics stay per replica, as in Keras
        return type(layer)._moments(layer, inputs, mask)
    axis = layer.axis % len(inputs.shape)
    axes = [i for i in range(len(inputs.shape)) if i != axis]
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:  # the whole batch is here
        return tf.nn.moments(inputs, axes)

    def global_sum(x):
        return context.all_reduce(tf.distribute.ReduceOp.SUM, x)

    count = global_sum(tf.cast(tf.reduce_prod(tf.gather(tf.shape(inputs), axes)), inputs.dtype))
    mean = global_sum(tf.reduce_sum(inputs, axis=axes, keepdims=True)) / count
    variance = global_sum(tf.reduce_sum(tf.square(inputs - mean), axis=axes, keepdims=True)) / count
    return tf.squeeze(mean, axes), tf.squeeze(variance, axes)


def accelerators():
    """Names of the GPUs and TPUs TensorFlow sees (empty on a CPU-only machine)."""
    return [d.name for d in tf.config.list_logical_devices() if d.device_type != "CPU"]


def devices():
    """``[(name, model or None)]`` of the physical devices, accelerators first (``("GPU:0", "NVIDIA H200")``).

    Physical devices only: listing them leaves the runtime unstarted, so a CPU split
    (``distribute.split_cpu``) is still possible afterwards.
    """
    found = []
    for device in tf.config.list_physical_devices():
        name = device.name.removeprefix("/physical_device:")
        model = None
        if device.device_type != "CPU":
            model = tf.config.experimental.get_device_details(device).get("device_name")
        found.append((name, model))
    return sorted(found, key=lambda item: item[0].startswith("CPU"))
