"""Callbacks that watch a GAN trained with ``fit``: progress, CSV log, TensorBoard, image grids, checkpoints.

The training loop (:mod:`keras_morsa.training.train_gan`) calls ``fit`` once per segment between
checkpoints, with ``steps_per_epoch`` = one logging chunk and ``initial_epoch`` set so that an epoch index
maps to a global step: the step after epoch ``e`` is ``(e + 1) * steps_per_epoch``. Every callback here
acts at epoch ends (where the JAX trainer has written its state back to the model) except the progress bar
and the non-finite guard, which read only the per-step logs. Epoch-end writers skip an epoch whose losses
are not finite, so a diverged run never overwrites good samples or checkpoints.
"""

import collections
import csv
import importlib.util
import math
import time
import warnings
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from keras_morsa.io import atomic_write, read_csv, write_csv


def images_to_uint8(images):
    """float images in [-1, 1] (any backend tensor or array, NHWC) -> uint8 NHWC; values outside are clipped."""
    images = np.clip(keras.ops.convert_to_numpy(images).astype(np.float32), -1.0, 1.0)
    return np.round((images + 1.0) * 127.5).astype(np.uint8)


def image_grid(images, columns):
    """Tiles uint8 images [N, H, W, C] into one [rows*H, columns*W, C] image (missing cells black)."""
    n, h, w, c = images.shape
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * h, columns * w, c), np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[r * h : (r + 1) * h, col * w : (col + 1) * w] = image
    return grid


def save_png(path, image):
    """Writes a uint8 HWC image as PNG, atomically."""
    with atomic_write(path) as f:
        Image.fromarray(image).save(f, format="PNG")


def logs_are_finite(logs):
    return all(math.isfinite(float(v)) for v in (logs or {}).values())


def _healthy(callback, logs):
    # NonFiniteGuard sets stop_training at the first bad step; the epoch's mean losses show it too.
    return logs_are_finite(logs) and not callback.model.stop_training


class SummaryWriter:
    """TensorBoard scalars and images through ``tf.summary`` (TensorFlow by nature; TF feeds ``fit`` anyway).

    Works under every Keras backend: values are converted to NumPy first. ``tf.summary`` needs the
    ``tensorboard`` package; without it (or without TensorFlow) this warns once and writes nothing, and the
    CSV log and PNG grids remain the record of the run.
    """

    def __init__(self, logdir):
        self._tf = self._writer = None
        if importlib.util.find_spec("tensorboard") is None or importlib.util.find_spec("tensorflow") is None:
            warnings.warn(
                f"TensorBoard logs disabled ({logdir}): `pip install tensorboard` to enable them; "
                "log.csv and the PNG grids are written regardless",
                stacklevel=2,
            )
            return
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(logdir))

    @property
    def enabled(self):
        return self._writer is not None

    def scalars(self, step, values):
        if self._writer is None:
            return
        with self._writer.as_default():
            for name, value in values.items():
                self._tf.summary.scalar(name, float(value), step=step)
        self._writer.flush()

    def image(self, name, step, image):
        """``image``: uint8 HWC."""
        if self._writer is None:
            return
        with self._writer.as_default():
            self._tf.summary.image(name, image[None], step=step)
        self._writer.flush()


class StepCallback(keras.callbacks.Callback):
    """Base: converts fit's (epoch, batch) into the global training step (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def step_after_batch(self, batch):
        return self._epoch * self.params["steps"] + batch + 1

    def step_after_epoch(self, epoch):
        return (epoch + 1) * self.params["steps"]


class PeriodicCallback(StepCallback):
    """Base of the callbacks that act every ``every`` steps and at the final step ``num_steps``, never after a
    non-finite epoch (the sample grids, the checkpoints, the quality monitor)."""

    def __init__(self, every, num_steps):
        super().__init__()
        self.every = every
        self.num_steps = num_steps

    def due_step(self, epoch, logs):
        """The step to act at after ``epoch``, or ``None`` (not due, or the epoch's losses are not finite)."""
        step = self.step_after_epoch(epoch)
        if not _healthy(self, logs) or (step % self.every and step != self.num_steps):
            return None
        return step


class ProgressBar(StepCallback):
    """One ``keras.utils.Progbar`` over the remaining steps, showing the losses and iterations per second.

    Args:
        start_step: the step training resumes from.
        num_steps: the final step.
        window: number of recent steps the it/s figure averages over.
    """

    def __init__(self, start_step, num_steps, window=20):
        super().__init__()
        self.start_step = start_step
        self.num_steps = num_steps
        self._times = collections.deque(maxlen=window + 1)
        self._bar = None

    def on_train_batch_end(self, batch, logs=None):
        self._times.append(time.perf_counter())
        values = [(name, float(value)) for name, value in (logs or {}).items()]
        if len(self._times) > 1:
            values.append(("it/s", (len(self._times) - 1) / (self._times[-1] - self._times[0])))
        if self._bar is None:
            names = [name for name, _ in values] + ["it/s"]
            self._bar = keras.utils.Progbar(self.num_steps - self.start_step, stateful_metrics=names)
        self._bar.update(self.step_after_batch(batch) - self.start_step, values)


class TimeEstimate(StepCallback):
    """Prints once, after the first logged interval, the time per step measured on this machine and the time
    the rest of the run will take at that rate.

    The run's first step is left out (it traces or compiles the train step), so the figure is the steady
    rate; checkpoints, sample grids and the quality monitor add a few per cent on top. A first interval of one
    step is measured to the end of the next. ``seconds_per_step`` holds the figure once measured.

    Args:
        num_steps: the final step.
        label: what is being trained, first in the line (e.g. the class name).
        machine: how the machine is named in the line (e.g. ``hardware.cpu_info().describe()``).
        write: where the line goes (``print``).
    """

    def __init__(self, num_steps, label, machine, write=print):
        super().__init__()
        self.num_steps, self.label, self.machine, self.write = num_steps, label, machine, write
        self.seconds_per_step = None
        self._first = self._last = None

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds_per_step is None:
            mark = (time.perf_counter(), self.step_after_batch(batch))
            self._first, self._last = self._first or mark, mark

    def on_epoch_end(self, epoch, logs=None):
        if self.seconds_per_step is not None or self._first is None or self._last[1] == self._first[1]:
            return
        (t0, first), (t1, last) = self._first, self._last
        self.seconds_per_step = (t1 - t0) / (last - first)
        remaining = self.num_steps - self.step_after_epoch(epoch)
        if remaining > 0:
            seconds = self.seconds_per_step * remaining
            duration = f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
            span = f"step {last}" if last == first + 1 else f"steps {first + 1}-{last}"
            self.write(
                f"{self.label}: {self.seconds_per_step:.3g} s/step measured over {span} on "
                f"this machine ({self.machine}): the remaining {remaining} steps take about {duration}"
            )


class NonFiniteGuard(StepCallback):
    """Stops training at the first step whose logged losses are not finite; ``failure`` says which.

    ``failure`` is ``None`` or ``(step, name, value)``.
    """

    def __init__(self):
        super().__init__()
        self.failure = None

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            value = float(value)
            if not math.isfinite(value):
                self.failure = (self.step_after_batch(batch), name, value)
                self.model.stop_training = True
                return


class CsvLog(StepCallback):
    """Appends one row per epoch (``step``, the epoch's mean losses, ``it_per_s``) to a CSV file.

    Values an earlier callback added to the epoch's logs (``kid``, ``coverage`` of the quality monitor) become
    columns too; rows without them leave those cells empty.

    ``it_per_s`` is the epoch's steps over its wall time; the first epoch after a (re)start includes the
    tracing/compilation of the train step, so it reads low.

    On creation, rows after ``start_step`` (left by a run killed after its last checkpoint) and a torn last
    line are dropped, so a resumed run never logs a step twice.

    Args:
        path: the CSV file.
        start_step: the step training (re)starts from.
        writer: optional :class:`SummaryWriter` that receives the same scalars.
    """

    def __init__(self, path, start_step, writer=None):
        super().__init__()
        self.path = Path(path)
        self.writer = writer
        self._fields = None
        self._t0 = None
        if self.path.exists():
            with open(self.path, encoding="utf-8", newline="") as f:
                self._fields = next(csv.reader(f), None)
            rows = [r for r in read_csv(self.path) if None not in r.values() and _is_int(r.get("step"))]
            rows = [r for r in rows if int(r["step"]) <= start_step]
            if self._fields:
                write_csv(self.path, rows, self._fields)

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if not _healthy(self, logs):
            return
        step = self.step_after_epoch(epoch)
        row = {name: float(value) for name, value in logs.items()}
        row["it_per_s"] = self.params["steps"] / (time.perf_counter() - self._t0)
        if self._fields is None:
            self._fields = ["step", *row]
            write_csv(self.path, [], self._fields)
        added = [name for name in row if name not in self._fields]
        if added:
            # Columns some epochs only have (the checkpoint quality scores): widen the header once, earlier
            # rows keep empty cells.
            self._fields += added
            write_csv(self.path, read_csv(self.path), self._fields)
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            csv.DictWriter(f, fieldnames=self._fields, extrasaction="ignore").writerow({"step": step, **row})
        if self.writer is not None:
            self.writer.scalars(step, row)


def _is_int(text):
    try:
        int(text)
    except (TypeError, ValueError):
        return False
    return True


class ImageGrid(PeriodicCallback):
    """Every ``every`` steps, saves ``make_images()`` as ``<directory>/step_XXXXXX.png`` (and to TensorBoard).

    Args:
        directory: output folder.
        make_images: callable returning uint8 images [N, H, W, 3] from the current model state.
        every: interval in steps.
        num_steps: the final step (always saved).
        columns: grid width in images.
        writer: optional :class:`SummaryWriter`; ``tag`` names the image there.
    """

    def __init__(self, directory, make_images, every, num_steps, columns, writer=None, tag="samples"):
        super().__init__(every, num_steps)
        self.directory = Path(directory)
        self.make_images = make_images
        self.columns = columns
        self.writer = writer
        self.tag = tag

    def on_epoch_end(self, epoch, logs=None):
        step = self.due_step(epoch, logs)
        if step is None:
            return
        grid = image_grid(self.make_images(), self.columns)
        save_png(self.directory / f"step_{step:06d}.png", grid)
        if self.writer is not None:
            self.writer.image(self.tag, step, grid)


class CheckpointSaver(PeriodicCallback):
    """Saves a checkpoint through a :class:`~keras_morsa.training.checkpoint.CheckpointManager` every
    ``every`` steps and at ``num_steps``, never after a non-finite epoch."""

    def __init__(self, manager, every, num_steps, metadata=None):
        super().__init__(every, num_steps)
        self.manager = manager
        self.metadata = metadata

    def on_epoch_end(self, epoch, logs=None):
        step = self.due_step(epoch, logs)
        if step is not None:
            self.manager.save(step, self.metadata)
