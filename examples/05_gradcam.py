#!/usr/bin/env python3
"""Where does a classifier look? Grad-CAM on any backend, its numbers, and the study's report.

Trains a small MobileNetV3 on the built-in vise-parts dataset for a few hundred steps (a few minutes on a
laptop CPU), explains some test images and measures the maps against the object masks:

    KERAS_BACKEND=jax python examples/05_gradcam.py      # or tensorflow, torch

For a finished ratio study, the whole comparison (baseline vs best augmented model) is one command:

    bin/gradcam_report --eval_workdir=workdirs/study --synthetic_dir=workdirs/synthetic --out_dir=workdirs/gradcam
"""

import tempfile
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from keras_morsa.data import folder, morsa_parts, pipeline, splits
from keras_morsa.explain import metrics
from keras_morsa.explain.gradcam import GradCAM
from keras_morsa.explain.render import overlay
from keras_morsa.models.classifier import build_classifier, reestimate_bn_statistics

SIZE = 64
workdir = Path(tempfile.mkdtemp(prefix="keras_morsa_gradcam_"))

# 1. Data: the built-in dataset (images/ and masks/ side by side), split once, stratified and seeded.
data_dir = morsa_parts.load(images_per_class=60, image_size=SIZE, seed=0)
manifest = splits.load_or_create_split(data_dir, workdir=workdir, test_fraction=0.3, seed=0)
train = pipeline.classifier_dataset(
    manifest.files("train"), manifest.labels("train"), SIZE, 32, seed=0, training=True, repeat=True
)

# 2. A classifier: images 0..255 -> nested MobileNetV3 backbone -> pooling -> "logits" -> "probabilities".
#    Briefly trained, then BatchNorm statistics recomputed (from scratch they lag the weights, see
#    keras_morsa.models.classifier).
keras.utils.set_random_seed(0)
model = build_classifier("mobilenet_v3_small", len(manifest.class_names), SIZE, class_names=manifest.class_names)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train, steps_per_epoch=300, epochs=1, verbose=2)
reestimate_bn_statistics(model, train, steps=20)

# 3. The explainer is built once. The score is the chosen class's logit (never the softmax); the layer is the
#    last one with a spatial map larger than 1x1 (at 64 px MobileNetV3-Small's final map is 2x2, so maps are
#    coarse; GradCAM(model, layer_name=...) picks another, and a wrong name lists the candidates).
cam = GradCAM(model)
print("explained layer:", cam.layer_name)

test_files = manifest.files("test")[::10]
test_labels = np.asarray(manifest.labels("test")[::10])
images = pipeline.load_images(test_files, SIZE)  # float32 [N, 64, 64, 3] in 0..255, resized as in training
predicted = np.argmax(model.predict(images, verbose=0), axis=-1)
maps = cam(images, targets=predicted)  # [N, 64, 64] in [0, 1], one map per image for its predicted class

# 4. Numbers: the maps' area, how much of each map lies on the part (the dataset's masks), whether the
#    maximum is on it, and how much the prediction drops when the map's top pixels are removed (mean-filled)
#    compared with removing as many pixels at random. Intervals: seeded percentile bootstrap over images.
masks = folder.load_masks([folder.mask_path(f, manifest.image_root) for f in test_files], SIZE)
print("accuracy on these images:", float(np.mean(predicted == test_labels)))
print("area:", metrics.bootstrap_interval(metrics.area(maps)))
print("energy in mask:", metrics.bootstrap_interval(metrics.mask_energy(maps, masks)))
print("pointing game:", metrics.bootstrap_interval(metrics.pointing_game(maps, masks)))
drops = metrics.deletion_drop(lambda x: model.predict(x, verbose=0), images, maps, predicted)
for fraction, drop in drops.items():
    print(f"top {fraction:.0%} removed: drop {drop['map'].mean():.3f} (random: {drop['random'].mean():.3f})")

# 5. One overlay to look at.
Image.fromarray((overlay(images[0], maps[0]) * 255).astype(np.uint8)).resize((256, 256)).save(workdir / "overlay.png")
print("overlay:", workdir / "overlay.png")
