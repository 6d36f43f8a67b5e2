"""Each stage's :class:`~keras_morsa.console.RunSummary`, built from what its library function returned.

One function per stage, named after it; each fills ``written`` (the files a person opens next),
``figures`` (the key numbers, one line per label) and ``report_file`` (``summary.json`` in the stage's
output folder). The caller adds the next commands (they depend on how the stage was started);
:func:`keras_morsa.cli.run` adds the wall time and the warnings. They read the figures from the files
the stage wrote.

Example:
    done = train_gan(config, "runs/gan", "all")
    summary = summaries.train_gan(done, "runs/gan")
    summary.next_commands = ["bin/generate --gan_workdir=runs/gan"]
    summary.print()
"""

from pathlib import Path

from keras_morsa import io
from keras_morsa.console import SUMMARY_NAME, RunSummary, duration


def _number(value):
    return f"{float(value):.4g}"


def train_gan(done, workdir):
    """Of ``train_gan``'s ``{class: class folder}``: each class's generators and latest sample grid; its
    losses (and KID, at a checkpoint) at the last logged step and the best checkpoint's KID
    (``generator_best.json``)."""
    from keras_morsa.training.train_gan import BEST_FILE, BEST_INFO_FILE, GENERATOR_FILE

    summary = RunSummary("train_gan", report_file=Path(workdir) / SUMMARY_NAME)
    for name, class_dir in done.items():
        class_dir = Path(class_dir)
        summary.written += [class_dir / f for f in (GENERATOR_FILE, BEST_FILE) if (class_dir / f).exists()]
        samples = sorted((class_dir / "samples").glob("step_*.png"))
        summary.written += samples[-1:]
        parts = []
        log = class_dir / "log.csv"
        rows = [row for row in io.read_csv(log) if row.get("d_loss")] if log.exists() else []
        if rows:
            last = rows[-1]
            parts.append(
                f"step {last['step']}: "
                + ", ".join(
                    f"{key} {_number(last[key])}" for key in ("d_loss", "g_loss", "rec_loss", "kid") if last.get(key)
                )
            )
        best = class_dir / BEST_INFO_FILE
        if best.exists():
            info = io.read_json(best)
            parts.append(
                f"best KID {_number(info['kid'])} (coverage {_number(info['coverage'])}) at step {info['step']}"
            )
        summary.figures[name] = "; ".join(parts) or "no log"
    return summary


def generate(rows, out_dir):
    """Of ``generate``'s manifest rows: the folder and its manifest; images per class, the generator used,
    and the filter's yield where ``yield.json`` has the class."""
    from keras_morsa.training.generate import YIELD_FILE

    out_dir = Path(out_dir)
    summary = RunSummary("generate", written=[out_dir, out_dir / "manifest.csv"], report_file=out_dir / SUMMARY_NAME)
    summary.written += sorted(out_dir.glob("interpolation_*.gif"))
    yields = io.read_json(out_dir / YIELD_FILE) if (out_dir / YIELD_FILE).exists() else {}
    by_class = {}
    for row in rows:
        by_class.setdefault(row["class_name"], []).append(row)
    for name, class_rows in by_class.items():
        text = (
            f"{len(class_rows)} images, {class_rows[0]['checkpoint']} generator (step "
            f"{class_rows[0]['checkpoint_step']})"
        )
        if any(row["score"] != "" for row in class_rows) and name in yields:
            share = yields[name]
            text += (
                f"; filter yield {100 * share['yield']:.1f} % ({share['passed']} of {share['drawn']} drawn, "
                f"confidence >= {share['min_confidence']:g})"
            )
        summary.figures[name] = text
    return summary


def eval_ratios(workdir, config, trained, shard=None):
    """Of ``run_study`` (``trained``: the result dicts of the runs this call trained): the report, results
    and exported models; per architecture the best cell and the verdicts against the baselines.

    A shard writes only its runs: then the figures say how many, and ``summary_shard<i>of<n>.json``
    keeps the shard's summary (the shards share the workdir).
    """
    from keras_morsa.evaluation import results as results_lib
    from keras_morsa.evaluation import summary as summary_lib
    from keras_morsa.evaluation.report import _interval, _pct, _signed  # the report's number format

    workdir = Path(workdir)
    summary = RunSummary("eval_ratios", report_file=workdir / SUMMARY_NAME)
    if shard is not None:
        summary.report_file = workdir / f"summary_shard{shard[0]}of{shard[1]}.json"
        summary.figures[f"shard {shard[0]}/{shard[1]}"] = f"{len(trained)} run(s) trained here"
        summary.written = [workdir / "runs"]
        return summary
    summary.written = [workdir / name for name in ("report.html", "report.md", "results.csv")]
    summary.written += sorted((workdir / "models").glob("*.keras"))
    table = summary_lib.summarize(results_lib.load_results(workdir), config.confidence)
    for arch in dict.fromkeys(row["arch"] for row in table):
        rows = [row for row in table if row["arch"] == arch]
        best = max(rows, key=lambda row: row["accuracy"]["mean"])
        accuracy = best["accuracy"]
        spread = "(one seed: no interval)" if accuracy["n"] < 2 else f"{_interval(accuracy)} over {accuracy['n']} seeds"
        summary.figures[f"{arch} best cell"] = f"{best['cell']}, accuracy {_pct(accuracy['mean'])} % {spread}"
        for baseline, found in summary_lib.verdicts(table, arch).items():
            difference = found["difference"]
            summary.figures[f"{arch} vs {baseline}"] = (
                f"{found['cell']} {_signed(difference)} points {_interval(difference)}: {found['verdict']}"
            )
    return summary


def eval_ratios_choice(workdir):
    """Of ``run_study(..., choose_only=True)``: the validation choice file; what was chosen, on what."""
    from keras_morsa.evaluation.results import CHOICE_FILE

    path = Path(workdir) / CHOICE_FILE
    choice = io.read_json(path)
    summary = RunSummary("eval_ratios", written=[path], report_file=path.parent / SUMMARY_NAME)
    chosen = ", ".join(f"{key}={value}" for key, value in choice["chosen"].items())
    summary.figures["validation choice"] = (
        f"{chosen}: mean validation accuracy {100 * choice['score']:.1f} % "
        f"({', '.join(choice['regimes'])}; test split not read)"
    )
    return summary


def gradcam_report(report, out_dir):
    """Of ``gradcam_report``'s ``metrics.json`` content: the report and its grids; the verdict per image
    group (are the augmented model's maps narrower?)."""
    out_dir = Path(out_dir)
    summary = RunSummary(
        "gradcam_report",
        written=[out_dir / "report.html", out_dir / "metrics.json"],
        report_file=out_dir / SUMMARY_NAME,
    )
    summary.written += sorted((out_dir / "grids").glob("*.png"))
    for scope, entry in report.get("comparison", {}).items():
        summary.figures[f"{scope} images"] = entry["verdict"]
    return summary


def gan_quality(report, out_dir):
    """Of ``gan_quality``'s ``quality.json`` content: the report files; KID, precision, recall, coverage and
    the memorised share per class."""
    out_dir = Path(out_dir)
    summary = RunSummary(
        "gan_quality",
        report_file=out_dir / SUMMARY_NAME,
        written=[out_dir / name for name in ("quality.html", "quality.md", "quality.json")],
    )
    for name, row in report["classes"].items():
        summary.figures[name] = ", ".join(
            f"{label} {_number(row[key])}"
            for key, label in (
                ("kid", "KID"),
                ("precision", "precision"),
                ("recall", "recall"),
                ("coverage", "coverage"),
                ("memorised_share", "memorised share"),
            )
            if key in row
        )
    return summary


def export(path):
    """Of ``export_model``'s version folder: that folder (no ``summary.json``: TF Serving watches the
    folder)."""
    path = Path(path)
    summary = RunSummary("export", written=[path])
    summary.figures["version"] = f"{path.name} of {path.parent.name}"
    return summary


def make_dataset(root):
    """Of the dataset root: the folder; its classes, images per class and size (``dataset.json``). No
    ``summary.json``: the folder is the dataset."""
    root = Path(root)
    summary = RunSummary("make_dataset", written=[root])
    info_file = root / "dataset.json"
    if info_file.exists():
        info = io.read_json(info_file)
        summary.figures["dataset"] = (
            f"{len(info['class_names'])} classes ({', '.join(info['class_names'])}), "
            f"{info['images_per_class']} images each, {info['image_size']} px, seed "
            f"{info['seed']}"
        )
    return summary


def run_pipeline(markers, workdir):
    """Of ``run_pipeline``'s done markers: ``index.html`` first, then each stage's time (and the export). No
    ``summary.json``: the markers and the index are the run's record, and a rerun that runs nothing writes
    nothing."""
    workdir = Path(workdir)
    summary = RunSummary("run_pipeline", written=[workdir / "index.html"])
    for name, marker in markers.items():
        if marker is not None:
            summary.figures[name] = f"done {marker['finished']} ({duration(marker['wall_time_s'])})"
    export = (markers.get("export") or {}).get("outputs")
    if export:
        summary.written.append(workdir / export["version_dir"])
    return summary
