"""keras_morsa.backend: one module per backend, chosen once; what each provides behaves the same."""

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from keras_morsa import backend

pytestmark = pytest.mark.multibackend

BACKEND = keras.backend.backend()
REPO = Path(__file__).resolve().parents[2]


def test_the_active_backend_module_is_the_one_dispatched():
    module = sys.modules[f"keras_morsa.backend.{BACKEND}"]
    for name in ("train_step", "replica_position", "value_and_grad", "conv_kernel", "accelerators"):
        assert getattr(backend, name) is getattr(module, name), name


def test_importing_the_backend_loads_only_the_active_backend_module():
    # (Keras itself imports every installed framework, so sys.modules cannot tell more than this.)
    code = (
        "import keras_morsa.backend, sys; print(sorted(m for m in sys.modules if m.startswith('keras_morsa.backend.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        env={"KERAS_BACKEND": BACKEND, "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.stdout.strip() == repr([f"keras_morsa.backend.{BACKEND}"]), out.stdout + out.stderr


def test_value_and_grad_of_a_cubic():
    x = np.array([1.0, -2.0, 0.5], dtype="float32")
    value, grad = backend.value_and_grad(lambda t: ops.sum(t**3), x)
    np.testing.assert_allclose(float(ops.convert_to_numpy(value)), 1 - 8 + 0.125, rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(grad), 3 * x**2, rtol=1e-6)


@pytest.mark.parametrize("filters", [1, 3])
def test_conv_kernel_keeps_values_and_trains_a_bfloat16_conv(filters):
    # One output channel is the case torch's bf16 CPU fallback (slow_conv2d) could not differentiate.
    rng = np.random.default_rng(0)
    kernel = ops.convert_to_tensor(rng.standard_normal((4, 4, 5, filters)).astype("float32"))
    laid_out = backend.conv_kernel(kernel)
    assert tuple(laid_out.shape) == (4, 4, 5, filters)
    np.testing.assert_array_equal(ops.convert_to_numpy(laid_out), ops.convert_to_numpy(kernel))

    images = rng.standard_normal((2, 8, 8, 5)).astype("float32")
    variable = keras.Variable(kernel)

    def loss(k):
        return ops.sum(
            ops.cast(ops.conv(ops.cast(images, "bfloat16"), backend.conv_kernel(ops.cast(k, "bfloat16"))), "float32")
        )

    value, grad = backend.value_and_grad(loss, variable.value)
    grad = ops.convert_to_numpy(grad)
    assert grad.shape == (4, 4, 5, filters) and np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0
    assert np.isfinite(float(ops.convert_to_numpy(value)))


@pytest.mark.tf_backend
def test_global_batch_norm_fails_loudly_if_keras_changes_the_method_it_replaces(monkeypatch):
    from keras_morsa.backend import tensorflow as tf_backend

    layer = keras.layers.BatchNormalization()
    monkeypatch.setattr(keras.layers.BatchNormalization, "_moments", lambda self, inputs: None)
    with pytest.raises(RuntimeError, match=r"BatchNormalization._moments\(self, inputs, mask\) has changed"):
        tf_backend.global_batch_norm(layer)
    assert "_moments" not in vars(layer)
    monkeypatch.undo()
    tf_backend.global_batch_norm(layer)
    assert layer.synchronized and "_moments" in vars(layer)
