"""keras_morsa.models.saving.load_model: a saved generator or classifier loads from any entry point."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_morsa.models.classifier import build_classifier
from keras_morsa.models.fastgan import Generator

import helpers

# Run in a fresh interpreter that imports keras_morsa.models.saving and nothing else of keras_morsa first:
# the loader alone must register every class the files need.
_LOAD_ONLY = """
import sys

import keras
import numpy as np

from keras_morsa.models.saving import load_model

folder = sys.argv[1]
generator = load_model(f"{folder}/generator.keras")
classifier = load_model(f"{folder}/classifier.keras")
images, _ = generator(np.load(f"{folder}/latents.npy"))
np.save(f"{folder}/generator_out.npy", keras.ops.convert_to_numpy(images))
np.save(f"{folder}/classifier_out.npy", keras.ops.convert_to_numpy(classifier(np.load(f"{folder}/images.npy"))))
print(type(generator).__name__, classifier.get_layer("probabilities").class_names)
"""


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.multibackend
@pytest.mark.parametrize("library", helpers.BACKBONE_LIBRARIES)
def test_load_model_needs_no_other_import(library, tmp_path):
    generator = Generator(ngf=8, nz=16, image_size=64, seed=0)  # noise weights start at 0: outputs are fixed
    classifier = build_classifier("mobilenet_v3_small", 2, 32, class_names=["jaw", "nut"], backbone_library=library)
    latents = np.random.default_rng(0).standard_normal((2, 16)).astype("float32")
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    expected = _numpy(generator(latents)[0]), _numpy(classifier(images))
    generator.save(tmp_path / "generator.keras")
    classifier.save(tmp_path / "classifier.keras")
    np.save(tmp_path / "latents.npy", latents)
    np.save(tmp_path / "images.npy", images)

    result = subprocess.run(
        [sys.executable, "-c", _LOAD_ONLY, str(tmp_path)],
        capture_output=True,
        text=True,
        env=helpers.checkout_env(),
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "Generator ['jaw', 'nut']"
    np.testing.assert_allclose(np.load(tmp_path / "generator_out.npy"), expected[0], atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "classifier_out.npy"), expected[1], atol=1e-6)
