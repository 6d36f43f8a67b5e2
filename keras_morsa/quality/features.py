"""Image embeddings for the quality metrics, none of which needs a download.

FID, KID and precision/recall compare sets of images through an embedding; the usual one (Inception-v3 on
ImageNet) is fetched from the internet by clean-fid, torch-fidelity and StyleGAN2-ADA's metrics. Here the
embedding is one of:

- ``"classifier"``: the penultimate features (the ``pool`` layer: global average of the backbone's last map)
  of a classifier trained on the real **train** split only, e.g. a study's ``models/real.keras``. It knows
  what separates the classes of this dataset, so it is the best judge of whether a generated image looks like
  its class (and the same model gives the CAS). Its weakness: it ignores what it did not need to classify.
- ``"random"``: a fixed, seeded, randomly initialised CNN (:func:`random_cnn`). Naeem et al. 2020 ("Reliable
  Fidelity and Diversity Metrics for Generative Models") show that random embeddings rank generators sensibly
  where ImageNet features do not fit the data; it needs no training at all. But on the built-in dataset it
  preferred formless early GAN samples to ones showing the part (issue 11: it sees background colour and
  texture), so ``train_gan``'s checkpoint monitor uses classifier features by default. Its weights come
  from NumPy's seeded generator, so the embedding is the same on every backend.
- a local ``.keras`` model (a classifier of :func:`~keras_morsa.models.classifier.build_classifier` or any
  single-input model: its penultimate layer, globally averaged if spatial) or a ``.weights.h5`` backbone file
  of ``build_backbone(arch, image_size)`` (globally averaged output).

Every embedding takes float images ``[N, S, S, 3]`` in [0, 255] (what ``pipeline.classifier_dataset``
yields) and returns float32 ``[N, d]``.
"""

from pathlib import Path

import keras
import numpy as np

from keras_morsa.data import pipeline
from keras_morsa.errors import UserError
from keras_morsa.models.saving import load_model

FEATURE_KINDS = ("classifier", "random")
RANDOM_CNN_WIDTHS = (32, 64, 128, 256)


class Embedding:
    """A feature model with its description; :meth:`embed` returns features (and class probabilities).

    Args:
        model: a Keras model taking float images [N, S, S, 3] in [0, 255] and returning features [N, d], or
            ``(features, probabilities)`` when ``class_names`` is given.
        description: one line saying what the features are (it goes into reports).
        class_names: the labels of the probabilities output, for a classifier; ``None`` otherwise.
    """

    def __init__(self, model, description, class_names=None):
        self.model = model
        self.description = description
        self.class_names = None if class_names is None else list(class_names)
        self.image_size = int(model.inputs[0].shape[1])

    @property
    def has_probabilities(self):
        return self.class_names is not None

    def features_only(self):
        """This embedding without its probabilities output (itself when it has none): :meth:`embed` then
        returns the features alone."""
        if not self.has_probabilities:
            return self
        return Embedding(keras.Model(self.model.inputs, self.model.outputs[0]), self.description)

    def embed(self, images, batch_size=64):
        """Features float32 [N, d] of float images [N, S, S, 3] in [0, 255]; with probabilities, a pair."""
        images = np.asarray(images, np.float32)
        n = len(images)
        # Whole batches only: eager JAX and torch would otherwise trace the model again for the ragged end.
        padded = np.concatenate([images, np.zeros((-n % batch_size, *images.shape[1:]), np.float32)])
        out = self.model.predict(padded, batch_size=batch_size, verbose=0)
        if self.has_probabilities:
            return np.asarray(out[0][:n], np.float32), np.asarray(out[1][:n], np.float32)
        return np.asarray(out[:n], np.float32)

    def embed_files(self, files, batch_size=64, bar=None):
        """:meth:`embed` of image files, read and resized like training images (``pipeline``), in batches."""
        files = list(files)
        if not files:
            raise UserError("no image files to embed; expected at least one")
        ds = pipeline.classifier_dataset(files, [0] * len(files), self.image_size, batch_size, seed=0, training=False)
        parts = []
        for images, _ in ds.as_numpy_iterator():
            parts.append(self.embed(images, batch_size))
            if bar is not None:
                bar.add(len(images))
        if self.has_probabilities:
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        return np.concatenate(parts)


def random_cnn(image_size, seed=0, widths=RANDOM_CNN_WIDTHS):
    """The fixed random-CNN :class:`Embedding`: stride-2 3x3 ReLU convolutions, then a global average.

    Weights are He-normal draws from ``numpy.random.default_rng([seed, layer])`` (biases 0), so the same seed
    gives the same features on TensorFlow, JAX and torch. Images are scaled to [-1, 1] first.

    Args:
        image_size: input side ``S`` (>= 2 ** len(widths) keeps every map at least 1x1).
        seed: weight seed.
        widths: filters per convolution; the feature size is ``widths[-1]``.
    """
    images = keras.Input((int(image_size), int(image_size), 3), name="images")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(images)
    convs = []
    for width in widths:
        conv = keras.layers.Conv2D(int(width), 3, strides=2, padding="same", activation="relu")
        x = conv(x)
        convs.append(conv)
    features = keras.layers.GlobalAveragePooling2D(name="features")(x)
    model = keras.Model(images, features, name=f"random_cnn_seed{seed}")
    for index, conv in enumerate(convs):
        kernel, bias = conv.get_weights()
        fan_in = np.prod(kernel.shape[:-1])
        rng = np.random.default_rng([int(seed), index])
        conv.set_weights(
            [(rng.standard_normal(kernel.shape) * np.sqrt(2.0 / fan_in)).astype("float32"), np.zeros_like(bias)]
        )
    return Embedding(model, f"random CNN (seed {seed}, widths {list(widths)}, Naeem et al. 2020), {image_size} px")


def classifier_embedding(classifier, description=None):
    """The :class:`Embedding` of a classifier: its ``pool`` layer's features and its probabilities.

    For a model without a ``pool`` layer the features are its penultimate layer's output (globally averaged
    when spatial) and no probabilities are returned.
    """
    # Imported here: models.classifier brings in KerasCV, which train_gan with random features does without.
    from keras_morsa.models.classifier import class_names_of

    description = description or f"penultimate features of classifier {classifier.name!r}"
    try:
        pool = classifier.get_layer("pool")
    except ValueError:
        pool = None
    if pool is not None:
        model = keras.Model(classifier.inputs, [pool.output, classifier.outputs[0]], name="classifier_features")
        return Embedding(model, description, class_names_of(classifier))
    if len(classifier.inputs) != 1 or len(classifier.layers) < 2:
        raise UserError(
            f"model {classifier.name!r} has {len(classifier.inputs)} inputs and "
            f"{len(classifier.layers)} layers; expected one image input and a penultimate layer"
        )
    x = classifier.layers[-2].output
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D()(x)
    return Embedding(keras.Model(classifier.inputs, x, name="penultimate_features"), description)


def load_embedding(spec, image_size, seed=0, arch="mobilenet_v3_small", classifier=None):
    """The embedding named by ``spec`` (``--features``).

    Args:
        spec: ``"random"``, ``"classifier"`` (then ``classifier`` is used) or the path of a local ``.keras``
            model or ``.weights.h5`` backbone file.
        image_size: input side of the random CNN and of a backbone built for a ``.weights.h5`` file.
        seed: the random CNN's seed.
        arch: the architecture a ``.weights.h5`` backbone file was saved from.
        classifier: with ``spec="classifier"``, the real-trained classifier (a ``keras.Model``).

    Raises:
        UserError: an unknown spec, a missing file, or ``"classifier"`` without a classifier.
    """
    if spec == "random":
        return random_cnn(image_size, seed=seed)
    if spec == "classifier":
        if classifier is None:
            raise UserError("--features=classifier needs a real-trained classifier; pass one or train it first")
        return classifier_embedding(classifier)
    path = Path(spec)
    if not path.is_file():
        raise UserError(
            f"--features={spec}: not 'classifier' or 'random' and no such file; expected one of "
            f"{', '.join(FEATURE_KINDS)} or a local .keras / .weights.h5 file"
        )
    if path.suffix == ".keras":
        model = load_model(path)
        return classifier_embedding(model, f"penultimate features of {path}")
    if path.name.endswith(".weights.h5"):
        from keras_morsa.models.backbones import build_backbone

        backbone = build_backbone(arch, image_size)
        try:
            backbone.load_weights(path)
        except ValueError as error:
            raise UserError(f"--features={spec}: not a {arch} backbone at {image_size} px ({error})") from None
        images = keras.Input((int(image_size), int(image_size), 3), name="images")
        features = keras.layers.GlobalAveragePooling2D()(backbone(images))
        return Embedding(keras.Model(images, features), f"{arch} backbone {path}, globally averaged")
    raise UserError(f"--features={spec}: unsupported file type; accepted: *.keras, *.weights.h5")
