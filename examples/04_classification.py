"""Classify the built-in vise parts with MobileNetV3-Small, then ask whether synthetic images help.

Run from the repository root (any backend):

    KERAS_BACKEND=jax .venv/bin/python examples/04_classification.py

It takes a few minutes on a laptop CPU. Step 1 builds a classifier by hand, so you see every piece the study
uses; step 2 runs a two-cell study (real vs traditional augmentation) through the same library call as
bin/eval_ratios and prints where the report went. Pass a synthetic folder from bin/generate to bin/eval_ratios
to add the synthetic regimes.
"""

import tempfile
from pathlib import Path

import keras
import numpy as np

from configs.eval_ratios import get_config
from keras_morsa.data import augment, morsa_parts, pipeline, splits
from keras_morsa.evaluation.study import run_study
from keras_morsa.models.classifier import build_classifier, class_names_of, reestimate_bn_statistics

# 1. One classifier, by hand. The built-in dataset is drawn once (a few minutes) and cached.
root = morsa_parts.load(images_per_class=300, image_size=256)
manifest = splits.load_or_create_split(root)  # the split every stage shares: split_manifest.csv
train = pipeline.classifier_dataset(
    manifest.files("train"),
    manifest.labels("train"),
    image_size=64,
    batch_size=32,
    seed=0,
    training=True,
    repeat=True,
    augment=augment.make_augment(["flip", "color_jitter"], seed=0),
)
test = pipeline.classifier_dataset(manifest.files("test"), manifest.labels("test"), 64, 128, seed=0, training=False)

# Images go in as floats in [0, 255]; the backbone rescales. bn_momentum=0.9 (not KerasCV's 0.999) keeps the
# BatchNorm moving statistics close to the weights when training from scratch.
model = build_classifier(
    "mobilenet_v3_small", len(manifest.class_names), 64, bn_momentum=0.9, class_names=manifest.class_names
)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train, steps_per_epoch=100, epochs=3)
# Belt and braces: recompute the BatchNorm statistics for the final weights before evaluating.
reestimate_bn_statistics(model, train, steps=20)
loss, accuracy = model.evaluate(test, verbose=0)
print(f"test accuracy after 300 steps: {accuracy:.3f}")

# The labels travel inside the model: a .keras file needs no side file.
path = Path(tempfile.mkdtemp()) / "classifier.keras"
model.save(path)
print("labels stored in the model:", class_names_of(keras.saving.load_model(path)))
probabilities = model.predict(np.zeros((1, 64, 64, 3), "float32"), verbose=0)
print("probabilities of a black image:", np.round(probabilities[0], 3))

# 2. A tiny study through the same call as bin/eval_ratios: 2 regimes x 2 seeds, 300 steps each.
config = get_config()
config.regimes = ("real", "traditional")
config.seeds = (0, 1)
config.steps, config.eval_every = 300, 100
workdir = Path(tempfile.mkdtemp()) / "study"
run_study(config, workdir)
print(f"report: {workdir / 'report.md'} (and report.html, *.png, results.csv)")
