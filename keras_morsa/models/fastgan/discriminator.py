"""FastGAN discriminator (arXiv 2101.04775) as a Keras 3 subclassed model, with its reconstruction decoders."""

import keras
from keras import ops

from keras_morsa.errors import UserError
from keras_morsa.models.fastgan import layers as fl
from keras_morsa.models.fastgan.generator import check_image_size, small_image_size

# Channels as multiples of ndf, keyed like the reference's nfc_multi. A big-path map of side r carries
# nfc[2r] channels, a small-path map of side r carries nfc[4r].
DISCRIMINATOR_MULTIPLIERS = {4: 16, 8: 16, 16: 8, 32: 4, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
# Skip-layer excitation on the big path: {side of the gated map: side of the gating map}.
DISCRIMINATOR_SLE = {32: 256, 16: 128, 8: 64}
# Side of the big-path map whose quarters the part decoder reconstructs.
PART_SIDE = 16


def downscale(images, size):
    """Average-pools square NHWC images to ``size`` (their side must be a multiple of it).

    Used for the discriminator's reconstruction targets and for a real image's small copy. The reference
    resizes with nearest neighbour, which keeps one pixel in four; the block mean is an alias-free target
    and gives the same numbers on every backend.
    """
    return fl.adaptive_average_pool(images, size)


def reconstruction_targets(images, part, size):
    """L1 targets of :meth:`Discriminator.call_with_reconstructions` for real ``images``.

    Args:
        images: real images [B, S, S, C] (as fed to the discriminator's big path).
        part: int32 scalar tensor in [0, 4), the same value given to the discriminator.
        size: side of the reconstructions (``Discriminator.reconstruction_size``).

    Returns:
        ``(target_big, target_small, target_part)``: the image at ``size`` (twice: the big and small
        decoders both reconstruct the whole image, as in the reference) and quarter ``part`` of the image
        (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) at ``size``.
    """
    whole = downscale(images, size)
    return whole, whole, downscale(fl.select_quarter(images, part), size)


@keras.saving.register_keras_serializable(package="keras_morsa")
class Discriminator(keras.Model):
    """FastGAN discriminator: hinge logits from a big and a small path, plus three reconstruction decoders.

    Big path: a stem brings the image to a map of side ``min(image_size, 256)`` (1024 px: two 4x4 stride-2
    convs, the second with batch norm; 512 px: one 4x4 stride-2 conv; 256 px and below: a 3x3 stride-1
    conv; LeakyReLU 0.2 after each), then compound down-blocks halve it to 8x8. Skip-layer excitation gates
    the 32 map by the 256 map, the 16 map by the 128 map and the 8 map by the 64 map. A 1x1 conv, batch
    norm, LeakyReLU and a 4x4 valid conv turn the 8x8 map into 5x5 logits. Small path: a 4x4 stride-2 conv
    with LeakyReLU, then plain down-blocks to 8x8, and a 4x4 valid conv -> 5x5 logits. ``call`` returns both
    logit maps flattened and concatenated: [B, 50] at every image size.

    Class-conditional (``num_classes`` > 0): projection (Miyato & Koyama 2018, arXiv 1802.05637). Each
    path's last feature map is averaged over space to ``phi`` ([B, C]) and ``<embedding(label), phi>``, one
    learned vector per class and path, is added to every one of that path's 25 patch logits; the logits,
    reconstructions and decoders are otherwise unchanged (the decoders see no label). ``call`` then takes
    int ``labels`` [B].

    Reconstructions (real images only): the decoders reconstruct the whole image from the last big-path
    map, the whole image from the last small-path map, and quarter ``part`` of the image from the matching
    quarter of the 16x16 big-path map; each at ``reconstruction_size`` (the small image's side).

    64 and 128 px are the same design cut short (the reference starts at 256): the stem keeps the image's
    side, so the big path has fewer compound down-blocks, the small image is half size, and its path fewer
    plain down-blocks; channels per map side are unchanged and excitation pairs whose source map is missing
    are dropped. 128 px: stem to 128, four compound blocks (64, 32, 16, 8), SLE 128->16 and 64->8; small
    path 64 -> 32 (stem), two plain blocks (16, 8); decoders to 64x64. 64 px: stem to 64, three compound
    blocks (32, 16, 8), SLE 64->8; small path 32 -> 16 (stem), one plain block (8); decoders to 32x32.

    Args:
        ndf: base width (64 in the paper).
        image_size: 64, 128, 256, 512 or 1024.
        attention_resolutions: big-path map sides (8 .. ``min(image_size, 256)``) after which a SAGAN
            self-attention block is inserted (after the map's excitation gate, if any).
        channels: image channels.
        decoder_width: base width of the three reconstruction decoders (32, the reference's, whatever
            ``ndf``). At 64 px and ndf 16 the decoders are most of D's parameters and half of a CPU
            training iteration; a narrower decoder is a documented reduction for CPU configs.
        num_classes: 0 (unconditional), or the number of class labels of a projection discriminator.

    Call args (``call``):
        images: [B, S, S, C] in [-1, 1].
        images_small: [B, s, s, C], s = ``small_size`` (the generator's second output, or
            ``downscale(images, small_size)`` for real images).
        part: optional int32 scalar tensor in [0, 4). When given, ``call`` also returns the
            reconstructions, as :meth:`call_with_reconstructions` does; this keyword form lets JAX
            plumbing reach the decoders through ``stateless_call``.
        labels: int [B] in [0, num_classes): required with ``num_classes`` > 0, refused otherwise.
        training: batch-norm mode and spectral-norm power iteration.

    Returns:
        logits [B, 50]; with ``part``: ``(logits, (rec_big, rec_small, rec_part))``.

    Example:
        >>> d = Discriminator(ndf=8, image_size=64)
        >>> d(keras.ops.zeros((2, 64, 64, 3)), keras.ops.zeros((2, 32, 32, 3))).shape
        (2, 50)
    """

    def __init__(
        self, ndf=64, image_size=256, attention_resolutions=(), channels=3, decoder_width=32, num_classes=0, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_classes = fl.check_num_classes(num_classes)
        self.ndf = int(ndf)
        self.image_size = check_image_size(image_size)
        self.small_size = small_image_size(image_size)
        self.reconstruction_size = self.small_size
        self.channels = int(channels)
        self.widths = {key: int(mult * self.ndf) for key, mult in DISCRIMINATOR_MULTIPLIERS.items()}
        top = min(self.image_size, 256)
        self.big_sides = [top // 2**i for i in range(top.bit_length() - 3)]  # top .. 8
        self.attention_resolutions = fl.check_attention_resolutions(
            attention_resolutions, self.big_sides, "discriminator"
        )

        stem_sides = [side for side in (512, 256) if side < self.image_size] or [self.image_size]
        self.stem_convs = []
        for i, side in enumerate(stem_sides):
            downsample = side < self.image_size
            self.stem_convs.append(
                fl.SpectralConv2D(
                    self.widths[2 * side],
                    4 if downsample else 3,
                    strides=2 if downsample else 1,
                    name=f"stem_conv{i + 1}",
                )
            )
        # The reference normalises the second stem conv at 1024 px only.
        self.stem_norm = fl.batch_norm("stem_bn") if len(stem_sides) == 2 else None
        self.downs = [fl.CompoundDownBlock(self.widths[2 * side], name=f"down_{side}") for side in self.big_sides[1:]]
        self.sle_sides = [side for side in self.big_sides if DISCRIMINATOR_SLE.get(side) in self.big_sides]
        self.sles = [
            fl.SkipLayerExcitation(self.widths[2 * side], name=f"sle_{DISCRIMINATOR_SLE[side]}_{side}")
            for side in self.sle_sides
        ]
        self.attentions = [fl.SelfAttention(name=f"attention_{side}") for side in self.attention_resolutions]
        self.logits_conv = fl.SpectralConv2D(self.widths[8], 1, padding="valid", name="logits_conv")
        self.logits_norm = fl.batch_norm("logits_bn")
        self.logits_out = fl.SpectralConv2D(1, 4, padding="valid", name="logits_out")

        self.small_sides = [self.small_size // 2**i for i in range(1, self.small_size.bit_length() - 3)]
        self.small_stem = fl.SpectralConv2D(self.widths[4 * self.small_sides[0]], 4, strides=2, name="small_stem")
        self.small_downs = [
            fl.DownBlock(self.widths[4 * side], name=f"small_down_{side}") for side in self.small_sides[1:]
        ]
        self.small_logits = fl.SpectralConv2D(1, 4, padding="valid", name="small_logits")

        self.decoder_big, self.decoder_small, self.decoder_part = (
            fl.ReconstructionDecoder(self.reconstruction_size, self.channels, decoder_width, name=f"decoder_{n}")
            for n in ("big", "small", "part")
        )
        self.decoder_width = self.decoder_big.width  # validated there
        if self.num_classes:
            self.projections = [
                keras.layers.Embedding(
                    self.num_classes, width, embeddings_initializer=fl.NumpyNormal(0.0, 0.02), name=f"projection_{path}"
                )
                for path, width in (("big", self.widths[8]), ("small", self.widths[32]))
            ]

    def build(self, images_shape, images_small_shape=None, part_shape=None, labels_shape=None):
        # Keras passes one shape per call argument; everything but the batch follows from image_size.
        expected = {"images": (self.image_size, self.channels), "images_small": (self.small_size, self.channels)}
        for name, shape in (("images", images_shape), ("images_small", images_small_shape)):
            side, channels = expected[name]
            if shape is not None and tuple(shape[1:]) != (side, side, channels):
                raise UserError(
                    f"{name} of shape {tuple(shape)} do not fit this discriminator; expected [B, {side}, {side}, "
                    f"{channels}]"
                )
        batch = images_shape[0]

        def big(side):
            return (batch, side, side, self.widths[2 * side])

        side, channels = self.image_size, self.channels
        for conv in self.stem_convs:
            conv.build((batch, side, side, channels))
            side, channels = side // conv.strides, conv.filters
        if self.stem_norm is not None:
            self.stem_norm.build(big(side))
        for side, down in zip(self.big_sides[1:], self.downs):
            down.build(big(2 * side))
        for side, sle in zip(self.sle_sides, self.sles):
            sle.build(big(DISCRIMINATOR_SLE[side]), big(side))
        for side, attention in zip(self.attention_resolutions, self.attentions):
            attention.build(big(side))
        self.logits_conv.build(big(8))
        self.logits_norm.build((batch, 8, 8, self.widths[8]))
        self.logits_out.build((batch, 8, 8, self.widths[8]))

        def small(side):
            return (batch, side, side, self.widths[4 * side])

        self.small_stem.build((batch, self.small_size, self.small_size, self.channels))
        for side, down in zip(self.small_sides[1:], self.small_downs):
            down.build(small(2 * side))
        self.small_logits.build(small(8))
        self.decoder_big.build(big(8))
        self.decoder_small.build(small(8))
        self.decoder_part.build((batch, PART_SIDE // 2, PART_SIDE // 2, self.widths[2 * PART_SIDE]))
        for projection in getattr(self, "projections", ()):
            projection.build((batch,))

    def _encode(self, images, images_small, training, labels=None):
        """Logits [B, 50] and the maps the decoders read: the last big-path map, the last small-path map,
        and the 16x16 big-path map whose quarters the part decoder sees."""
        fl.check_labels(f"discriminator {self.name!r}", self.num_classes, labels)
        x = images
        for conv in self.stem_convs:
            x = conv(x, training=training)
            if conv is self.stem_convs[-1] and self.stem_norm is not None:
                x = self.stem_norm(x, training=training)
            x = fl.leaky_relu(x)
        features = {self.big_sides[0]: x}
        sles = dict(zip(self.sle_sides, self.sles))
        attentions = dict(zip(self.attention_resolutions, self.attentions))
        if self.big_sides[0] in attentions:
            features[self.big_sides[0]] = attentions[self.big_sides[0]](x, training=training)
        for side, down in zip(self.big_sides[1:], self.downs):
            x = down(features[2 * side], training=training)
            if side in sles:
                x = sles[side](features[DISCRIMINATOR_SLE[side]], x, training=training)
            if side in attentions:
                x = attentions[side](x, training=training)
            features[side] = x
        big_features = fl.leaky_relu(self.logits_norm(self.logits_conv(x, training=training), training=training))
        big_logits = self.logits_out(big_features, training=training)

        small = fl.leaky_relu(self.small_stem(images_small, training=training))
        for down in self.small_downs:
            small = down(small, training=training)
        small_logits = self.small_logits(small, training=training)

        paths = [(big_logits, big_features), (small_logits, small)]
        flat = []
        for i, (path_logits, path_features) in enumerate(paths):
            path_logits = ops.reshape(path_logits, (ops.shape(path_logits)[0], -1))
            if self.num_classes:
                path_logits = path_logits + self._projection(i, path_features, labels)
            flat.append(path_logits)
        return ops.concatenate(flat, axis=-1), x, small, features[PART_SIDE]

    def _projection(self, path, features, labels):
        """``<embedding(label), mean over space of features>`` of one path, [B, 1]."""
        phi = ops.mean(features, axis=(1, 2))
        embedded = ops.cast(self.projections[path](ops.cast(labels, "int32")), phi.dtype)
        return ops.sum(embedded * phi, axis=-1, keepdims=True)

    def call(self, images, images_small, part=None, labels=None, training=False):
        logits, last_big, last_small, part_map = self._encode(images, images_small, training, labels)
        if part is None:
            return logits
        reconstructions = (
            self.decoder_big(last_big, training=training),
            self.decoder_small(last_small, training=training),
            self.decoder_part(fl.select_quarter(part_map, part), training=training),
        )
        return logits, reconstructions

    def call_with_reconstructions(self, images, images_small, part, labels=None, training=True):
        """Logits and the three reconstructions of real images.

        Args:
            images, images_small: as for ``call``.
            part: int32 scalar tensor in [0, 4): which quarter the part decoder reconstructs (0 top-left,
                1 top-right, 2 bottom-left, 3 bottom-right). A tensor, so that one compiled graph serves
                every value.
            labels: int [B] class labels (a conditional discriminator only).
            training: True by default: reconstructions are a training-time loss.

        Returns:
            ``(logits, (rec_big, rec_small, rec_part))``, reconstructions [B, r, r, C] in [-1, 1] with
            r = ``reconstruction_size``; compare them with :func:`reconstruction_targets`.
        """
        return fl.call_with_labels(self, images, images_small, part=part, labels=labels, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            ndf=self.ndf,
            image_size=self.image_size,
            attention_resolutions=list(self.attention_resolutions),
            channels=self.channels,
            decoder_width=self.decoder_width,
        )
        if self.num_classes:  # an unconditional discriminator's config stays what it always was
            config.update(num_classes=self.num_classes)
        return config
