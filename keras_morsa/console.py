"""What a person reads in the terminal: a quiet start, one line per warning, a summary at the end.

- :func:`quiet_stderr`: TensorFlow, XLA and CUDA log from C++ straight to file descriptor 2 when they are
  imported and when they look for devices ("Could not find cuda drivers", "failed call to cuInit", the
  cpu-feature guard), before ``TF_CPP_MIN_LOG_LEVEL`` is even read; the only way to keep that off the
  screen is to point descriptor 2 elsewhere meanwhile. The scripts do so unless ``--verbose`` is given.
- :func:`backend_line`: the one line said instead: the Keras backend and the devices it will use.
- :func:`warning_lines`: keras-morsa's own warnings (``DataWarning``, ``PerformanceWarning``,
  ``CheckpointWarning``, and its absl log records at WARNING or above) as one line each,
  ``warning: <what>, <where>`` (where: the package file and line that warned), kept for the summary.
  Warnings of other libraries keep Python's format.
- :class:`RunSummary`: what a run wrote, its key figures, its warnings, its wall time and the next command;
  printed at the end and saved as ``summary.json`` in the stage's output folder.
  :mod:`keras_morsa.summaries` builds one from each stage function's result.

Nothing here imports a backend at import time.
"""

import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

import keras_morsa
from keras_morsa import io

_PACKAGE = Path(keras_morsa.__file__).resolve().parent
SUMMARY_NAME = "summary.json"


@contextlib.contextmanager
def quiet_stderr(enabled=True):
    """Points file descriptor 2, where C++ libraries log, at a temporary file inside the block, then back.

    Python's ``sys.stderr`` keeps writing to the terminal meanwhile (an ``error:`` line, a traceback, a
    Python warning stay visible). If the block raises an ``Exception``, what the C++ side wrote is copied to
    stderr first, so a crash keeps its context. ``enabled=False``: does nothing.
    """
    if not enabled:
        yield
        return
    python_stderr = sys.stderr
    python_stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        sys.stderr = open(
            os.dup(saved),
            "w",
            buffering=1,
            encoding=getattr(python_stderr, "encoding", None),
            errors="backslashreplace",
        )
        try:
            yield
        except Exception:
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.close()
            sys.stderr = python_stderr
            os.dup2(saved, 2)
            os.close(saved)


def import_backend():
    """Imports Keras (hence its backend) and TensorFlow, which the tf.data input needs on every backend
    keras-morsa trains on, so that their start-up messages happen now (inside :func:`quiet_stderr`) rather
    than in the middle of a run. (Not TensorFlow under ``KERAS_BACKEND=numpy``, which only a stage without
    models, ``make_dataset``, runs on.)"""
    import keras

    if keras.backend.backend() != "numpy":
        import tensorflow  # noqa: F401


def backend_line():
    """``keras-morsa 0.1.0: backend tensorflow, devices GPU:0 (NVIDIA H200), CPU:0 (AMD EPYC, 16 cores)``.

    Lists the devices (which starts CUDA where there is one): call it inside :func:`quiet_stderr`.
    """
    import keras

    from keras_morsa import hardware

    try:
        from keras_morsa import backend
    except ImportError:  # a backend keras-morsa trains nothing on (numpy): the CPU only
        listed = [("CPU", None)]
    else:
        listed = backend.devices()
    cpu = hardware.cpu_info()

    def describe(name, model):
        if model is None and name.lower().startswith("cpu"):
            model = f"{cpu.model}, {cpu.cores} cores"
        return f"{name} ({model})" if model else name

    names = ", ".join(describe(name, model) for name, model in listed)
    return f"keras-morsa {keras_morsa.__version__}: backend {keras.backend.backend()}, devices {names}"


def where(filename, lineno):
    """``keras_morsa/data/splits.py:256`` for a file of the package, else ``<file name>:<line>``."""
    path = Path(filename)
    try:
        shown = path.resolve().relative_to(_PACKAGE.parent).as_posix()
    except (OSError, ValueError):
        shown = path.name
    return f"{shown}:{lineno}"


def warning_line(message, filename, lineno):
    """``warning: <message on one line>, <where>``."""
    return f"warning: {' '.join(str(message).split())}, {where(filename, lineno)}"


def _is_own(category, filename):
    if category.__module__.split(".")[0] == "keras_morsa":
        return True
    try:
        return Path(filename).resolve().is_relative_to(_PACKAGE)
    except OSError:
        return False


class _OwnRecords(logging.Filter):
    """On absl's handler: keras-morsa's records at WARNING or above become warning lines."""

    def __init__(self, report):
        super().__init__()
        self.report = report

    def filter(self, record):
        if record.levelno >= logging.WARNING and _is_own(Warning, record.pathname):
            self.report(warning_line(record.getMessage(), record.pathname, record.lineno))
            return False
        return True


@contextlib.contextmanager
def warning_lines(stream=None):
    """Inside the block keras-morsa's warnings are printed as one line each on ``stream`` (default
    ``sys.stderr`` at the time of the warning) and collected; yields the list of lines (without repeats).

    Python's warning filters still apply first (a warning is shown once per place unless they say
    otherwise); other libraries' warnings are shown as Python shows them.
    """
    from absl import logging as absl_logging

    seen = []
    shown = warnings.showwarning

    def report(line):
        print(line, file=stream or sys.stderr, flush=True)
        if line not in seen:
            seen.append(line)

    def show(message, category, filename, lineno, file=None, line=None):
        if _is_own(category, filename):
            report(warning_line(message, filename, lineno))
        else:
            shown(message, category, filename, lineno, file, line)

    records = _OwnRecords(report)
    handler = absl_logging.get_absl_handler()
    warnings.showwarning = show
    handler.addFilter(records)
    try:
        yield seen
    finally:
        warnings.showwarning = shown
        handler.removeFilter(records)


def duration(seconds):
    """``"8.2 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclasses.dataclass
class RunSummary:
    """The end of a run, for a person (:meth:`lines`) and for a file (:meth:`save`, ``summary.json``).

    Attributes:
        stage: the script's name, e.g. ``"train_gan"``.
        written: the paths the run wrote (or found finished), the ones a person opens next first.
        figures: ``{label: one line}`` of key figures, e.g. ``{"jaw": "step 6: d_loss 2.42, ..."}``.
        next_commands: what to run next, most likely first.
        warnings: the run's warning lines (``warning: ...``).
        wall_time_s: seconds from the start of the process (None: unknown).
        report_file: where :meth:`save` writes, usually ``<output folder>/summary.json`` (None: not saved, e.g.
            for a dataset or export folder).
    """

    stage: str
    written: list = dataclasses.field(default_factory=list)
    figures: dict = dataclasses.field(default_factory=dict)
    next_commands: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)
    wall_time_s: float = None
    report_file: Path = None

    def to_dict(self):
        return {
            "stage": self.stage,
            "written": [str(p) for p in self.written],
            "figures": dict(self.figures),
            "next_commands": list(self.next_commands),
            "warnings": list(self.warnings),
            "wall_time_s": self.wall_time_s,
        }

    def save(self):
        """Writes :meth:`to_dict` to :attr:`report_file` (if any); returns that path or None."""
        if self.report_file is not None:
            io.write_json(self.report_file, self.to_dict())
        return self.report_file

    def lines(self):
        """The printed summary: a heading, ``wrote <path>`` lines, figures, warnings, ``next: <command>``."""
        took = f" in {duration(self.wall_time_s)}" if self.wall_time_s is not None else ""
        lines = [f"{self.stage} finished{took}"]
        lines += [f"  wrote {path}" for path in self.written]
        lines += [f"  {label}: {text}" for label, text in self.figures.items()]
        if self.warnings:
            lines.append(f"  {len(self.warnings)} warning(s):")
            lines += [f"    {line}" for line in self.warnings]
        if self.report_file is not None:
            lines.append(f"  summary {self.report_file}")
        lines += [f"{'next:' if i == 0 else '  or:'} {command}" for i, command in enumerate(self.next_commands)]
        return lines

    def print(self, file=None):
        print("\n".join(["", *self.lines()]), file=file or sys.stdout, flush=True)
