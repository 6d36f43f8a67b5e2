"""The bad-input corpus: every bin/ script against broken inputs built in tmp_path.

Each case must end with exit status 2, exactly one line on stderr that starts with ``error: `` (TensorFlow's
start-up chatter and absl progress log records aside), no traceback, and nothing written outside the
command's own --workdir/--out_dir (nothing in the corpus changed or removed).

SLOW PART: every case is one fresh interpreter, a few seconds of TensorFlow import each (~1-2 min for the
file on 2 cores). It holds only what in-process tests cannot reach (flag parsing, the scripts' guard); the
library-level checks of each hardening item live beside their modules.
"""

import os
import re
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_morsa.data import splits
from keras_morsa.io import LOCK_NAME, write_json

# TensorFlow's start-up lines and absl log records ("I1202 09:09:31.016819 ... study.py:404] ...", progress
# the scripts log before they stop) are not error output.
_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWE]\d{4} \d\d:\d\d:\d\d)")


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip() and not _NOISE.match(line)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Broken inputs: a truncated .keras, a file where a workdir goes, an empty data folder."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "truncated.keras").write_bytes(b"PK\x03\x04 truncated")
    (root / "junk.keras").write_bytes(b"not a zip at all")
    with zipfile.ZipFile(root / "empty_zip.keras", "w"):
        pass  # a zip without config.json
    (root / "a_file").write_text("a workdir that is a file")
    data = root / "data"
    for name in ("disc", "square"):
        (data / name).mkdir(parents=True)
        for i in range(3):
            pixels = np.full((16, 16, 3), 40 * i + (name == "disc"), np.uint8)
            Image.fromarray(pixels).save(data / name / f"{name}_{i}.png")
    splits.load_or_create_split(data)  # made now, so a refused run has nothing to write beside the data
    lonely = root / "lonely_data"
    for name, count in (("many", 4), ("lonely", 1)):
        (lonely / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((16, 16, 3), 50 * i + (name == "many"), np.uint8)).save(lonely / name / f"{i}.png")
    splits.load_or_create_split(lonely)
    # A class folder another live process holds (the pytest parent stands in for it).
    (root / "busy" / "disc").mkdir(parents=True)
    write_json(
        root / "busy" / "disc" / LOCK_NAME,
        {"pid": os.getppid(), "host": socket.gethostname(), "started": "2026-12-02T08:00:00+00:00"},
    )
    (root / "study" / "models").mkdir(parents=True)
    for name in ("real", "best_augmented"):
        (root / "study" / "models" / f"{name}.keras").write_bytes(b"corrupt")
    (root / "gan" / "jaw").mkdir(parents=True)
    (root / "gan" / "jaw" / "generator_ema.keras").write_bytes(b"corrupt")
    (root / "gan" / "jaw" / "done.json").write_text('{"step": 6}')
    (root / "gan" / "jaw" / "sources.txt").write_text("a" * 64 + "\n")
    return root


def _cases(c):
    smoke = "--config=configs/fastgan_cpu.py:smoke"
    smoke_study = "--config=configs/eval_ratios.py:smoke"
    return {
        "misspelt config key": (
            "train_gan",
            ["--class=jaw", f"--workdir={c}/w1", "--config.train.nume_steps=3"],
            "nume_steps",
        ),
        "missing config file": (
            "train_gan",
            ["--class=jaw", f"--workdir={c}/w2", f"--config={c}/nope.py"],
            "No such file or directory",
        ),
        "misspelt gan_quality config key": (
            "gan_quality",
            [f"--out_dir={c}/q", "--config.featurs=random"],
            "featurs",
        ),
        "config variant typo": (
            "train_gan",
            ["--class=jaw", f"--workdir={c}/w3", "--config=configs/fastgan_cpu.py:smok"],
            "unknown config variant 'smok'",
        ),
        "unknown flag": ("train_gan", ["--clas=jaw", f"--workdir={c}/w0"], "Unknown command line flag 'clas'"),
        "stray positional argument": (
            "make_dataset",
            [f"--out_dir={c}/w7", "jaw"],
            "unexpected arguments jaw: bin/make_dataset takes only --flags",
        ),
        "workdir is a file": (
            "train_gan",
            ["--class=disc", f"--workdir={c}/a_file", f"--data_dir={c}/data", smoke],
            "Not a directory",
        ),
        "class folder in use": (
            "train_gan",
            ["--class=disc", f"--workdir={c}/busy", f"--data_dir={c}/data", smoke],
            "is in use by pid",
        ),
        "class without test images": (
            "eval_ratios",
            [
                f"--workdir={c}/w5",
                f"--data_dir={c}/lonely_data",
                "--config=configs/eval_ratios.py:smoke",
                "--config.regimes=('real',)",
            ],
            "have no test images",
        ),
        "non-numeric ratio": (
            "eval_ratios",
            [f"--workdir={c}/w4", "--config=configs/eval_ratios.py:smoke", "--config.ratios=abc"],
            "config.ratios=('abc',)",
        ),
        "unnamed synthetic source": (
            "eval_ratios",
            [f"--workdir={c}/w7", smoke_study, f"--synthetic_source={c}/data"],
            "expected name=folder once per name",
        ),
        "choice without a validation share": (
            "eval_ratios",
            [f"--workdir={c}/w8", smoke_study, "--config.choose.final_evals=(1, 2)"],
            "config.validation_share is 0: a choice needs a validation share",
        ),
        "missing required flag": ("export", [f"--model={c}/junk.keras"], "--export_dir"),
        "corrupt .keras to export": (
            "export",
            [f"--model={c}/truncated.keras", f"--export_dir={c}/serving"],
            "is not a readable .keras file",
        ),
        "zip without a model to export": (
            "export",
            [f"--model={c}/empty_zip.keras", f"--export_dir={c}/serving"],
            "cannot load model",
        ),
        "corrupt .keras to generate": (
            "generate",
            [f"--gan_workdir={c}/gan", f"--out_dir={c}/synthetic", "--num_images=1"],
            "is not a readable .keras file",
        ),
        "pipeline setting out of range": (
            "run_pipeline",
            [
                f"--workdir={c}/w6",
                f"--data_dir={c}/data",
                "--config=configs/pipeline.py:smoke",
                "--config.generate.filter=best",
            ],
            "config.generate.filter='best'; accepted: none, classifier",
        ),
        "corrupt .keras to gradcam_report": (
            "gradcam_report",
            [f"--eval_workdir={c}/study", f"--out_dir={c}/cam"],
            "is not a readable .keras file",
        ),
    }


CASES = list(_cases("C"))


@pytest.mark.parametrize("case", CASES)
def test_every_bin_script_reports_a_bad_input_in_one_line(case, corpus, run_script, tmp_path_factory):
    script, args, expected = _cases(corpus)[case]
    before = sorted(p.relative_to(corpus) for p in corpus.rglob("*"))
    result = run_script(script, *args, timeout=300)
    lines = _error_lines(result.stderr)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    # Nothing written outside the command's own workdir or out_dir, nothing removed (the corpus is its world).
    after = sorted(p.relative_to(corpus) for p in corpus.rglob("*"))
    own = [Path(a.split("=", 1)[1]).relative_to(corpus) for a in args if a.startswith(("--workdir=", "--out_dir="))]
    assert set(before) <= set(after)
    assert all(any(path == root or root in path.parents for root in own) for path in set(after) - set(before))
