"""Building blocks of FastGAN (arXiv 2101.04775), written once in ``keras.ops`` for every backend.

Every convolution is spectrally normalised the way PyTorch's ``torch.nn.utils.spectral_norm`` does it: the
raw kernel is the trainable variable and each call divides it by an estimate of its largest singular value.
The estimate comes from a non-trainable vector ``u`` that one power iteration refines on every training call
(``u`` is assigned inside ``call``, so under JAX it travels as non-trainable state through
``stateless_call``); inference reads the stored ``u`` and changes nothing. Keras's own
``SpectralNormalization`` wrapper instead overwrites the kernel with ``W / sigma``, a different training
dynamic, hence these layers.

Convolutions have no bias and start from N(0, 0.02); batch-norm scales start from N(1, 0.02) (the
reference's ``weights_init``). Batch norm uses PyTorch's defaults (momentum 0.1, i.e. Keras momentum 0.9,
epsilon 1e-5). All maps are NHWC.
"""

import keras
import numpy as np
from keras import ops

from keras_morsa import backend
from keras_morsa.errors import UserError

ACTIVATIONS = ("glu", "leaky_relu")
LEAKY_SLOPE = 0.2


@keras.saving.register_keras_serializable(package="keras_morsa")
class NumpyNormal(keras.initializers.Initializer):
    """N(mean, stddev) drawn with numpy's global generator (seeded by ``keras.utils.set_random_seed``).

    Keras's ``RandomNormal`` makes JAX compile its random-number generator once per variable shape (seconds
    each on a busy 2-core CPU, and FastGAN has dozens of shapes); numpy draws build the networks in about a
    second on every backend, and the same seed gives the same initial weights on all three.

    Args:
        mean: mean of the draws.
        stddev: standard deviation; 0 with ``unit_norm`` for a random direction.
        unit_norm: scale the draw to unit L2 norm (the power iteration's starting vector).
    """

    def __init__(self, mean=0.0, stddev=1.0, unit_norm=False):
        self.mean = float(mean)
        self.stddev = float(stddev)
        self.unit_norm = bool(unit_norm)

    def __call__(self, shape, dtype=None):
        values = np.random.normal(self.mean, self.stddev, size=tuple(shape))
        if self.unit_norm:
            values = values / np.linalg.norm(values)
        return ops.convert_to_tensor(values, dtype=dtype or "float32")

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "unit_norm": self.unit_norm}


def _l2_normalize(vector, epsilon):
    return vector / ops.maximum(ops.norm(vector), epsilon)


def batch_norm(name):
    """Batch norm with PyTorch's defaults and FastGAN's N(1, 0.02) scale initialisation."""
    return keras.layers.BatchNormalization(
        momentum=0.9,
        epsilon=1e-5,
        gamma_initializer=NumpyNormal(1.0, 0.02),
        name=name,
    )


@keras.saving.register_keras_serializable(package="keras_morsa")
class ConditionalBatchNorm(keras.layers.Layer):
    """Class-conditional batch norm (de Vries et al. 2017; BigGAN's, without its hypernetwork): the statistics
    of :func:`batch_norm` without its own scale and offset, then a scale and an offset looked up per class.

    Scales start from N(1, 0.02) and offsets from 0, as :func:`batch_norm`'s, for every class. The inner
    ``BatchNormalization`` is a sub-layer, so ``keras_morsa.training.distribute.synchronize_batch_norm``
    finds it like any other.

    Args:
        num_classes: number of class labels (>= 1).

    Call args:
        inputs: [B, H, W, C] maps.
        labels: int [B] class labels in [0, num_classes).
        training: batch-norm mode.
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_num_classes(num_classes, minimum=1)
        self.norm = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False, scale=False, name="bn")

    def build(self, inputs_shape, labels_shape=None):
        channels = int(inputs_shape[-1])
        self.norm.build(inputs_shape)
        self.gamma = self.add_weight(
            name="gamma", shape=(self.num_classes, channels), initializer=NumpyNormal(1.0, 0.02), trainable=True
        )
        self.beta = self.add_weight(
            name="beta", shape=(self.num_classes, channels), initializer="zeros", trainable=True
        )

    def call(self, inputs, labels, training=False):
        x = self.norm(inputs, training=training)
        labels = ops.cast(labels, "int32")
        gamma = ops.cast(ops.take(self.gamma, labels, axis=0), x.dtype)[:, None, None, :]
        beta = ops.cast(ops.take(self.beta, labels, axis=0), x.dtype)[:, None, None, :]
        return x * gamma + beta

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes)
        return config


def check_labels(name, num_classes, labels):
    """A UserError unless ``labels`` come exactly when the network is class-conditional (``num_classes`` > 0)."""
    if bool(num_classes) != (labels is not None):
        raise UserError(
            f"{name} has num_classes={num_classes}: " + ("call it with labels" if num_classes else "it takes no labels")
        )


def call_with_labels(layer, *args, labels=None, **kwargs):
    """``layer(*args, **kwargs)``, with ``labels=labels`` only when there are labels.

    An unconditional network or layer is so called exactly as before labels existed (plain batch norm takes
    none, and Keras infers build shapes from the arguments a call gets).
    """
    if labels is None:
        return layer(*args, **kwargs)
    return layer(*args, labels=labels, **kwargs)


def check_num_classes(num_classes, minimum=0):
    """``num_classes`` as an int >= ``minimum`` (0: an unconditional network), or a UserError."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < minimum:
        raise UserError(f"num_classes={num_classes!r}: expected an integer >= {minimum} (0: unconditional)")
    return int(num_classes)


def glu(x):
    """Gated linear unit over channels: the first half times the sigmoid of the second half."""
    value, gate = ops.split(x, 2, axis=-1)
    return value * ops.sigmoid(gate)


def leaky_relu(x):
    return ops.leaky_relu(x, negative_slope=LEAKY_SLOPE)


def upsample_nearest(x):
    """Doubles height and width by repeating pixels (PyTorch's ``Upsample(scale_factor=2)``)."""
    return ops.repeat(ops.repeat(x, 2, axis=1), 2, axis=2)


def adaptive_average_pool(x, size):
    """Average-pools a square map of side ``size * k`` down to ``size`` (PyTorch's adaptive pooling for
    the power-of-two sides FastGAN uses)."""
    side = x.shape[1]
    if side == size:
        return x
    if side < size or side % size:
        raise UserError(f"cannot average-pool a {side}x{side} map to {size}x{size}; need a multiple of {size}")
    factor = side // size
    return ops.average_pool(x, pool_size=factor, strides=factor, padding="valid")


def quarters(x):
    """The four quarters of NHWC maps, stacked on a new leading axis.

    Order (the reference's ``part`` index): 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
    """
    half_h, half_w = x.shape[1] // 2, x.shape[2] // 2
    return ops.stack(
        [
            x[:, :half_h, :half_w],
            x[:, :half_h, half_w:],
            x[:, half_h:, :half_w],
            x[:, half_h:, half_w:],
        ],
        axis=0,
    )


def select_quarter(x, part):
    """The quarter ``part`` (int32 scalar tensor in [0, 4), see :func:`quarters`) of NHWC maps ``x``.

    The four static crops are stacked and ``part`` gathers one of them, so a compiled graph (XLA, tf.function)
    serves every value of ``part`` without retracing; a data-dependent slice would not.
    """
    part = ops.cast(ops.convert_to_tensor(part), "int32")
    return ops.take(quarters(x), part, axis=0)


class _SpectralNormConv(keras.layers.Layer):
    """Shared spectral-norm reparametrisation; subclasses give the kernel layout and the convolution."""

    def __init__(self, filters, kernel_size, strides=1, padding="same", epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.padding = padding
        self.epsilon = epsilon

    def build(self, input_shape):
        # No autocast: under mixed precision the power iteration still runs in float32; only the
        # normalised kernel is cast to the inputs' dtype.
        self.kernel = self.add_weight(
            name="kernel",
            shape=self._kernel_shape(int(input_shape[-1])),
            initializer=NumpyNormal(0.0, 0.02),
            trainable=True,
            autocast=False,
        )
        self.u = self.add_weight(
            name="u",
            shape=(self.filters,),
            initializer=NumpyNormal(unit_norm=True),
            trainable=False,
            autocast=False,
        )

    def _kernel_matrix(self, kernel):
        """The kernel as [k * k * in, out]: the transpose of PyTorch's [out, in * k * k] (same singular values)."""
        raise NotImplementedError

    def _kernel_shape(self, in_channels):
        raise NotImplementedError

    def normalized_kernel(self, training=False):
        """``kernel / sigma``; a training call first refines ``u`` by one power iteration and stores it.

        Gradients flow through the kernel only; ``u`` and ``v`` are constants, as in PyTorch.
        """
        kernel = ops.convert_to_tensor(self.kernel)
        matrix = self._kernel_matrix(kernel)
        frozen = ops.stop_gradient(matrix)
        u = ops.convert_to_tensor(self.u)
        v = _l2_normalize(ops.matmul(frozen, u), self.epsilon)
        if training:
            u = _l2_normalize(ops.matmul(v, frozen), self.epsilon)
            self.u.assign(u)
        sigma = ops.sum(u * ops.matmul(v, matrix))
        return kernel / sigma

    def spectral_norm(self):
        """The current estimate of the kernel's largest singular value, from the stored ``u``."""
        matrix = self._kernel_matrix(ops.convert_to_tensor(self.kernel))
        return ops.norm(ops.matmul(matrix, ops.convert_to_tensor(self.u)))

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            epsilon=self.epsilon,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_morsa")
class SpectralConv2D(_SpectralNormConv):
    """2-D convolution without bias whose kernel is divided by its spectral norm (PyTorch style).

    Args:
        filters: output channels.
        kernel_size: square kernel side.
        strides: stride in both directions.
        padding: ``"same"`` or ``"valid"`` (``"same"`` with an even kernel and stride 2 pads one pixel on
            each side, like PyTorch's ``padding=1``).
        epsilon: floor of the norms in the power iteration.

    Example:
        >>> conv = SpectralConv2D(16, 3)
        >>> conv(keras.ops.ones((2, 8, 8, 3)), training=True).shape
        (2, 8, 8, 16)
    """

    def _kernel_shape(self, in_channels):
        return (self.kernel_size, self.kernel_size, in_channels, self.filters)

    def _kernel_matrix(self, kernel):
        return ops.reshape(kernel, (-1, self.filters))

    def call(self, inputs, training=False):
        kernel = backend.conv_kernel(ops.cast(self.normalized_kernel(training=bool(training)), inputs.dtype))
        return ops.conv(inputs, kernel, strides=self.strides, padding=self.padding)


@keras.saving.register_keras_serializable(package="keras_morsa")
class SpectralConv2DTranspose(_SpectralNormConv):
    """Transposed 2-D convolution without bias, spectrally normalised over output channels like PyTorch.

    Args are those of :class:`SpectralConv2D`; ``padding`` defaults to ``"valid"`` (FastGAN uses it to turn
    the 1x1 latent into a 4x4 map).
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, **kwargs)

    def _kernel_shape(self, in_channels):
        return (self.kernel_size, self.kernel_size, self.filters, in_channels)

    def _kernel_matrix(self, kernel):
        # PyTorch normalises ConvTranspose2d over its output channels (dim=1): move them last first.
        return ops.reshape(ops.transpose(kernel, (0, 1, 3, 2)), (-1, self.filters))

    def call(self, inputs, training=False):
        kernel = ops.cast(self.normalized_kernel(training=bool(training)), inputs.dtype)
        return ops.conv_transpose(inputs, kernel, strides=self.strides, padding=self.padding)


@keras.saving.register_keras_serializable(package="keras_morsa")
class NoiseInjection(keras.layers.Layer):
    """Adds ``weight * N(0, 1)`` per pixel (one draw shared by all channels); ``weight`` starts at 0.

    Like the reference, noise is drawn on every call, in training and inference; the draws come from the
    layer's ``SeedGenerator``.

    Args:
        seed: seed of the noise draws (None: from Keras's global seed).
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.weight = self.add_weight(name="weight", shape=(), initializer="zeros", trainable=True)

    def call(self, inputs):
        shape = ops.shape(inputs)
        # Drawn for the global batch and sliced: under data parallelism each replica gets its own rows of
        # the noise one device would draw, not a copy of the first rows.
        noise = backend.replica_share(
            lambda full_shape, seed: keras.random.normal(full_shape, dtype=inputs.dtype, seed=seed),
            shape[0],
            (shape[1], shape[2], 1),
            self.seed_generator,
        )
        return inputs + ops.cast(self.weight, inputs.dtype) * noise

    def get_config(self):
        config = super().get_config()
        config.update(seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="keras_morsa")
class SkipLayerExcitation(keras.layers.Layer):
    """Skip-layer excitation: a low-resolution map gates a high-resolution map channel-wise.

    Gate: adaptive average pool of the low map to 4x4, 4x4 valid conv, Swish, 1x1 conv, sigmoid.

    Args:
        filters: channels of the high-resolution map.

    Call args:
        low: [B, h, h, c] map (h a multiple of 4).
        high: [B, H, H, filters] map.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.squeeze = SpectralConv2D(self.filters, 4, padding="valid", name="squeeze")
        self.excite = SpectralConv2D(self.filters, 1, padding="valid", name="excite")

    def build(self, low_shape, high_shape):
        self.squeeze.build((low_shape[0], 4, 4, low_shape[-1]))
        self.excite.build((low_shape[0], 1, 1, self.filters))

    def call(self, low, high, training=False):
        gate = self.squeeze(adaptive_average_pool(low, 4), training=training)
        gate = self.excite(ops.silu(gate), training=training)
        return high * ops.sigmoid(gate)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters)
        return config


@keras.saving.register_keras_serializable(package="keras_morsa")
class SelfAttention(keras.layers.Layer):
    """SAGAN self-attention (arXiv 1805.08318): ``x + gamma * attention(x)``, ``gamma`` starting at 0.

    1x1 spectrally normalised convs give queries and keys (channels // 8, at least 1) and values (all
    channels); a softmax over all positions weighs the values. With ``gamma`` at 0 the block is the
    identity, so adding it does not disturb a network at initialisation. Memory grows with the fourth power
    of the map side: keep it to maps of 64x64 or less.
    """

    def build(self, input_shape):
        channels = int(input_shape[-1])
        reduced = max(1, channels // 8)
        self.query = SpectralConv2D(reduced, 1, padding="valid", name="query")
        self.key = SpectralConv2D(reduced, 1, padding="valid", name="key")
        self.value = SpectralConv2D(channels, 1, padding="valid", name="value")
        for conv in (self.query, self.key, self.value):
            conv.build(input_shape)
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros", trainable=True)

    def call(self, inputs, training=False):
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        positions = height * width

        def flat(conv):
            features = conv(inputs, training=training)
            return ops.reshape(features, (-1, positions, features.shape[-1]))

        query, key, value = flat(self.query), flat(self.key), flat(self.value)
        weights = ops.softmax(ops.matmul(query, ops.transpose(key, (0, 2, 1))), axis=-1)
        attended = ops.reshape(ops.matmul(weights, value), (-1, height, width, channels))
        return inputs + ops.cast(self.gamma, inputs.dtype) * attended


@keras.saving.register_keras_serializable(package="keras_morsa")
class UpBlock(keras.layers.Layer):
    """Nearest 2x upsample, 3x3 conv, batch norm, activation; ``compound`` repeats conv + noise + BN + act.

    With ``activation="glu"`` (FastGAN) each conv produces 2x ``filters`` channels that GLU halves; with
    ``"leaky_relu"`` (the study's variant) each conv produces ``filters`` channels followed by LeakyReLU(0.2).

    Args:
        filters: output channels.
        compound: the reference's ``UpBlockComp`` (two convs, each followed by noise injection).
        activation: ``"glu"`` or ``"leaky_relu"``.
        seed: seed of the noise draws of a compound block.
        num_classes: 0 (plain batch norm), or the number of classes of a conditional generator: every batch
            norm is then a :class:`ConditionalBatchNorm` and ``call`` takes ``labels``.
    """

    def __init__(self, filters, compound=False, activation="glu", seed=None, num_classes=0, **kwargs):
        super().__init__(**kwargs)
        check_activation(activation)
        self.filters = int(filters)
        self.compound = bool(compound)
        self.activation = activation
        self.seed = seed
        self.num_classes = check_num_classes(num_classes)
        conv_filters = self.filters * 2 if activation == "glu" else self.filters
        stages = 2 if self.compound else 1
        self.convs = [SpectralConv2D(conv_filters, 3, name=f"conv{i + 1}") for i in range(stages)]
        self.norms = [
            ConditionalBatchNorm(self.num_classes, name=f"bn{i + 1}") if self.num_classes else batch_norm(f"bn{i + 1}")
            for i in range(stages)
        ]
        self.noises = [
            NoiseInjection(seed=None if seed is None else seed + i, name=f"noise{i + 1}")
            for i in range(stages if self.compound else 0)
        ]

    def build(self, inputs_shape, labels_shape=None):
        # Keras matches build's arguments to call's by name when there are several: inputs -> inputs_shape.
        batch, side = inputs_shape[0], 2 * inputs_shape[1]
        channels = inputs_shape[-1]
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            conv.build((batch, side, side, channels))
            conv_shape = (batch, side, side, conv.filters)
            if self.noises:
                self.noises[i].build(conv_shape)
            norm.build(conv_shape)
            channels = self.filters

    def call(self, inputs, labels=None, training=False):
        check_labels(f"up-block {self.name!r}", self.num_classes, labels)
        x = upsample_nearest(inputs)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = conv(x, training=training)
            if self.noises:
                x = self.noises[i](x)
            x = call_with_labels(norm, x, labels=labels, training=training)
            x = apply_activation(x, self.activation)
        return x

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, compound=self.compound, activation=self.activation, seed=self.seed)
        if self.num_classes:
            config.update(num_classes=self.num_classes)
        return config


@keras.saving.register_keras_serializable(package="keras_morsa")
class DownBlock(keras.layers.Layer):
    """4x4 stride-2 conv, batch norm, LeakyReLU(0.2): halves the side.

    Args:
        filters: output channels.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.conv = SpectralConv2D(self.filters, 4, strides=2, name="conv")
        self.norm = batch_norm("bn")

    def build(self, input_shape):
        self.conv.build(input_shape)
        side = input_shape[1] // 2
        self.norm.build((input_shape[0], side, side, self.filters))

    def call(self, inputs, training=False):
        return leaky_relu(self.norm(self.conv(inputs, training=training), training=training))

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters)
        return config


@keras.saving.register_keras_serializable(package="keras_morsa")
class CompoundDownBlock(keras.layers.Layer):
    """Mean of two paths that halve the side: (4x4 stride-2 conv, BN, LReLU, 3x3 conv, BN, LReLU) and
    (2x2 average pool, 1x1 conv, BN, LReLU).

    Args:
        filters: output channels.
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.down = DownBlock(self.filters, name="down")
        self.refine = SpectralConv2D(self.filters, 3, name="refine_conv")
        self.refine_norm = batch_norm("refine_bn")
        self.direct = SpectralConv2D(self.filters, 1, padding="valid", name="direct_conv")
        self.direct_norm = batch_norm("direct_bn")

    def build(self, input_shape):
        side = input_shape[1] // 2
        half = (input_shape[0], side, side, input_shape[-1])
        out = (input_shape[0], side, side, self.filters)
        self.down.build(input_shape)
        self.refine.build(out)
        self.refine_norm.build(out)
        self.direct.build(half)
        self.direct_norm.build(out)

    def call(self, inputs, training=False):
        main = self.down(inputs, training=training)
        main = leaky_relu(self.refine_norm(self.refine(main, training=training), training=training))
        direct = ops.average_pool(inputs, pool_size=2, strides=2, padding="valid")
        direct = leaky_relu(self.direct_norm(self.direct(direct, training=training), training=training))
        return (main + direct) / 2

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters)
        return config


# The reference decoder's widths are the generator's multipliers on a fixed base of 32 channels
# (``decoder_width``): {16: 128, 32: 64, 64: 64, 128: 32}.
DECODER_MULTIPLIERS = {16: 4, 32: 2, 64: 2, 128: 1}


@keras.saving.register_keras_serializable(package="keras_morsa")
class ReconstructionDecoder(keras.layers.Layer):
    """The discriminator's small decoder: adaptive pool to 8x8, GLU up-blocks to ``output_size``, 3x3 conv
    to RGB, tanh.

    Args:
        output_size: side of the reconstruction, 32, 64 or 128 (the reference always uses 128).
        channels: output channels (3 for RGB).
        width: base width; the up-block to side ``s`` has ``DECODER_MULTIPLIERS[s] * width`` channels.
            32 is the reference (independent of ``ndf``).
    """

    def __init__(self, output_size=128, channels=3, width=32, **kwargs):
        super().__init__(**kwargs)
        if output_size not in (32, 64, 128):
            raise UserError(f"decoder output_size={output_size!r} is not supported; accepted: 32, 64, 128")
        self.output_size = int(output_size)
        self.channels = int(channels)
        self.width = _check_decoder_width(width)
        sides = [side for side in DECODER_MULTIPLIERS if side <= self.output_size]
        self.ups = [UpBlock(DECODER_MULTIPLIERS[side] * self.width, name=f"up_{side}") for side in sides]
        self.to_image = SpectralConv2D(self.channels, 3, name="to_image")

    def build(self, input_shape):
        batch, side, channels = input_shape[0], 8, input_shape[-1]
        for up in self.ups:
            up.build((batch, side, side, channels))
            side, channels = side * 2, up.filters
        self.to_image.build((batch, side, side, channels))

    def call(self, inputs, training=False):
        x = adaptive_average_pool(inputs, 8)
        for up in self.ups:
            x = up(x, training=training)
        return ops.tanh(self.to_image(x, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(output_size=self.output_size, channels=self.channels, width=self.width)
        return config


def _check_decoder_width(width):
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise UserError(f"decoder_width={width!r}: expected a positive integer (32 is the reference's)")
    return int(width)


def check_activation(activation):
    if activation not in ACTIVATIONS:
        raise UserError(f"activation={activation!r} is not supported; accepted: {', '.join(ACTIVATIONS)}")


def apply_activation(x, activation):
    return glu(x) if activation == "glu" else leaky_relu(x)


def check_attention_resolutions(attention_resolutions, available, network):
    """Returns the resolutions as a sorted tuple of ints; raises UserError for one ``network`` lacks."""
    resolutions = tuple(sorted(int(r) for r in attention_resolutions))
    for resolution in resolutions:
        if resolution not in available:
            accepted = ", ".join(str(r) for r in sorted(available))
            raise UserError(f"attention resolution {resolution} does not exist in this {network}; accepted: {accepted}")
    return resolutions
