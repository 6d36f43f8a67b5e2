"""The real/synthetic ratio study (bin/eval_ratios).

    bin/eval_ratios --synthetic_dir=runs/synthetic --workdir=runs/study                # this config (CPU)
    bin/eval_ratios --config=configs/eval_ratios.py:full --synthetic_dir=... --workdir=...  # + VGG16, Large
    bin/eval_ratios --config=configs/eval_ratios.py:strategies --synthetic_dir=... --workdir=...  # round two
    bin/eval_ratios --config=configs/eval_ratios.py:smoke ...                           # tiny, for tests

Default: MobileNetV3-Small from scratch at 64 px on the built-in dataset, 5 regimes (13 cells with the 5
ratios) x 3 seeds = 39 runs of 1000 steps each. "full" adds MobileNetV3-Large and VGG16. "strategies" compares
every regime (keras_morsa/evaluation/regimes.py): real, traditional, synthetic@{0.5, 1}, traditional+synthetic@
{0.5, 1}, share@{0.1, 0.25}, weighted+synthetic@{0.5, 1}, pretrain_synthetic and synthetic_only, 3 seeds.

Filtered against unfiltered: --synthetic_source=unfiltered=DIR --synthetic_source=filtered=DIR runs each synthetic
regime on both and the report pairs them (reference_source). Validation: validation_share holds out a seeded,
stratified share of the train split; choose.lr_schedule / choose.final_evals list candidates chosen on
validation accuracy of the baselines before the study (the test split is never read for it); several
validation_seeds repeat the study over that many hold-outs. An unknown key of choose is an error.
"""

import ml_collections

from keras_morsa import cli
from keras_morsa.errors import check_variant

common = cli.config_module(__file__, "common")


def get_config(arg=None):
    arg = check_variant(arg, ("full", "strategies", "smoke"))
    config = ml_collections.ConfigDict()
    # The built-in dataset (used when --data_dir is not given; the same build and split as the GAN stage's,
    # so the leak check can compare hashes) and the split made if the data has no split_manifest.csv yet.
    config.data = common.builtin_data()
    # Classifier input size: images are resized from the dataset's size in the input pipeline.
    config.image_size = 64
    config.archs = ("mobilenet_v3_small",)
    # The library that builds every backbone: "keras_cv" or "keras_hub" (the optional keras-hub package,
    # pip install -e ".[hub]"); the same architectures and parameter counts (keras_morsa/models/backbones.py).
    config.backbone_library = "keras_cv"
    config.regimes = ("real", "traditional", "synthetic", "synthetic_only", "traditional+synthetic")
    config.ratios = (0.25, 0.5, 0.75, 1.0, 1.25)
    # synthetic_only trains on this many synthetic images per real training image of each class.
    config.synthetic_only_ratio = 1.0
    config.seeds = (0, 1, 2)
    # The optimizer-step budget every run gets, whatever its training-set size.
    config.steps = 1000
    config.eval_every = 100
    config.batch_size = 32
    config.eval_batch_size = 128
    # One training recipe per architecture (keras_morsa/training/recipes.py), the same in every regime; the
    # measurements that chose them are in the README ("Classifier recipes"). MobileNetV3: Adam 3e-3 from a
    # real-only check of the rates on Small (Large measured with it: 73 % over 3 seeds). VGG16 (no BatchNorm)
    # stays at ln(classes) with KerasCV's Glorot kernels at 1e-3 and 1e-4; He-normal kernels, Adam 3e-4, a
    # 40-step warm-up and clipping at norm 1 learn (measured on a validation share of the train split).
    mobilenet = dict(optimizer="adam", learning_rate=3e-3, warmup_steps=0, clipnorm=0.0, conv_init="default")
    config.recipes = ml_collections.ConfigDict(
        dict(
            mobilenet_v3_small=mobilenet,
            mobilenet_v3_large=dict(mobilenet),
            vgg16=dict(optimizer="adam", learning_rate=3e-4, warmup_steps=40, clipnorm=1.0, conv_init="he_normal"),
        )
    )
    config.dropout = 0.2
    # From scratch, KerasCV's default BatchNorm momentum 0.999 leaves the moving statistics far behind the weights.
    config.bn_momentum = 0.9
    config.bn_reestimate_batches = 0
    config.weights = ""  # a local .weights.h5/.keras file to start from; "" = from scratch
    config.augment = ml_collections.ConfigDict(
        dict(
            ops=("flip", "color_jitter", "gaussian_noise"),
            brightness=25.0,
            contrast=0.2,
            saturation=0.2,
            noise_stddev=8.0,
        )
    )
    # True: refuse to run without --synthetic_dir; False: skip the synthetic regimes with a warning.
    config.require_synthetic = False
    config.keep_models = True
    config.confidence = 0.95
    # Round-two strategies (keras_morsa/evaluation/regimes.py; not in the default regimes, see ":strategies"):
    # share@p draws each example from the synthetic images with probability p; weighted+synthetic@r weights
    # the synthetic rows' loss and smooths their labels (0.5 and 0.1: untuned starting values, not chosen on
    # any split); pretrain_synthetic spends pretrain_share of the budget on synthetic images first.
    config.shares = (0.1, 0.25, 0.5)
    config.synthetic_weight = 0.5
    config.synthetic_label_smoothing = 0.1
    config.pretrain_share = 0.5
    # "constant" or "cosine" (decays to 0 at the end of the budget); a run's accuracy is the mean of its last
    # final_evals evaluations. Kept at the first study's settings until a measurement on a validation share
    # chooses otherwise.
    config.lr_schedule = "constant"
    config.final_evals = 1
    # Several synthetic folders by name (--synthetic_source=unfiltered=DIR --synthetic_source=filtered=DIR): each
    # synthetic regime runs on each, and the report pairs every source against this one ("" = the first given).
    config.reference_source = ""
    # A seeded, stratified share of each class's train images held out as validation (0: none). Every run
    # then trains on the rest; with several validation_seeds the study repeats over that many hold-outs
    # (repeated splits: the test split stays fixed, the GANs were trained on the train split) and the report
    # pairs runs by (hold-out, seed).
    config.validation_share = 0.0
    config.validation_seeds = (0,)
    # With a validation share: the settings chosen on validation accuracy before the study runs (the test
    # split is never read for it). Each lists candidates (empty: keep the value above); the regimes trained
    # for the choice are baselines only, so no choice is made to favour synthetic data.
    config.choose = ml_collections.ConfigDict(dict(lr_schedule=(), final_evals=(), regimes=("real", "traditional")))

    if arg == "full":
        config.archs = ("mobilenet_v3_small", "mobilenet_v3_large", "vgg16")
    elif arg == "strategies":
        # The round-two comparison: every way of using the synthetic images against both baselines.
        config.regimes = (
            "real",
            "traditional",
            "synthetic",
            "traditional+synthetic",
            "share",
            "weighted+synthetic",
            "pretrain_synthetic",
            "synthetic_only",
        )
        config.ratios = (0.5, 1.0)
        config.shares = (0.1, 0.25)
    elif arg == "smoke":
        config.data.images_per_class = 12
        config.data.render_size = 64
        config.image_size = 32
        # Three regimes cover every code path: plain, augmented + mixed at a ratio, synthetic only.
        config.regimes = ("real", "synthetic_only", "traditional+synthetic")
        config.ratios = (0.5,)
        config.seeds = (0,)
        config.steps = 6
        config.eval_every = 3
        config.batch_size = 8
        config.eval_batch_size = 32
        config.bn_reestimate_batches = 2
        config.recipes.vgg16.warmup_steps = 2
    return config
