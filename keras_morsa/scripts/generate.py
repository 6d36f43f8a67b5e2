"""Writes synthetic images from trained FastGAN runs: <out_dir>/<class>/*.png, manifest.csv, sources.txt.

    bin/generate --gan_workdir=workdirs/gan --num_images=100 --out_dir=workdirs/synthetic
    bin/generate --gan_workdir=workdirs/gan --num_images=20 --out_dir=workdirs/synthetic --class=jaw --interpolate
    bin/generate --gan_workdir=workdirs/gan --num_images=100 --conditional   # from <gan_workdir>/conditional/

(Installed with pip: keras-morsa-generate, same flags.) Ends with a summary: images per class, the filter's
yield, and the next command.
"""

from absl import flags

from keras_morsa import cli, summaries
from keras_morsa.errors import UserError
from keras_morsa.training.generate import generate

_GAN_WORKDIR = flags.DEFINE_string("gan_workdir", None, "The --workdir of bin/train_gan.")
_OUT_DIR = flags.DEFINE_string("out_dir", "./workdirs/synthetic", "Synthetic folder to write (resumable).")
_NUM_IMAGES = flags.DEFINE_integer("num_images", 100, "Images per class.")
_CLASS = flags.DEFINE_string("class", "all", "A trained class, or 'all' (every finished class).")
_SEED = flags.DEFINE_integer("seed", 0, "Latent seed: image i of a class uses latent (seed, i).")
_INTERPOLATE = flags.DEFINE_bool("interpolate", False, "Also write interpolation_<class>.gif per class.")
_CHECKPOINT = flags.DEFINE_enum(
    "checkpoint",
    None,
    ["best", "final"],
    "Generator: best (lowest KID of train_gan's checkpoints, generator_best.keras) or "
    "final (generator_ema.keras); default best where the run kept one.",
)
_FILTER = flags.DEFINE_enum(
    "filter",
    "none",
    ["none", "classifier"],
    "classifier: keep images --classifier assigns to their class with >= --min_confidence.",
)
_CLASSIFIER = flags.DEFINE_string(
    "classifier",
    None,
    "With --filter=classifier: a .keras classifier trained on the "
    "real train split (e.g. models/real.keras of bin/eval_ratios).",
)
_MIN_CONFIDENCE = flags.DEFINE_float("min_confidence", 0.5, "The filter's probability threshold.")
_DEDUPE = flags.DEFINE_bool(
    "dedupe", False, "Drop near-copies of the class's training images (see --dedupe_percentile), drawing more."
)
_DEDUPE_PERCENTILE = flags.DEFINE_float(
    "dedupe_percentile",
    5.0,
    "With --dedupe: an image is a near-copy when it is nearer to a training image than this % of the "
    "training images are to each other.",
)
_CONDITIONAL = flags.DEFINE_bool(
    "conditional",
    None,
    "Generate from the workdir's class-conditional run (<gan_workdir>/conditional/) or, with "
    "--noconditional, its per-class runs; default: whichever it holds.",
)
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "With --dedupe: the folder bin/train_gan learned from; default the one its done.json records."
)


def main(argv):
    del argv  # cli.launch refuses positional arguments
    if not _GAN_WORKDIR.value:
        raise UserError("--gan_workdir is required: the --workdir of bin/train_gan")
    rows = generate(
        _GAN_WORKDIR.value,
        _OUT_DIR.value,
        _NUM_IMAGES.value,
        class_names=None if _CLASS.value == "all" else [_CLASS.value],
        **cli.flag_values(
            _SEED,
            _INTERPOLATE,
            _CHECKPOINT,
            _FILTER,
            _CLASSIFIER,
            _MIN_CONFIDENCE,
            _DEDUPE,
            _DATA_DIR,
            _DEDUPE_PERCENTILE,
            _CONDITIONAL,
        ),
    )
    summary = summaries.generate(rows, _OUT_DIR.value)
    summary.next_commands = [
        cli.command("eval_ratios", synthetic_dir=_OUT_DIR.value, workdir="./workdirs/study"),
        cli.command("gan_quality", synthetic_dir=_OUT_DIR.value, out_dir="./workdirs/quality"),
    ]
    return summary
