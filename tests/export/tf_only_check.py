"""Calls every exported signature in a process where only TensorFlow can be imported (as in TF Serving).

Usage: python tf_only_check.py INPUTS.npz OUTPUTS.npz CLASSIFIER_DIR GENERATOR_DIR

``import tensorflow`` itself imports ``keras`` when it is installed, so "not imported" is made strict: the
names ``keras``, ``keras_morsa`` and ``tf_keras`` are blocked (``sys.modules[name] = None`` makes any import
of them fail) before TensorFlow is imported, and must still be blocked, with no submodule loaded, at the end.
Writes each signature's outputs to OUTPUTS.npz as ``<model>/<signature>/<output>``.
"""

import sys

BLOCKED = ("keras", "keras_morsa", "tf_keras")
for _name in BLOCKED:
    sys.modules[_name] = None

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main(inputs_path, outputs_path, classifier_dir, generator_dir):
    inputs = np.load(inputs_path)
    # Encoded files travel as uint8 arrays: numpy's fixed-width bytes would strip trailing NUL bytes.
    image_bytes = [inputs[key].tobytes() for key in sorted(inputs.files) if key.startswith("image_bytes/")]
    classifier = tf.saved_model.load(classifier_dir).signatures
    generator = tf.saved_model.load(generator_dir).signatures
    seed = tf.constant(int(inputs["seed"]), tf.int64)
    calls = {
        "classifier/serving_default": classifier["serving_default"](images=tf.constant(inputs["images"])),
        "classifier/predict_bytes": classifier["predict_bytes"](image_bytes=tf.constant(image_bytes)),
        "generator/serving_default": generator["serving_default"](
            num_images=tf.constant(int(inputs["num_images"]), tf.int32), seed=seed
        ),
        "generator/from_latents": generator["from_latents"](latents=tf.constant(inputs["latents"]), seed=seed),
    }
    outputs = {f"{call}/{name}": value.numpy() for call, result in calls.items() for name, value in result.items()}
    outputs = {key: value.astype(bytes) if value.dtype == object else value for key, value in outputs.items()}
    np.savez(outputs_path, **outputs)
    leaked = [name for name in sys.modules if name.split(".")[0] in BLOCKED and sys.modules[name] is not None]
    if leaked:
        sys.exit(f"modules imported despite the block: {leaked}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
