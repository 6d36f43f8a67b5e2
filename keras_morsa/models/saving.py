"""Loading ``.keras`` files with one-line errors: the loader every stage (generate, Grad-CAM, export) uses;
and :func:`save_model`, the atomic writer of the models a killed run must not leave half-written.

Every custom class of keras-morsa is registered (``keras.saving.register_keras_serializable``) where it is
defined; this module imports those modules, so a generator or classifier loads from any entry point without
importing anything else first. A new custom layer or model must be reachable from these imports.
"""

import zipfile
from pathlib import Path

import keras

from keras_morsa.errors import UserError

# Imported for their registrations: the FastGAN networks and blocks, the classifier's output layer.
from keras_morsa.models import fastgan, probabilities  # noqa: F401


def save_model(model, path):
    """Saves ``model`` to the ``.keras`` file ``path`` atomically: a killed run leaves the old file or none,
    at most a hidden temporary sibling (``model.save`` needs a ``.keras`` path, so the sibling keeps that
    suffix; the rename is atomic)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)


def load_model(path):
    """Loads a ``.keras`` file with ``compile=False``, turning every way it can be unusable into a UserError.

    Keras reports a truncated or foreign file as "File not found"; here a missing file, a file that is not a
    ``.keras`` zip (truncated, overwritten) and one Keras refuses (an unknown layer, a Lambda layer under safe
    mode, a broken config) each get a message naming the file and what is expected.

    Args:
        path: the ``.keras`` file.

    Returns:
        The ``keras.Model``.

    Raises:
        UserError: see above.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model {str(path)!r} does not exist; expected a .keras file saved with model.save(...)")
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"model {str(path)!r} is not a readable .keras file (a zip written by model.save): truncated "
            "or overwritten? Save or copy it again"
        )
    try:
        return keras.saving.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, OSError, AttributeError, zipfile.BadZipFile) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(
            f"cannot load model {str(path)!r} ({type(error).__name__}: {first_line}); expected a .keras "
            "file saved by keras-morsa with model.save(...)"
        ) from None
