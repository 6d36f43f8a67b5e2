"""Backend-agnostic training checkpoints: every variable of a model and its optimizers in one ``.npz`` file.

A checkpoint holds the model's ``variables`` (for a FastGAN: G, D, the EMA copy of G, batch-norm statistics
and every ``SeedGenerator`` state) and the variables of each optimizer attached to the model as an attribute
(``g_optimizer``, ``d_optimizer``, ``optimizer``; iteration counters and moments included), keyed by
``<owner>/<variable path>``, plus a JSON metadata record (step, backend, anything the caller adds). The file
is plain NumPy, so a checkpoint written under one Keras backend restores under another.

Files are ``ckpt_<step:08d>.npz`` written through :func:`keras_morsa.io.atomic_write` (temporary sibling,
then rename): a run killed while saving leaves the previous checkpoints intact and no partial file under
the final name. After each save only the newest ``keep`` checkpoints are kept.

Example:
    manager = CheckpointManager(workdir / "checkpoints", gan, keep=3)
    start = manager.restore_latest() or 0   # 0 when there is none yet
    ...
    manager.save(step)
"""

import json
import re
import warnings
import zipfile
from pathlib import Path

import keras
import numpy as np

from keras_morsa.errors import UserError
from keras_morsa.io import atomic_write

_META_KEY = "__meta__"
_NAME = re.compile(r"^ckpt_(\d{8})\.npz$")
# Keras makes auto-generated names unique per process ("dense_3", "seed_generator_1"), so the same model
# built twice in one process has other paths (optimizer slots embed them too: "adam/dense_3_kernel_momentum");
# keys drop every "_<digits>" and rely on the (structural) position for uniqueness.
_UNIQUIFIER = re.compile(r"_\d+(?=[/_]|$)")


# What np.load and reading the arrays of a truncated or foreign file raise (ValueError covers a bad header,
# a bad CRC and broken JSON metadata; KeyError a zip without the metadata entry).
_UNREADABLE = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile)


class CheckpointMismatch(UserError):
    """A checkpoint's variables do not match the model's (another config, another model)."""


class CorruptCheckpoint(UserError):
    """Checkpoints exist but none of them can be read."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped because it cannot be read."""


def checkpoint_variables(model):
    """Returns ``{key: variable}`` for everything a checkpoint of ``model`` holds.

    Keys are ``<owner>/<index>:<path>``. The owner is ``model`` for ``model.variables``, or the attribute
    name of each optimizer found on the model (sorted by name; an optimizer reachable under two names is
    stored once, under the first; a variable the model already tracks stays under ``model``). The index is
    the variable's position in its owner's list; the path is the variable's path without Keras's
    per-process ``_<n>`` name suffixes. Optimizers must be built (``FastGAN.compile`` builds both).

    Args:
        model: a ``keras.Model``; its weights must exist (built).
    """
    owners = [("model", model.variables)]
    seen = set()
    for name in sorted(vars(model)):
        value = getattr(model, name, None)
        if isinstance(value, keras.optimizers.Optimizer) and id(value) not in seen:
            seen.add(id(value))
            owners.append((name.lstrip("_"), value.variables))
    variables, stored = {}, set()
    for owner, owned in owners:
        # A variable tracked twice (FastGAN tracks D's optimizer state among its own) is stored once.
        owned = [v for v in owned if id(v) not in stored]
        stored.update(id(v) for v in owned)
        for index, variable in enumerate(owned):
            variables[f"{owner}/{index:05d}:{_UNIQUIFIER.sub('', variable.path)}"] = variable
    return variables


class CheckpointManager:
    """Saves and restores numbered checkpoints of one model in a folder.

    Args:
        directory: folder of ``ckpt_<step>.npz`` files (created on first save).
        model: the ``keras.Model`` to save/restore (see :func:`checkpoint_variables`).
        keep: how many of the newest checkpoints to keep (>= 1).
    """

    def __init__(self, directory, model, keep=3):
        if keep < 1:
            raise UserError(f"keep_checkpoints={keep}: keep at least 1 checkpoint")
        self.directory = Path(directory)
        self.model = model
        self.keep = keep

    def steps(self):
        """Steps of the checkpoints on disk, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.directory.iterdir() if (m := _NAME.match(p.name)))

    def path(self, step):
        return self.directory / f"ckpt_{step:08d}.npz"

    def latest_step(self):
        """The newest checkpoint's step, or ``None``."""
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step, metadata=None):
        """Writes the checkpoint for ``step`` atomically, then deletes all but the newest ``keep``.

        Args:
            step: the training step the variables correspond to.
            metadata: JSON-serialisable dict stored alongside (e.g. the config).

        Returns:
            The checkpoint's path.
        """
        arrays = {key: keras.ops.convert_to_numpy(v.value) for key, v in checkpoint_variables(self.model).items()}
        meta = {"step": int(step), "backend": keras.backend.backend(), **(metadata or {})}
        arrays[_META_KEY] = np.array(json.dumps(meta, default=str))
        path = self.path(step)
        with atomic_write(path) as f:
            np.savez(f, **arrays)
        for old in self.steps()[: -self.keep]:
            self.path(old).unlink(missing_ok=True)
        return path

    def read_metadata(self, step):
        """The metadata dict stored with checkpoint ``step`` (includes ``step`` and ``backend``)."""
        with np.load(self.path(step), allow_pickle=False) as data:
            return json.loads(str(data[_META_KEY]))

    def _read(self, step):
        """``(metadata, {key: array})`` of checkpoint ``step``, every array read (so a truncated file fails here)."""
        with np.load(self.path(step), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        return json.loads(str(arrays.pop(_META_KEY))), arrays

    def restore(self, step, check=None):
        """Assigns every variable from checkpoint ``step``; returns its metadata.

        Args:
            step: a step of :meth:`steps`.
            check: optional ``check(path, metadata)``, called before anything is checked or assigned; it may
                raise to refuse the checkpoint (``train_gan`` compares the config it was written with).

        Raises:
            CheckpointMismatch: the checkpoint lacks some of the model's variables, holds others, or a shape
                differs (written by another config or model).
            OSError, ValueError, zipfile.BadZipFile, EOFError: the file is unreadable (truncated, not an
                ``.npz``); :meth:`restore_latest` falls back to an older checkpoint then.
        """
        path = self.path(step)
        meta, values = self._read(step)
        if check is not None:
            check(path, meta)
        variables = checkpoint_variables(self.model)
        missing, unexpected = sorted(set(variables) - set(values)), sorted(set(values) - set(variables))
        if missing or unexpected:
            raise CheckpointMismatch(
                f"{path} does not match the model: {len(missing)} variables missing "
                f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); "
                "was it written with another config? Use another workdir or the same config"
            )
        for key, variable in variables.items():
            if tuple(values[key].shape) != tuple(variable.shape):
                raise CheckpointMismatch(
                    f"{path}: variable {key} has shape {values[key].shape} in the checkpoint but "
                    f"{tuple(variable.shape)} in the model; use another workdir or the same config"
                )
        for key, variable in variables.items():
            variable.assign(values[key])
        return meta

    def restore_latest(self, check=None):
        """Restores the newest intact checkpoint; returns its step, or ``None`` when there is none.

        A checkpoint that cannot be read (truncated or overwritten by something else) is skipped with a
        :class:`CheckpointWarning` naming the file, and the next older one is tried; the bad file is left in
        place for inspection (the next save of that step replaces it).

        Args:
            check: passed to :meth:`restore`.

        Raises:
            CorruptCheckpoint: there are checkpoints but none is readable.
            CheckpointMismatch: the newest readable checkpoint does not fit the model (or ``check`` refused it).
        """
        bad = []
        for step in reversed(self.steps()):
            try:
                self.restore(step, check)
            except _UNREADABLE as error:
                if isinstance(error, UserError):
                    raise
                bad.append(f"{self.path(step).name} ({type(error).__name__}: {error})")
                warnings.warn(
                    f"checkpoint {self.path(step)} is unreadable ({type(error).__name__}: {error}); "
                    "trying the next older one",
                    CheckpointWarning,
                    stacklevel=2,
                )
                continue
            return step
        if bad:
            raise CorruptCheckpoint(
                f"no readable checkpoint in {self.directory}: {'; '.join(bad)}; delete these files to start over "
                "from step 0, or put back intact copies"
            )
        return None
