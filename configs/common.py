"""What the configs share (as big_vision's configs/common.py): the built-in dataset section, the FastGAN keys.

Not a config itself (no ``get_config``). A config file loads it by path, so that it works from any working
directory (``keras_morsa.cli.config_module``):

    from keras_morsa import cli

    common = cli.config_module(__file__, "common")
"""

import ml_collections

from keras_morsa.errors import check_variant


def builtin_data(**overrides):
    """The ``data`` section every stage starts from: the built-in dataset's build and its split.

    One definition, so the GAN stage, the study and the quality report render the same images and split
    them alike (the leak check compares their hashes).

    Keys:
        images_per_class, render_size, seed: the built-in dataset build (``morsa_parts.load``); render_size is
            the side of the rendered images, which the input pipelines resize to the model's own size
            (``model.image_size`` or ``image_size``). Unused with ``--data_dir``.
        test_fraction, split_seed: the split made when the dataset has no ``split_manifest.csv`` yet.
        overrides: keys added (the GAN stage adds val_fraction and flip).
    """
    return ml_collections.ConfigDict(
        dict(images_per_class=300, render_size=256, seed=0, test_fraction=0.3, split_seed=0, **overrides)
    )


def fastgan_base():
    """Every key ``keras_morsa.training.train_gan`` reads, at the paper's settings (256 px).

    Keys:
        seed: seeds the weights, the game's draws, the data order and the sample latents.
        data: :func:`builtin_data`, plus val_fraction (of the split) and flip (horizontal flips).
        model.image_size, ngf, ndf, nz, activation ("glu" or "leaky_relu"), attention_resolutions,
            decoder_width (D's reconstruction decoders; 32 is the reference's): the networks
            (``keras_morsa.models.fastgan``). model.image_size is the size trained at; training images of
            any size are resized to it. model.conditional: False (one GAN per class, the study's) or True:
            one class-conditional FastGAN for every class (``--class=all``; label embedding and conditional
            batch norm in G, projection in D, class-balanced batches), trained into ``<workdir>/conditional/``.
        train.batch_size, num_steps, g_lr, d_lr, beta_1, beta_2 (Adam), ema_decay, policy (DiffAugment).
        train.dtype_policy: ``"float32"`` or ``"mixed_bfloat16"`` (layers compute in bfloat16; weights, Adam
            state, the EMA generator and every loss stay float32). bfloat16 is faster only on accelerators
            and on CPUs with bf16 instructions; elsewhere it is emulated and much slower, and a
            ``PerformanceWarning`` says so (``train_gan.check_dtype_policy``).
        train.reconstruction: the loss of D's three reconstructions, ``"l1"`` (the default: mean absolute
            error, no pretrained weights) or ``"perceptual"`` (an LPIPS-like distance on a frozen VGG16,
            ``keras_morsa.training.perceptual``; about a VGG16 forward and backward pass per
            reconstruction, a GPU option). train.perceptual_weights: with ``"perceptual"``, the path of a
            local VGG16 ``*.weights.h5`` (saved from ``build_backbone("vgg16", ...)``, i.e. KerasCV's
            ``VGG16Backbone``); nothing is downloaded. The frozen VGG16 is not trained and not checkpointed.
        log_every, sample_every, checkpoint_every: intervals in steps; keep_checkpoints; num_samples: the
            size of the sample grid (a square number reads best).
        quality.enabled, num_samples, k, kid_subsets: the checkpoint quality monitor (``train_gan``'s module
            docstring): how many fixed EMA samples it scores, the k of coverage and the KID subsets.
        quality.features: what the monitor scores in: ``"classifier"`` (the default: the penultimate features
            of a classifier trained on every class's real train images, once per workdir, cached as
            ``<workdir>/quality_classifier.keras``), ``"random"`` (the seeded random CNN: no training, but it
            preferred formless early blobs on the built-in dataset, issue 11) or the path of a local
            ``.keras`` classifier / ``.weights.h5`` backbone. quality.image_size: the side samples and train
            images are resized to for the features (the classifier's input). quality.classifier: that
            classifier's budget (arch, steps, batch_size, learning_rate, dropout, bn_momentum), bin/gan_quality's
            (``configs/gan_quality.py``).
    """
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.data = builtin_data(val_fraction=0.0, flip=True)
    config.model = ml_collections.ConfigDict(
        dict(
            image_size=256,
            ngf=64,
            ndf=64,
            nz=256,
            activation="glu",
            attention_resolutions=(),
            decoder_width=32,
            conditional=False,
        )
    )
    config.train = ml_collections.ConfigDict(
        dict(
            batch_size=8,
            num_steps=50_000,
            g_lr=2e-4,
            d_lr=2e-4,
            beta_1=0.5,
            beta_2=0.999,
            ema_decay=0.999,
            policy="color,translation",
            reconstruction="l1",
            perceptual_weights="",
            dtype_policy="float32",
        )
    )
    config.log_every = 100
    config.sample_every = 1000
    config.checkpoint_every = 1000
    config.keep_checkpoints = 3
    config.num_samples = 16
    # 128 samples: the EMA generator's pass over them is most of the monitor's cost (its share of training
    # time: README, benchmarks/gan_quality_overhead.py).
    config.quality = ml_collections.ConfigDict(
        dict(
            enabled=True,
            num_samples=128,
            k=5,
            kid_subsets=10,
            features="classifier",
            image_size=64,
            classifier=quality_classifier(),
        )
    )
    return config


def fastgan_start(arg, variants=()):
    """The start of a FastGAN config's ``get_config(arg)``: ``arg`` checked against the config's ``variants``
    and ``"smoke"``, which every FastGAN config has (:func:`fastgan_smoke`), and a fresh :func:`fastgan_base`.

    Returns:
        ``(arg, config)``: ``arg`` as :func:`keras_morsa.errors.check_variant` returns it (None for the default).
    """
    return check_variant(arg, (*variants, "smoke")), fastgan_base()


def quality_classifier():
    """The budget of the classifier trained on the real train split for classifier features (bin/gan_quality
    and train_gan's monitor): MobileNetV3-Small from scratch, 1000 Adam steps of 32, the study's real-only
    recipe (``configs/eval_ratios.py``); ``backbone_library`` "keras_cv" or "keras_hub"."""
    return ml_collections.ConfigDict(
        dict(
            arch="mobilenet_v3_small",
            backbone_library="keras_cv",
            steps=1000,
            batch_size=32,
            learning_rate=3e-3,
            dropout=0.2,
            bn_momentum=0.9,
        )
    )


def fastgan_smoke(config):
    """Shrinks a :func:`fastgan_base` ``config`` in place to the tiny variant tests use (64 px, widths 8,
    decoders 4, nz 16, 6 steps, 8 images per class rendered at 64 px); returns it."""
    config.data.images_per_class = 8
    config.data.render_size = 64
    config.model.image_size = 64
    config.model.ngf = config.model.ndf = 8
    config.model.decoder_width = 4
    config.model.nz = 16
    config.model.attention_resolutions = tuple(r for r in config.model.attention_resolutions if r <= 16)
    config.train.batch_size = 4
    config.train.num_steps = 6
    config.log_every = config.sample_every = config.checkpoint_every = 2
    config.keep_checkpoints = 2
    config.num_samples = 4
    config.quality.num_samples = 8
    config.quality.k = 2
    config.quality.kid_subsets = 2
    # The random CNN: no classifier to train (MobileNetV3 costs ~30 s to compile); tests ask for the classifier.
    config.quality.features = "random"
    config.quality.image_size = 64
    config.quality.classifier.steps = 2
    config.quality.classifier.batch_size = 4
    return config
