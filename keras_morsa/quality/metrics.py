"""Quality metrics of generated images on feature sets (float [N, d] arrays from :mod:`.features`).

- :func:`kid`: Kernel Inception Distance (Bińkowski et al. 2018), the unbiased MMD^2 with the cubic
  polynomial kernel ``k(x, y) = (x.y / d + 1) ** 3``, averaged over random subsets. Unbiased, so it is
  comparable across sample sizes and ~0 (it can be slightly negative) when both sets come from one
  distribution: the metric to rank checkpoints by.
- :func:`fid`: Fréchet distance of Gaussians fitted to both sets, reported beside KID only (see its caveat).
- :func:`prdc`: precision, recall, density and coverage (Naeem et al. 2020) with k nearest neighbours,
  computed by the authors' ``prdc`` package. Precision/density: are generated images inside the real
  manifold (fidelity); recall/coverage: is every part of the real class reached (diversity).
- :func:`memorisation`: each generated image's distance to its nearest training image, against the real
  test images' distances to their nearest training image; a generated image closer than the test images'
  ``percentile`` is a likely copy.
- :func:`cas`: Classification Accuracy Score per class: a real-trained classifier's accuracy on the generated
  images of each class.
"""

import contextlib
import dataclasses
import io as text_io
import warnings

import numpy as np
import prdc as prdc_lib
from scipy import linalg
from sklearn.neighbors import NearestNeighbors

from keras_morsa.errors import UserError
from keras_morsa.evaluation import stats


def _as_features(x, name):
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise UserError(f"{name} has shape {x.shape}; expected features [N, d] with N >= 2")
    return x


def _polynomial_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y):
    """The unbiased estimate of MMD^2 between feature sets ``x`` and ``y`` under the cubic polynomial kernel."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean()
    )


def kid(real, fake, num_subsets=100, subset_size=1000, seed=0):
    """Kernel Inception Distance: mean and standard deviation of :func:`mmd2_unbiased` over random subsets.

    Each of ``num_subsets`` subsets draws ``min(subset_size, len(real), len(fake))`` rows of each set without
    replacement (seeded), as torch-fidelity and the KID paper do.

    Returns:
        ``{"mean": float, "std": float, "subset_size": int, "num_subsets": int}``.
    """
    real, fake = _as_features(real, "real features"), _as_features(fake, "fake features")
    size = min(int(subset_size), len(real), len(fake))
    if size < 2 or int(num_subsets) < 1:
        raise UserError(f"subset_size={subset_size}, num_subsets={num_subsets}; expected >= 2 and >= 1")
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(
            real[rng.choice(len(real), size, replace=False)], fake[rng.choice(len(fake), size, replace=False)]
        )
        for _ in range(int(num_subsets))
    ]
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "subset_size": size,
        "num_subsets": int(num_subsets),
    }


def fid(real, fake):
    """Fréchet distance between Gaussians fitted to ``real`` and ``fake`` features.

    Caveat: FID is biased upward at small sample sizes, and the bias depends on the generator (Bińkowski et
    al. 2018; Chong and Forsyth 2020, "Effectively Unbiased FID"): with a few hundred images per class and a
    feature size of a few hundred, the covariance estimates are poor (singular when N <= d) and the value is
    dominated by that bias. Compare FIDs only at equal N and prefer :func:`kid`, which is unbiased.
    """
    real, fake = _as_features(real, "real features"), _as_features(fake, "fake features")
    mu1, mu2 = real.mean(axis=0), fake.mean(axis=0)
    c1, c2 = np.atleast_2d(np.cov(real, rowvar=False)), np.atleast_2d(np.cov(fake, rowvar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular when N <= d: handled below
        root = linalg.sqrtm(c1 @ c2)
    if not np.isfinite(root).all():
        # Singular product (N <= d): regularise as pytorch-fid does.
        offset = np.eye(len(c1)) * 1e-6
        root = linalg.sqrtm((c1 + offset) @ (c2 + offset))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2.0 * np.trace(np.real(root)))


def prdc(real, fake, k=5):
    """Precision, recall, density and coverage of ``fake`` against ``real`` with ``k`` nearest neighbours.

    The authors' implementation (``prdc`` 0.2, Naeem et al. 2020) on Euclidean distances; its progress line
    on stdout is swallowed.

    Returns:
        ``{"precision", "recall", "density", "coverage"}`` floats (density can exceed 1).
    """
    real, fake = _as_features(real, "real features"), _as_features(fake, "fake features")
    if int(k) < 1 or min(len(real), len(fake)) < int(k) + 2:
        raise UserError(
            f"k={k} with {len(real)} real and {len(fake)} generated images; k-NN radii need k >= 1 "
            "and at least k + 2 images in each set"
        )
    with contextlib.redirect_stdout(text_io.StringIO()):
        values = prdc_lib.compute_prdc(real, fake, nearest_k=int(k))
    return {name: float(value) for name, value in values.items()}


@dataclasses.dataclass
class Memorisation:
    """Nearest-training-image distances of generated images and the real test images' reference.

    Attributes:
        distances: float [N_fake], each generated image's distance to its nearest training image.
        nearest: int [N_fake], the index (into the training features) of that image.
        test_distances: float [N_test], each real test image's distance to its nearest training image.
        threshold: the ``percentile`` of ``test_distances``.
        percentile: the percentile used.
        flagged: bool [N_fake], ``distances < threshold`` (closer than all but ``percentile`` % of real test
            images are).
    """

    distances: np.ndarray
    nearest: np.ndarray
    test_distances: np.ndarray
    threshold: float
    percentile: float
    flagged: np.ndarray

    @property
    def share(self):
        """Share of generated images flagged as likely copies (``percentile`` / 100 expected for no copying)."""
        return float(np.mean(self.flagged))


def nearest_train(train):
    """A fitted 1-nearest-neighbour index over training features (scikit-learn, exact Euclidean)."""
    return NearestNeighbors(n_neighbors=1).fit(_as_features(train, "train features"))


def train_spacing(train, index=None):
    """Each train image's distance to its nearest *other* train image (leave one out), float [M].

    The reference of ``bin/generate --dedupe``: it needs no test image, so a threshold taken from it chooses
    nothing by looking at the test split.

    Args:
        train: features of a class's train images [M, d], M >= 2.
        index: optional :func:`nearest_train` of ``train``.
    """
    train = _as_features(train, "train features")
    index = index or nearest_train(train)
    # Two neighbours: the first is the image itself (distance 0) unless an exact duplicate came first.
    return index.kneighbors(train, n_neighbors=2)[0][:, 1]


def memorisation(train, test, fake, percentile=5.0, index=None):
    """Flags generated images nearer to a training image than real test images usually are.

    Args:
        train, test, fake: features of the class's train images, its real test images and the generated ones.
        percentile: a generated image is flagged when its nearest-train distance is below this percentile of
            the test images' nearest-train distances.
        index: optional :func:`nearest_train` of ``train`` (reused across calls).

    Returns:
        A :class:`Memorisation`.
    """
    if not 0.0 < float(percentile) < 100.0:
        raise UserError(f"percentile={percentile}; expected a value in (0, 100)")
    index = index or nearest_train(train)
    test_distances = index.kneighbors(_as_features(test, "test features"))[0][:, 0]
    fake = np.asarray(fake, np.float64)
    distances, nearest = index.kneighbors(fake) if len(fake) else (np.zeros((0, 1)), np.zeros((0, 1), int))
    threshold = float(np.percentile(test_distances, float(percentile)))
    return Memorisation(
        distances[:, 0], nearest[:, 0], test_distances, threshold, float(percentile), distances[:, 0] < threshold
    )


def cas(probabilities, labels, class_names):
    """Classification Accuracy Score per class: accuracy of a real-trained classifier on generated images.

    Args:
        probabilities: float [N, C], the classifier's outputs on the generated images.
        labels: int [N], the class each image was generated for.
        class_names: the C class names.

    Returns:
        ``{"accuracy": float, "per_class": {name: float (NaN for a class without images)},
        "confidence": {name: mean probability of the intended class}}``.
    """
    probabilities, labels = np.asarray(probabilities), np.asarray(labels, np.int64)
    matrix = stats.confusion_matrix(labels, np.argmax(probabilities, axis=-1), len(class_names))
    metrics = stats.classification_metrics(matrix)
    intended = probabilities[np.arange(len(labels)), labels] if len(labels) else np.zeros(0)
    return {
        "accuracy": metrics["accuracy"],
        "per_class": dict(zip(class_names, metrics["per_class_accuracy"])),
        "confidence": {
            name: float(np.mean(intended[labels == i])) if np.any(labels == i) else float("nan")
            for i, name in enumerate(class_names)
        },
    }
