"""Shared plumbing for the thin ``bin/`` scripts.

Each script defines its absl flags and a ``main(argv)`` that makes one library call, then ends with
``cli.run(main)``. ``run`` turns a :class:`~keras_morsa.errors.UserError` into one line on stderr and exit
status 2, so a bad path never shows a traceback; any other exception is a bug and keeps its traceback.
"""

import os
import sys

from absl import app

from keras_morsa.errors import UserError


def _guard(main):
    def wrapped(argv):
        try:
            return main(argv)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapped


def run(main):
    """Runs ``main`` under ``absl.app.run`` with user errors reported as one line and exit status 2."""
    app.run(_guard(main))


def prefer_onednn():
    """Turns TensorFlow's oneDNN kernels on unless ``TF_ENABLE_ONEDNN_OPTS`` is already set; call it before
    anything imports TensorFlow (or Keras, which imports it).

    TensorFlow enables oneDNN by default only on CPUs with AVX-512; on a 2-core AMD EPYC with AVX2 only, a
    FastGAN CPU-config iteration (float32) took 0.70x the CPU time with it (0.469 s against 0.669 s,
    ``benchmarks/fastgan_step.py --cases=cpu --onednn=default,on``; another such machine measured 0.83x in
    wall time). On AVX-512 CPUs this changes nothing. Results differ from the default kernels by float
    rounding only.
    Returns the value in force.
    """
    return os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
