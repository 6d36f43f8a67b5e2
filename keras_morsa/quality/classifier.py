"""The classifier trained on the real **train** split whose penultimate features judge generated images.

``bin/gan_quality`` trains one when ``--features=classifier`` and no ``--classifier`` is given
(:func:`train_classifier`); ``train_gan``'s checkpoint monitor trains one per GAN workdir and caches it
(:func:`cached_classifier`), so that every class run and every resume reuses it. Test images are never read.
"""

import datetime
import hashlib
import json
import time
from pathlib import Path

import keras

from keras_morsa import io
from keras_morsa.data import pipeline
from keras_morsa.models.classifier import build_classifier
from keras_morsa.models.saving import load_model, save_model


def train_classifier(budget, manifest, image_size, seed, path, progress=True):
    """Trains the classifier of ``budget`` on the real train split only and saves it to ``path`` atomically.

    Args:
        budget: a ``ConfigDict`` of ``arch, backbone_library, steps, batch_size, learning_rate, dropout,
            bn_momentum`` (``configs/gan_quality.py``'s ``classifier`` section, or ``train_gan``'s
            ``quality.classifier``).
        manifest: the :class:`~keras_morsa.data.splits.SplitManifest`; every class's train images are used.
        image_size: the classifier's input side.
        seed: weights and data order.
        path: the ``.keras`` file written (a killed run leaves at most a hidden temporary sibling).
        progress: show Keras's progress bar.

    Returns:
        The trained, compiled classifier.
    """
    keras.utils.set_random_seed(int(seed))
    model = build_classifier(
        budget.arch,
        len(manifest.class_names),
        image_size,
        dropout=budget.dropout,
        bn_momentum=budget.bn_momentum,
        class_names=manifest.class_names,
        backbone_library=budget.backbone_library,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(float(budget.learning_rate)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    ds = pipeline.classifier_dataset(
        manifest.files("train"),
        manifest.labels("train"),
        image_size,
        int(budget.batch_size),
        seed=int(seed),
        training=True,
        repeat=True,
    )
    print(
        f"training a {budget.arch} classifier on the real train split ({budget.steps} steps of "
        f"{budget.batch_size}) at {image_size} px for the classifier features"
    )
    model.fit(ds, epochs=1, steps_per_epoch=int(budget.steps), verbose=int(progress))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_model(model, path)
    return model


def cached_classifier(budget, manifest, image_size, seed, path, progress=True):
    """The classifier at ``path`` if its JSON twin states the same training, else one trained now.

    The JSON (``path`` with suffix ``.json``) states the budget, input size, seed, classes and a digest of
    the train images; it is written after the model, both atomically, so a run killed while training leaves
    no file that would be reused. After training, the classifier's accuracy on the train images it learned
    from (inference mode; a check that it learned and that its batch-norm statistics hold, not a
    generalisation figure: no test image is read) goes into the JSON.

    Returns:
        ``(classifier, info)``: the model and the JSON's content.
    """
    path = Path(path)
    info_path = path.with_suffix(".json")
    train_sha256 = sorted(row["sha256"] for row in manifest.rows if row["split"] == "train")
    stated = json.loads(
        json.dumps(
            {
                "budget": budget.to_dict(),
                "image_size": int(image_size),
                "seed": int(seed),
                "class_names": list(manifest.class_names),
                "train_images": len(train_sha256),
                "train_sha256": hashlib.sha256("\n".join(train_sha256).encode()).hexdigest(),
            }
        )
    )
    if path.is_file() and info_path.is_file():
        info = io.read_json(info_path)
        differing = sorted(key for key in stated if info.get(key) != stated[key])
        if not differing:
            print(f"classifier features: reusing {path} (trained on the real train split, {info_path})")
            return load_model(path), info
        print(f"classifier features: {path} was trained otherwise ({', '.join(differing)} differ); training again")
    start = time.monotonic()
    model = train_classifier(budget, manifest, image_size, seed, path, progress)
    seconds = time.monotonic() - start
    ds = pipeline.classifier_dataset(
        manifest.files("train"), manifest.labels("train"), image_size, 64, seed=0, training=False
    )
    accuracy = float(model.evaluate(ds, verbose=0, return_dict=True)["accuracy"])
    info = {
        **stated,
        "train_accuracy": accuracy,
        "train_accuracy_note": "on the train images it learned from, inference mode; no test image was read",
        "training_seconds": round(seconds, 1),
        "trained": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    io.write_json(info_path, info)
    print(f"classifier features: {path} trained in {seconds:.0f} s, train accuracy {accuracy:.3f}")
    return model, info
