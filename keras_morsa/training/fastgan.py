"""The FastGAN game as a ``keras.Model``: hinge losses, reconstruction loss, DiffAugment, EMA generator.

One training iteration (``train_step``, called by ``fit`` with a batch of real images in [-1, 1]):

1. ``fake_images``: latents ``z ~ N(0, 1)`` from the model's ``SeedGenerator``, ``G(z)`` in training mode,
   then DiffAugment on the full and the small fake together.
2. Discriminator step on ``discriminator_loss``: the real batch is augmented, its small copy is the
   augmented image block-averaged to D's small size (so both views stay consistent); with ``u ~ U(0.8, 1)``
   drawn per logit, ``d_real = mean(relu(u - D(real)))`` and ``d_fake = mean(relu(u' + D(fake)))``; D's
   three decoders reconstruct the augmented real image, its small copy and one random quarter (``part``
   drawn from the seed generator), compared with L1 (mean absolute error) or with the model's
   ``reconstruction_loss`` (e.g. the perceptual distance of :mod:`keras_morsa.training.perceptual`), summed
   over the three: ``rec_loss``. ``d_loss = d_real + d_fake + rec_loss``; D's optimizer takes one step.
3. Generator step on ``generator_loss``: ``g_loss = -mean(D(fake))`` with the updated D, differentiated
   through the same augmented fakes (G runs once per iteration, as in the reference implementation).
4. ``finish_step``: the EMA generator moves toward G, ``ema = decay * ema + (1 - decay) * G`` for every
   trainable weight, and takes a copy of G's non-trainable state (batch-norm statistics, spectral-norm
   vectors, noise seeds), so its batch-norm layers in inference mode use G's current statistics.

Class-conditional game (a generator and a discriminator with ``num_classes`` > 0): ``fit`` batches are
``(images, labels)``; the fakes of a batch are drawn for the real batch's labels (so a class-balanced input
balances the fakes too), G gets them with the latents and D gets each image's label, real or fake. The
losses, augmentation, reconstructions and EMA are the same; the EMA generator is conditional too.

Only the gradient plumbing differs per backend (``keras_morsa.backend``); the four functions above
are written once in ``keras.ops``. Samples the toolkit shows or saves come from ``ema_generator`` in
inference mode (``ema_generator`` or ``FastGAN.call``), never from the raw ``generator``.

The logs of each step are the running means over the epoch of ``d_loss``, ``d_real``, ``d_fake``,
``rec_loss`` and ``g_loss`` (``LOSS_NAMES``). Nothing is skipped or clipped: a non-finite loss enters its
mean and keeps it non-finite until the epoch ends, so a callback checking the logs on every batch (the run
loop's non-finite guard in ``keras_morsa.training.callbacks``) sees it at the step it happened.

The reference's LPIPS-VGG reconstruction loss needs pretrained weights, so L1 is the default; a perceptual
distance on a frozen VGG16 loaded from a local weights file is the option (``reconstruction_loss``).
"""

import keras
from keras import ops

from keras_morsa import backend
from keras_morsa.errors import UserError
from keras_morsa.models.fastgan import downscale, reconstruction_targets
from keras_morsa.models.fastgan.layers import call_with_labels
from keras_morsa.training.checkpoint import checkpoint_variables
from keras_morsa.training.diffaugment import diff_augment, parse_policy

#: Names of the scalar losses ``train_step`` returns, in log order.
LOSS_NAMES = ("d_loss", "d_real", "d_fake", "rec_loss", "g_loss")


class FastGAN(keras.Model):
    """The FastGAN game (generator, discriminator, EMA generator) trained with ``fit``.

    Args:
        generator: a ``keras_morsa.models.fastgan.Generator`` (``G(z) -> (images, images_small)``,
            with attribute ``nz`` and a ``get_config``). Built here.
        discriminator: a ``keras_morsa.models.fastgan.Discriminator`` matching the generator's sizes. Built
            here.
        ema_decay: decay of the generator's exponential moving average, in [0, 1).
        policy: DiffAugment policy, e.g. ``"color,translation,cutout"``; empty for none.
        seed: seed of the model's ``SeedGenerator`` (latents, margins, the quarter, augmentation).
        reconstruction_loss: ``None`` for L1 (mean absolute error), or a callable
            ``(reconstructions, targets) -> float32 scalar`` applied to each of D's three reconstructions,
            e.g. a :class:`keras_morsa.training.perceptual.PerceptualDistance`. Keep it out of Keras's
            tracking (a plain object, not a layer): its weights are then neither trained nor checkpointed.

    Attributes:
        generator, discriminator, ema_generator: the networks (``ema_generator`` is a non-trainable clone of
            ``generator``).
        seed_generator: the ``keras.random.SeedGenerator`` of every draw in the game.
        g_optimizer, d_optimizer: set by :meth:`compile` (``optimizer`` is ``g_optimizer``).

    All training state is in ``model.variables`` (G, D, EMA G, batch-norm statistics, spectral-norm
    vectors, every seed state, and, after ``compile``, the D optimizer's variables) plus
    ``model.g_optimizer.variables``; :meth:`state_variables` lists them all once.

    Example:
        gan = FastGAN(Generator(ngf=8, nz=16, image_size=64), Discriminator(ndf=8, image_size=64), seed=0)
        gan.compile(g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5),
                    d_optimizer=keras.optimizers.Adam(4e-4, beta_1=0.5))
        gan.fit(real_image_dataset, epochs=1, steps_per_epoch=100)
        samples, _ = gan.ema_generator(z)
    """

    def __init__(
        self,
        generator,
        discriminator,
        ema_decay=0.999,
        policy="color,translation",
        seed=0,
        reconstruction_loss=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= float(ema_decay) < 1.0:
            raise UserError(f"ema_decay={ema_decay}: expected a number in [0, 1), e.g. 0.999")
        parse_policy(policy)
        self.ema_decay = float(ema_decay)
        self.policy = policy
        self.seed = seed
        self.reconstruction_loss = reconstruction_loss or _l1
        self.latent_dim = int(generator.nz)
        self.num_classes = int(getattr(generator, "num_classes", 0))
        if int(getattr(discriminator, "num_classes", 0)) != self.num_classes:
            raise UserError(
                f"generator num_classes={self.num_classes} but discriminator num_classes="
                f"{getattr(discriminator, 'num_classes', 0)}: condition both on the same classes or "
                "neither"
            )
        self.generator = generator
        self.discriminator = discriminator
        self.seed_generator = keras.random.SeedGenerator(seed, name="fastgan_seed")

        z = ops.zeros((1, self.latent_dim))
        labels = ops.zeros((1,), "int32") if self.num_classes else None
        images, images_small = call_with_labels(generator, z, labels=labels)
        discriminator.call_with_reconstructions(images, images_small, ops.convert_to_tensor(0, "int32"), labels)
        self.ema_generator = generator.__class__.from_config(generator.get_config())
        call_with_labels(self.ema_generator, z, labels=labels)
        self.ema_generator.trainable = False
        self._ema_pairs = self._pair_ema_variables()
        for ema, source in self._ema_pairs:
            ema.assign(ops.copy(source))
        self.small_size = int(images_small.shape[1])
        self.loss_trackers = [keras.metrics.Mean(name=name) for name in LOSS_NAMES]
        # Built by construction; fit must not try to call the model on images.
        self.built = True

    def _pair_ema_variables(self):
        ema_variables, variables = self.ema_generator.variables, self.generator.variables
        shapes = [tuple(v.shape) for v in variables]
        if [tuple(v.shape) for v in ema_variables] != shapes:
            raise UserError(
                f"generator {type(self.generator).__name__}: from_config(get_config()) builds different "
                "variables; the EMA copy needs a get_config that reproduces the generator"
            )
        return list(zip(ema_variables, variables))

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        """Attaches one optimizer per network and builds both (so their state exists before ``fit``).

        Args:
            g_optimizer: optimizer of the generator (becomes ``self.optimizer``).
            d_optimizer: optimizer of the discriminator; its variables are tracked in ``self.variables``
                so that they travel with the model state on JAX and in checkpoints.
            **kwargs: passed to ``keras.Model.compile`` (e.g. ``jit_compile``, ``steps_per_execution``).
        """
        if g_optimizer is d_optimizer:
            raise UserError("g_optimizer and d_optimizer are the same object: give each network its own optimizer")
        policies = {network.dtype_policy.name for network in (self.generator, self.discriminator)}
        if "mixed_float16" in policies:
            # The GAN steps do not scale their losses (optimizer.scale_loss), so float16 gradients would
            # underflow unnoticed; bfloat16 has float32's range and needs no scaling.
            raise UserError(
                "dtype policy 'mixed_float16' is not supported by the FastGAN step (no loss "
                "scaling); accepted: 'float32' or 'mixed_bfloat16'"
            )
        super().compile(optimizer=g_optimizer, **kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)
        self._d_optimizer_variables = list(d_optimizer.variables)

    @property
    def metrics(self):
        return list(self.loss_trackers)

    def state_variables(self):
        """Every variable that defines the training state, each once: exactly what a checkpoint holds."""
        return list(checkpoint_variables(self).values())

    def call(self, z, labels=None, training=False):
        """Images from the EMA generator (the one every shown or saved sample comes from); ``labels`` int [B]
        for a conditional game."""
        images, _ = call_with_labels(self.ema_generator, z, labels=labels, training=training)
        return _float32(images)

    # The functions below are the shared part of a training iteration, called by the per-backend plumbing
    # in keras_morsa.backend (which differentiates them). They are written in the stateful style: on JAX
    # the plumbing runs them inside a StatelessScope.

    def real_images(self, data):
        """The real image batch of a ``fit`` batch (images, or a tuple whose first item is the images)."""
        return data[0] if isinstance(data, (tuple, list)) else data

    def real_labels(self, data):
        """The class labels of a ``fit`` batch ``(images, labels)`` for a conditional game, else ``None``."""
        if not self.num_classes:
            return None
        if not isinstance(data, (tuple, list)) or len(data) < 2:
            raise UserError(
                "a class-conditional FastGAN trains on (images, labels) batches; got images only "
                "(use keras_morsa.data.pipeline.conditional_gan_dataset)"
            )
        return ops.cast(data[1], "int32")

    def _per_sample(self, draw, batch_size, *shape):
        # Drawn for the global batch and sliced, so that N replicas see the same numbers as one device.
        return backend.replica_share(draw, batch_size, shape, self.seed_generator)

    def fake_images(self, batch_size, labels=None):
        """Draws latents, runs G in training mode (on ``labels``, conditional only) and augments:
        ``(images, images_small)``."""
        z = self._per_sample(keras.random.normal, batch_size, self.latent_dim)
        images, images_small = call_with_labels(self.generator, z, labels=labels, training=True)
        # Under a mixed policy G computes in bfloat16; augmentation and losses stay in float32.
        images, images_small = _float32(images), _float32(images_small)
        return tuple(diff_augment([images, images_small], self.policy, self.seed_generator))

    def _margins(self, logits):
        return self._per_sample(
            lambda shape, seed: keras.random.uniform(shape, 0.8, 1.0, seed=seed),
            ops.shape(logits)[0],
            *ops.shape(logits)[1:],
        )

    def discriminator_loss(self, real_images, fakes, labels=None):
        """D's loss on a real batch and (constant) augmented fakes, both of ``labels`` (conditional only):
        ``(d_loss, {name: scalar})``."""
        real = diff_augment(ops.cast(real_images, "float32"), self.policy, self.seed_generator)
        real_small = downscale(real, self.small_size)
        part = keras.random.randint((), 0, 4, dtype="int32", seed=self.seed_generator)
        logits, reconstructions = self.discriminator.call_with_reconstructions(
            real, real_small, part, labels, training=True
        )
        logits, reconstructions = _float32(logits), [_float32(r) for r in reconstructions]
        d_real = ops.mean(ops.relu(self._margins(logits) - logits))
        targets = reconstruction_targets(real, part, int(reconstructions[0].shape[1]))
        rec_loss = sum(self.reconstruction_loss(r, t) for r, t in zip(reconstructions, targets))
        fake_logits = _float32(call_with_labels(self.discriminator, *fakes, labels=labels, training=True))
        d_fake = ops.mean(ops.relu(self._margins(fake_logits) + fake_logits))
        d_loss = d_real + d_fake + rec_loss
        return d_loss, {"d_loss": d_loss, "d_real": d_real, "d_fake": d_fake, "rec_loss": rec_loss}

    def generator_loss(self, fakes, labels=None):
        """G's loss on augmented fakes (differentiable w.r.t. them): ``-mean(D(fakes))``."""
        return -ops.mean(_float32(call_with_labels(self.discriminator, *fakes, labels=labels, training=True)))

    def finish_step(self, losses):
        """Updates the EMA generator and the loss means; returns the logs dict."""
        decay = self.ema_decay
        for ema, source in self._ema_pairs:
            if source.trainable:
                ema.assign(decay * ema + (1.0 - decay) * ops.cast(source, ema.dtype))
            else:
                ema.assign(ops.copy(source))
        for tracker in self.loss_trackers:
            tracker.update_state(losses[tracker.name])
        return {tracker.name: tracker.result() for tracker in self.loss_trackers}

    def train_step(self, *args):
        # (data,) on TensorFlow and torch; (state, data) on JAX.
        return backend.train_step(self, *args)


def _float32(x):
    # Losses, margins and saved images are float32 whatever the networks' compute dtype (mixed_bfloat16).
    return ops.cast(x, "float32")


def _l1(reconstructions, targets):
    return ops.mean(ops.abs(reconstructions - targets))
