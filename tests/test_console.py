"""The console a person reads: a quiet start, one line per warning, the summary, and the installed commands."""

import configparser
import json
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from absl import logging as absl_logging
from PIL import Image

from keras_morsa import cli, console, scripts, summaries
from keras_morsa.data.folder import DataWarning
from keras_morsa.io import read_json, write_csv, write_json

import helpers

REPO = Path(__file__).resolve().parents[1]
NOISE = ("cuInit", "cuda drivers", "cpu_feature_guard", "absl::InitializeLog")


def _quiet_env():
    """This checkout's package, and no TF_CPP_MIN_LOG_LEVEL (conftest sets one; a user usually has none)."""
    return helpers.checkout_env(TF_CPP_MIN_LOG_LEVEL=None)


# --- warnings, quiet stderr, the summary ---------------------------------------------------------------------


def test_own_warnings_are_one_line_each_and_collected(capsys):
    original = warnings.showwarning
    with console.warning_lines() as seen:
        for _ in range(2):  # a repeat is listed once
            warnings.warn("skipped 2 file(s)\n  in /data:  a.txt", DataWarning, stacklevel=1)
        line = sys._getframe().f_lineno - 1
        with pytest.warns(FutureWarning):  # another library's: left to Python (here: to pytest)
            warnings.warn("someone else's", FutureWarning, stacklevel=1)
        record = logging.LogRecord(
            "absl",
            logging.WARNING,
            str(REPO / "keras_morsa" / "evaluation" / "study.py"),
            367,
            "no synthetic_dir given: skipping %d runs",
            (4,),
            None,
        )
        absl_logging.get_absl_handler().handle(record)
    own = f"warning: skipped 2 file(s) in /data: a.txt, tests/test_console.py:{line}"
    logged = "warning: no synthetic_dir given: skipping 4 runs, keras_morsa/evaluation/study.py:367"
    assert seen == [own, logged]
    err = capsys.readouterr().err.splitlines()
    assert set(err) == {own, logged} and "someone else" not in "".join(seen)
    assert warnings.showwarning is original  # the hook is gone after the block


def test_quiet_stderr_hides_what_is_written_to_descriptor_2_only(capfd):
    with console.quiet_stderr():
        os.write(2, b"I0000 cudart_stub.cc:31] Could not find cuda drivers\n")
        print("error: a Python line stays", file=sys.stderr)
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "error: a Python line stays\nafter\n"
    with pytest.raises(RuntimeError), console.quiet_stderr():
        os.write(2, b"C++ context of a crash\n")
        raise RuntimeError("crash")
    assert capfd.readouterr().err == "C++ context of a crash\n"  # replayed for the traceback
    with console.quiet_stderr(enabled=False):
        os.write(2, b"verbose\n")
    assert capfd.readouterr().err == "verbose\n"


def test_run_summary_prints_and_saves(tmp_path, capsys):
    summary = console.RunSummary(
        "train_gan",
        written=[tmp_path / "jaw" / "generator_ema.keras"],
        figures={"jaw": "step 6: d_loss 2.4"},
        next_commands=["bin/generate --a=1", "b"],
        warnings=["warning: w, keras_morsa/x.py:1"],
        wall_time_s=125.0,
        report_file=tmp_path / "summary.json",
    )
    assert summary.save() == tmp_path / "summary.json"
    summary.print()
    assert capsys.readouterr().out.splitlines() == [
        "",
        "train_gan finished in 2 min 05 s",
        f"  wrote {tmp_path}/jaw/generator_ema.keras",
        "  jaw: step 6: d_loss 2.4",
        "  1 warning(s):",
        "    warning: w, keras_morsa/x.py:1",
        f"  summary {tmp_path}/summary.json",
        "next: bin/generate --a=1",
        "  or: b",
    ]
    assert read_json(tmp_path / "summary.json") == {
        "stage": "train_gan",
        "written": [str(tmp_path / "jaw" / "generator_ema.keras")],
        "figures": {"jaw": "step 6: d_loss 2.4"},
        "next_commands": ["bin/generate --a=1", "b"],
        "warnings": ["warning: w, keras_morsa/x.py:1"],
        "wall_time_s": 125.0,
    }
    assert [console.duration(s) for s in (8.24, 60, 3 * 3600 + 7 * 60)] == ["8.2 s", "1 min 00 s", "3 h 07 min"]


@pytest.mark.multibackend
def test_backend_line_names_the_backend_and_devices():
    import keras

    line = console.backend_line()
    assert re.fullmatch(rf"keras-morsa \S+: backend {keras.backend.backend()}, devices .+", line)
    assert re.search(r"(CPU|cpu)\S* \(.+, \d+ cores\)", line)


@pytest.mark.parametrize(
    "args, verbose",
    [
        ([], False),
        (["--verbose"], True),
        (["-verbose"], True),
        (["--verbose=false"], False),
        (["--verbose", "--noverbose"], False),
        (["--class=jaw", "--verbose=1"], True),
        (["--", "--verbose"], False),
        (["--verbosity=1"], False),
    ],
)
def test_verbose_is_read_before_the_flags_are_parsed(args, verbose):
    assert cli._verbose_requested(args) is verbose


def test_next_commands_are_written_as_the_process_was_started(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bin/train_gan", "--class=jaw"])
    assert (
        cli.command("generate", gan_workdir="w d", seed=None, interpolate=True)
        == "bin/generate '--gan_workdir=w d' --interpolate"
    )
    monkeypatch.setattr(sys, "argv", ["/venv/bin/keras-morsa-train-gan"])
    assert (
        cli.command("eval_ratios", "--merge", workdir="s", interpolate=False)
        == "keras-morsa-eval-ratios --merge --workdir=s --nointerpolate"
    )


def test_without_flag_drops_both_spellings():
    args = ["--config=c.py:smoke", "--shard=0/4", "--workdir=w", "--shard", "1/4", "--sharding=x"]
    assert cli.without_flag(args, "shard") == ["--config=c.py:smoke", "--workdir=w", "--sharding=x"]


def test_config_files_come_from_the_checkout_else_the_installed_copy():
    assert cli.config_file("fastgan_cpu.py") == str(REPO / "configs" / "fastgan_cpu.py")
    import sysconfig

    assert cli.config_file("nope.py") == str(
        Path(sysconfig.get_path("data")) / "share" / "keras-morsa" / "configs" / "nope.py"
    )


# --- each stage's summary from its result ----------------------------------------------------------------------


def test_train_gan_summary_reads_the_losses_and_the_best_checkpoint(tmp_path):
    run = tmp_path / "jaw"
    (run / "samples").mkdir(parents=True)
    for name in ("generator_ema.keras", "samples/step_000002.png", "samples/step_000004.png"):
        (run / name).write_bytes(b"")
    write_csv(
        run / "log.csv",
        [
            {"step": 2, "d_loss": 3.0, "g_loss": 0.5, "rec_loss": 1.0},
            {"step": 4, "d_loss": 2.41871, "g_loss": 0.127, "rec_loss": 0.786, "kid": 0.2},
        ],
        ["step", "d_loss", "g_loss", "rec_loss", "kid"],
    )
    write_json(run / "generator_best.json", {"step": 2, "kid": 0.15803, "coverage": 0.5})
    summary = summaries.train_gan({"jaw": run}, tmp_path)
    assert summary.written == [run / "generator_ema.keras", run / "samples" / "step_000004.png"]
    assert summary.figures == {
        "jaw": "step 4: d_loss 2.419, g_loss 0.127, rec_loss 0.786, kid 0.2; best KID 0.158 (coverage 0.5) at step 2"
    }
    assert summary.report_file == tmp_path / "summary.json"


def test_generate_summary_counts_images_and_the_filter_yield(tmp_path):
    rows = [{"class_name": "jaw", "checkpoint": "best", "checkpoint_step": 4, "score": 0.9}] * 3
    rows += [{"class_name": "nut", "checkpoint": "final", "checkpoint_step": 6, "score": ""}] * 2
    write_json(
        tmp_path / "yield.json", {"jaw": {"kept": 3, "passed": 3, "drawn": 8, "yield": 0.375, "min_confidence": 0.5}}
    )
    summary = summaries.generate(rows, tmp_path)
    assert summary.written == [tmp_path, tmp_path / "manifest.csv"]
    assert summary.figures == {
        "jaw": "3 images, best generator (step 4); filter yield 37.5 % (3 of 8 drawn, confidence >= 0.5)",
        "nut": "2 images, final generator (step 6)",
    }


def test_eval_ratios_summary_names_the_best_cell_and_the_verdicts(tmp_path):
    from configs.eval_ratios import get_config

    for seed in range(3):
        for regime, ratio, accuracy in (("real", None, 0.60), ("synthetic", 0.5, 0.80)):
            cell = regime if ratio is None else f"{regime}@{ratio}"
            write_json(
                tmp_path / "runs" / f"{cell}_s{seed}" / "result.json",
                {
                    "run_id": f"{cell}_s{seed}",
                    "arch": "mobilenet_v3_small",
                    "regime": regime,
                    "ratio": ratio,
                    "cell": cell,
                    "seed": seed,
                    "test_accuracy": accuracy + 0.01 * seed,
                    "macro_f1": accuracy,
                },
            )
    summary = summaries.eval_ratios(tmp_path, get_config("smoke"), trained=[])
    assert summary.figures["mobilenet_v3_small best cell"] == (
        "synthetic@0.5, accuracy 81.0 % [78.5, 83.5] over 3 seeds"
    )
    assert summary.figures["mobilenet_v3_small vs real"] == "synthetic@0.5 +20.0 points [20.0, 20.0]: helps"
    assert summary.written[0] == tmp_path / "report.html"
    shard = summaries.eval_ratios(tmp_path, get_config("smoke"), trained=[{}, {}], shard=(1, 4))
    assert shard.figures == {"shard 1/4": "2 run(s) trained here"}
    assert shard.report_file == tmp_path / "summary_shard1of4.json"


def test_gradcam_quality_export_and_dataset_summaries(tmp_path):
    gradcam = summaries.gradcam_report(
        {"comparison": {"all": {"verdict": "narrower: -0.1"}, "real": {"verdict": "no clear difference"}}}, tmp_path
    )
    assert gradcam.figures == {"all images": "narrower: -0.1", "real images": "no clear difference"}
    quality = summaries.gan_quality(
        {
            "classes": {
                "jaw": {"kid": 0.01234, "precision": 0.5, "recall": 0.25, "coverage": 0.75, "memorised_share": 0.0}
            }
        },
        tmp_path,
    )
    assert quality.figures == {"jaw": "KID 0.01234, precision 0.5, recall 0.25, coverage 0.75, memorised share 0"}
    assert summaries.export(tmp_path / "morsa" / "3").figures == {"version": "3 of morsa"}
    write_json(
        tmp_path / "dataset.json", {"class_names": ["jaw", "nut"], "images_per_class": 2, "image_size": 32, "seed": 5}
    )
    dataset = summaries.make_dataset(tmp_path)
    assert dataset.figures == {"dataset": "2 classes (jaw, nut), 2 images each, 32 px, seed 5"}
    assert dataset.report_file is None and summaries.export(tmp_path).report_file is None


# --- the installed commands -------------------------------------------------------------------------------------


def _entry_points():
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    lines = [line.strip() for line in parser["options.entry_points"]["console_scripts"].splitlines() if line.strip()]
    return dict(line.split(" = ") for line in lines)


def test_every_stage_has_a_bin_script_and_a_console_script():
    expected = {
        f"keras-morsa-{stage.replace('_', '-')}": f"keras_morsa.scripts:{stage}_main" for stage in scripts.STAGES
    }
    assert _entry_points() == expected
    for stage in scripts.STAGES:
        assert callable(getattr(scripts, f"{stage}_main"))
        assert (REPO / "keras_morsa" / "scripts" / f"{stage}.py").is_file()
        code = [
            line
            for line in (REPO / "bin" / stage).read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert code[-2:] == ["from keras_morsa import cli", f'cli.launch("{stage}")']  # thin: the docstring, then this
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    assert parser["options.data_files"]["share/keras-morsa/configs"].strip() == "configs/*.py"


def test_each_console_script_target_runs_help_quietly():
    started = {}
    for name, target in _entry_points().items():
        module, function = target.split(":")
        code = f"import sys; sys.argv = [{name!r}, '--help']; from {module} import {function}; {function}()"
        started[name] = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_quiet_env(),
            cwd=REPO,
        )
    for name, process in started.items():
        out, err = process.communicate(timeout=600)
        stage = name.removeprefix("keras-morsa-").replace("-", "_")
        assert process.returncode == 1, err[-2000:]  # absl's --help exits with 1
        doc = _doc(stage)
        assert out.startswith(doc.splitlines()[0]) and f"{name}:" in out and "--[no]verbose" in out
        assert ("  --config: " in out) == (stage in ("train_gan", "gan_quality", "eval_ratios", "run_pipeline"))
        assert not any(noise in out + err for noise in NOISE), err


def _doc(stage):
    """A stage module's docstring, read without importing it (its flags would clash with another's)."""
    import ast

    return ast.get_docstring(ast.parse((REPO / "keras_morsa" / "scripts" / f"{stage}.py").read_text()))


# --- a real run of a bin script --------------------------------------------------------------------------------


def test_bin_train_gan_starts_quiet_warns_in_one_line_and_ends_with_its_summary(tmp_path):
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for name in ("disc", "square"):
        (data / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(data / name / f"{i}.png")
    (data / "disc" / "notes.txt").write_text("not an image")  # skipped with a DataWarning
    workdir = tmp_path / "gan"
    command = [
        sys.executable,
        str(REPO / "bin" / "train_gan"),
        "--class=disc",
        f"--data_dir={data}",
        f"--workdir={workdir}",
        f"--config={REPO / 'configs' / 'fastgan_cpu.py'}:smoke",
        "--config.train.num_steps=2",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=_quiet_env(), cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out, err = result.stdout.replace("\r", "\n").splitlines(), result.stderr.splitlines()
    assert re.fullmatch(r"keras-morsa \S+: backend tensorflow, devices .*CPU.*", out[0])
    assert not any(noise in result.stdout + result.stderr for noise in NOISE), result.stderr
    warned = [line for line in err if line.strip()]
    assert len(warned) == 1, result.stderr
    assert re.fullmatch(
        rf"warning: skipped 1 file\(s\) in {re.escape(str(data))}: .*notes\.txt: unsupported "
        r"extension '\.txt'.*, keras_morsa/[\w/]+\.py:\d+",
        warned[0],
    )

    summary = out[next(i for i, line in enumerate(out) if line.startswith("train_gan finished in ")) :]
    assert f"  wrote {workdir}/disc/generator_ema.keras" in summary
    assert any(line.startswith("  disc: step 2: d_loss ") and "best KID" in line for line in summary)
    assert f"    {warned[0]}" in summary and f"  summary {workdir}/summary.json" in summary
    assert (
        summary[-1] == f"next: {REPO}/bin/generate --gan_workdir={workdir} --num_images=100 "
        "--out_dir=./workdirs/synthetic"
    )
    saved = json.loads((workdir / "summary.json").read_text())
    assert saved["warnings"] == warned and saved["next_commands"] == [summary[-1].removeprefix("next: ")]
    assert str(workdir / "disc" / "generator_ema.keras") in saved["written"] and saved["wall_time_s"] > 0


def test_verbose_brings_the_backend_messages_back(tmp_path):
    runs = {}
    for flag in ([], ["--verbose"]):
        runs[bool(flag)] = subprocess.run(
            [sys.executable, str(REPO / "bin" / "generate"), *flag],
            capture_output=True,
            text=True,
            env=_quiet_env(),
            cwd=tmp_path,
            timeout=600,
        )
    error = "error: --gan_workdir is required: the --workdir of bin/train_gan"
    assert runs[False].returncode == runs[True].returncode == 2
    assert runs[False].stderr == error + "\n"
    assert runs[False].stdout.startswith("keras-morsa ") and runs[True].stdout.startswith("keras-morsa ")
    # TensorFlow 2.21 always logs at start-up (oneDNN, the cpu-feature guard or CUDA, absl's preamble).
    verbose = runs[True].stderr.splitlines()
    assert verbose[-1] == error and len(verbose) > 1 and any(noise in runs[True].stderr for noise in NOISE)
