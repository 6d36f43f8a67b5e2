#!/usr/bin/env python3
"""Calibration of the built-in dataset: real-only test accuracy of each architecture trained from scratch.

Trains the ``real`` regime of configs/eval_ratios.py (64 px, its step budget) on the built-in dataset's
train split and prints the test accuracy per seed and its curve. The dataset is calibrated when the accuracy
lands between 60 % and 90 %: room for augmentation to help or to hurt.

    .venv/bin/python benchmarks/calibration.py                    # seed 0
    .venv/bin/python benchmarks/calibration.py --seeds=0,1,2 --config.bn_reestimate_batches=20
    .venv/bin/python benchmarks/calibration.py --archs=vgg16,mobilenet_v3_large --seeds=0,1,2
"""

import tempfile
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from keras_morsa import io
from keras_morsa.evaluation.study import run_study
from keras_morsa.evaluation.summary import describe_budget

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(Path(__file__).resolve().parents[1] / "configs" / "eval_ratios.py"), "Study config."
)
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Seeds to train.")
_ARCHS = flags.DEFINE_list("archs", ["mobilenet_v3_small"], "Architectures to train (each with its config recipe).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where to keep the runs (default: a temporary folder).")


def main(argv):
    del argv
    config = _CONFIG.value
    config.archs = tuple(_ARCHS.value)
    config.regimes = ("real",)
    config.seeds = tuple(int(seed) for seed in _SEEDS.value)
    print(describe_budget(config))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(_WORKDIR.value or tmp)
        results = run_study(config, workdir)
        for row in results:
            curve = io.read_csv(workdir / "runs" / row["run_id"] / "curve.csv")
            points = ", ".join(f"{p['step']}: {100 * float(p['test_accuracy']):.1f}" for p in curve)
            print(
                f"{row['arch']} seed {row['seed']}: real-only test accuracy {100 * row['test_accuracy']:.1f} % "
                f"(macro-F1 {100 * row['macro_f1']:.1f} %, {row['wall_time_s']:.0f} s); curve {points}"
            )
    for arch in config.archs:
        accuracies = [row["test_accuracy"] for row in results if row["arch"] == arch]
        if accuracies:
            accuracy = sum(accuracies) / len(accuracies)
            verdict = "inside" if 0.6 <= accuracy <= 0.9 else "OUTSIDE"
            print(f"{arch}: mean {100 * accuracy:.1f} % over {len(accuracies)} seed(s) -> {verdict} the 60-90 % target")


if __name__ == "__main__":
    app.run(main)
