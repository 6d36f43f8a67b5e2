"""Synthetic image quality, measured offline (bin/gan_quality).

    bin/gan_quality --synthetic_dir=runs/synthetic --classifier=runs/study/models/real.keras --out_dir=runs/quality
    bin/gan_quality --gan_workdir=runs/gan --features=random --out_dir=runs/quality     # no classifier: no CAS
    bin/gan_quality --config=configs/gan_quality.py:smoke ...                           # tiny, for tests

Every metric compares a class's generated images with the real images of its TRAIN split (what the
generator learned from); the test split serves only as the reference of what a real unseen image scores
(the "real test" columns, and the memorisation threshold).
"""

import ml_collections

from keras_morsa import cli
from keras_morsa.errors import check_variant

common = cli.config_module(__file__, "common")


def get_config(arg=None):
    arg = check_variant(arg, ("smoke",))
    config = ml_collections.ConfigDict()
    # The built-in dataset (when --data_dir is not given): the build and split the GAN stage and study use.
    config.data = common.builtin_data()
    # "classifier" (a real-trained classifier's pool features), "random" (the seeded random CNN) or a local
    # .keras / .weights.h5 file; --features overrides it.
    config.features = "classifier"
    config.features_arch = "mobilenet_v3_small"  # the architecture of a --features=*.weights.h5 backbone
    config.image_size = 64  # input side of the random CNN and of the classifier trained here
    config.seed = 0  # random CNN weights, KID subsets, the classifier trained here, latents of --gan_workdir
    config.num_images = 300  # per class, generated from --gan_workdir (its best checkpoint where kept)
    config.batch_size = 64
    config.k = 5  # nearest neighbours of precision/recall/density/coverage
    config.kid_subsets = 100
    config.kid_subset_size = 1000  # capped at the smaller set's size
    config.memorisation_percentile = 5.0
    config.grid_pairs = 8  # closest generated/train pairs drawn per class
    # The budget of the classifier trained on the real train split when --features=classifier and no
    # --classifier is given: MobileNetV3-Small from scratch at 64 px, 1000 Adam steps of 32, the study's
    # real-only recipe (configs/eval_ratios.py; its test accuracy on the built-in dataset is in README). It is
    # saved as <out_dir>/classifier.keras and reused by a rerun; its real test accuracy goes into the report.
    # backbone_library: "keras_cv" or "keras_hub" (pip install -e ".[hub]"), as configs/eval_ratios.py's.
    config.classifier = common.quality_classifier()
    if arg == "smoke":
        config.data.images_per_class = 12
        config.data.render_size = 64
        config.image_size = 32
        config.num_images = 8
        config.batch_size = 8
        config.k = 2
        config.kid_subsets = 5
        config.grid_pairs = 3
        config.classifier.steps = 4
        config.classifier.batch_size = 4
    return config
