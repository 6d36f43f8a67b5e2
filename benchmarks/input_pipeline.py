#!/usr/bin/env python3
"""Is the input pipeline ever what training waits for? Pipeline images/s vs training images/s.

For each image size, times the heaviest training pipeline of the study (traditional + synthetic at ratio
1.0: decode-once cache, shuffle, mixing, every augmentation op), after its first epoch has filled the cache,
and the classifier's training throughput for each architecture on in-memory batches. Goal: the pipeline is at
least 3x faster than the fastest training. Without --synthetic_dir the real train images stand in for the
synthetic pool (the speed is the same: it is all the same decode path).

    .venv/bin/python benchmarks/input_pipeline.py                      # built-in dataset, 64 and 128 px
    .venv/bin/python benchmarks/input_pipeline.py --archs=mobilenet_v3_small --sizes=64 --steps=50
"""

import time

import keras
import numpy as np
from absl import app, flags

from keras_morsa.data import augment, morsa_parts, pipeline, splits
from keras_morsa.models.backbones import ARCHITECTURES
from keras_morsa.models.classifier import build_classifier

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Real image folder; default: the built-in dataset.")
_SYNTHETIC_DIR = flags.DEFINE_string("synthetic_dir", None, "Synthetic folder; default: real images stand in.")
_ARCHS = flags.DEFINE_list("archs", list(ARCHITECTURES), "Architectures to time.")
_SIZES = flags.DEFINE_list("sizes", ["64", "128"], "Image sizes.")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Batch size.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed training steps per architecture (after 3 warm-up steps).")
_BATCHES = flags.DEFINE_integer("batches", 200, "Timed pipeline batches.")


def pipeline_rate(files, labels, size, batch_size, batches):
    ds = pipeline.classifier_dataset(
        files,
        labels,
        size,
        batch_size,
        seed=0,
        training=True,
        repeat=True,
        augment=augment.make_augment(augment.AUGMENTATIONS, seed=0),
    )
    iterator = iter(ds)
    start = time.perf_counter()
    for _ in range(max(1, len(files) // batch_size)):  # the first epoch decodes and fills the cache
        next(iterator)
    first_epoch = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start), first_epoch


def training_rate(arch, num_classes, size, batch_size, steps):
    model = build_classifier(arch, num_classes, size)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch_size, size, size, 3)).astype("float32")
    labels = rng.integers(0, num_classes, batch_size)
    for _ in range(3):
        model.train_on_batch(images, labels)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return steps * batch_size / (time.perf_counter() - start)


def main(argv):
    del argv
    data_dir = _DATA_DIR.value or morsa_parts.load()
    manifest = splits.load_or_create_split(data_dir)
    real_files, real_labels = manifest.files("train"), manifest.labels("train")
    if _SYNTHETIC_DIR.value:
        synthetic = pipeline.list_synthetic(_SYNTHETIC_DIR.value, manifest.class_names)
    else:
        synthetic = (real_files, real_labels)
    files, labels = pipeline.mix_real_synthetic(real_files, real_labels, *synthetic, ratio=1.0, seed=0)
    print(f"backend {keras.backend.backend()}, batch {_BATCH.value}, {len(files)} training files (ratio 1.0)")
    print(f"{'size':>5} {'arch':<20} {'pipeline img/s':>15} {'train img/s':>12} {'pipeline/train':>15}")
    for size in map(int, _SIZES.value):
        rate, first_epoch = pipeline_rate(files, labels, size, _BATCH.value, _BATCHES.value)
        print(f"{size:>5} {'(first epoch: decode)':<20} {len(files) / first_epoch:>15.0f}")
        for arch in _ARCHS.value:
            train = training_rate(arch, len(manifest.class_names), size, _BATCH.value, _STEPS.value)
            verdict = "ok" if rate >= 3 * train else "BELOW the 3x goal"
            print(f"{size:>5} {arch:<20} {rate:>15.0f} {train:>12.0f} {rate / train:>14.1f}x {verdict}", flush=True)


if __name__ == "__main__":
    app.run(main)
