"""Shared plumbing of the scripts: ``bin/<stage>`` in a checkout, ``keras-morsa-<stage>`` once installed.

Each stage's script is a module ``keras_morsa/scripts/<stage>.py`` that defines its absl flags and a
``main(argv)`` making one library call and returning a :class:`~keras_morsa.console.RunSummary`. Both
``bin/<stage>`` and the console script only call :func:`launch` with the stage's name, which

- starts quiet (:mod:`keras_morsa.console`): the backend's and CUDA's start-up messages are kept off the
  screen (all of them back with ``--verbose``, a flag of every script), and one line says which backend and
  devices are used; keras-morsa's own warnings are one line each;
- ends with the summary: what was written, the key figures, the warnings, the wall time, the next command
  (saved as ``summary.json`` in the stage's output folder);
- keeps the promise of every script: a problem the user can fix is one line on stderr (``error: ...``),
  exit status 2, no traceback.

That last promise covers

- a :class:`~keras_morsa.errors.UserError` raised by the library (a bad path, class, value, a corrupt file);
- a flag the parser refuses: an unknown or misspelt flag or ``--config.<key>``, a value of the wrong type,
  a missing required flag, a missing config file or an unknown config variant (absl alone prints several
  lines and exits 1);
- an ``OSError`` of the environment: a read-only or full disk, a workdir that is a file, a missing or
  unreadable path.

Any other exception is a bug and keeps its traceback.
"""

import errno
import importlib
import importlib.util
import os
import re
import shlex
import sys
import time
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from keras_morsa import console
from keras_morsa.errors import UserError

_VERBOSE = flags.DEFINE_bool(
    "verbose",
    False,
    "Show everything the backend prints (TensorFlow/XLA/CUDA start-up messages and C++ logs); "
    "by default one line says which backend and devices are used.",
)

# What absl and ml_collections raise for a bad command line: a refused value, an unknown --config.<key>
# (KeyError/AttributeError with a "Did you mean" hint), a missing config file, a get_config() refusing its
# variant. They surface both when a config flag is defined (it parses its default with the overrides) and
# when the flags are parsed.
_FLAG_ERRORS = (flags.Error, KeyError, AttributeError, ValueError, TypeError, OSError)

# OSErrors that describe the user's disk or paths, not a bug.
_ENVIRONMENT_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENOTDIR,
    errno.EEXIST,
    errno.EISDIR,
    errno.ENOENT,
    errno.ENAMETOOLONG,
    errno.ELOOP,
}


def fail(message):
    """Prints ``error: <message>`` as one line on stderr and exits with status 2."""
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    sys.exit(2)


def _describe(error):
    where = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
    hint = {
        errno.ENOSPC: "free some space or use another --workdir/--out_dir",
        errno.EDQUOT: "free some space or use another --workdir/--out_dir",
        errno.EROFS: "use a writable --workdir/--out_dir",
        errno.EACCES: "check the permissions, or use another folder",
        errno.EPERM: "check the permissions, or use another folder",
        errno.ENOTDIR: "a path component is a file where a folder is expected",
        errno.EEXIST: "a file is in the way of a folder (or the reverse)",
        errno.EISDIR: "a folder is where a file is expected",
    }.get(error.errno, "check the path")
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


def define_config(file_name, help_string):
    """A script's ``--config``, by default :func:`config_file` ``(file_name)``: ``config_flags.DEFINE_config_file``
    with ``lock_config=True`` (an override cannot add a key) and the one-line exit-2 report of a bad
    ``--config`` or ``--config.<key>`` (they are parsed right here and when the flags are parsed)."""
    try:
        holder = config_flags.DEFINE_config_file("config", config_file(file_name), help_string, lock_config=True)
    except _FLAG_ERRORS as error:
        _flag_error(error)
    _CONFIG_FLAGS.append(holder)
    return holder


def define_data_dir():
    """``--data_dir`` of the stages that read real images: a folder of class subfolders, or None for the
    built-in dataset (the same flag and help in every such script)."""
    return flags.DEFINE_string("data_dir", None, "Real image folder <dir>/<class>/*; default: the built-in dataset.")


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


def run(main, started=None, warning_lines=None):
    """Runs ``main`` under ``absl.app.run`` with user errors reported as one line and exit status 2.

    Once the flags are parsed: the backend line (:func:`keras_morsa.console.backend_line`, its device
    listing kept quiet unless ``--verbose``), then ``main``; a :class:`~keras_morsa.console.RunSummary` it
    returns gets the wall time since ``started`` (a ``time.monotonic()`` value) and ``warning_lines`` (a list
    :func:`keras_morsa.console.warning_lines` fills), is saved and printed.
    """
    app.run(_guard(_summarized(main, started, warning_lines)), flags_parser=_parse_and_announce)


def _parse_and_announce(argv):
    # Here, not in main: absl runs TensorFlow's after-init callback (it lists the GPUs, which logs a failed
    # cuInit) between the parser and main; once listed here, the devices are cached.
    argv = _parse_flags(argv)
    with console.quiet_stderr(not _VERBOSE.value):
        line = console.backend_line()
    print(line, flush=True)
    return argv


def _summarized(main, started, warning_lines):
    def wrapped(argv):
        summary = main(argv)
        if isinstance(summary, console.RunSummary):
            if started is not None:
                summary.wall_time_s = round(time.monotonic() - started, 1)
            summary.warnings = list(warning_lines or [])
            summary.save()
            summary.print()

    return wrapped


def _verbose_requested(args):
    """Whether the command line asks for ``--verbose``, read before absl parses it (the backend is imported
    first, and its start-up messages are kept or not then); the last occurrence wins, as in absl."""
    verbose = False
    for arg in args:
        if arg == "--":
            break
        name, has_value, value = arg.lstrip("-").partition("=")
        if not arg.startswith("-"):
            continue
        if name == "verbose":
            verbose = not has_value or value.lower() in ("true", "t", "1")
        elif name == "noverbose":
            verbose = False
    return verbose


def _flags_only(stage, main):
    def wrapped(argv):
        if len(argv) > 1:
            raise UserError(
                f"unexpected arguments {' '.join(map(shlex.quote, argv[1:]))}: {stage} takes only --flags (see --help)"
            )
        return main(argv)

    return wrapped


def define_strategy_flags(flag_values=flags.FLAGS):
    """Defines ``--strategy`` (none | mirrored | data_parallel) and ``--cpu_devices`` in ``flag_values``, the data
    parallelism of the stages that train (bin/train_gan, bin/eval_ratios).

    Returns:
        ``strategy()`` -> the chosen strategy's name, for the library call; it first splits the CPU into
        ``--cpu_devices`` TensorFlow devices when asked, so call it before TensorFlow runs any op.
    """
    from keras_morsa.training import distribute  # imports Keras: only where a script's module is imported

    chosen = flags.DEFINE_enum(
        "strategy",
        "none",
        distribute.STRATEGIES,
        "Data parallelism: mirrored (TensorFlow backend), data_parallel (JAX backend).",
        flag_values=flag_values,
    )
    cpu_devices = flags.DEFINE_integer(
        "cpu_devices",
        0,
        "With --strategy=mirrored on a CPU: split it into this many TensorFlow devices. (JAX: "
        "set XLA_FLAGS=--xla_force_host_platform_device_count=N instead.)",
        flag_values=flag_values,
    )

    def strategy():
        if cpu_devices.value:
            distribute.split_cpu(cpu_devices.value)
        return chosen.value

    return strategy


def launch(stage):
    """The whole of ``bin/<stage>`` and of the ``keras-morsa-<stage>`` command: imports
    ``keras_morsa.scripts.<stage>`` and the backend quietly (unless ``--verbose``), then :func:`run` of its
    ``main`` (its docstring and flags make ``--help``). A script takes only flags: a positional argument is
    refused here, naming it."""
    started = time.monotonic()
    verbose = _verbose_requested(sys.argv[1:])
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the user's own setting wins
    with console.warning_lines() as seen:
        with console.quiet_stderr(not verbose):
            module = importlib.import_module(f"keras_morsa.scripts.{stage}")
            console.import_backend()
        sys.modules["__main__"].__doc__ = module.__doc__  # absl's --help prints __main__'s docstring
        by_module = flags.FLAGS.flags_by_module_dict()
        for flag in by_module.get(module.__name__, []) + by_module.get(__name__, []):  # --verbose, a --config
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)  # and --help lists its flags
        run(_flags_only(f"bin/{stage}", module.main), started, seen)


def command(stage, *args, **flag_values):
    """The command line of another stage, as this process was started: ``bin/<stage> --x=1`` from a checkout's
    ``bin/``, else the installed ``keras-morsa-<stage> --x=1``. Flags whose value is None are left out; True
    and False give ``--x`` and ``--nox``."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("")
    if program.parent.name == "bin" and not program.name.startswith("keras-morsa"):
        name = str(program.parent / stage)
    else:
        name = "keras-morsa-" + stage.replace("_", "-")
    parts = [name, *map(str, args)]
    for key, value in flag_values.items():
        if isinstance(value, bool):
            parts.append(f"--{'' if value else 'no'}{key}")
        elif value is not None:
            parts.append(f"--{key}={value}")
    return " ".join(shlex.quote(part) for part in parts)


def flag_values(*holders):
    """``{name: value}`` of absl flag ``holders``, for a library call whose keywords are the flags' names:
    ``fn(..., **cli.flag_values(_SEED, _LAYER))`` passes ``seed=`` and ``layer=`` (one place that pairs each
    flag with its keyword, so a script cannot pass one flag's value under another's name)."""
    return {holder.name: holder.value for holder in holders}


def without_flag(args, name):
    """Command-line ``args`` without flag ``name`` (``--name=v``, or ``--name v``), e.g. a shard's command
    turned into its merge."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-") and arg.lstrip("-").split("=")[0] == name:
            skip = "=" not in arg
        else:
            kept.append(arg)
    return kept


def config_file(name):
    """The path of ``configs/<name>`` (a default of the scripts' ``--config``): the checkout's ``configs/``
    beside the package, else the copy a ``pip install`` put in ``<prefix>/share/keras-morsa/configs/``."""
    import sysconfig

    checkout = Path(__file__).resolve().parents[1] / "configs" / name
    if checkout.is_file():
        return str(checkout)
    return str(Path(sysconfig.get_path("data")) / "share" / "keras-morsa" / "configs" / name)


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
