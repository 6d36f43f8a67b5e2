"""Shared plumbing for the thin ``bin/`` scripts.

Each script defines its absl flags and a ``main(argv)`` that makes one library call, then ends with
``cli.run(main)``. ``run`` keeps the promise of every script: a problem the user can fix is one line on
stderr (``error: ...``), exit status 2, no traceback. That covers

- a :class:`~keras_morsa.errors.UserError` raised by the library (a bad path, class, value, a corrupt file);
- a flag the parser refuses: an unknown or misspelt flag or ``--config.<key>``, a value of the wrong type,
  a missing required flag, a missing config file or an unknown config variant (absl alone prints several
  lines and exits 1);
- an ``OSError`` of the environment: a read-only or full disk, a workdir that is a file, a missing or
  unreadable path.

Any other exception is a bug and keeps its traceback.
"""

import errno
import importlib.util
import os
import re
import sys
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from keras_morsa.errors import UserError

# What absl and ml_collections raise for a bad command line: a refused value, an unknown --config.<key>
# (KeyError/AttributeError with a "Did you mean" hint), a missing config file, a get_config() refusing its
# variant. They surface both when a config flag is defined (it parses its default with the overrides) and
# when the flags are parsed.
_FLAG_ERRORS = (flags.Error, KeyError, AttributeError, ValueError, TypeError, OSError)

# OSErrors that describe the user's disk or paths, not a bug.
_ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                       errno.EEXIST, errno.EISDIR, errno.ENOENT, errno.ENAMETOOLONG, errno.ELOOP}


def fail(message):
    """Prints ``error: <message>`` as one line on stderr and exits with status 2."""
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    sys.exit(2)


def _describe(error):
    where = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
    hint = {errno.ENOSPC: "free some space or use another --workdir/--out_dir",
            errno.EDQUOT: "free some space or use another --workdir/--out_dir",
            errno.EROFS: "use a writable --workdir/--out_dir",
            errno.EACCES: "check the permissions, or use another folder",
            errno.EPERM: "check the permissions, or use another folder",
            errno.ENOTDIR: "a path component is a file where a folder is expected",
            errno.EEXIST: "a file is in the way of a folder (or the reverse)",
            errno.EISDIR: "a folder is where a file is expected"}.get(error.errno, "check the path")
    return f"{error.strerror or error}: {where or '(no path)'}; {hint}"


def _guard(main):
    def wrapped(argv):
        try:
            return main(argv)
        except UserError as error:
            fail(error)
        except OSError as error:
            if error.errno not in _ENVIRONMENT_ERRNOS:
                raise
            fail(_describe(error))

    return wrapped


def _flag_error(error):
    # ml_collections wraps the cause (a missing file, get_config's own error) and may embed its traceback.
    while error.__cause__ is not None:
        error = error.__cause__
    text = error
    while isinstance(text, (KeyError, AttributeError)) and text.args:
        text = text.args[0]  # their str() is a repr of the message
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        lines = [re.sub(r"^[\w.]+: ", "", lines[-1])]  # the raised error's own message, without its class
    fail(f"{' '.join(lines) or type(error).__name__} (see --helpfull)")


_CONFIG_FLAGS = []


def define_config_file(name, default, help_string):
    """``config_flags.DEFINE_config_file`` with ``lock_config=True`` (an override cannot add a key) and the
    one-line exit-2 report of a bad ``--config`` or ``--config.<key>`` (they are parsed right here and when
    the flags are parsed)."""
    try:
        holder = config_flags.DEFINE_config_file(name, default, help_string, lock_config=True)
    except _FLAG_ERRORS as error:
        _flag_error(error)
    _CONFIG_FLAGS.append(holder)
    return holder


def _parse_flags(argv):
    try:
        argv = flags.FLAGS(argv)
        for holder in _CONFIG_FLAGS:
            holder.value.keys()  # a config file that failed to load raises only when read
    except _FLAG_ERRORS as error:
        _flag_error(error)
    return argv


def config_module(config_file, name):
    """The config module ``<name>.py`` beside ``config_file`` (a config's ``__file__``), imported by its path.

    ``configs/`` is not an installed package and ml_collections loads a ``--config`` file by its path, so
    ``import configs.common`` works only where the repository root is on ``sys.path``. A config file that
    builds on another one calls ``common = cli.config_module(__file__, "common")`` instead, and loads from
    any working directory.

    Raises:
        OSError: there is no ``<name>.py`` beside ``config_file``.
    """
    path = Path(config_file).resolve().with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"configs.{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(main):
    """Runs ``main`` under ``absl.app.run`` with user errors reported as one line and exit status 2."""
    app.run(_guard(main), flags_parser=_parse_flags)


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
