"""Export a ``.keras`` classifier or FastGAN generator as a SavedModel for TF Serving.

TensorFlow by nature. The export always runs under the TensorFlow backend: the ``.keras`` file is loaded
with ``compile=False`` (a file saved under torch records a torch optimizer) and its weights are traced into
TensorFlow graphs, so a model trained on JAX or torch exports exactly like one trained on TensorFlow, and
the graphs hold only standard TensorFlow ops (a JAX-backend export would embed ``XlaCallModule``, which
older TF Serving releases cannot run). Called from a process whose backend is not TensorFlow,
:func:`export_model` re-runs itself in a child Python process with ``KERAS_BACKEND=tensorflow``: the
backend of a running Keras cannot change.

Layout (TF Serving's): ``<export_dir>/<version>/`` with ``saved_model.pb``, ``variables/`` and
``fingerprint.pb``; ``export_dir`` is ``<base>/<model name>``. Versions are integers; an existing version is
never overwritten. Each version is written to a hidden sibling folder and renamed into place, so TF Serving
(which watches ``export_dir``) never sees a half-written version.

Example:
    >>> export_model("workdir/models/real.keras", "serving/morsa")        # -> serving/morsa/1
    >>> export_model("gan/jaw/generator_ema.keras", "serving/jaw_gan")    # -> serving/jaw_gan/1
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras

from keras_morsa.errors import UserError
from keras_morsa.export.classifier import MAX_PIXELS, classifier_archive
from keras_morsa.export.generator import generator_archive
from keras_morsa.models import fastgan  # noqa: F401  (registers the Generator class for load_model)
from keras_morsa.models.saving import load_model

KINDS = ("classifier", "generator")

# The child process of a non-TensorFlow caller: one library call, a user error reported on its last line.
_CHILD = """
import json, sys
from keras_morsa.errors import UserError
from keras_morsa.export.saved_model import export_model
try:
    path = export_model(**json.loads(sys.argv[1]))
except UserError as error:
    print("UserError: " + str(error), file=sys.stderr)
    sys.exit(2)
print(path)
"""


def next_version(export_dir):
    """The version a new export gets: one more than the largest integer folder in ``export_dir`` (1 if none)."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        return 1
    return max((int(p.name) for p in export_dir.iterdir() if p.is_dir() and p.name.isdigit()), default=0) + 1


def detect_kind(model):
    """``"classifier"`` or ``"generator"``, from the loaded model.

    A classifier has a layer named ``probabilities`` (the class-name-carrying softmax of
    ``build_classifier``); a FastGAN generator's config has its latent size ``nz`` and ``image_size``.
    """
    if any(layer.name == "probabilities" for layer in model.layers):
        return "classifier"
    config = model.get_config()
    if isinstance(config, dict) and "nz" in config and "image_size" in config:
        return "generator"
    raise UserError(
        f"cannot tell whether model {model.name!r} is a classifier (a 'probabilities' layer) or a generator "
        "(a config with 'nz' and 'image_size'); pass kind='classifier' or kind='generator'"
    )


def export_model(model_path, export_dir, version=None, kind=None, max_num_images=64, max_pixels=MAX_PIXELS):
    """Exports a ``.keras`` classifier or generator to ``<export_dir>/<version>/`` for TF Serving.

    Args:
        model_path: a ``.keras`` file: a classifier from ``build_classifier`` or a FastGAN generator (for a
            GAN, the workdir's ``generator_ema.keras``).
        export_dir: ``<base>/<model name>``, the folder TF Serving is pointed at.
        version: positive integer; default: :func:`next_version`. An existing version is a ``UserError``.
        kind: ``"classifier"``, ``"generator"`` or ``None`` to detect it (:func:`detect_kind`).
        max_num_images: generators only: the most images one request may ask for.
        max_pixels: classifiers only: ``predict_bytes`` refuses larger images before decoding them.

    Returns:
        The ``Path`` of the written version folder.

    Raises:
        UserError: a missing or unreadable model file, an unknown kind, a bad or existing version.
    """
    model_path, export_dir = Path(model_path), Path(export_dir)
    if kind is not None and kind not in KINDS:
        raise UserError(f"kind={kind!r}; accepted: {', '.join(KINDS)} or None (detect from the model)")
    if version is not None and (isinstance(version, bool) or not str(version).isdigit() or int(version) < 1):
        raise UserError(f"version={version!r}; expected a positive integer (TF Serving's version folder name)")
    if not model_path.is_file() or model_path.suffix != ".keras":
        raise UserError(f"model {str(model_path)!r} is not a .keras file; pass a model saved with model.save(...)")
    if export_dir.exists() and not export_dir.is_dir():
        raise UserError(f"export_dir {str(export_dir)!r} is a file; expected a folder <base>/<model name>")
    version = next_version(export_dir) if version is None else int(version)
    target = export_dir / str(version)
    if target.exists():
        raise UserError(f"version {version} already exists at {target}; pass another --version or leave it unset")
    if keras.backend.backend() != "tensorflow":
        return _export_in_tensorflow_process(
            model_path=str(model_path),
            export_dir=str(export_dir),
            version=version,
            kind=kind,
            max_num_images=max_num_images,
            max_pixels=max_pixels,
        )

    model = load_model(model_path)
    kind = kind or detect_kind(model)
    if kind == "classifier":
        archive = classifier_archive(model, max_pixels=max_pixels)
    else:
        archive = generator_archive(model, max_num_images=max_num_images)
    return _write_version(archive, target)


def export_classifier(model_path, export_dir, version=None):
    """:func:`export_model` for a classifier (``serving_default`` on uint8 images, ``predict_bytes``)."""
    return export_model(model_path, export_dir, version=version, kind="classifier")


def export_generator(model_path, export_dir, version=None, max_num_images=64):
    """:func:`export_model` for a FastGAN generator (``serving_default`` by seed, ``from_latents``)."""
    return export_model(model_path, export_dir, version=version, kind="generator", max_num_images=max_num_images)


def _write_version(archive, target):
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        archive.write_out(str(tmp), verbose=False)
        try:
            tmp.rename(target)
        except OSError:
            raise UserError(
                f"version {target.name} appeared at {target} during the export; nothing overwritten"
            ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def _export_in_tensorflow_process(**arguments):
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(arguments)], capture_output=True, text=True, env=env
    )
    errors = result.stderr.strip().splitlines()
    if result.returncode == 2 and errors and errors[-1].startswith("UserError: "):
        raise UserError(errors[-1][len("UserError: ") :])
    if result.returncode != 0:
        raise RuntimeError(f"export under KERAS_BACKEND=tensorflow failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])
