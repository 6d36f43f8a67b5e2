"""The whole pipeline on one folder, resumable: split, a GAN per class, a baseline classifier, synthetic images
(filtered by it), their quality, the ratio study, the Grad-CAM report and the export of a classifier.

    bin/run_pipeline --workdir=runs/morsa                                       # built-in dataset
    bin/run_pipeline --data_dir=photos --workdir=runs/photos
    bin/run_pipeline --workdir=runs/smoke --config=configs/pipeline.py:smoke    # tiny, a few minutes on a CPU
    bin/run_pipeline --workdir=runs/photos --data_dir=photos --config.gan.train.num_steps=8000 --redo=gan

Rerun the same command to continue: finished stages (<workdir>/done/<stage>.json) are skipped and a killed
stage resumes. <workdir>/index.html links every stage's report and pictures. (Installed with pip:
keras-morsa-run-pipeline, same flags.) Stages and their order:
keras_morsa/pipeline/stages.py.
"""

from absl import flags

from keras_morsa import cli

cli.prefer_onednn()  # before TensorFlow is imported
from keras_morsa import summaries  # noqa: E402
from keras_morsa.pipeline.stages import STAGES, run_pipeline  # noqa: E402

_CONFIG = cli.define_config(
    "pipeline.py",
    "Pipeline config (configs/pipeline.py, ':smoke' for the tiny variant); override keys with --config.x=y, "
    "e.g. --config.gan.train.num_steps=8000.",
)
_DATA_DIR = cli.define_data_dir()
_WORKDIR = flags.DEFINE_string("workdir", "./runs/pipeline", "Run folder: every stage's outputs and index.html.")
_REDO = flags.DEFINE_enum(
    "redo",
    None,
    STAGES,
    "Run this stage and the later ones again (e.g. after changing "
    "their settings); finished earlier stages stay skipped.",
)


def main(argv):
    del argv  # cli.launch refuses positional arguments
    markers = run_pipeline(_CONFIG.value, _WORKDIR.value, **cli.flag_values(_DATA_DIR, _REDO))
    return summaries.run_pipeline(markers, _WORKDIR.value)
