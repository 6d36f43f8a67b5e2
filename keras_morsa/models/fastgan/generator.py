"""FastGAN generator (arXiv 2101.04775) as a Keras 3 subclassed model."""

import keras
from keras import ops

from keras_morsa.errors import UserError
from keras_morsa.models.fastgan import layers as fl

IMAGE_SIZES = (64, 128, 256, 512, 1024)

# Channels per map side, as multiples of ngf (the reference's nfc_multi).
GENERATOR_MULTIPLIERS = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
# Up-blocks that produce these sides are compound (two convs with noise injection).
COMPOUND_SIDES = (8, 32, 128, 512)
# Skip-layer excitation: {side of the gated map: side of the gating map}.
GENERATOR_SLE = {64: 4, 128: 8, 256: 16, 512: 32}


def check_image_size(image_size):
    if image_size not in IMAGE_SIZES:
        accepted = ", ".join(str(size) for size in IMAGE_SIZES)
        raise UserError(f"image_size={image_size!r} is not supported; accepted: {accepted}")
    return int(image_size)


def small_image_size(image_size):
    """Side of the auxiliary image: 128 from 256 px up, half the image below (64 -> 32, 128 -> 64)."""
    return min(128, check_image_size(image_size) // 2)


@keras.saving.register_keras_serializable(package="keras_morsa")
class Generator(keras.Model):
    """FastGAN generator: latent vector to an image of ``image_size`` and a small auxiliary image.

    Layout (side of each map; ``nfc[s] = int(multiplier[s] * ngf)``, see ``GENERATOR_MULTIPLIERS``):

    - init: z as a 1x1 map, 4x4 spectrally normalised transposed conv, batch norm, activation -> 4x4.
    - up-blocks to 8, 16, ..., ``image_size``; the ones producing 8, 32, 128, 512 are compound.
    - skip-layer excitation after the up-block producing 64 (gated by 4), 128 (by 8), 256 (by 16),
      512 (by 32); the 1024 map has none.
    - ``images``: 3x3 conv of the last map, ``images_small``: 1x1 conv of the map of side
      ``small_size = min(128, image_size // 2)``; tanh on both, at every size. (The reference applies tanh
      only at 1024 px and leaves its 256 and 512 px outputs unbounded; we bound every size so that saved
      images and the discriminator see the same range as the real images.)

    Class-conditional (``num_classes`` > 0, ``configs/common.py``'s ``model.conditional``): ``call`` takes
    int ``labels`` [B]. A learned label embedding of ``label_dim`` values is joined to the latent (the init
    layer sees ``[z, embedding(label)]`` as a 1x1 map of ``nz + label_dim`` channels), and every batch norm of
    the init layer and the up-blocks is a :class:`~keras_morsa.models.fastgan.layers.ConditionalBatchNorm`
    (a scale and an offset per class). SLE, GLU, noise injection and the outputs are unchanged. With
    ``num_classes=0`` (the default) the network, its weights and its config are exactly the unconditional
    one's.

    64 and 128 px are the same design cut short (the reference stops at 256): the up-blocks above
    ``image_size`` and the excitation pairs whose target exceeds it are dropped, and the small image comes
    from the half-size map. 128 px: up-blocks to 8 .. 128, SLE 4->64 and 8->128, small image 64x64 from the
    64 map. 64 px: up-blocks to 8 .. 64, SLE 4->64 only, small image 32x32 from the 32 map.

    Args:
        ngf: base width (64 in the paper).
        nz: latent size (256 in the paper).
        image_size: 64, 128, 256, 512 or 1024.
        attention_resolutions: map sides (4 .. ``image_size``) after which a SAGAN self-attention block is
            inserted (after the map's excitation gate, if any); memory grows fast above 64.
        activation: ``"glu"`` (FastGAN) or ``"leaky_relu"`` (the study's variant). It applies to the init
            layer and every up-block; the excitation gates keep Swish and sigmoid.
        channels: image channels.
        seed: seed of the noise-injection draws (None: from Keras's global seed).
        num_classes: 0 (unconditional), or the number of class labels of a class-conditional generator.
        label_dim: size of the label embedding joined to the latent (conditional only; None: ``nz // 4``).

    Call args:
        z: float [B, nz].
        labels: int [B] in [0, num_classes): required by a conditional generator, refused otherwise.
        training: batch-norm mode and spectral-norm power iteration.

    Returns:
        ``(images, images_small)``: [B, S, S, 3] and [B, s, s, 3], both in [-1, 1].

    Example:
        >>> g = Generator(ngf=8, nz=16, image_size=64)
        >>> images, small = g(keras.random.normal((2, 16)))
        >>> images.shape, small.shape
        ((2, 64, 64, 3), (2, 32, 32, 3))
    """

    def __init__(
        self,
        ngf=64,
        nz=256,
        image_size=256,
        attention_resolutions=(),
        activation="glu",
        channels=3,
        seed=None,
        num_classes=0,
        label_dim=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        fl.check_activation(activation)
        self.num_classes = fl.check_num_classes(num_classes)
        self.ngf = int(ngf)
        self.nz = int(nz)
        self.image_size = check_image_size(image_size)
        self.small_size = small_image_size(image_size)
        self.activation = activation
        self.channels = int(channels)
        self.seed = seed
        sides = [4 * 2**i for i in range(self.image_size.bit_length() - 2)]  # 4 .. image_size
        self.attention_resolutions = fl.check_attention_resolutions(attention_resolutions, sides, "generator")
        self.widths = {side: int(GENERATOR_MULTIPLIERS[side] * self.ngf) for side in sides}
        self.label_dim = 0
        if self.num_classes:
            self.label_dim = max(1, self.nz // 4) if label_dim is None else fl.check_num_classes(label_dim, 1)
            self.label_embedding = keras.layers.Embedding(
                self.num_classes,
                self.label_dim,
                embeddings_initializer=fl.NumpyNormal(0.0, 1.0),
                name="label_embedding",
            )

        init_filters = self.widths[4] * 2 if activation == "glu" else self.widths[4]
        self.init_conv = fl.SpectralConv2DTranspose(init_filters, 4, name="init_conv")
        self.init_norm = (
            fl.ConditionalBatchNorm(self.num_classes, name="init_bn") if self.num_classes else fl.batch_norm("init_bn")
        )
        self.up_sides = sides[1:]
        self.ups = [
            fl.UpBlock(
                self.widths[side],
                compound=side in COMPOUND_SIDES,
                activation=activation,
                seed=None if seed is None else seed + 2 * i,
                num_classes=self.num_classes,
                name=f"up_{side}",
            )
            for i, side in enumerate(self.up_sides)
        ]
        self.sle_sides = [side for side in self.up_sides if side in GENERATOR_SLE]
        self.sles = [
            fl.SkipLayerExcitation(self.widths[side], name=f"sle_{GENERATOR_SLE[side]}_{side}")
            for side in self.sle_sides
        ]
        self.attentions = [fl.SelfAttention(name=f"attention_{side}") for side in self.attention_resolutions]
        self.to_big = fl.SpectralConv2D(self.channels, 3, name="to_big")
        self.to_small = fl.SpectralConv2D(self.channels, 1, padding="valid", name="to_small")

    def build(self, z_shape, labels_shape=None):
        if z_shape[-1] != self.nz:
            raise UserError(f"latents of shape {tuple(z_shape)} do not fit this generator; expected [B, {self.nz}]")
        batch = z_shape[0]

        def shape(side):
            return (batch, side, side, self.widths[side])

        if self.num_classes:
            self.label_embedding.build((batch,))
        self.init_conv.build((batch, 1, 1, self.nz + self.label_dim))
        self.init_norm.build((batch, 4, 4, self.init_conv.filters))
        for side, up in zip(self.up_sides, self.ups):
            up.build(shape(side // 2))
        for side, sle in zip(self.sle_sides, self.sles):
            sle.build(shape(GENERATOR_SLE[side]), shape(side))
        for side, attention in zip(self.attention_resolutions, self.attentions):
            attention.build(shape(side))
        self.to_big.build(shape(self.image_size))
        self.to_small.build(shape(self.small_size))

    def call(self, z, labels=None, training=False):
        fl.check_labels(f"generator {self.name!r}", self.num_classes, labels)
        x = z
        if self.num_classes:
            embedded = ops.cast(self.label_embedding(ops.cast(labels, "int32")), z.dtype)
            x = ops.concatenate([z, embedded], axis=-1)
        x = self.init_conv(ops.reshape(x, (-1, 1, 1, self.nz + self.label_dim)), training=training)
        x = fl.call_with_labels(self.init_norm, x, labels=labels, training=training)
        x = fl.apply_activation(x, self.activation)
        features = {4: x}
        sles = dict(zip(self.sle_sides, self.sles))
        attentions = dict(zip(self.attention_resolutions, self.attentions))
        if 4 in attentions:
            features[4] = attentions[4](x, training=training)
        for side, up in zip(self.up_sides, self.ups):
            x = fl.call_with_labels(up, features[side // 2], labels=labels, training=training)
            if side in sles:
                x = sles[side](features[GENERATOR_SLE[side]], x, training=training)
            if side in attentions:
                x = attentions[side](x, training=training)
            features[side] = x
        images = ops.tanh(self.to_big(features[self.image_size], training=training))
        images_small = ops.tanh(self.to_small(features[self.small_size], training=training))
        return images, images_small

    def get_config(self):
        config = super().get_config()
        config.update(
            ngf=self.ngf,
            nz=self.nz,
            image_size=self.image_size,
            attention_resolutions=list(self.attention_resolutions),
            activation=self.activation,
            channels=self.channels,
            seed=self.seed,
        )
        if self.num_classes:  # an unconditional generator's config stays what it always was
            config.update(num_classes=self.num_classes, label_dim=self.label_dim)
        return config
