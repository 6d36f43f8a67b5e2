"""Grad-CAM report of a ratio study: baseline vs best augmented classifier, as pictures and numbers.

    bin/gradcam_report --eval_workdir=workdirs/study --synthetic_dir=workdirs/synthetic --out_dir=workdirs/gradcam
    bin/gradcam_report --eval_workdir=... --out_dir=... --method=gradcam++ --max_images=32    # TF backend only

Writes <out_dir>/report.html (self-contained), grids/{real,generated}_{correct,wrong}.png and metrics.json.
(Installed with pip: keras-morsa-gradcam-report, same flags.) Ends with a summary: the report, the verdict
per image group, and the next command.
"""

from absl import flags

from keras_morsa import cli, summaries
from keras_morsa.errors import UserError
from keras_morsa.explain.gradcam import METHODS
from keras_morsa.explain.report import gradcam_report

_EVAL_WORKDIR = flags.DEFINE_string("eval_workdir", None, "The --workdir of bin/eval_ratios (a finished study).")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder for report.html, grids/*.png and metrics.json.")
_SYNTHETIC_DIR = flags.DEFINE_string("synthetic_dir", None, "Generated images <dir>/<class>/*.png (optional).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "The study's real data folder; default the built-in dataset.")
_MASK_DIR = flags.DEFINE_string("mask_dir", None, "Masks <dir>/<class>/<stem>.png; default masks/ beside images.")
_MAX_IMAGES = flags.DEFINE_integer("max_images", 64, "At most this many real test and generated images each.")
_METHOD = flags.DEFINE_enum("method", "gradcam", METHODS, "gradcam (any backend); gradcam++/scorecam: TF only.")
_LAYER = flags.DEFINE_string(
    "layer", None, "Layer to explain; default the last one with a map of at least --min_map_size a side."
)
_MIN_MAP_SIZE = flags.DEFINE_integer(
    "min_map_size", 4, "Smallest map side of the default layer (a 2x2 map upsampled always peaks in a corner)."
)
_SEED = flags.DEFINE_integer("seed", 0, "Seeds the image draw, the random deletion baseline and the bootstrap.")


def main(argv):
    del argv  # cli.launch refuses positional arguments
    if not _EVAL_WORKDIR.value or not _OUT_DIR.value:
        raise UserError("--eval_workdir and --out_dir are required")
    report = gradcam_report(
        _EVAL_WORKDIR.value,
        _OUT_DIR.value,
        **cli.flag_values(_SYNTHETIC_DIR, _DATA_DIR, _MASK_DIR, _MAX_IMAGES, _METHOD, _LAYER, _SEED, _MIN_MAP_SIZE),
    )
    summary = summaries.gradcam_report(report, _OUT_DIR.value)
    summary.next_commands = [
        cli.command("export", model=f"{_EVAL_WORKDIR.value}/models/best_augmented.keras", export_dir="./serving/morsa")
    ]
    return summary
