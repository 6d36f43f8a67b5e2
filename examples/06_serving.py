#!/usr/bin/env python3
"""Export a classifier and a GAN generator for TF Serving, load them back with TensorFlow alone, call them.

In a real run the models come from earlier stages (``<study workdir>/models/real.keras``,
``<gan workdir>/<class>/generator_ema.keras``); here two small untrained ones stand in, so the example takes
a minute on a laptop CPU under any backend. Run from the repository root:

    python examples/06_serving.py

Then serve the exports with Docker and query them with ``examples/serving_client.py`` (README, "Serving").
"""

import io
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from keras_morsa.data import morsa_parts
from keras_morsa.export.saved_model import export_model
from keras_morsa.models.classifier import build_classifier
from keras_morsa.models.fastgan import Generator

work = Path(tempfile.mkdtemp())

# 1. A classifier knows its labels: they live in its `probabilities` layer, so the .keras file is all the
#    exporter needs. (Built under whatever KERAS_BACKEND is set; the export itself always runs on TensorFlow.)
classifier = build_classifier("mobilenet_v3_small", 3, 64, class_names=["jaw", "nut", "pin"])
classifier.save(work / "classifier.keras")

# 2. Export into TF Serving's layout <base>/<model name>/<version>. Without a version the next free integer
#    is used; an existing version is never overwritten (bin/export does the same from the command line).
first = export_model(work / "classifier.keras", work / "serving" / "morsa")
second = export_model(work / "classifier.keras", work / "serving" / "morsa")
print("versions:", first.relative_to(work), second.relative_to(work))

# 3. Load it back with TensorFlow alone: no Keras model code is needed to run a SavedModel.
signatures = tf.saved_model.load(str(second)).signatures
for name, signature in signatures.items():
    inputs = {key: spec.dtype.name for key, spec in signature.structured_input_signature[1].items()}
    outputs = {key: spec.dtype.name for key, spec in signature.structured_outputs.items()}
    print(f"{name}: {inputs} -> {outputs}")

# 4. `serving_default` takes uint8 pixels of any size and resizes them inside, as the training pipeline does.
photo, _, _ = morsa_parts.render_image("nut", 0, image_size=96, seed=0)
answer = signatures["serving_default"](images=tf.constant(photo[None, :, 10:80]))  # a 96 x 70 crop
print("pixels:", answer["class_name"].numpy(), answer["probabilities"].numpy().round(3))  # untrained: ~1/3 each

# 5. `predict_bytes` takes encoded JPEG or PNG files, the form REST clients send as {"b64": ...}.
jpeg = io.BytesIO()
Image.fromarray(photo).save(jpeg, format="JPEG")
answer = signatures["predict_bytes"](image_bytes=tf.constant([jpeg.getvalue()]))
print("JPEG bytes:", answer["class_name"].numpy(), answer["class_id"].numpy())

# 6. A bad request fails with a message naming what was expected, not a crash of the server.
try:
    signatures["serving_default"](images=tf.constant(photo))  # no batch axis
except tf.errors.InvalidArgumentError as error:
    print("bad request:", next(line for line in error.message.splitlines() if "assertion failed" in line))

# 7. A generator: `serving_default` draws `num_images` images for a `seed` (the same seed, the same images),
#    `from_latents` renders given latents. Exported from the EMA generator's file of a GAN workdir.
generator = Generator(ngf=8, nz=16, image_size=64, seed=0)
generator(np.zeros((1, 16), "float32"))
generator.save(work / "generator_ema.keras")
gan = tf.saved_model.load(str(export_model(work / "generator_ema.keras", work / "serving" / "jaw_gan"))).signatures
images = gan["serving_default"](num_images=tf.constant(4), seed=tf.constant(7, tf.int64))["images"].numpy()
again = gan["serving_default"](num_images=tf.constant(4), seed=tf.constant(7, tf.int64))["images"].numpy()
print("generated:", images.shape, images.dtype, "same for the same seed:", np.array_equal(images, again))
latents = tf.random.normal([2, 16], seed=1)
print("from latents:", gan["from_latents"](latents=latents, seed=tf.constant(0, tf.int64))["images"].shape)
Image.fromarray(np.concatenate(list(images), axis=1)).save(work / "generated.png")
print("exports and a strip of generated images under", work)
