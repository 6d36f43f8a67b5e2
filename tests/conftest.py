"""Test-suite plumbing: one pytest pass per Keras backend (see tests/run_all_backends.sh).

Markers (declared in setup.cfg):
- ``multibackend``: model/training code; runs in every backend's pass.
- ``tf_backend``: TensorFlow by nature (tf-keras-vis, SavedModel); runs in the TensorFlow pass only.
- unmarked: backend-agnostic (data, files, statistics); runs once, in the TensorFlow pass.
"""

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

BACKEND = os.environ["KERAS_BACKEND"]
REPO = Path(__file__).resolve().parents[1]


def pytest_report_header(config):
    return f"KERAS_BACKEND={BACKEND}"


def pytest_collection_modifyitems(config, items):
    for item in items:
        keywords = item.keywords
        if "tf_backend" in keywords:
            if BACKEND != "tensorflow":
                item.add_marker(pytest.mark.skip(reason="TensorFlow by nature; runs in the TF pass"))
        elif "multibackend" not in keywords and BACKEND != "tensorflow":
            item.add_marker(pytest.mark.skip(reason="backend-agnostic; runs once, in the TF pass"))


@pytest.fixture(scope="session")
def run_script():
    """Runs ``bin/<name>`` in a fresh interpreter with this checkout's package; returns the CompletedProcess
    (text, captured). Session-scoped, so module fixtures can run scripts too."""

    import helpers  # here, not at the top: it imports Keras, which must see KERAS_BACKEND set above

    def run(name, *args, env=None, timeout=600, check=False):
        return subprocess.run(
            [sys.executable, str(REPO / "bin" / name), *map(str, args)],
            capture_output=True,
            text=True,
            env=helpers.checkout_env(**(env or {})),
            timeout=timeout,
            check=check,
        )

    return run
