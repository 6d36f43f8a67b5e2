#!/usr/bin/env python3
"""Seconds per FastGAN training iteration (one D step and one G step), per backend and size, plus peak memory.

Cases: "paper" is 256 px, batch 8, ngf = ndf = 64, nz = 256 (configs/fastgan_size.py); "cpu" is the default
CPU config (configs/fastgan_cpu.py). Each (backend, case) runs in its own subprocess, so its peak resident
memory (``resource.getrusage(...).ru_maxrss``) is its own. An iteration is one ``train_on_batch`` on a
random batch (the same ``train_step`` that ``fit`` runs); the first ``--warmup`` iterations (tracing and
compilation) are timed separately and excluded from the median. "cpu s/iter" is the process's CPU time per
iteration (all threads): on a machine shared with other work it is the steadier figure; "busy" is CPU time
over wall time, the number of cores kept busy (about 2 on an idle 2-core machine; near 1 means the cores were
shared with another job or the step is serial). The first line names the CPU and its AVX2 / AVX-512 / bf16
features: figures from different CPU kinds are not comparable, so quote it beside them.

``--onednn=default,on`` measures TensorFlow with oneDNN as TensorFlow chooses it (on only on CPUs with
AVX-512) and forced on (``TF_ENABLE_ONEDNN_OPTS=1``, what ``bin/train_gan`` sets unless the variable is
already set), side by side, with the ratio. ``--jit_compile=auto,on`` measures each backend as Keras compiles
it by default on a CPU (TensorFlow: a graph without XLA; JAX: XLA; torch: eager) and with ``jit_compile=True``
(TensorFlow: XLA; torch: ``torch.compile``; JAX is XLA either way, so it runs once). ``--xla_flags`` lists
``XLA_FLAGS`` settings to try on the XLA runs ("" is none), e.g. ``--xla_flags=,--xla_cpu_use_xnnpack=true``.

    .venv/bin/python benchmarks/fastgan_step.py                          # current KERAS_BACKEND, both cases
    .venv/bin/python benchmarks/fastgan_step.py --backends=tensorflow,jax,torch --cases=paper --steps=5
    .venv/bin/python benchmarks/fastgan_step.py --policies=float32,mixed_bfloat16  # side by side, with the ratio
    .venv/bin/python benchmarks/fastgan_step.py --cases=cpu --onednn=default,on      # TF oneDNN off vs on
    .venv/bin/python benchmarks/fastgan_step.py --backends=tensorflow,torch --cases=cpu --jit_compile=auto,on
    OMP_NUM_THREADS=2 taskset -c 0,1 ...                                 # pin to 2 cores for comparable figures
"""

import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from keras_morsa import hardware  # noqa: E402  (imports no framework: the parent process stays light)

# case -> (config module, its get_config argument)
CASES = {"paper": ("fastgan_size", "256"), "cpu": ("fastgan_cpu", None)}

_BACKENDS = flags.DEFINE_list(
    "backends", [os.environ.get("KERAS_BACKEND", "tensorflow")], "Keras backends to measure, each in a subprocess."
)
_CASES = flags.DEFINE_list("cases", list(CASES), f"Which of {list(CASES)} to run.")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed iterations.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed first iterations (tracing, compilation).")
POLICIES = ("float32", "mixed_bfloat16")
_POLICIES = flags.DEFINE_list(
    "policies",
    ["float32"],
    f"Dtype policies to measure, some of {list(POLICIES)} "
    "(mixed_bfloat16: bf16 compute, float32 variables); with both, the ratio is printed.",
)
ONEDNN = {"default": None, "on": "1", "off": "0"}
_ONEDNN = flags.DEFINE_list(
    "onednn",
    ["default"],
    f"TensorFlow only: oneDNN settings to measure, some of "
    f"{list(ONEDNN)} (TF_ENABLE_ONEDNN_OPTS unset / 1 / 0); other backends ignore it.",
)
JIT = ("auto", "on")
_JIT = flags.DEFINE_list(
    "jit_compile",
    ["auto"],
    f"Some of {list(JIT)}: Keras's default compilation, and jit_compile=True (XLA, torch.compile).",
)
_XLA_FLAGS = flags.DEFINE_list(
    "xla_flags", [""], 'XLA_FLAGS values for the runs that use XLA (JAX; TensorFlow with --jit_compile=on); "" = none.'
)
_CHILD = flags.DEFINE_string("child", None, "Internal: measure this case in this process, print JSON.")


def measure(case, steps, warmup, policy, jit):
    """Builds the case's FastGAN and times ``train_on_batch``; returns a dict of figures."""
    import importlib

    import keras
    import numpy as np

    from keras_morsa.training.train_gan import build_gan

    keras.mixed_precision.set_global_policy(policy)
    module, arg = CASES[case]
    config = importlib.import_module(f"configs.{module}").get_config(arg)
    gan = build_gan(config)
    if jit == "on":
        gan.jit_compile = True  # read when the train function is first made
    size, batch = config.model.image_size, config.train.batch_size
    images = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    start = time.perf_counter()
    for _ in range(warmup):
        gan.train_on_batch(images)
    warm = time.perf_counter() - start
    times = []
    cpu_start = time.process_time()
    for _ in range(steps):
        start = time.perf_counter()
        logs = gan.train_on_batch(images, return_dict=True)
        float(logs["d_loss"])  # waits for asynchronous backends
        times.append(time.perf_counter() - start)
    cpu = (time.process_time() - cpu_start) / steps
    threads = {
        "tensorflow": lambda: __import__("tensorflow").config.threading.get_intra_op_parallelism_threads(),
        "torch": lambda: __import__("torch").get_num_threads(),
    }.get(keras.backend.backend(), lambda: 0)()
    return {
        "backend": keras.backend.backend(),
        "case": case,
        "size": size,
        "batch": batch,
        "ngf": config.model.ngf,
        "policy": policy,
        "s_per_iter": statistics.median(times),
        "cpu_s_per_iter": cpu,
        "warmup_s": warm,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "threads": threads,
    }


def main(argv):
    del argv
    if _CHILD.value:
        print(json.dumps(measure(_CHILD.value, _STEPS.value, _WARMUP.value, _POLICIES.value[0], _JIT.value[0])))
        return
    for name, values, accepted in (
        ("cases", _CASES.value, list(CASES)),
        ("policies", _POLICIES.value, POLICIES),
        ("onednn", _ONEDNN.value, list(ONEDNN)),
        ("jit_compile", _JIT.value, JIT),
    ):
        unknown = sorted(set(values) - set(accepted))
        if unknown:
            raise app.UsageError(f"--{name}={','.join(unknown)}: expected some of {list(accepted)}")
    print(f"CPU: {hardware.cpu_info().describe()}; load average {os.getloadavg()[0]:.2f} before the run")
    header = (
        f"{'backend':<11} {'case':<6} {'size':>4} {'batch':>5} {'ngf':>3} {'policy':<14} {'onednn':<7} {'jit':<4} "
        f"{'threads':>7} {'s/iter':>7} {'it/s':>6} {'cpu s/iter':>10} {'busy':>5} {'warmup s':>8} {'peak GB':>7}"
        "  xla flags"
    )
    print(header)
    seconds = {}
    for run in _runs():
        backend, case, policy, onednn, jit, xla = run
        cmd = [
            sys.executable,
            __file__,
            f"--child={case}",
            f"--steps={_STEPS.value}",
            f"--warmup={_WARMUP.value}",
            f"--policies={policy}",
            f"--jit_compile={jit}",
        ]
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        env.pop("TF_ENABLE_ONEDNN_OPTS", None)
        if ONEDNN[onednn] is not None:
            env["TF_ENABLE_ONEDNN_OPTS"] = ONEDNN[onednn]
        if xla:
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {xla}".strip()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"{backend:<11} {case:<6} {policy} {onednn} jit {jit} {xla}: failed: {reason}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        seconds[run] = r["s_per_iter"]
        print(
            f"{r['backend']:<11} {r['case']:<6} {r['size']:>4} {r['batch']:>5} {r['ngf']:>3} "
            f"{r['policy']:<14} {onednn:<7} {jit:<4} {r['threads'] or 'auto':>7} {r['s_per_iter']:>7.3f} "
            f"{1 / r['s_per_iter']:>6.2f} {r['cpu_s_per_iter']:>10.3f} "
            f"{r['cpu_s_per_iter'] / r['s_per_iter']:>5.2f} {r['warmup_s']:>8.1f} "
            f"{r['peak_rss_gb']:>7.2f}  {xla or '-'}",
            flush=True,
        )
    baseline = _describe(_BASELINE)
    for (backend, case, *settings), value in seconds.items():
        settings = tuple(settings)
        base = seconds.get((backend, case, *_BASELINE))
        if base and settings != _BASELINE:
            print(
                f"{backend} {case}: {_describe(settings)} takes {value / base:.2f}x the time per iteration "
                f"of {baseline}"
            )
        tf_base = seconds.get(("tensorflow", case, *_BASELINE))
        if tf_base and backend != "tensorflow" and settings == _BASELINE:
            print(f"{backend} {case}: {value / tf_base:.2f}x the TensorFlow backend's time per iteration ({baseline})")


# The settings every other run of a backend and case is compared with: policy, oneDNN, jit_compile, XLA flags.
_BASELINE = ("float32", "default", "auto", "")
_SETTING_NAMES = ("policy", "oneDNN", "jit_compile", "XLA flags")


def _describe(settings):
    """``(policy, onednn, jit, xla_flags)`` in words, e.g. "policy float32, oneDNN default, ..."."""
    return ", ".join(f"{name} {value or 'none'}" for name, value in zip(_SETTING_NAMES, settings))


def _runs():
    """Every (backend, case, policy, onednn, jit, xla_flags) to measure, leaving out the settings a backend
    ignores: --onednn is TensorFlow's, JAX is XLA whatever --jit_compile says, --xla_flags reach only XLA runs."""
    for backend, case, policy in itertools.product(_BACKENDS.value, _CASES.value, _POLICIES.value):
        onednns = _ONEDNN.value if backend == "tensorflow" else ["default"]
        jits = ["auto"] if backend == "jax" else _JIT.value
        for onednn, jit in itertools.product(onednns, jits):
            uses_xla = backend == "jax" or (backend == "tensorflow" and jit == "on")
            for xla in (_XLA_FLAGS.value or [""]) if uses_xla else [""]:
                yield backend, case, policy, onednn, jit, xla


if __name__ == "__main__":
    app.run(main)
