"""The smoke study under data parallelism: ``bin/eval_ratios --strategy`` on two CPU devices.

The device layout is fixed when the framework starts, so the study runs in a fresh interpreter: on TensorFlow
``--strategy=mirrored --cpu_devices=2`` (the script splits the CPU), on JAX ``--strategy=data_parallel`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=2``. Only the real regime runs (one MobileNetV3-Small
training, 6 steps of batch 8), which keeps the test near a minute per backend.
"""

import keras
import numpy as np
import pytest

from evaluation.test_study import SMOKE, _folder
from keras_morsa import io

BACKEND = keras.backend.backend()
STRATEGY = {"tensorflow": "mirrored", "jax": "data_parallel"}.get(BACKEND)


@pytest.mark.multibackend
def test_smoke_study_trains_on_two_replicas(tmp_path, run_script):
    if STRATEGY is None:
        pytest.skip("no data-parallel strategy on torch")
    real = _folder(tmp_path / "real", 10, seed=0)
    work = tmp_path / "work"
    args = [SMOKE, "--config.regimes=('real',)", f"--data_dir={real}", f"--workdir={work}", f"--strategy={STRATEGY}"]
    env = {"KERAS_BACKEND": BACKEND}
    if STRATEGY == "mirrored":
        args.append("--cpu_devices=2")
    else:
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    result = run_script("eval_ratios", *args, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = io.read_csv(work / "results.csv")
    assert row["run_id"] == "mobilenet_v3_small-real-s0" and row["steps"] == "6"
    assert 0.0 <= float(row["test_accuracy"]) <= 1.0 and 0.0 <= float(row["macro_f1"]) <= 1.0
    curve = io.read_csv(work / "curves.csv")
    assert [c["step"] for c in curve] == ["3", "6"]
    for point in curve:
        for name, value in point.items():
            if name not in ("run_id", "step"):
                assert np.isfinite(float(value)), (name, value)
