"""The quality file a synthetic folder carries, and how a later stage knows it still describes the folder.

``bin/gan_quality`` writes ``quality.json`` into its report folder and a copy into the synthetic folder it
measured, stamped with the SHA-256 of that folder's ``manifest.csv``. The ratio study reads the copy
(:func:`synthetic_quality`) to show each class's quality beside its accuracy; a copy whose stamp no longer
matches (the folder was generated again since) is ignored with a warning. A leaf module: the study imports
it without the metrics' dependencies.
"""

import warnings
from pathlib import Path

from keras_morsa import io
from keras_morsa.data.folder import DataWarning

QUALITY_FILE = "quality.json"


def manifest_digest(synthetic_dir):
    """SHA-256 of ``<synthetic_dir>/manifest.csv``, or ``None`` for a folder without one (not from generate)."""
    path = Path(synthetic_dir) / "manifest.csv"
    return io.sha256_file(path) if path.is_file() else None


def synthetic_quality(synthetic_dir):
    """The ``quality.json`` of a synthetic folder if it describes the folder's current images, else ``None``."""
    path = Path(synthetic_dir) / QUALITY_FILE
    if not path.is_file():
        return None
    quality = io.read_json(path)
    if quality.get("settings", {}).get("synthetic_manifest_sha256") != manifest_digest(synthetic_dir):
        warnings.warn(
            f"{path} was measured on other images than {synthetic_dir} now holds (its manifest.csv "
            "changed); ignored: run bin/gan_quality --synthetic_dir again",
            DataWarning,
            stacklevel=2,
        )
        return None
    return quality
