"""Data-parallel training: pick a strategy by name and get the context to build, compile and fit in.

Strategies (``STRATEGIES``):

- ``"none"``: one device; the context does nothing.
- ``"mirrored"``: ``tf.distribute.MirroredStrategy`` over the visible (logical) devices; TensorFlow backend
  only (TensorFlow by nature: it imports ``tensorflow``).
- ``"data_parallel"``: ``keras.distribution.DataParallel`` over every device JAX sees; JAX backend only.

Every replica must see the same number of examples: the global batch size must be a multiple of the replica
count. Under ``"mirrored"`` batch-norm layers should compute their statistics over the global batch, as on
one device: :func:`synchronize_batch_norm` switches a built model's ``BatchNormalization`` layers to
global-batch statistics (``"data_parallel"`` computes on the global batch already).

Devices are fixed when the framework starts, so a CPU split into several devices is configured first:
``split_cpu(n)`` does it for TensorFlow (before any TensorFlow op runs); for JAX, start the process with
``XLA_FLAGS=--xla_force_host_platform_device_count=<n>`` in the environment.

The FastGAN step draws its latents, hinge margins, the generator's per-pixel noise and DiffAugment's
transforms for the global batch and gives each replica its slice (``keras_morsa.backend.replica_share``),
so N replicas train like one device (to float32 rounding).

Example:
    with distribution_scope("mirrored"):
        gan = FastGAN(Generator(...), Discriminator(...))
        synchronize_batch_norm(gan, "mirrored")
        gan.compile(g_optimizer=..., d_optimizer=...)
    gan.fit(dataset, ...)
"""

import contextlib

import keras

from keras_morsa.errors import UserError

STRATEGIES = ("none", "mirrored", "data_parallel")
_BACKEND_OF = {"mirrored": "tensorflow", "data_parallel": "jax"}


def check_strategy(strategy):
    """Raises ``UserError`` unless ``strategy`` is known and runs on the active Keras backend."""
    if strategy not in STRATEGIES:
        raise UserError(f"strategy={strategy!r}: expected one of {', '.join(STRATEGIES)}")
    needed = _BACKEND_OF.get(strategy)
    backend = keras.backend.backend()
    if needed is not None and backend != needed:
        usable = ["none"] + [name for name, b in _BACKEND_OF.items() if b == backend]
        raise UserError(
            f"strategy={strategy!r} needs KERAS_BACKEND={needed}, but the backend is {backend}; "
            f"on {backend} use one of {', '.join(usable)}"
        )
    return strategy


def split_cpu(count):
    """Splits the CPU into ``count`` logical TensorFlow devices (call before TensorFlow runs any op).

    TensorFlow by nature. Does nothing if the split is already in place.

    Raises:
        UserError: TensorFlow is already initialised with another device layout.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError as error:
        raise UserError(
            f"cannot split the CPU into {count} devices: TensorFlow is already initialised ({error}); "
            "split it at the start of the program"
        ) from error


def _devices(strategy):
    if strategy == "mirrored":
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return [device.name for device in devices]
    if strategy == "data_parallel":
        return keras.distribution.list_devices()
    return []


def replica_count(strategy):
    """How many replicas ``strategy`` trains on (1 for ``"none"``)."""
    check_strategy(strategy)
    return max(1, len(_devices(strategy)))


def check_batch_split(strategy, **batch_sizes):
    """Raises ``UserError`` unless every named batch size splits evenly over ``strategy``'s replicas.

    Args:
        strategy: one of :data:`STRATEGIES`.
        **batch_sizes: config key -> batch size, e.g. ``check_batch_split(s, **{"train.batch_size": 8})``.

    Returns:
        The replica count.
    """
    replicas = replica_count(strategy)
    for key, size in batch_sizes.items():
        if int(size) % replicas:
            raise UserError(
                f"{key}={size} does not split over {replicas} replicas of strategy={strategy!r}; "
                f"use a multiple of {replicas}"
            )
    return replicas


def distribution_scope(strategy):
    """Sets up ``strategy`` and returns the context in which to build, compile and fit the model.

    Args:
        strategy: one of :data:`STRATEGIES`.

    Returns:
        A context manager: the strategy's scope, or a no-op for ``"none"``.

    Raises:
        UserError: an unknown strategy, one that does not run on the active backend, or fewer than 2
            devices for a data-parallel strategy.
    """
    check_strategy(strategy)
    if strategy == "none":
        return contextlib.nullcontext()
    devices = _devices(strategy)
    count = len(devices)
    if count < 2:
        hint = (
            "split the CPU first with keras_morsa.training.distribute.split_cpu(2)"
            if strategy == "mirrored"
            else "start the process with XLA_FLAGS=--xla_force_host_platform_device_count=2"
        )
        raise UserError(f"strategy={strategy!r} found {count} device: data parallelism needs 2 or more; {hint}")
    if strategy == "mirrored":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(devices).scope()
    return keras.distribution.DataParallel(devices=devices).scope()


def synchronize_batch_norm(model, strategy):
    """Under ``"mirrored"``, makes every ``BatchNormalization`` layer of ``model`` use global-batch statistics.

    The statistics are those one device computes on the whole batch, in two passes
    (``keras_morsa.backend.tensorflow.global_batch_norm``): Keras's own ``synchronized=True`` takes the
    variance as E[x^2] - E[x]^2, which in float32 cancelled enough to move FastGAN's discriminator gradients
    up to 3e-2 relative off one device's.

    Returns the number of layers switched (0 for other strategies, which need no change).
    """
    check_strategy(strategy)
    if strategy != "mirrored":
        return 0
    from keras_morsa.backend.tensorflow import global_batch_norm  # mirrored runs on TensorFlow only

    switched = 0
    # Keras has no public recursive layer walk; _flatten_layers is what Model.summary and saving use.
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            global_batch_norm(layer)
            switched += 1
    return switched
