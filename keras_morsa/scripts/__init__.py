"""The scripts of the stages: ``keras_morsa/scripts/<stage>.py`` holds the flags and ``main`` of one stage.

A checkout runs them as ``bin/<stage>``, an installed package as ``keras-morsa-<stage>`` (hyphens for
underscores; the ``console_scripts`` of setup.cfg name the ``*_main`` functions below). Both only call
:func:`keras_morsa.cli.launch`, which imports the stage's module (with the backend) quietly first: so
importing this package imports no backend, and a stage's module is imported only by its own process (the
modules define absl flags of the same names).
"""

from keras_morsa import cli

#: Every stage with a script, in pipeline order.
STAGES = (
    "make_dataset",
    "train_gan",
    "generate",
    "gan_quality",
    "eval_ratios",
    "gradcam_report",
    "export",
    "run_pipeline",
)


def make_dataset_main():
    """``keras-morsa-make-dataset``."""
    cli.launch("make_dataset")


def train_gan_main():
    """``keras-morsa-train-gan``."""
    cli.launch("train_gan")


def generate_main():
    """``keras-morsa-generate``."""
    cli.launch("generate")


def gan_quality_main():
    """``keras-morsa-gan-quality``."""
    cli.launch("gan_quality")


def eval_ratios_main():
    """``keras-morsa-eval-ratios``."""
    cli.launch("eval_ratios")


def gradcam_report_main():
    """``keras-morsa-gradcam-report``."""
    cli.launch("gradcam_report")


def export_main():
    """``keras-morsa-export``."""
    cli.launch("export")


def run_pipeline_main():
    """``keras-morsa-run-pipeline``."""
    cli.launch("run_pipeline")
