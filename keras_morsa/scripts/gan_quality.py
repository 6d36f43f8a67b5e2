"""Measures synthetic image quality offline: quality.json, quality.md/.html and nearest-neighbour grids.

    bin/gan_quality --synthetic_dir=workdirs/synthetic --classifier=workdirs/study/models/real.keras --out_dir=q
    bin/gan_quality --gan_workdir=workdirs/gan --out_dir=q            # trains a small classifier first
    bin/gan_quality --synthetic_dir=my_synthetic --data_dir=my_photos --features=random --out_dir=q

(Installed with pip: keras-morsa-gan-quality, same flags.) Ends with a summary: the report, KID, precision,
recall, coverage and the memorised share per class, and the next command.
"""

from absl import flags

from keras_morsa import cli, summaries
from keras_morsa.quality.report import gan_quality

_CONFIG = cli.define_config(
    "gan_quality.py",
    "Quality config (configs/gan_quality.py, ':smoke' for the tiny variant); override keys with --config.x=y.",
)
_GAN_WORKDIR = flags.DEFINE_string("gan_workdir", None, "A bin/train_gan workdir: images are generated first.")
_SYNTHETIC_DIR = flags.DEFINE_string("synthetic_dir", None, "A bin/generate folder <dir>/<class>/*.png.")
_DATA_DIR = cli.define_data_dir()
_FEATURES = flags.DEFINE_string(
    "features", None, "classifier | random | a local .keras/.weights.h5 file (default: the config's, 'classifier')."
)
_CLASSIFIER = flags.DEFINE_string(
    "classifier",
    None,
    "A .keras classifier trained on the real train split "
    "(e.g. models/real.keras of bin/eval_ratios); default: trained here if needed.",
)
_OUT_DIR = flags.DEFINE_string("out_dir", "./workdirs/quality", "Where the report goes.")


def main(argv):
    del argv  # cli.launch refuses positional arguments
    report = gan_quality(
        _CONFIG.value,
        _OUT_DIR.value,
        **cli.flag_values(_GAN_WORKDIR, _SYNTHETIC_DIR, _DATA_DIR, _FEATURES, _CLASSIFIER),
    )
    summary = summaries.gan_quality(report, _OUT_DIR.value)
    synthetic = report["settings"]["synthetic_dir"]
    summary.next_commands = [
        cli.command("eval_ratios", synthetic_dir=synthetic, data_dir=_DATA_DIR.value, workdir="./workdirs/study")
    ]
    return summary
