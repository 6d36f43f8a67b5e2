#!/usr/bin/env python3
"""What the checkpoint quality monitor adds to bin/train_gan at the default CPU config (goal: <= 5 %).

Builds the FastGAN of configs/fastgan_cpu.py, times its training step (after warm-up) on one real class of
the built-in dataset, then the monitor's one-off costs per class (the embedding of the class's train images)
and its cost per checkpoint (EMA samples, embedding, KID, coverage; the first call, which traces, timed
apart). The overhead per class is (one-off + checkpoints x per-checkpoint) / (num_steps x step time).
With ``--features=classifier`` (the config's default) the workdir's classifier is trained first, once for
every class of a workdir (``quality.classifier`` budget): its time is printed apart, and shared by the
classes (``--workdir`` of a train_gan run reuses its cached classifier where it matches). Prints the CPU and load.

    .venv/bin/python benchmarks/gan_quality_overhead.py [--steps=30] [--class_name=jaw] [--features=random]
    .venv/bin/python benchmarks/gan_quality_overhead.py --workdir=workdirs/gan   # its quality_classifier.keras
"""

import os
import tempfile
import time
from pathlib import Path

import keras
from absl import app, flags

from benchmarks.gan_quality import cpu_model
from configs.fastgan_cpu import get_config
from keras_morsa.data import morsa_parts, pipeline, splits
from keras_morsa.training import train_gan

_STEPS = flags.DEFINE_integer("steps", 30, "Timed training steps (after 5 warm-up steps).")
_CLASS = flags.DEFINE_string("class_name", "jaw", "Class to time.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Image folder; default: the built-in dataset (built if missing).")
_FEATURES = flags.DEFINE_string("features", None, "quality.features; default: the config's (classifier).")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "A train_gan workdir whose cached quality classifier is reused; default: trained in a temp folder."
)


def main(argv):
    del argv
    config = get_config()
    config.quality.features = _FEATURES.value or config.quality.features
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} cores, load average {os.getloadavg()}, backend {keras.backend.backend()}"
    )
    root = morsa_parts.dataset_root(config.data, _DATA_DIR.value)
    manifest = splits.load_or_create_split(root, test_fraction=config.data.test_fraction, seed=config.data.split_seed)
    gan = train_gan.build_gan(config)
    size, batch = config.model.image_size, config.train.batch_size
    ds = pipeline.gan_dataset(manifest, _CLASS.value, size, batch, seed=0)
    gan.fit(ds, epochs=1, steps_per_epoch=5, verbose=0)
    start = time.perf_counter()
    gan.fit(ds, epochs=1, steps_per_epoch=_STEPS.value, verbose=0)
    step_time = (time.perf_counter() - start) / _STEPS.value

    class_dir = Path(tempfile.mkdtemp()) / _CLASS.value  # the monitor writes its best/curve files here
    start = time.perf_counter()
    # Trains the classifier, or reuses --workdir's.
    embedding = train_gan.quality_embedding(config, _WORKDIR.value or class_dir.parent, manifest)
    per_workdir = time.perf_counter() - start
    start = time.perf_counter()
    monitor = train_gan._quality_monitor(config, class_dir, manifest, _CLASS.value, gan, 0, embedding)
    one_off = time.perf_counter() - start
    start = time.perf_counter()
    monitor.score()
    first = time.perf_counter() - start
    start = time.perf_counter()
    repeats = 3
    for _ in range(repeats):
        monitor.score()
    per_checkpoint = (time.perf_counter() - start) / repeats
    checkpoints = config.train.num_steps // config.checkpoint_every
    training = config.train.num_steps * step_time
    overhead = one_off + first + (checkpoints - 1) * per_checkpoint
    print(
        f"{_CLASS.value}: {len(manifest.files('train', _CLASS.value))} train images, {config.quality.num_samples} "
        f"EMA samples, {checkpoints} checkpoints in {config.train.num_steps} steps"
    )
    print(f"  training step {step_time:.3f} s -> {training:.0f} s of training (fit only)")
    print(f"  features ({embedding.description}): {per_workdir:.1f} s once per workdir, shared by its classes")
    print(f"  monitor: one-off {one_off:.2f} s, first score {first:.2f} s, then {per_checkpoint:.2f} s per checkpoint")
    print(f"  overhead {overhead:.1f} s = {100 * overhead / training:.1f} % of the training time (features apart)")


if __name__ == "__main__":
    app.run(main)
