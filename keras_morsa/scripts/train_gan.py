"""Trains FastGAN on one class (or all) of the built-in dataset or a folder; rerun to resume.

    bin/train_gan --class=jaw                                    # built-in dataset, configs/fastgan_cpu.py
    bin/train_gan --class=all --workdir=workdirs/gan             # every class in turn, finished ones skipped
    bin/train_gan --class=cat --data_dir=my_photos --config=configs/fastgan_size.py:256 --config.train.num_steps=20000
    bin/train_gan --class=jaw --strategy=mirrored --cpu_devices=2              # TensorFlow backend, 2 replicas
    bin/train_gan --class=all --workdir=workdirs/gan --rescore   # choose generator_best again, train nothing

(Installed with pip: keras-morsa-train-gan, same flags.) Ends with a summary: the generators, the latest
samples, the final losses and the best KID per class, and the next command.
"""

from absl import flags

from keras_morsa import cli

cli.prefer_onednn()  # before TensorFlow is imported
from keras_morsa import summaries  # noqa: E402
from keras_morsa.errors import UserError  # noqa: E402
from keras_morsa.training.train_gan import rescore_best, train_gan  # noqa: E402

_CONFIG = cli.define_config(
    "fastgan_cpu.py",
    "Training config file (configs/fastgan_cpu.py, fastgan_size.py:<256|512|1024>, fastgan_morsa.py; ':smoke' for "
    "the tiny variant); override keys with --config.x=y.",
)
_CLASS = flags.DEFINE_string("class", None, "Class to train, or 'all'.")
_DATA_DIR = cli.define_data_dir()
_WORKDIR = flags.DEFINE_string("workdir", "./workdirs/gan", "Run folder; results go to <workdir>/<class>/.")
_STRATEGY = cli.define_strategy_flags()
_RESCORE = flags.DEFINE_bool(
    "rescore",
    False,
    "Train nothing: choose generator_best.keras of finished classes again in the config's quality.features, "
    "among the kept checkpoints and the current best (for runs scored in other features).",
)


def main(argv):
    del argv  # cli.launch refuses positional arguments
    if not _CLASS.value:
        raise UserError("--class is required: a class name of the dataset, or 'all'")
    if _RESCORE.value:
        done = rescore_best(_CONFIG.value, _WORKDIR.value, _CLASS.value, data_dir=_DATA_DIR.value)
    else:
        done = train_gan(_CONFIG.value, _WORKDIR.value, _CLASS.value, data_dir=_DATA_DIR.value, strategy=_STRATEGY())
    summary = summaries.train_gan(done, _WORKDIR.value)
    summary.next_commands = [
        cli.command("generate", gan_workdir=_WORKDIR.value, num_images=100, out_dir="./workdirs/synthetic")
    ]
    return summary
