"""Builds the built-in morsa_parts dataset: procedural photographs of the parts of a mini bench vise.

  bin/make_dataset --out_dir=/tmp/morsa_parts --images_per_class=300 --image_size=256 --seed=0

Without --out_dir it fills the cache that morsa_parts.load() reads ($KERAS_MORSA_HOME, default
~/.keras/datasets/morsa_parts), reusing a complete build there. Prints the dataset root, then the summary.
(Installed with pip: keras-morsa-make-dataset, same flags.)
"""

from absl import flags

from keras_morsa import cli, summaries
from keras_morsa.data import morsa_parts

_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder to build into; default: the load() cache.")
_IMAGES_PER_CLASS = flags.DEFINE_integer("images_per_class", 300, "Images per class.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 256, "Side of the square images in pixels (16 to 1024).")
_SEED = flags.DEFINE_integer("seed", 0, "Dataset seed; the same seed gives byte-identical files.")
_WORKERS = flags.DEFINE_integer(
    "workers", None, "Processes drawing in parallel (with --out_dir); default: one per CPU core."
)
_PROGRESS = flags.DEFINE_boolean("progress", True, "Show a progress bar (--noprogress for logs).")


def main(argv):
    del argv  # cli.launch refuses positional arguments
    settings = cli.flag_values(_IMAGES_PER_CLASS, _IMAGE_SIZE, _SEED, _PROGRESS)
    if _OUT_DIR.value:
        root = morsa_parts.build(_OUT_DIR.value, workers=_WORKERS.value, **settings)
    else:
        root = morsa_parts.load(**settings)
    print(root)
    summary = summaries.make_dataset(root)
    summary.next_commands = [
        cli.command("train_gan", "--class=all", data_dir=_OUT_DIR.value and root, workdir="./workdirs/gan")
    ]
    return summary
