#!/usr/bin/env python3
"""Bring your own images: scan a folder, split it once, check for leaks, build a mixed training pipeline.

Run it on the built-in vise-parts dataset (built on first use, a few seconds at this size):

    python examples/02_data.py

or on your own folder of ``<root>/<class_name>/<images>`` (the split manifest goes into a work folder, so the
data folder stays untouched):

    python examples/02_data.py /path/to/photos
"""

import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from keras_morsa import io
from keras_morsa.data import folder, pipeline, splits

workdir = Path(tempfile.mkdtemp(prefix="keras_morsa_example_"))

# 1. Find a data folder. Without an argument, use the built-in dataset (images/<class>/*.jpg, masks/, ...).
if len(sys.argv) > 1:
    data_dir = Path(sys.argv[1])
else:
    from keras_morsa.data import morsa_parts

    data_dir = morsa_parts.load(images_per_class=20, image_size=64, seed=0)

# 2. Scan it. Every file is decoded once; unreadable files are skipped with a DataWarning naming each one,
#    and the report (a plain dict) is what a run writes into its own report. Structural problems (missing
#    folder, no class folders, a class with too few images) raise DataError instead.
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", folder.DataWarning)
    scan = folder.scan_image_folder(data_dir, min_images_per_class=5)
report = scan.report()
print(f"{report['num_images']} images in {report['num_classes']} classes, {report['num_skipped']} skipped")
print("per class:", report["images_per_class"])
for warning in caught:
    print("warning:", warning.message)

# 3. Split once: stratified, seeded, 70 % train / 30 % test, duplicates kept together. The manifest
#    (path, class_name, sha256, split) is written to the work folder; a second call reads it back, and
#    refuses if files it lists went missing or changed. Passing the scan saves decoding everything twice.
manifest = splits.load_or_create_split(data_dir, workdir=workdir, test_fraction=0.3, seed=0, scan=scan)
print("split:", {name: counts for name, counts in list(manifest.counts().items())[:3]}, "...")
print("manifest:", workdir / splits.MANIFEST_NAME)

# 4. A stand-in for a synthetic folder (bin/generate writes one from trained GANs): mirrored copies of each
#    class's train images, with sources.txt recording which real images "trained the generator".
synthetic = workdir / "synthetic"
for class_name in manifest.class_names:
    (synthetic / class_name).mkdir(parents=True)
    for i, path in enumerate(manifest.files("train", class_name)):
        mirrored = folder.load_image(path)[:, ::-1]
        Image.fromarray(np.ascontiguousarray(mirrored)).save(synthetic / class_name / f"{i}.png")
sources = sorted({row["sha256"] for row in manifest.rows if row["split"] == "train"})
with io.atomic_write(synthetic / "sources.txt", "w") as f:
    f.write("".join(sha + "\n" for sha in sources))

# 5. The leak check: no test image may appear in train, among the synthetic files, or in sources.txt.
splits.check_no_leak(manifest, synthetic_dirs=[synthetic])
print("leak check passed")

# 6. Mix at ratio 0.5: every class keeps its n real train images and gains round(0.5 * n) synthetic ones,
#    drawn without replacement with a seed. Then the classifier pipeline: float32 [B, S, S, 3] in [0, 255].
real_files, real_labels = manifest.files("train"), manifest.labels("train")
synthetic_files, synthetic_labels = pipeline.list_synthetic(synthetic, manifest.class_names)
files, labels = pipeline.mix_real_synthetic(
    real_files, real_labels, synthetic_files, synthetic_labels, ratio=0.5, seed=0, class_names=manifest.class_names
)
print(f"ratio 0.5: {len(real_files)} real + {len(files) - len(real_files)} synthetic training images")
train = pipeline.classifier_dataset(files, labels, image_size=64, batch_size=16, seed=0, training=True)
images, batch_labels = next(iter(train))
print(
    "classifier batch:",
    images.shape,
    images.dtype.name,
    float(images.numpy().min()),
    float(images.numpy().max()),
    batch_labels.numpy()[:8],
)

# The GAN of one class sees only that class's train images, in [-1, 1], endlessly.
gan = pipeline.gan_dataset(manifest, manifest.class_names[0], image_size=64, batch_size=8, seed=0)
print("GAN batch:", next(iter(gan)).shape)

shutil.rmtree(workdir)
