"""End-to-end FastGAN runs on the smoke config: files, resume, non-finite stop, SIGKILL, the bin scripts."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from keras import ops
from PIL import Image

from configs.fastgan_cpu import get_config
from keras_morsa.data import splits
from keras_morsa.errors import UserError
from keras_morsa.io import LOCK_NAME, FolderLocked, read_csv, read_json, write_json
from keras_morsa.models.saving import load_model
from keras_morsa.quality.features import random_cnn
from keras_morsa.training.checkpoint import CheckpointManager, CheckpointMismatch
from keras_morsa.training.fastgan import FastGAN
from keras_morsa.training.generate import generate
from keras_morsa.training.train_gan import NonFiniteLoss, build_gan, rescore_best, train_gan

import helpers

REPO = Path(__file__).resolve().parents[2]
SMOKE = f"--config={REPO / 'configs' / 'fastgan_cpu.py'}:smoke"
CLASSES = ("disc", "square")


def make_folder(root, per_class=8, seed=0):
    """A tiny two-class ImageFolder: coloured squares on white, 48 px."""
    draw = helpers.squares_on_white(CLASSES, ((200, 40, 40), (40, 40, 200)), seed=seed)
    helpers.write_image_folder(root, dict.fromkeys(CLASSES, per_class), draw)
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("gan")
    result = train_gan(get_config("smoke"), workdir, "disc", data_dir=data_dir)
    return workdir, result


def test_build_gan_takes_the_decoder_width_from_the_config():
    config = get_config("smoke")
    config.model.decoder_width = 2
    gan = build_gan(config)
    # 64 px: decoders up to 32x32, up-blocks to 16 and 32 with 4x and 2x the width.
    for decoder in (gan.discriminator.decoder_big, gan.discriminator.decoder_small, gan.discriminator.decoder_part):
        assert [up.filters for up in decoder.ups] == [8, 4]


@pytest.mark.multibackend
def test_smoke_run_writes_every_output_and_generates(trained, data_dir, tmp_path):
    workdir, result = trained
    run = workdir / "disc"
    assert result == {"disc": run}
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["ckpt_00000004.npz", "ckpt_00000006.npz"]
    for folder in ("samples", "reconstructions"):
        assert sorted(p.name for p in (run / folder).iterdir()) == [f"step_00000{s}.png" for s in (2, 4, 6)]
    assert Image.open(run / "samples" / "step_000006.png").size == (128, 128)  # 2 x 2 grid of 64 px
    assert [r["step"] for r in read_csv(run / "log.csv")] == ["2", "4", "6"]
    row = read_csv(run / "log.csv")[-1]
    assert all(np.isfinite(float(row[k])) for k in ("d_loss", "g_loss", "rec_loss", "it_per_s"))
    manifest = splits.load_or_create_split(data_dir)
    expected = sorted(r["sha256"] for r in manifest.rows if r["class_name"] == "disc" and r["split"] == "train")
    assert (run / "sources.txt").read_text().split() == expected
    assert read_json(run / "done.json")["step"] == 6

    # Finished: a rerun skips the class and leaves its files alone.
    before = (run / "log.csv").read_text()
    train_gan(get_config("smoke"), workdir, "disc", data_dir=data_dir)
    assert (run / "log.csv").read_text() == before

    out = tmp_path / "synthetic"
    rows = generate(workdir, out, 3, progress=False)
    assert [r["latent_index"] for r in rows] == [0, 1, 2]
    images = sorted((out / "disc").iterdir())
    assert len(images) == 3 and all(Image.open(p).size == (64, 64) for p in images)
    best = read_json(run / "generator_best.json")["step"]
    assert {(r["checkpoint_step"], r["checkpoint"]) for r in read_csv(out / "manifest.csv")} == {(str(best), "best")}
    assert (out / "sources.txt").read_text().split() == expected
    # The final generator (the best may be a near-initial one whose frames PIL merges as duplicates).
    generate(workdir, tmp_path / "final", 1, interpolate=True, progress=False, checkpoint="final")
    assert Image.open(tmp_path / "final" / "interpolation_disc.gif").n_frames == 32


@pytest.mark.multibackend
def test_checkpoint_quality_is_logged_and_the_best_generator_kept(trained, tmp_path):
    workdir, _ = trained
    run = workdir / "disc"
    rows = read_csv(run / "log.csv")
    # Every checkpoint (every 2 steps in the smoke config) is scored against the class's train images.
    kid = {int(r["step"]): float(r["kid"]) for r in rows}
    assert sorted(kid) == [2, 4, 6] and all(np.isfinite(list(kid.values())))
    assert all(0.0 <= float(r["coverage"]) <= 1.0 for r in rows)
    best = read_json(run / "generator_best.json")
    assert best["step"] == min(kid, key=kid.get) and best["kid"] == pytest.approx(kid[best["step"]])
    assert (run / "generator_best.keras").is_file() and Image.open(run / "quality_disc.png").size[0] > 300

    # --checkpoint=final draws from the final generator (and redraws what the best one had drawn there).
    out = tmp_path / "synthetic"
    generate(workdir, out, 2, progress=False, checkpoint="best")
    before = (out / "disc" / "disc_seed0_00000.png").read_bytes()
    generate(workdir, out, 2, progress=False, checkpoint="final")
    assert {(r["checkpoint_step"], r["checkpoint"]) for r in read_csv(out / "manifest.csv")} == {("6", "final")}
    if best["step"] != 6:
        assert (out / "disc" / "disc_seed0_00000.png").read_bytes() != before
    with pytest.raises(UserError, match="--checkpoint=latest; accepted: best, final"):
        generate(workdir, out, 1, checkpoint="latest")


def test_resume_continues_and_a_non_finite_loss_keeps_the_last_good_checkpoint(
    trained, data_dir, tmp_path, monkeypatch
):
    workdir = tmp_path / "gan"
    shutil.copytree(trained[0], workdir)
    run = workdir / "disc"
    finish_step = FastGAN.finish_step

    def poisoned(self, losses):
        # G's optimizer has taken `iterations` steps when finish_step runs: step 8 goes NaN.
        bad = ops.where(ops.greater_equal(self.g_optimizer.iterations, 8), float("nan"), 0.0)
        return finish_step(self, {**losses, "g_loss": losses["g_loss"] + bad})

    monkeypatch.setattr(FastGAN, "finish_step", poisoned)
    config = get_config("smoke")
    config.train.num_steps = 10
    with pytest.raises(NonFiniteLoss, match=r"g_loss became nan at step 8; .*checkpoint: step 6"):
        train_gan(config, workdir, "disc", data_dir=data_dir)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["ckpt_00000004.npz", "ckpt_00000006.npz"]
    assert [r["step"] for r in read_csv(run / "log.csv")] == ["2", "4", "6"]
    assert not (run / "samples" / "step_000008.png").exists() and not (run / "done.json").exists()


def _learning_rates(checkpoint):
    with np.load(checkpoint) as data:
        return sorted(float(data[k]) for k in data.files if k.endswith("adam/learning_rate"))


def test_a_rerun_with_lower_learning_rates_uses_them_over_the_checkpoint(data_dir, tmp_path, capsys, monkeypatch):
    # The repro, with the divergence made deterministic: any step from 3 on goes NaN while G's rate
    # is above 1e-2. The first run stops at step 3 with its step-2 checkpoint holding the high rates; the
    # rerun with the lower rates the message suggests used to get them back from the checkpoint's optimizer
    # state and stop at step 3 again.
    finish_step = FastGAN.finish_step

    def diverging(self, losses):
        too_fast = ops.logical_and(
            ops.greater(self.g_optimizer.learning_rate, 1e-2), ops.greater_equal(self.g_optimizer.iterations, 3)
        )
        return finish_step(self, {**losses, "g_loss": losses["g_loss"] + ops.where(too_fast, float("nan"), 0.0)})

    monkeypatch.setattr(FastGAN, "finish_step", diverging)
    config = get_config("smoke")
    config.train.num_steps, config.checkpoint_every = 48, 2
    config.train.g_lr = config.train.d_lr = 0.05
    with pytest.raises(NonFiniteLoss, match=r"g_loss became nan at step 3; .*checkpoint: step 2"):
        train_gan(config, tmp_path, "disc", data_dir=data_dir)
    run = tmp_path / "disc"
    assert _learning_rates(run / "checkpoints" / "ckpt_00000002.npz") == pytest.approx([0.05, 0.05])
    config.train.g_lr, config.train.d_lr = 2e-4, 1e-4
    config.train.num_steps = 4
    # The time estimate, measured after the first logged interval (steps 1-2; step 1 traces, so over step 2).
    estimate = r"disc: [0-9.e-]+ s/step measured over step 2 on this machine \(.+\): the remaining 46 steps"
    assert re.search(estimate, capsys.readouterr().out)
    train_gan(config, tmp_path, "disc", data_dir=data_dir)
    printed = capsys.readouterr().out
    assert (
        "disc: resuming step 2 with changed settings (applied from here on): train.d_lr: 0.05 -> 0.0001; "
        "train.g_lr: 0.05 -> 0.0002; train.num_steps: 48 -> 4"
    ) in printed
    assert read_json(run / "done.json")["step"] == 4
    # D's and G's rates (D's optimizer is stored among the model's variables), as the config says.
    assert _learning_rates(run / "checkpoints" / "ckpt_00000004.npz") == pytest.approx([1e-4, 2e-4])


def test_rescore_chooses_the_best_again_among_the_kept_checkpoints_and_the_old_best(
    trained, data_dir, tmp_path, run_script
):
    workdir = tmp_path / "gan"
    shutil.copytree(trained[0], workdir)
    run = workdir / "disc"
    # An older pick whose checkpoint is gone (the smoke config keeps steps 4 and 6), scored in other features:
    # step 1, whose file holds the final (step-6) generator.
    shutil.copy(run / "generator_ema.keras", run / "generator_best.keras")
    write_json(run / "generator_best.json", {"step": 1, "kid": -1.0, "kid_std": 0.0, "coverage": 1.0})
    result = run_script(
        "train_gan", "--class=disc", f"--workdir={workdir}", f"--data_dir={data_dir}", SMOKE,
        "--config.quality.image_size=32", "--rescore",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = read_json(run / "generator_best.json")
    scores = {row["step"]: row for row in info["rescored"]}
    assert sorted(scores) == [1, 4, 6]
    # The old best file was loaded and scored like the step-6 checkpoint it copies.
    assert scores[1]["kid"] == scores[6]["kid"] and scores[1]["coverage"] == scores[6]["coverage"]
    assert info["step"] == min(scores, key=lambda step: scores[step]["kid"])
    assert info["kid"] == scores[info["step"]]["kid"] and info["features"] == random_cnn(32).description
    assert f"disc: best generator: step {info['step']} (was step 1)" in result.stdout
    # generator_best.keras is the chosen generator.
    config = get_config("smoke")
    gan = build_gan(config)
    CheckpointManager(run / "checkpoints", gan).restore(6 if info["step"] == 1 else info["step"])
    z = np.random.default_rng(0).standard_normal((2, config.model.nz)).astype("float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(load_model(run / "generator_best.keras")(z)[0]),
        ops.convert_to_numpy(gan.ema_generator(z)[0]),
        atol=1e-5,
    )

    with pytest.raises(UserError, match=r"cannot rescore square in .*: not finished \(no done.json\); train first"):
        rescore_best(config, workdir, "all", data_dir=data_dir)
    config.quality.enabled = False
    with pytest.raises(UserError, match="rescoring needs quality.enabled=True"):
        rescore_best(config, workdir, "disc", data_dir=data_dir)
    config.quality.enabled, config.model.ngf = True, 16
    with pytest.raises(CheckpointMismatch, match=r"done.json was written with another network: model.ngf: 8 -> 16"):
        rescore_best(config, workdir, "disc", data_dir=data_dir)
    config.model.ngf = 8
    shutil.rmtree(run / "checkpoints")
    (run / "generator_best.keras").unlink()
    with pytest.raises(UserError, match=r"disc: no checkpoint and no generator_best.keras to rescore"):
        rescore_best(config, workdir, "disc", data_dir=data_dir)


def test_resume_refuses_another_network_naming_the_keys(trained, data_dir, tmp_path):
    workdir = tmp_path / "gan"
    shutil.copytree(trained[0], workdir)
    config = get_config("smoke")
    config.train.num_steps = 8
    config.model.ngf = 16
    config.model.activation = "leaky_relu"
    with pytest.raises(
        CheckpointMismatch,
        match=r"ckpt_00000006.npz was written with another network: "
        r"model.activation: 'glu' -> 'leaky_relu'; model.ngf: 8 -> 16; a run's network cannot change",
    ):
        train_gan(config, workdir, "disc", data_dir=data_dir)
    assert not (workdir / "disc" / "checkpoints" / "ckpt_00000008.npz").exists()


def test_a_second_process_on_a_class_folder_stops_naming_the_first(data_dir, tmp_path):
    holder = {"pid": os.getppid(), "host": socket.gethostname(), "started": "2026-12-02T08:00:00+00:00"}
    (tmp_path / "disc").mkdir()
    write_json(tmp_path / "disc" / LOCK_NAME, holder)
    with pytest.raises(
        FolderLocked,
        match=rf"disc is in use by pid {os.getppid()} on {socket.gethostname()} "
        r"since 2026-12-02T08:00:00\+00:00; wait for it to finish, or delete .*disc/.lock",
    ):
        train_gan(get_config("smoke"), tmp_path, "disc", data_dir=data_dir)
    assert sorted(p.name for p in (tmp_path / "disc").iterdir()) == [LOCK_NAME]


def test_sigkilled_run_resumes_to_the_final_step(run_script, data_dir, tmp_path):
    workdir = tmp_path / "gan"
    args = [
        f"--data_dir={data_dir}",
        f"--workdir={workdir}",
        "--class=square",
        SMOKE,
        "--config.train.num_steps=16",
        "--config.checkpoint_every=4",
        "--config.sample_every=4",
    ]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bin" / "train_gan"), *args],
        cwd=REPO,
        env=helpers.checkout_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = workdir / "square" / "checkpoints"
    deadline = time.time() + 300
    while not (checkpoints.is_dir() and any(p.suffix == ".npz" for p in checkpoints.iterdir())):
        assert proc.poll() is None and time.time() < deadline, "train_gan ended before its first checkpoint"
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (workdir / "square" / "done.json").exists()

    done = run_script("train_gan", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "samples in" in done.stdout
    assert read_json(workdir / "square" / "done.json")["step"] == 16
    rows = read_csv(workdir / "square" / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(2, 17, 2))
    # Quality columns at checkpoints only: the header widened at step 4, earlier and later rows stay empty there.
    assert [int(r["step"]) for r in rows if r["kid"]] == [4, 8, 12, 16]
    assert read_json(workdir / "square" / "generator_best.json")["step"] in (4, 8, 12, 16)
    assert (workdir / "square" / "generator_ema.keras").exists()
    assert (checkpoints / "ckpt_00000016.npz").exists()


def test_bin_train_gan_rejects_a_bad_class_in_one_line(run_script, data_dir, tmp_path):
    result = run_script("train_gan", "--class=nope", f"--data_dir={data_dir}", f"--workdir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --class='nope' is not a class of {data_dir}; expected 'all' or one of: disc, square"
    )
    assert "Traceback" not in result.stderr


def test_bin_generate_needs_a_gan_workdir(run_script, tmp_path):
    result = run_script("generate", "--num_images=2", f"--out_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: --gan_workdir is required: the --workdir of bin/train_gan"


def test_dtype_policy_is_checked_applied_and_warned_about_where_bf16_is_emulated():
    import warnings

    import keras

    from keras_morsa import hardware
    from keras_morsa.errors import PerformanceWarning, UserError
    from keras_morsa.training.train_gan import check_dtype_policy

    with pytest.raises(UserError, match="train.dtype_policy='float16'; accepted: 'float32', 'mixed_bfloat16'"):
        check_dtype_policy("float16")
    avx2 = hardware.CpuInfo("Old CPU", 2, frozenset({"avx2"}))
    bf16 = hardware.CpuInfo("New CPU", 2, frozenset({"avx2", "avx512f", "avx512_bf16"}))
    with pytest.warns(PerformanceWarning, match=r"without bf16 instructions \(Old CPU.*'float32'"):
        check_dtype_policy("mixed_bfloat16", cpu=avx2)  # the test machines have no GPU
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_dtype_policy("mixed_bfloat16", cpu=bf16)
        check_dtype_policy("float32", cpu=avx2)

    config = get_config("smoke")
    config.train.dtype_policy = "mixed_bfloat16"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerformanceWarning)
        gan = build_gan(config)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    assert gan.generator.dtype_policy.name == gan.discriminator.dtype_policy.name == "mixed_bfloat16"
    assert {v.dtype for v in gan.generator.weights} == {"float32"}
