"""The quality report of a synthetic folder or a GAN workdir (behind ``bin/gan_quality``).

:func:`gan_quality` embeds (:mod:`.features`) every class's generated images, its real train images and its
real test images, and writes to ``out_dir``::

    quality.json        every number below, per class, with the settings
    quality.md          the per-class table and what it says
    quality.html        the same, self-contained (PNGs embedded as base64)
    nearest/<class>.png the closest generated/train pairs of each class, so a person can judge copies
    classifier.keras    the classifier trained here (only when one was needed and none was given)
    synthetic/          the images generated from --gan_workdir (only then)

and a copy of ``quality.json`` into the synthetic folder, for the ratio study (:mod:`.files`).

Per class, the generated images are compared with the class's **train** images (what the generator learned
from): KID and FID, precision, recall, density and coverage, and memorisation (share of generated images
nearer to a training image than the ``memorisation_percentile`` of real test images are). The real test
images scored the same way give the reference a perfect generator would reach at that sample size ("real
test" columns). With a real-trained classifier, CAS per class is its accuracy on the generated images of the
class, beside its accuracy on the real test images.
"""

import warnings
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from keras_morsa import html, io
from keras_morsa.data import folder, morsa_parts, pipeline, splits
from keras_morsa.errors import DataError, UserError
from keras_morsa.evaluation.report import render_markdown
from keras_morsa.models.classifier import class_names_of
from keras_morsa.models.saving import load_model
from keras_morsa.quality import features as features_lib
from keras_morsa.quality import files as quality_files
from keras_morsa.quality import metrics
from keras_morsa.quality.classifier import train_classifier
from keras_morsa.quality.plots import nearest_pairs_grid

CLASSIFIER_FILE = "classifier.keras"


def resolve_split(config, data_dir=None):
    """The split manifest of ``data_dir`` (created beside it if missing), or of the built-in dataset at
    ``config.data`` (built or reused from its cache)."""
    root = morsa_parts.dataset_root(config.data, data_dir)
    return splits.load_or_create_split(root, test_fraction=config.data.test_fraction, seed=config.data.split_seed)


def _classifier(config, manifest, classifier, features, out_dir, progress):
    """(model or None, description): the given file, the one trained here before, or a new one if needed."""
    if classifier:
        path = Path(classifier)
        if not path.is_file():
            raise UserError(
                f"--classifier={classifier}: no such file; expected a .keras classifier trained on the "
                "real train split (e.g. a study's models/real.keras)"
            )
        model, source = load_model(path), str(path)
    elif features == "classifier":
        path = Path(out_dir) / CLASSIFIER_FILE
        if path.is_file():
            model, source = load_model(path), f"{path} (trained here by an earlier run)"
        else:
            model = train_classifier(config.classifier, manifest, config.image_size, config.seed, path, progress)
            source = (
                f"{path}, trained here: {config.classifier.arch}, {config.classifier.steps} steps of "
                f"{config.classifier.batch_size} on the real train split"
            )
    else:
        return None, None
    if class_names_of(model) != manifest.class_names:
        raise DataError(
            f"classifier {classifier or path} knows classes {class_names_of(model)}; the data has "
            f"{manifest.class_names}"
        )
    return model, source


def _by_class(values, labels, count):
    labels = np.asarray(labels)
    return [values[labels == i] for i in range(count)]


def _pairs(generated_files, train_files, result, count, size):
    order = np.argsort(result.distances)[:count]

    def load(path):
        return np.asarray(Image.fromarray(folder.load_image(path)).resize((size, size), Image.BILINEAR))

    return [(load(generated_files[i]), load(train_files[result.nearest[i]]), float(result.distances[i])) for i in order]


def _reading(row, percentile):
    """What a class's row says, in plain words, against its real-test reference."""
    notes = []
    ref = row["real_test"]
    if row["coverage"] < 0.5 * ref["coverage"]:
        notes.append("misses part of the class (coverage under half the real test images')")
    if row["recall"] < 0.5 * ref["recall"]:
        notes.append(
            "narrower than the class: few of its images lie near a generated one (recall under half "
            "the real test images')"
        )
    if row["precision"] < 0.5 * ref["precision"]:
        notes.append("makes many images unlike the class (precision under half the real test images')")
    if row["memorised_share"] > 2 * percentile / 100:
        notes.append(
            f"may copy training images ({100 * row['memorised_share']:.0f} % lie nearer a train image "
            f"than {percentile:g} % of real test images do; judge the closest pairs)"
        )
    if row.get("cas") is not None and row["cas"] < 0.5 * row["classifier_real_accuracy"]:
        notes.append("the classifier rarely recognises its images (CAS under half its real test accuracy)")
    return "; ".join(notes) or "no clear weakness against the real test reference"


def _class_row(config, name, train, test, fake, gen_probs, test_probs, label):
    kid = metrics.kid(train, fake, config.kid_subsets, config.kid_subset_size, seed=config.seed)
    ref_kid = metrics.kid(train, test, config.kid_subsets, config.kid_subset_size, seed=config.seed)
    memorised = metrics.memorisation(train, test, fake, config.memorisation_percentile)
    row = {
        "generated": len(fake),
        "train": len(train),
        "test": len(test),
        "kid": kid["mean"],
        "kid_std": kid["std"],
        "fid": metrics.fid(train, fake),
        **metrics.prdc(train, fake, config.k),
        "memorised_share": memorised.share,
        "memorisation_threshold": memorised.threshold,
        "median_nearest_train_distance": float(np.median(memorised.distances)),
        "real_test": {
            "kid": ref_kid["mean"],
            "kid_std": ref_kid["std"],
            "fid": metrics.fid(train, test),
            **metrics.prdc(train, test, config.k),
            "median_nearest_train_distance": float(np.median(memorised.test_distances)),
        },
    }
    if gen_probs is not None:
        row["cas"] = float(np.mean(np.argmax(gen_probs, -1) == label))
        row["cas_confidence"] = float(np.mean(gen_probs[:, label]))
        row["classifier_real_accuracy"] = float(np.mean(np.argmax(test_probs, -1) == label))
    row["reading"] = _reading(row, config.memorisation_percentile)
    return row, memorised


def gan_quality(
    config, out_dir, gan_workdir=None, synthetic_dir=None, data_dir=None, features=None, classifier=None, progress=True
):
    """Measures every class of a synthetic folder (or of a GAN workdir) and writes the quality report.

    Args:
        config: ``configs/gan_quality.py``.
        out_dir: where the report goes (module docstring).
        gan_workdir: a ``bin/train_gan`` workdir: ``config.num_images`` per finished class are generated into
            ``<out_dir>/synthetic`` first (the best checkpoint where one was kept). Exclusive with
            ``synthetic_dir``.
        synthetic_dir: a ``bin/generate`` folder (``<dir>/<class>/*.png``, ``sources.txt``).
        data_dir: the real image folder; default the built-in dataset at ``config.data``.
        features: ``"classifier"``, ``"random"`` or a local ``.keras`` / ``.weights.h5`` file; default
            ``config.features``.
        classifier: a ``.keras`` classifier trained on the real train split (features and CAS). Without it,
            ``features="classifier"`` trains one (``config.classifier``); other features then give no CAS
            unless the features file is itself a classifier of the data's classes.
        progress: show progress bars.

    Returns:
        The ``quality.json`` content.

    Raises:
        UserError: neither or both of ``gan_workdir``/``synthetic_dir``, bad features, a missing file.
        DataError: a test image leaks into the synthetic folder's sources, or classes disagree.
    """
    if (gan_workdir is None) == (synthetic_dir is None):
        raise UserError(
            "pass exactly one of --gan_workdir (a bin/train_gan workdir) or --synthetic_dir (a bin/generate folder)"
        )
    out_dir = Path(out_dir)
    features = features or config.features
    manifest = resolve_split(config, data_dir)
    if gan_workdir is not None:
        from keras_morsa.training.generate import generate  # GAN code only when generating here

        synthetic_dir = out_dir / "synthetic"
        generate(gan_workdir, synthetic_dir, config.num_images, seed=config.seed, progress=progress)
    splits.check_no_leak(manifest, [synthetic_dir])
    gen_files, gen_labels = pipeline.list_synthetic(synthetic_dir, manifest.class_names)
    model, classifier_source = _classifier(config, manifest, classifier, features, out_dir, progress)
    embedding = features_lib.load_embedding(
        features, config.image_size, seed=config.seed, arch=config.features_arch, classifier=model
    )
    scorer = (
        embedding
        if embedding.has_probabilities
        else (features_lib.classifier_embedding(model) if model is not None else None)
    )
    if scorer is not None and scorer.class_names != manifest.class_names:
        raise DataError(f"--features={features} classifies {scorer.class_names}; the data has {manifest.class_names}")

    sets = {
        "train": (manifest.files("train"), manifest.labels("train")),
        "test": (manifest.files("test"), manifest.labels("test")),
        "generated": (gen_files, gen_labels),
    }
    passes = 1 if scorer in (None, embedding) else 2
    bar = keras.utils.Progbar(
        sum(len(f) for f, _ in sets.values()) + (passes - 1) * (len(gen_files) + len(sets["test"][0])),
        unit_name="image",
        verbose=int(progress),
    )
    feats, probs = {}, {}
    for key, (files, _) in sets.items():
        out = embedding.embed_files(files, config.batch_size, bar)
        feats[key], probs[key] = out if embedding.has_probabilities else (out, None)
        if passes == 2 and key != "train":
            probs[key] = scorer.embed_files(files, config.batch_size, bar)[1]

    names, count = manifest.class_names, len(manifest.class_names)
    split = {key: _by_class(feats[key], sets[key][1], count) for key in sets}
    split_probs = {
        key: _by_class(probs[key], sets[key][1], count) if probs[key] is not None else [None] * count
        for key in ("test", "generated")
    }
    files_by = {key: _by_class(np.asarray(sets[key][0], dtype=object), sets[key][1], count) for key in sets}
    classes = {}
    for label, name in enumerate(names):
        if not len(split["generated"][label]):
            continue
        row, memorised = _class_row(
            config,
            name,
            split["train"][label],
            split["test"][label],
            split["generated"][label],
            split_probs["generated"][label],
            split_probs["test"][label],
            label,
        )
        classes[name] = row
        pairs = _pairs(
            files_by["generated"][label], files_by["train"][label], memorised, config.grid_pairs, config.image_size
        )
        nearest_pairs_grid(
            out_dir / "nearest" / f"{name}.png",
            pairs,
            f"{name}: closest generated images (top) and their nearest train images; red: nearer "
            f"than {config.memorisation_percentile:g} % of real test images",
            memorised.threshold,
        )
    if not classes:
        raise DataError(f"synthetic folder {synthetic_dir} has no images of the data's classes {names}")
    report = {
        "settings": {
            "features": embedding.description,
            "k": int(config.k),
            "kid_subsets": int(config.kid_subsets),
            "kid_subset_size": int(config.kid_subset_size),
            "kernel": "(x.y / d + 1) ** 3",
            "memorisation_percentile": float(config.memorisation_percentile),
            "reference": "the train split of each class; real test images scored the same way in real_test",
            "synthetic_dir": str(synthetic_dir),
            "data": str(manifest.image_root),
            "synthetic_manifest_sha256": quality_files.manifest_digest(synthetic_dir),
            "gan_workdir": None if gan_workdir is None else str(gan_workdir),
        },
        "classifier": classifier_source,
        "classes": classes,
        "mean": {
            key: float(np.mean([row[key] for row in classes.values()]))
            for key in ("kid", "fid", "precision", "recall", "density", "coverage", "memorised_share", "cas")
            if all(key in row for row in classes.values())
        },
    }
    io.write_json(out_dir / quality_files.QUALITY_FILE, report)
    try:  # the copy the ratio study reads (quality beside per-class accuracy)
        io.write_json(Path(synthetic_dir) / quality_files.QUALITY_FILE, report)
    except OSError as error:
        warnings.warn(
            f"could not write {Path(synthetic_dir) / quality_files.QUALITY_FILE} ({error}); the ratio "
            "study will not show this quality beside its accuracy",
            folder.DataWarning,
            stacklevel=2,
        )
    blocks = _blocks(report)
    with io.atomic_write(out_dir / "quality.md", "w") as f:
        f.write(render_markdown(blocks))
    html.write_page(out_dir / "quality.html", "Synthetic image quality", html.blocks(blocks, embed_from=out_dir))
    print(f"quality of {len(classes)} class(es): {out_dir / 'quality.md'}, {out_dir / 'quality.html'}")
    return report


def _blocks(report):
    settings = report["settings"]
    with_cas = "cas" in report["mean"]
    header = [
        "class",
        "n gen/train/test",
        "KID x1e3 (real test)",
        "FID (real test)",
        "precision (real test)",
        "recall (real test)",
        "density",
        "coverage (real test)",
        "memorised %",
    ]
    header += ["CAS % (real test acc.)"] if with_cas else []
    table = [header]
    for name, row in report["classes"].items():
        ref = row["real_test"]
        cells = [
            name,
            f"{row['generated']}/{row['train']}/{row['test']}",
            f"{1e3 * row['kid']:.2f} ± {1e3 * row['kid_std']:.2f} ({1e3 * ref['kid']:.2f})",
            f"{row['fid']:.1f} ({ref['fid']:.1f})",
            f"{row['precision']:.2f} ({ref['precision']:.2f})",
            f"{row['recall']:.2f} ({ref['recall']:.2f})",
            f"{row['density']:.2f}",
            f"{row['coverage']:.2f} ({ref['coverage']:.2f})",
            f"{100 * row['memorised_share']:.1f}",
        ]
        if with_cas:
            cells.append(f"{100 * row['cas']:.1f} ({100 * row['classifier_real_accuracy']:.1f})")
        table.append(cells)
    mean = report["mean"]
    blocks = [
        ("h1", "Synthetic image quality"),
        (
            "p",
            f"Features: {settings['features']}. Each class's generated images against its train images; in "
            "brackets, the class's real test images scored the same way (what an ideal generator reaches at "
            f"this sample size). KID: unbiased MMD^2, kernel {settings['kernel']}, mean ± std over "
            f"{settings['kid_subsets']} subsets (lower is better, ~0 is ideal). FID is biased upward at these "
            "sample sizes: compare it only between runs with equal counts. Precision, recall, density, "
            f"coverage: Naeem et al. 2020 with k = {settings['k']}. Memorised: share of generated images nearer "
            f"to a train image than {settings['memorisation_percentile']:g} % of real test images are "
            f"(~{settings['memorisation_percentile']:g} % means no copying)."
            + (
                f" CAS: accuracy of the classifier {report['classifier']} on the generated images of the class, "
                "beside its accuracy on the real test images."
                if with_cas
                else " No classifier: no CAS."
            ),
        ),
        ("table", table),
        ("p", "Means over classes: " + ", ".join(f"{key} {value:.3g}" for key, value in mean.items()) + "."),
        ("h2", "What it says"),
    ]
    blocks += [("p", f"{name}: {row['reading']}.") for name, row in report["classes"].items()]
    blocks.append(("h2", "Closest generated/train pairs"))
    for name in report["classes"]:
        blocks += [("p", name), ("img", f"nearest/{name}.png")]
    return blocks
