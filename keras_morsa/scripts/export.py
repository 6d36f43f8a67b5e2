"""Exports a .keras classifier or FastGAN generator as a SavedModel in TF Serving's layout.

    bin/export --model=workdir/models/real.keras --export_dir=serving/morsa            # -> serving/morsa/1
    bin/export --model=gan/jaw/generator_ema.keras --export_dir=serving/jaw_gan --version=3

The kind of model is detected from the file (a classifier has a ``probabilities`` layer, a generator's config
has ``nz`` and ``image_size``) unless --kind is given. The export runs under the TensorFlow backend whatever
KERAS_BACKEND is (in a child process when it is not tensorflow). Prints the version folder written, then
the summary. (Installed with pip: keras-morsa-export, same flags.)
"""

import shlex
from pathlib import Path

from absl import flags

from keras_morsa import cli, summaries
from keras_morsa.export.classifier import MAX_PIXELS
from keras_morsa.export.saved_model import KINDS, export_model

_MODEL = flags.DEFINE_string("model", None, "The .keras file to export.", required=True)
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "<base>/<model name>: the version folder is written inside it.", required=True
)
_VERSION = flags.DEFINE_integer("version", None, "Version folder number (default: one more than the largest present).")
_KIND = flags.DEFINE_enum("kind", None, KINDS, "Model kind (default: detected from the file).")
_MAX_NUM_IMAGES = flags.DEFINE_integer("max_num_images", 64, "Generators: the most images one request may ask for.")
_MAX_PIXELS = flags.DEFINE_integer(
    "max_pixels", MAX_PIXELS, "Classifiers: predict_bytes refuses images with more pixels (header)."
)


def main(argv):
    del argv  # cli.launch refuses positional arguments
    path = export_model(
        _MODEL.value, _EXPORT_DIR.value, **cli.flag_values(_VERSION, _KIND, _MAX_NUM_IMAGES, _MAX_PIXELS)
    )
    print(f"exported {path}")
    summary = summaries.export(path)
    base = Path(_EXPORT_DIR.value).resolve()
    summary.next_commands = [
        shlex.join(
            [
                "docker",
                "run",
                "-p",
                "8501:8501",
                "--mount",
                f"type=bind,source={base},target=/models/{base.name}",
                "-e",
                f"MODEL_NAME={base.name}",
                "-t",
                "tensorflow/serving",
            ]
        )
    ]
    return summary
