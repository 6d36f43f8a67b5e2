"""The real/synthetic ratio study: trains classifiers on real, augmented and synthetic mixes; reports accuracy.

    bin/eval_ratios --synthetic_dir=workdirs/synthetic --workdir=workdirs/study     # built-in dataset, CPU config
    bin/eval_ratios --config=configs/eval_ratios.py:full --synthetic_dir=... --workdir=... --data_dir=photos
    bin/eval_ratios ... --shard=0/4   (one of 4 processes; then)   bin/eval_ratios ... --merge
    bin/eval_ratios ... --strategy=mirrored --cpu_devices=2          # TensorFlow backend, 2 replicas on a CPU
    bin/eval_ratios --config=configs/eval_ratios.py:strategies --synthetic_dir=... --workdir=...  # every regime

Regimes (--config.regimes=..., see keras_morsa/evaluation/regimes.py): real, traditional, synthetic@r,
synthetic_only, traditional+synthetic@r, share@p (each example synthetic with probability p, config.shares),
weighted+synthetic@r (synthetic rows weighted by config.synthetic_weight, labels smoothed by
config.synthetic_label_smoothing), pretrain_synthetic (config.pretrain_share of the steps on synthetic first).
The report compares every cell with real and with traditional (paired over seeds, with the minimum
detectable effect).

    bin/eval_ratios --synthetic_source=unfiltered=runs/synthetic --synthetic_source=filtered=runs/filtered ...
runs every synthetic regime on each folder (e.g. bin/generate without and with --filter=classifier) and shows
the sources side by side, each paired against config.reference_source (default the first given).

    bin/eval_ratios ... --config.validation_share=0.2 --config.choose.lr_schedule='("constant", "cosine")' \
        --config.choose.final_evals='(1, 3, 5)' [--config.validation_seeds='(0, 1, 2)']
holds out a seeded, stratified 20 % of each class's train images as validation, chooses lr_schedule and
final_evals on validation accuracy of the baselines (the test split is never read for it; --choose_only
stops there, needed before --shard), then runs the study with the choice; several validation_seeds repeat the
study over that many hold-outs (repeated splits).

Rerun the same command to resume a killed sweep: finished runs are skipped.
(Installed with pip: keras-morsa-eval-ratios, same flags.) Ends with a summary: the report, the best cell
and the verdicts, and the next command.
"""

import sys
from pathlib import Path

from absl import flags

from keras_morsa import cli, summaries
from keras_morsa.errors import UserError
from keras_morsa.evaluation.results import merge_study
from keras_morsa.evaluation.study import parse_shard, parse_sources, run_study

_CONFIG = cli.define_config(
    "eval_ratios.py",
    "Study config (configs/eval_ratios.py, ':full' adds VGG16 and MobileNetV3-Large, ':smoke' is tiny).",
)
_SYNTHETIC_DIR = flags.DEFINE_string(
    "synthetic_dir", None, "Synthetic images <dir>/<class>/*; without it the synthetic regimes are skipped."
)
_SYNTHETIC_SOURCE = flags.DEFINE_multi_string(
    "synthetic_source",
    [],
    "name=folder, repeated: several named synthetic folders compared in one report "
    "(instead of --synthetic_dir), e.g. unfiltered=runs/synthetic and filtered=runs/filtered.",
)
_CHOOSE_ONLY = flags.DEFINE_bool(
    "choose_only", False, "Only make the validation choice of config.choose (validation/choice.json); no test split."
)
_WORKDIR = flags.DEFINE_string("workdir", "./workdirs/study", "Output folder (results, report, models).")
_DATA_DIR = cli.define_data_dir()
_SHARD = flags.DEFINE_string("shard", None, "i/n: run only this process's share of the sweep.")
_MERGE = flags.DEFINE_bool("merge", False, "Only build results.csv, the report and models/ from finished runs.")
_STRATEGY = cli.define_strategy_flags()


def main(argv):
    del argv  # cli.launch refuses positional arguments
    shard = None
    if _MERGE.value:
        trained = merge_study(_CONFIG.value, _WORKDIR.value)
    else:
        shard = parse_shard(_SHARD.value)
        synthetic = _SYNTHETIC_DIR.value
        if _SYNTHETIC_SOURCE.value:
            if synthetic is not None:
                raise UserError(
                    "--synthetic_dir and --synthetic_source were both given; use one (named sources: "
                    "--synthetic_source=name=folder for each)"
                )
            synthetic = parse_sources(_SYNTHETIC_SOURCE.value)
        trained = run_study(
            _CONFIG.value,
            _WORKDIR.value,
            synthetic_dir=synthetic,
            shard=shard,
            strategy=_STRATEGY(),
            **cli.flag_values(_DATA_DIR, _CHOOSE_ONLY),
        )
    if _CHOOSE_ONLY.value:
        summary = summaries.eval_ratios_choice(_WORKDIR.value)
        summary.next_commands = [
            cli.command("eval_ratios", *sys.argv[1:], choose_only=False)
            + "   # the study with the choice (or its shards)"
        ]
        return summary
    summary = summaries.eval_ratios(_WORKDIR.value, _CONFIG.value, trained, shard=shard)
    if shard is not None:
        summary.next_commands = [
            cli.command("eval_ratios", *cli.without_flag(sys.argv[1:], "shard"), merge=True)
            + "   # once every shard has finished"
        ]
    elif (Path(_WORKDIR.value) / "models" / "best_augmented.keras").exists():
        summary.next_commands = [
            cli.command(
                "gradcam_report",
                eval_workdir=_WORKDIR.value,
                **cli.flag_values(_SYNTHETIC_DIR, _DATA_DIR),
                out_dir="./workdirs/gradcam",
            ),
            cli.command("export", model=f"{_WORKDIR.value}/models/best_augmented.keras", export_dir="./serving/morsa"),
        ]
    else:  # only the real baseline: the Grad-CAM report compares it with an augmented model
        if _SYNTHETIC_DIR.value is None:
            summary.next_commands.append(
                cli.command("eval_ratios", *sys.argv[1:], synthetic_dir="./workdirs/synthetic")
                + "   # with bin/generate's images"
            )
        summary.next_commands.append(
            cli.command("export", model=f"{_WORKDIR.value}/models/real.keras", export_dir="./serving/morsa")
        )
    return summary
