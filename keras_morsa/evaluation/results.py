"""The study's result files: each run's ``result.json``, and the merge that builds the sweep's outputs.

:func:`merge_study` turns the finished runs under ``<workdir>/runs`` into ``results.csv``, ``curves.csv``,
the report (:mod:`keras_morsa.evaluation.report`) and ``models/``. Planning and training live in
:mod:`keras_morsa.evaluation.study`; statistics in :mod:`keras_morsa.evaluation.summary`.
"""

import shutil
from pathlib import Path

from absl import logging

from keras_morsa import io
from keras_morsa.errors import UserError
from keras_morsa.evaluation import report
from keras_morsa.evaluation.regimes import check_sources, plan_runs

RESULT_NAME = "result.json"
CURVE_FIELDS = ("step", "test_accuracy", "train_loss", "train_accuracy")
QUALITY_COPY = "synthetic_quality.json"
#: ``[[source name, folder]]`` of the synthetic folders the sweep read, in the order given (name "" for one
#: unnamed folder).
SOURCES_NAME = "synthetic_sources.json"
#: The validation choice's folder (its runs under ``runs/lr_<schedule>/``) and the choice it made.
CHOICE_DIR = "validation"
CHOICE_FILE = f"{CHOICE_DIR}/choice.json"


def quality_copy(source):
    """The workdir file holding a synthetic source's ``quality.json`` copy."""
    return QUALITY_COPY if not source else f"synthetic_quality_{source}.json"


def chooses(config):
    """Whether ``config.choose`` lists candidates, i.e. the study makes a validation choice first."""
    return bool(list(config.choose.lr_schedule) or list(config.choose.final_evals))


def with_choice(config, choice):
    """A copy of ``config`` with the settings of ``choice`` (``validation/choice.json``) made."""
    chosen = config.copy_and_resolve_references()
    chosen.update(choice["chosen"])
    return chosen


def load_results(workdir):
    """The result dicts of every finished run under ``<workdir>/runs``, in run-id order."""
    paths = sorted((Path(workdir) / "runs").glob(f"*/{RESULT_NAME}"))
    return [io.read_json(path) for path in paths]


def merge_study(config, workdir):
    """Builds ``results.csv``, ``curves.csv``, the report, the plots and ``models/`` from finished runs.

    Call it after all shards have finished (their ``runs/`` folders under one ``workdir``); a plain
    :func:`~keras_morsa.evaluation.study.run_study` does it itself. Holds the workdir's lock.

    Raises:
        UserError: no finished run in ``workdir``, or another process holds the workdir.
    """
    with io.folder_lock(workdir):
        return build_outputs(config, workdir)


def build_outputs(config, workdir):
    """:func:`merge_study` for a caller that already holds the workdir's lock."""
    workdir = Path(workdir)
    results = load_results(workdir)
    if not results:
        raise UserError(f"no finished runs under {workdir / 'runs'}; run the sweep (or its shards) first")
    choice = None
    if chooses(config):
        if not (workdir / CHOICE_FILE).is_file():
            raise UserError(
                f"config.choose lists candidates but {workdir / CHOICE_FILE} does not exist; run the "
                "study (or its --choose_only step) first"
            )
        choice = io.read_json(workdir / CHOICE_FILE)
        config = with_choice(config, choice)
    sources = dict(io.read_json(workdir / SOURCES_NAME)) if (workdir / SOURCES_NAME).is_file() else {}
    if len(sources) > 1:  # the report pairs every source against this one ("" in the config: the first given)
        config = config.copy_and_resolve_references()
        config.reference_source = check_sources(list(sources), config.reference_source)
    expected = {r.run_id for r in plan_runs(config, list(sources) or [""])}
    missing = sorted(expected - {row["run_id"] for row in results})
    if missing:
        logging.warning(
            "%d planned runs have no result (skipped or unfinished shard): %s", len(missing), ", ".join(missing[:5])
        )
    class_names = results[0]["class_names"]
    fields = [
        "run_id",
        "arch",
        "regime",
        "ratio",
        "source",
        "split",
        "seed",
        "steps",
        "batch_size",
        "train_images",
        "real_images",
        "synthetic_images",
        "test_images",
        "test_accuracy",
        "macro_f1",
    ]
    fields += [f"acc_{name}" for name in class_names] + ["wall_time_s", "bn"]
    rows = []
    for row in results:
        flat = {key: row[key] for key in fields if key in row}
        flat["ratio"] = "" if row["ratio"] is None else row["ratio"]
        flat["split"] = "" if row.get("split") is None else row["split"]
        flat.update({f"acc_{name}": row["per_class_accuracy"][name] for name in class_names})
        rows.append(flat)
    io.write_csv(workdir / "results.csv", rows, fields)
    curves = []
    for row in results:
        for point in io.read_csv(workdir / "runs" / row["run_id"] / "curve.csv"):
            curves.append({"run_id": row["run_id"], **point})
    io.write_csv(workdir / "curves.csv", curves, ("run_id",) + CURVE_FIELDS)
    _copy_models(results, config, workdir)
    qualities = {
        name: io.read_json(workdir / quality_copy(name))
        for name in sources or [""]
        if (workdir / quality_copy(name)).is_file()
    }
    report.write_report(results, curves, config, workdir, qualities, choice)
    return results


def _copy_models(results, config, workdir):
    """``models/real.keras`` and ``models/best_augmented.keras`` of the first architecture."""
    arch = config.archs[0]
    kept = [row for row in results if row["arch"] == arch and row["has_model"]]
    real = sorted((row for row in kept if row["regime"] == "real"), key=lambda row: row["seed"])
    augmented = sorted((row for row in kept if row["regime"] != "real"), key=lambda row: -row["test_accuracy"])
    for name, rows in (("real", real), ("best_augmented", augmented)):
        if not rows:
            continue
        source = workdir / "runs" / rows[0]["run_id"] / "model.keras"
        with open(source, "rb") as src, io.atomic_write(workdir / "models" / f"{name}.keras") as dst:
            shutil.copyfileobj(src, dst)
        io.write_json(
            workdir / "models" / f"{name}.json",
            {key: rows[0][key] for key in ("run_id", "arch", "regime", "ratio", "seed", "test_accuracy", "macro_f1")},
        )
