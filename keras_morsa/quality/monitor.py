"""Quality at every checkpoint of a GAN run, and the best checkpoint kept (used by ``train_gan``).

:class:`QualityMonitor` scores a fixed set of EMA-generator samples against the class's **train** images
(test images never choose anything) through an embedding of :mod:`.features` (``train_gan``'s
``quality.features``: by default the penultimate features of a classifier trained on the real train split,
:mod:`.classifier`; the seeded random CNN ranked formless blobs above the part on the built-in dataset, issue
11): KID (lower is better) and coverage. It puts ``kid`` and ``coverage`` into the epoch's logs, so the CSV
log and TensorBoard that follow it in the callback list record them, redraws ``quality_<class>.png`` and,
when the KID is the lowest so far, calls ``save_best`` (``train_gan`` writes ``generator_best.keras``) and
records the step in ``generator_best.json`` (with the features' description: a resumed run whose features
changed starts its best afresh, since KIDs in other features do not compare).
"""

import math
from pathlib import Path

import numpy as np

from keras_morsa import io
from keras_morsa.data import pipeline
from keras_morsa.quality import metrics
from keras_morsa.quality.plots import quality_curve
from keras_morsa.training.callbacks import PeriodicCallback


def score_samples(images, embedding, train_features, k=5, kid_subsets=10, seed=0):
    """``{"kid", "kid_std", "coverage"}`` of uint8 ``images`` [N, S, S, 3] against ``train_features`` in
    ``embedding`` (images resized like training images to its input side when that differs); what the
    monitor records at a checkpoint and what ``train_gan.rescore_best`` compares."""
    images = np.asarray(images).astype(np.float32)
    if images.shape[1] != embedding.image_size:
        images = np.asarray(pipeline.resize_like_training(images, embedding.image_size))
    fake = embedding.embed(images, batch_size=min(64, len(images)))
    kid = metrics.kid(train_features, fake, num_subsets=kid_subsets, seed=seed)
    coverage = metrics.prdc(train_features, fake, k=k)["coverage"]
    return {"kid": kid["mean"], "kid_std": kid["std"], "coverage": coverage}


class QualityMonitor(PeriodicCallback):
    """KID and coverage of fixed EMA samples at every ``every`` steps and at ``num_steps``; keeps the best.

    Args:
        make_images: callable returning the current EMA generator's uint8 images [N, S, S, 3] on fixed latents
            (resized like training images to the embedding's input side when that differs).
        embedding: a features-only :class:`~keras_morsa.quality.features.Embedding` (``features_only()``).
        train_features: the embedding of the class's train images [M, d].
        every: interval in steps (the checkpoint interval).
        num_steps: the final step (always scored).
        save_best: callable saving the current EMA generator as the best one.
        best_file: the JSON recording the best step, KID and coverage (read back on resume).
        curve_path: the quality-against-step PNG.
        history: earlier rows (``step``, ``kid``, ``coverage``) of a resumed run, for the curve.
        k: nearest neighbours of coverage; kid_subsets: KID subsets; seed: KID subset seed.
        title: the curve's title.
    """

    def __init__(
        self,
        make_images,
        embedding,
        train_features,
        every,
        num_steps,
        save_best,
        best_file,
        curve_path,
        history=(),
        k=5,
        kid_subsets=10,
        seed=0,
        title="quality",
    ):
        super().__init__(every, num_steps)
        self.make_images = make_images
        self.embedding = embedding
        self.train_features = train_features
        self.save_best = save_best
        self.best_file = Path(best_file)
        self.curve_path = Path(curve_path)
        self.history = [r for r in history if r.get("kid") not in (None, "")]
        self.k, self.kid_subsets, self.seed, self.title = k, kid_subsets, seed, title
        self.best = io.read_json(self.best_file) if self.best_file.exists() else None
        if self.best is not None and self.best.get("features") != embedding.description:
            print(
                f"quality monitor: {self.best_file} was scored with other features "
                f"({self.best.get('features', 'random CNN, before features were recorded')}); the best checkpoint "
                f"is chosen afresh with {embedding.description}"
            )
            self.best, self.history = None, []

    def score(self):
        """``{"kid", "kid_std", "coverage"}`` of the current EMA samples."""
        images = self.make_images()
        return score_samples(images, self.embedding, self.train_features, self.k, self.kid_subsets, self.seed)

    def on_epoch_end(self, epoch, logs=None):
        step = self.due_step(epoch, logs)
        if step is None:
            return
        values = self.score()
        if logs is not None:  # what the CSV log and TensorBoard after this callback record
            logs.update(values)
        self.history.append({"step": step, **values})
        if self.best is None or not math.isfinite(self.best["kid"]) or values["kid"] < self.best["kid"]:
            self.save_best()
            self.best = {"step": step, **values, "features": self.embedding.description}
            io.write_json(self.best_file, self.best)
        quality_curve(self.curve_path, self.history, self.title, best_step=self.best["step"])
