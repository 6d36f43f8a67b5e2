"""SavedModel export for TF Serving: layout and versions, signatures, any-size and encoded inputs, bad
requests, a TF-only reload in a fresh process, a model trained on JAX, and the REST client's payloads."""

import base64
import http.server
import importlib.util
import io
import json
import re
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_morsa.data.pipeline import load_resized
from keras_morsa.errors import UserError
from keras_morsa.export.classifier import MAX_PIXELS
from keras_morsa.export.generator import latents_for_seed, seeded_images, to_grey_levels
from keras_morsa.export.saved_model import detect_kind, export_model, next_version
from keras_morsa.models.classifier import build_classifier, class_names_of
from keras_morsa.models.fastgan import Generator

import helpers

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NAMES = ["jaw", "nut", "pin"]
NZ = 8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """helpers.tiny_classifier (the contract's ``images`` input, ``logits`` and the real Probabilities layer) trained
    for two steps on this pass's backend and saved with its compiled optimizer, plus its predictions."""
    root = tmp_path_factory.mktemp("tiny")
    keras.utils.set_random_seed(0)
    model = helpers.tiny_classifier(32, ("jaw", "nut"), strides=2, batch_norm=True)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(
        rng.integers(0, 256, (8, 32, 32, 3)).astype("float32"), rng.integers(0, 2, 8), batch_size=4, epochs=1, verbose=0
    )
    test = rng.integers(0, 256, (3, 32, 32, 3)).astype("uint8")
    model.save(root / "tiny.keras")
    return {
        "keras": root / "tiny.keras",
        "test": test,
        "probabilities": _numpy(model.predict(test.astype("float32"), verbose=0)),
    }


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier")
    model = build_classifier("mobilenet_v3_small", len(NAMES), 32, class_names=NAMES)
    model.save(root / "classifier.keras")
    path = export_model(root / "classifier.keras", root / "serving" / "morsa")
    return {"model": model, "export": path, "signatures": tf.saved_model.load(str(path)).signatures, "root": root}


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    root = tmp_path_factory.mktemp("generator")
    model = Generator(ngf=4, nz=NZ, image_size=64, seed=1)
    model(np.zeros((1, NZ), "float32"))
    # A fresh generator's noise weights are 0, which would hide the noise seeds; make the noise count.
    for variable in model.trainable_variables:
        if "noise" in variable.path:
            variable.assign(0.5)
    model.save(root / "generator_ema.keras")
    path = export_model(root / "generator_ema.keras", root / "serving" / "jaw_gan")
    return {"model": model, "export": path, "signatures": tf.saved_model.load(str(path)).signatures}


@pytest.fixture(scope="module")
def processes(classifier, generator, tiny, tmp_path_factory):
    """The fresh-process checks, started together so that their interpreter start-ups overlap.

    Returns ``{name: (Popen, folder)}``; a test waits for its own process with ``_finish``.
    """
    root = tmp_path_factory.mktemp("processes")
    cli = Path(sys.executable).with_name("saved_model_cli")
    images = _images((2, 32, 32, 3), seed=11)
    png = _encode(_images((1, 50, 30, 3), seed=12)[0], "PNG")
    latents = np.random.default_rng(0).normal(size=(2, NZ)).astype("float32")
    np.savez(
        root / "inputs.npz",
        images=images,
        latents=latents,
        num_images=2,
        seed=5,
        **{"image_bytes/0": np.frombuffer(png, np.uint8)},
    )
    commands = {
        "cli_classifier": [str(cli), "show", "--all", "--dir", str(classifier["export"])],
        "cli_generator": [str(cli), "show", "--all", "--dir", str(generator["export"])],
        "tf_only": [
            sys.executable,
            str(HERE / "tf_only_check.py"),
            str(root / "inputs.npz"),
            str(root / "out.npz"),
            str(classifier["export"]),
            str(generator["export"]),
        ],
        "bin_export": [
            sys.executable,
            str(REPO / "bin" / "export"),
            f"--model={tiny['keras']}",
            f"--export_dir={root / 'bin' / 'tiny'}",
            "--version=3",
        ],
        "bin_error": [
            sys.executable,
            str(REPO / "bin" / "export"),
            f"--model={tiny['keras']}",
            f"--export_dir={root / 'taken'}",
            "--version=2",
        ],
    }
    (root / "taken" / "2").mkdir(parents=True)
    started = {
        name: (
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=helpers.checkout_env()
            ),
            root,
        )
        for name, command in commands.items()
    }
    started["inputs"] = {"images": images, "png": png, "latents": latents}
    yield started
    for name in commands:
        if started[name][0].poll() is None:
            started[name][0].kill()
            started[name][0].wait()


def _finish(processes, name, returncode=0):
    process, root = processes[name]
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == returncode, stderr[-3000:]
    return stdout, stderr, root


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _encode(image, fmt):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _images(shape, seed=0):
    # Smooth images, so JPEG keeps them close and resizing has something to average.
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (shape[0], 4, 4, 3)).astype("float32")
    return np.clip(np.round(tf.image.resize(small, shape[1:3]).numpy()), 0, 255).astype("uint8")


def _reference(model, images_uint8):
    """The Keras classifier on images resized by the training pipeline (files written losslessly as PNG)."""
    return _numpy(model(np.stack(images_uint8).astype("float32"), training=False))


def _pipeline_resized(tmp_path, images, size):
    resized = []
    for i, image in enumerate(images):
        path = tmp_path / f"{i}.png"
        Image.fromarray(image).save(path)
        resized.append(load_resized(str(path), size).numpy())
    return resized


# --- layout and versions ---------------------------------------------------------------------------------


@pytest.mark.tf_backend
def test_versions_count_up_and_never_overwrite(tiny, tmp_path):
    base = tmp_path / "serving" / "tiny"
    assert next_version(base) == 1
    assert export_model(tiny["keras"], base) == base / "1"
    (base / "notes").mkdir()  # non-integer folders are not versions
    assert export_model(tiny["keras"], base, version=7) == base / "7"
    assert export_model(tiny["keras"], base) == base / "8"
    assert sorted(p.name for p in base.iterdir()) == ["1", "7", "8", "notes"]
    for version in ("1", "8"):
        assert sorted(p.name for p in (base / version).iterdir()) == [
            "assets",
            "fingerprint.pb",
            "saved_model.pb",
            "variables",
        ]
    before = (base / "7" / "saved_model.pb").read_bytes()
    with pytest.raises(UserError, match="version 7 already exists"):
        export_model(tiny["keras"], base, version=7)
    assert (base / "7" / "saved_model.pb").read_bytes() == before


@pytest.mark.tf_backend
@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"version": 0}, "version=0; expected a positive integer"),
        ({"version": "two"}, "version='two'; expected a positive integer"),
        ({"kind": "detector"}, "kind='detector'; accepted: classifier, generator"),
    ],
)
def test_bad_arguments_are_user_errors(tiny, tmp_path, arguments, message):
    with pytest.raises(UserError, match=re.escape(message)):
        export_model(tiny["keras"], tmp_path / "x", **arguments)
    assert not (tmp_path / "x").exists()


@pytest.mark.tf_backend
def test_missing_model_and_file_export_dir(tiny, tmp_path):
    with pytest.raises(UserError, match="is not a .keras file"):
        export_model(tmp_path / "missing.keras", tmp_path / "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is a file; expected a folder"):
        export_model(tiny["keras"], tmp_path / "file")


@pytest.mark.tf_backend
def test_kind_detection(classifier, generator, tiny, tmp_path):
    assert detect_kind(classifier["model"]) == "classifier"
    assert detect_kind(generator["model"]) == "generator"
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(UserError, match="cannot tell whether"):
        detect_kind(plain)
    with pytest.raises(UserError, match="not a FastGAN generator"):
        export_model(tiny["keras"], tmp_path / "x", kind="generator")


# --- a model trained under each backend, bin/export ----------------------------------------------------------


@pytest.mark.multibackend
def test_model_trained_on_this_backend_exports_with_its_outputs(tiny, tmp_path):
    # Under JAX and torch, export_model re-runs itself in a TensorFlow-backend child process.
    path = export_model(tiny["keras"], tmp_path / "serving" / "tiny")
    assert path == tmp_path / "serving" / "tiny" / "1"
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    result = served(images=tf.constant(tiny["test"]))
    np.testing.assert_allclose(result["probabilities"].numpy(), tiny["probabilities"], atol=1e-5)
    assert [name.decode() for name in result["class_name"].numpy()] == [
        ["jaw", "nut"][i] for i in tiny["probabilities"].argmax(-1)
    ]
    if keras.backend.backend() != "tensorflow":  # a user error met in the child is re-raised here
        with pytest.raises(UserError, match="is not a FastGAN generator"):
            export_model(tiny["keras"], tmp_path / "serving" / "tiny", kind="generator")


@pytest.mark.multibackend
@pytest.mark.parametrize("library", helpers.BACKBONE_LIBRARIES[1:])  # KerasCV's: the classifier fixture
def test_a_keras_hub_classifier_exports_with_its_outputs(library, tmp_path):
    # Built and saved on this pass's backend; off TensorFlow, export_model loads it in a TF child process.
    model = build_classifier("mobilenet_v3_small", len(NAMES), 32, class_names=NAMES, backbone_library=library)
    model.save(tmp_path / "hub.keras")
    path = export_model(tmp_path / "hub.keras", tmp_path / "serving" / "hub")
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    images = _images((2, 32, 32, 3), seed=3)
    result = served(images=tf.constant(images))
    np.testing.assert_allclose(result["probabilities"].numpy(), _reference(model, list(images)), atol=1e-5)
    assert [name.decode() for name in result["class_name"].numpy()] == [NAMES[i] for i in result["class_id"].numpy()]


@pytest.mark.tf_backend
def test_bin_export(processes, tiny):
    stdout, _, root = _finish(processes, "bin_export")
    lines = stdout.strip().splitlines()
    assert f"exported {root / 'bin' / 'tiny' / '3'}" in lines  # then the summary listing it
    assert f"  wrote {root / 'bin' / 'tiny' / '3'}" in lines and lines[-1].startswith("next: docker run")
    served = tf.saved_model.load(str(root / "bin" / "tiny" / "3")).signatures["serving_default"]
    np.testing.assert_allclose(
        served(images=tf.constant(tiny["test"]))["probabilities"].numpy(), tiny["probabilities"], atol=1e-5
    )


@pytest.mark.tf_backend
def test_bin_export_user_error_is_one_line(processes):
    _, stderr, root = _finish(processes, "bin_error", returncode=2)
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"error: version 2 already exists at {root / 'taken' / '2'}; pass another --version or leave it unset"
    )


# --- classifier signatures -----------------------------------------------------------------------------------


def _signature_block(text, name):
    match = re.search(rf"signature_def\['{name}'\]:\n(.*?)Method name is", text, re.S)
    assert match, f"no signature {name!r} in:\n{text}"
    return match.group(1)


def _tensors(block):
    """{(kind, name): (dtype, shape)} from one signature's listing; kind is 'inputs' or 'outputs'."""
    return {
        (kind, name): (dtype, shape)
        for kind, name, dtype, shape in re.findall(
            r"(inputs|outputs)\['(\w+)'\] tensor_info:\n\s+dtype: (\w+)\n\s+shape: (.*)", block
        )
    }


@pytest.mark.tf_backend
def test_saved_model_cli_lists_named_classifier_signatures(processes):
    text, _, _ = _finish(processes, "cli_classifier")
    # Inputs have no declared shape on purpose: the signature checks them itself (keras_morsa.export.requests).
    outputs = {
        ("outputs", "probabilities"): ("DT_FLOAT", "(-1, 3)"),
        ("outputs", "class_id"): ("DT_INT64", "(-1)"),
        ("outputs", "class_name"): ("DT_STRING", "(-1)"),
    }
    assert _tensors(_signature_block(text, "serving_default")) == {
        ("inputs", "images"): ("DT_UINT8", "unknown_rank"),
        **outputs,
    }
    assert _tensors(_signature_block(text, "predict_bytes")) == {
        ("inputs", "image_bytes"): ("DT_STRING", "unknown_rank"),
        **outputs,
    }
    assert "args_0" not in text and "output_0" not in text


@pytest.mark.tf_backend
def test_any_size_uint8_images_are_resized_as_in_training(classifier, tmp_path):
    serve = classifier["signatures"]["serving_default"]
    same = _images((2, 32, 32, 3))
    result = serve(images=tf.constant(same))
    expected = _reference(classifier["model"], list(same))
    np.testing.assert_allclose(result["probabilities"].numpy(), expected, atol=1e-5)
    assert result["probabilities"].shape == (2, len(NAMES))
    assert result["class_id"].numpy().tolist() == expected.argmax(-1).tolist()
    for shape in [(2, 45, 20, 3), (1, 200, 150, 3), (1, 7, 9, 3)]:
        images = _images(shape, seed=shape[1])
        expected = _reference(classifier["model"], _pipeline_resized(tmp_path, images, 32))
        np.testing.assert_allclose(serve(images=tf.constant(images))["probabilities"].numpy(), expected, atol=1e-5)


@pytest.mark.tf_backend
def test_encoded_jpeg_and_png_bytes(classifier, tmp_path):
    images = list(_images((2, 48, 40, 3), seed=3))
    encoded = [_encode(images[0], "PNG"), _encode(images[1], "JPEG")]
    result = classifier["signatures"]["predict_bytes"](image_bytes=tf.constant(encoded))
    # The reference decodes the same files with the training pipeline (Pillow), then resizes like training.
    for i, data in enumerate(encoded):
        (tmp_path / f"{i}.img").write_bytes(data)
    resized = [load_resized(str(tmp_path / f"{i}.img"), 32).numpy() for i in range(2)]
    expected = _reference(classifier["model"], resized)
    np.testing.assert_allclose(result["probabilities"].numpy(), expected, atol=1e-5)
    # One string, not in a list, is a batch of one.
    single = classifier["signatures"]["predict_bytes"](image_bytes=tf.constant(encoded[0]))
    np.testing.assert_allclose(single["probabilities"].numpy(), expected[:1], atol=1e-5)


@pytest.mark.tf_backend
def test_class_names_travel_inside_the_export(classifier):
    result = classifier["signatures"]["serving_default"](images=tf.constant(_images((4, 32, 32, 3), seed=5)))
    ids = result["class_id"].numpy()
    assert [name.decode() for name in result["class_name"].numpy()] == [NAMES[i] for i in ids]
    assert class_names_of(classifier["model"]) == NAMES
    files = sorted(str(p.relative_to(classifier["export"])) for p in classifier["export"].rglob("*") if p.is_file())
    assert files == [
        "fingerprint.pb",
        "saved_model.pb",
        "variables/variables.data-00000-of-00001",
        "variables/variables.index",
    ]
    graph = (classifier["export"] / "saved_model.pb").read_bytes()
    assert all(name.encode() in graph for name in NAMES)


@pytest.mark.tf_backend
@pytest.mark.parametrize(
    "signature, inputs, message",
    [
        (
            "serving_default",
            {"images": np.zeros((20, 30, 3), np.uint8)},
            "images must be uint8 [batch, height, width, 3] with height, width > 0; got shape [20 30 3]",
        ),
        (
            "serving_default",
            {"images": np.zeros((1, 20, 30, 4), np.uint8)},
            "images must be uint8 [batch, height, width, 3] with height, width > 0; got shape [1 20 30 4]",
        ),
        ("serving_default", {"images": np.zeros((1, 0, 30, 3), np.uint8)}, "got shape [1 0 30 3]"),
        (
            "predict_bytes",
            {"image_bytes": [b"\x89PNG\r\n\x1a\n", b"not an image"]},
            "image_bytes must hold JPEG or PNG files; the strings at indices [1] are neither",
        ),
        (
            "predict_bytes",
            {"image_bytes": [[b"a"], [b"b"]]},
            "image_bytes must be a batch (a list) of encoded JPEG or PNG strings; got shape [2 1]",
        ),
    ],
)
def test_bad_classifier_requests_name_the_problem(classifier, signature, inputs, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        classifier["signatures"][signature](**{k: tf.constant(v) for k, v in inputs.items()})


@pytest.mark.tf_backend
def test_truncated_image_file_fails_cleanly(classifier):
    data = _encode(_images((1, 40, 40, 3))[0], "JPEG")
    with pytest.raises(tf.errors.InvalidArgumentError, match="JPEG"):
        classifier["signatures"]["predict_bytes"](image_bytes=tf.constant([data[: len(data) // 3]]))


# --- generator signatures -------------------------------------------------------------------------------------


def _generate(signature, **inputs):
    dtypes = {"num_images": tf.int32, "seed": tf.int64, "latents": tf.float32}
    return signature(**{k: tf.constant(v, dtypes[k]) for k, v in inputs.items()})["images"].numpy()


@pytest.mark.tf_backend
def test_generator_signatures_shapes_determinism_and_agreement(generator):
    serve = generator["signatures"]["serving_default"]
    first = _generate(serve, num_images=3, seed=7)
    assert first.shape == (3, 64, 64, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(_generate(serve, num_images=3, seed=7), first)
    assert (_generate(serve, num_images=3, seed=8) != first).mean() > 0.5
    # The Keras generator on the same latents and noise seeds, in grey levels.
    latents = latents_for_seed(3, 7, NZ)
    keras_images = _numpy(to_grey_levels(seeded_images(generator["model"], latents, 7)))
    assert np.abs(first.astype(int) - keras_images.astype(int)).max() <= 1
    # The noise seeds matter (noise weights are 0.5 here): a different noise seed changes the images.
    other_noise = _numpy(to_grey_levels(seeded_images(generator["model"], latents, 8)))
    assert np.abs(other_noise.astype(int) - keras_images.astype(int)).max() > 1
    from_latents = generator["signatures"]["from_latents"]
    np.testing.assert_array_equal(_generate(from_latents, latents=latents.numpy(), seed=7), first)
    # Row-format requests give one-element vectors: accepted like scalars.
    np.testing.assert_array_equal(_generate(serve, num_images=[3], seed=[7]), first)


@pytest.mark.tf_backend
def test_saved_model_cli_lists_named_generator_signatures(processes):
    text, _, _ = _finish(processes, "cli_generator")
    images = ("DT_UINT8", "(-1, 64, 64, 3)")
    assert _tensors(_signature_block(text, "serving_default")) == {
        ("inputs", "num_images"): ("DT_INT32", "unknown_rank"),
        ("inputs", "seed"): ("DT_INT64", "unknown_rank"),
        ("outputs", "images"): images,
    }
    assert _tensors(_signature_block(text, "from_latents")) == {
        ("inputs", "latents"): ("DT_FLOAT", "unknown_rank"),
        ("inputs", "seed"): ("DT_INT64", "unknown_rank"),
        ("outputs", "images"): images,
    }


@pytest.mark.tf_backend
@pytest.mark.parametrize(
    "signature, inputs, message",
    [
        ("serving_default", {"num_images": 0, "seed": 1}, "num_images must be in [1, 64]; got 0"),
        ("serving_default", {"num_images": 65, "seed": 1}, "num_images must be in [1, 64]; got 65"),
        ("serving_default", {"num_images": [1, 2], "seed": 1}, "num_images must be one integer; got shape [2]"),
        (
            "from_latents",
            {"latents": np.zeros((2, NZ + 1)), "seed": 0},
            f"latents must be float32 [n, {NZ}] with n > 0; got shape [2 {NZ + 1}]",
        ),
        ("from_latents", {"latents": np.zeros(NZ), "seed": 0}, f"got shape [{NZ}]"),
    ],
)
def test_bad_generator_requests_name_the_problem(generator, signature, inputs, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        _generate(generator["signatures"][signature], **inputs)


# --- a fresh process with TensorFlow only -------------------------------------------------------------------------


@pytest.mark.tf_backend
def test_exports_run_in_a_tensorflow_only_process(classifier, generator, processes, tmp_path):
    _, _, root = _finish(processes, "tf_only")
    images, png, latents = (processes["inputs"][key] for key in ("images", "png", "latents"))
    out = np.load(root / "out.npz")

    expected = _reference(classifier["model"], list(images))
    np.testing.assert_allclose(out["classifier/serving_default/probabilities"], expected, atol=1e-5)
    assert out["classifier/serving_default/class_name"].tolist() == [NAMES[i].encode() for i in expected.argmax(-1)]
    (tmp_path / "x.png").write_bytes(png)
    expected = _reference(classifier["model"], [load_resized(str(tmp_path / "x.png"), 32).numpy()])
    np.testing.assert_allclose(out["classifier/predict_bytes/probabilities"], expected, atol=1e-5)

    model = generator["model"]
    by_seed = _numpy(to_grey_levels(seeded_images(model, latents_for_seed(2, 5, NZ), 5))).astype(int)
    assert np.abs(out["generator/serving_default/images"].astype(int) - by_seed).max() <= 1
    by_latents = _numpy(to_grey_levels(seeded_images(model, latents, 5))).astype(int)
    assert np.abs(out["generator/from_latents/images"].astype(int) - by_latents).max() <= 1


# --- the REST client's payloads ------------------------------------------------------------------------------------


def _client():
    spec = importlib.util.spec_from_file_location("serving_client", REPO / "examples" / "serving_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _b64_decoded(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_b64_decoded(v) for v in value]
    return value


def _serve_like_tf_serving(signatures, payload):
    """Decodes a REST body as TF Serving does (JSON, b64 objects, row or column format), calls the signature."""
    payload = json.loads(json.dumps(payload))
    signature = signatures[payload.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]
    if "instances" in payload:
        rows = payload["instances"]
        if len(specs) == 1 and not (isinstance(rows[0], dict) and set(rows[0]) <= set(specs)):
            rows = [{next(iter(specs)): row} for row in rows]
        inputs = {name: [_b64_decoded(row[name]) for row in rows] for name in specs}
    else:
        columns = payload["inputs"]
        if len(specs) == 1 and not (isinstance(columns, dict) and set(columns) <= set(specs)):
            columns = {next(iter(specs)): columns}
        inputs = {name: _b64_decoded(value) for name, value in columns.items()}
    return signature(**{name: tf.constant(value, specs[name].dtype) for name, value in inputs.items()})


@pytest.mark.tf_backend
def test_client_payloads_against_the_signatures(classifier, generator):
    client = _client()
    images = list(_images((2, 36, 28, 3), seed=21))
    signatures = classifier["signatures"]
    direct = signatures["serving_default"](images=tf.constant(np.stack(images)))

    by_pixels = _serve_like_tf_serving(signatures, client.pixels_payload(images))
    np.testing.assert_allclose(by_pixels["probabilities"].numpy(), direct["probabilities"].numpy(), atol=1e-6)
    encoded = [_encode(image, "PNG") for image in images]
    by_bytes = _serve_like_tf_serving(signatures, client.bytes_payload(encoded))
    np.testing.assert_allclose(by_bytes["probabilities"].numpy(), direct["probabilities"].numpy(), atol=1e-6)
    assert by_bytes["class_name"].numpy().tolist() == direct["class_name"].numpy().tolist()
    with pytest.raises(ValueError, match="one size"):
        client.pixels_payload([images[0], images[0][:30]])

    served = _serve_like_tf_serving(generator["signatures"], client.generator_payload(2, 9))["images"].numpy()
    assert served.shape == (2, 64, 64, 3) and served.dtype == np.uint8
    latents = latents_for_seed(2, 9, NZ).numpy()
    again = _serve_like_tf_serving(generator["signatures"], client.latents_payload(latents, seed=9))["images"]
    np.testing.assert_array_equal(again.numpy(), served)


@pytest.mark.tf_backend
def test_client_posts_to_a_rest_endpoint(classifier):
    """``predict`` against a local stand-in for TF Serving's REST API (row-format answer, as the server gives)."""
    client = _client()
    signatures = classifier["signatures"]
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(self.path)
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            outputs = _serve_like_tf_serving(signatures, payload)
            rows = [
                {"probabilities": p.tolist(), "class_id": int(i), "class_name": n.decode()}
                for p, i, n in zip(
                    outputs["probabilities"].numpy(), outputs["class_id"].numpy(), outputs["class_name"].numpy()
                )
            ]
            body = json.dumps({"predictions": rows}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1/models/morsa:predict"
        image = _images((1, 40, 40, 3), seed=31)[0]
        answer = client.predict(url, client.bytes_payload([_encode(image, "PNG")]))
    finally:
        server.shutdown()
        server.server_close()
    assert received == ["/v1/models/morsa:predict"]
    direct = signatures["serving_default"](images=tf.constant(image[None]))
    np.testing.assert_allclose(answer["predictions"][0]["probabilities"], direct["probabilities"].numpy()[0], atol=1e-6)
    assert answer["predictions"][0]["class_name"] == direct["class_name"].numpy()[0].decode()


def _forged_png(height, width):
    """A PNG signature and IHDR chunk declaring height x width, with no image data (a bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


@pytest.mark.tf_backend
def test_predict_bytes_refuses_too_many_pixels_before_decoding(classifier):
    # The 20000 x 20000 PNG, as a header only: refused by the default limit, nothing decoded.
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=re.escape(
            "an image of image_bytes is 20000 x 20000 pixels (height x width), over the limit of "
            f"{MAX_PIXELS} pixels set at export; send a smaller image"
        ),
    ):
        classifier["signatures"]["predict_bytes"](image_bytes=tf.constant([_forged_png(20000, 20000)]))

    # A limit set at export is baked into the graph: 40 x 48 = 1920 pixels pass, 48 x 48 do not (PNG, JPEG).
    path = export_model(
        classifier["root"] / "classifier.keras", classifier["root"] / "serving" / "small", max_pixels=2000
    )
    small = tf.saved_model.load(str(path)).signatures["predict_bytes"]
    images = _images((2, 48, 40, 3), seed=7)
    assert small(image_bytes=tf.constant([_encode(images[0], "PNG")]))["probabilities"].shape == (1, len(NAMES))
    square = _images((1, 48, 48, 3), seed=8)[0]
    for kind in ("PNG", "JPEG"):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"is 48 x 48 pixels .* limit of 2000 pixels"):
            small(image_bytes=tf.constant([_encode(images[1], "PNG"), _encode(square, kind)]))
    with pytest.raises(UserError, match="max_pixels=0"):
        export_model(classifier["root"] / "classifier.keras", classifier["root"] / "serving" / "zero", max_pixels=0)
