"""The whole pipeline on one folder (bin/run_pipeline): split, GANs, baseline, generate, quality, study,
Grad-CAM, export.

    bin/run_pipeline --workdir=runs/morsa                                  # built-in dataset, this config
    bin/run_pipeline --data_dir=photos --workdir=runs/photos
    bin/run_pipeline --workdir=runs/smoke --config=configs/pipeline.py:smoke   # tiny, for tests
    bin/run_pipeline ... --config.gan.train.num_steps=8000 --config.study.seeds='(0, 1)'

Each stage's section is the config of the script that runs it alone: ``gan`` is configs/fastgan_cpu.py,
``quality`` configs/gan_quality.py, ``study`` configs/eval_ratios.py (the smoke variant is made of their
smoke variants). ``data`` is shared: the built-in dataset's build and the split are one for every stage
(``data.images_per_class`` etc. of each section are the same field; setting one sets all).
"""

import importlib.util
from pathlib import Path

import ml_collections

from keras_morsa.errors import check_variant

# The data keys every stage reads, linked to the pipeline's own config.data.
SHARED_DATA_KEYS = ("images_per_class", "render_size", "seed", "test_fraction", "split_seed")


def _stage_config(name, arg):
    """``get_config(arg)`` of the sibling file configs/<name>.py (configs/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"keras_morsa_config_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def get_config(arg=None):
    arg = check_variant(arg, ("smoke",))
    variant = "smoke" if arg == "smoke" else None
    config = ml_collections.ConfigDict()
    study = _stage_config("eval_ratios", variant)
    # The built-in dataset (used when --data_dir is not given) and the split made when the data has none.
    config.data = ml_collections.ConfigDict({key: study.data[key] for key in SHARED_DATA_KEYS})
    config.gan = _stage_config("fastgan_cpu", variant)
    config.generate = ml_collections.ConfigDict(
        dict(
            # Images per class; 0: as many as the study's largest ratio needs for the largest class.
            num_images=0,
            seed=0,
            # "classifier": keep only images the baseline's real-trained classifier (study/models/real.keras)
            # assigns to their class with at least min_confidence, drawing at most num_images x max_draws_per_image
            # latents per class ("none" when the study has no real regime). "none": keep every image. Filtered
            # images are measured with quality features "random" and without CAS (the classifier chose them).
            filter="classifier",
            min_confidence=0.5,
            max_draws_per_image=10,
            checkpoint="",  # "best" or "final"; "": best where train_gan kept one
            interpolate=True,  # interpolation_<class>.gif beside the class folders, for the index
        )
    )
    config.quality = _stage_config("gan_quality", variant)
    config.study = study
    config.gradcam = ml_collections.ConfigDict(dict(max_images=64, method="gradcam", seed=0, min_map_size=4))
    # The study's models/<model>.keras ("real" or "best_augmented") is exported to <workdir>/export/<model_name>/1
    # (TF Serving's layout). Never "whichever tested better": that would choose on the test split.
    config.export = ml_collections.ConfigDict(dict(model="real", model_name="classifier"))
    if arg == "smoke":
        # A 6-step classifier recognises hardly any 6-step GAN image: filtering would only fail for want of
        # passing images. The filter's wiring has its own test (tests/test_pipeline.py).
        config.generate.filter = "none"
        config.gradcam.max_images = 4
    for section in (config.gan, config.quality, config.study):
        for key in SHARED_DATA_KEYS:
            section.data[key] = config.data.get_ref(key)
    return config
