"""Leak-proof train/val/test splits, computed once and stored as ``split_manifest.csv``.

The manifest is the contract every later stage reads: one row per usable image with ``path`` (POSIX,
relative to the image root, i.e. the folder holding the class folders), ``class_name``, ``sha256`` (of the
file's bytes) and ``split`` (``train``, ``val`` or ``test``). A class's GAN trains on that class's train
images only; classifiers evaluate on test images only.

The split is stratified (each class is split on its own with the requested fractions) and seeded. Files with
identical bytes (same SHA-256) form one group that always lands on one side of the split, so a duplicated
photo cannot be in train and test at once. :func:`check_no_leak` re-checks this before training, also
against synthetic folders and the hashes of the real images their generators were trained on
(``sources.txt``).

Example:
  >>> manifest = load_or_create_split("photos", workdir="runs/exp1", seed=0)  # doctest: +SKIP
  >>> check_no_leak(manifest, synthetic_dirs=["runs/exp1/synthetic"])  # doctest: +SKIP
  >>> train_files, train_labels = manifest.files("train"), manifest.labels("train")  # doctest: +SKIP
"""

import collections
import errno
import math
import warnings
from pathlib import Path, PurePosixPath

import numpy as np

from keras_morsa import io
from keras_morsa.data import folder
from keras_morsa.errors import DataError, UserError

MANIFEST_NAME = "split_manifest.csv"
FIELDS = ("path", "class_name", "sha256", "split")
SPLITS = ("train", "val", "test")

# How many mismatching or leaking files an error message names.
_NAMED = 3


def round_half_up(x):
    """Rounds to the nearest integer, halves up (Python's ``round`` rounds halves to even: round(2.5) == 2).

    Used for split sizes and synthetic counts, so that ``round(0.3 * 5)`` is 2 and ``round(0.25 * 10)`` is 3;
    the product is first rounded to 9 decimals so float noise (``1.15 * 20 = 22.999...``) does not matter.
    """
    return int(math.floor(round(x, 9) + 0.5))


class SplitManifest:
    """Rows ``(path, class_name, sha256, split)`` of one dataset, with paths relative to ``image_root``.

    Args:
      image_root: the folder holding the class folders; ``files()`` returns paths under it.
      rows: dicts with the keys of :data:`FIELDS`.

    Attributes:
      class_names: the sorted class names; ``labels()`` index into it.
    """

    def __init__(self, image_root, rows):
        self.image_root = Path(image_root)
        self.rows = [{key: str(row[key]) for key in FIELDS} for row in rows]
        outside = [
            row["path"]
            for row in self.rows
            if PurePosixPath(row["path"]).is_absolute()
            or ".." in PurePosixPath(row["path"]).parts
            or "\\" in row["path"]
            or not row["path"]
        ]
        if outside:
            # A planted row ("../../secret.png") must not make a stage read or explain a file outside the data.
            raise DataError(
                f"split manifest row {outside[0]!r} is not a path inside {self.image_root} ({len(outside)} such "
                "row(s)); expected class/file paths relative to the data folder: delete the manifest to split again"
            )
        bad = [row for row in self.rows if row["split"] not in SPLITS]
        if bad:
            raise DataError(
                f"split manifest row {bad[0]['path']} has split {bad[0]['split']!r}; expected one of {SPLITS}"
            )
        self.rows.sort(key=lambda row: (row["class_name"], row["path"]))
        self.class_names = sorted({row["class_name"] for row in self.rows})

    def __len__(self):
        return len(self.rows)

    def _select(self, split, class_name=None):
        if split not in SPLITS:
            raise UserError(f"split={split!r}; expected one of {SPLITS}")
        if class_name is not None and class_name not in self.class_names:
            raise UserError(f"class_name={class_name!r} is not in this dataset; expected one of {self.class_names}")
        return [
            row
            for row in self.rows
            if row["split"] == split and (class_name is None or row["class_name"] == class_name)
        ]

    def files(self, split, class_name=None):
        """Absolute paths of a split (optionally one class), in manifest order (class, then path)."""
        return [self.image_root / PurePosixPath(row["path"]) for row in self._select(split, class_name)]

    def labels(self, split):
        """Integer labels (indices into ``class_names``) aligned with ``files(split)``."""
        index = {name: i for i, name in enumerate(self.class_names)}
        return [index[row["class_name"]] for row in self._select(split)]

    def hashes(self, split):
        """``{sha256: relative path}`` of a split (the first path of duplicated files)."""
        found = {}
        for row in self._select(split):
            found.setdefault(row["sha256"], row["path"])
        return found

    def counts(self):
        """``{class_name: {split: count}}``, for reports."""
        counts = {name: dict.fromkeys(SPLITS, 0) for name in self.class_names}
        for row in self.rows:
            counts[row["class_name"]][row["split"]] += 1
        return counts

    def save(self, path):
        """Writes the manifest CSV atomically."""
        io.write_csv(path, self.rows, FIELDS)

    @classmethod
    def load(cls, path, image_root=None):
        """Reads a manifest CSV.

        Args:
          path: the ``split_manifest.csv``.
          image_root: the folder its paths are relative to; default: the data folder the CSV sits in
            (resolved through ``images/`` for the built-in layout, see ``folder.find_image_root``).

        Raises:
          DataError: the file is missing or lacks the manifest columns.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"split manifest {path} does not exist; expected a CSV written by make_split")
        rows = io.read_csv(path)
        if not rows or any(key not in rows[0] for key in FIELDS):
            raise DataError(f"split manifest {path} is empty or lacks columns; expected header {','.join(FIELDS)}")
        root = folder.find_image_root(path.parent) if image_root is None else Path(image_root)
        return cls(root, rows)


def _check_fractions(test_fraction, val_fraction):
    if not (0.0 <= test_fraction < 1.0 and 0.0 <= val_fraction < 1.0 and test_fraction + val_fraction < 1.0):
        raise UserError(
            f"test_fraction={test_fraction!r}, val_fraction={val_fraction!r}; expected each in [0, 1) with a "
            "sum below 1"
        )


def make_split(scan, test_fraction=0.3, val_fraction=0.0, seed=0):
    """Splits a scanned folder per class, keeping files with identical bytes together.

    Per class, ``round(test_fraction * n)`` images go to test and ``round(val_fraction * n)`` to val (halves
    round up), the rest to train; at least one image of each class stays in train. Groups of duplicates are
    assigned whole, so with duplicates a split can exceed its count by up to a group's size minus one. The
    groups of a class are shuffled with ``numpy.random.default_rng(seed)``, class by class in sorted order.

    Args:
      scan: a ``folder.FolderScan``.
      test_fraction: share of each class held out for testing (the study uses 0.3).
      val_fraction: share of each class held out for validation (0 means no val split).
      seed: the shuffle seed; same folder and seed, same split.

    Returns:
      A :class:`SplitManifest` (not yet saved).
    """
    _check_fractions(test_fraction, val_fraction)
    root = Path(scan.root)
    rows = [
        {"path": path.relative_to(root).as_posix(), "class_name": class_name, "sha256": io.sha256_file(path)}
        for path, class_name in scan.files
    ]
    by_class, conflicts = _groups_by_class(rows)
    if conflicts:
        warnings.warn(
            f"{len(conflicts)} group(s) of identical files sit in different classes (each group is kept on one "
            f"side of the split, but the labels disagree): {'; '.join(conflicts[:_NAMED])}",
            folder.DataWarning,
            stacklevel=2,
        )
    _assign(by_class, test_fraction, val_fraction, np.random.default_rng(seed))
    return SplitManifest(root, rows)


def _groups_by_class(rows):
    """``{class: [groups of rows with identical bytes]}``, a group filed under its first row's class (rows
    in path order), and the groups whose rows disagree on the class."""
    groups = collections.defaultdict(list)  # sha256 -> rows with those bytes
    for row in rows:
        groups[row["sha256"]].append(row)
    by_class = collections.defaultdict(list)
    conflicts = []
    for members in sorted(groups.values(), key=lambda members: members[0]["path"]):
        by_class[members[0]["class_name"]].append(members)
        if len({row["class_name"] for row in members}) > 1:
            conflicts.append(" = ".join(row["path"] for row in members))
    return by_class, conflicts


def _assign(by_class, test_fraction, val_fraction, rng):
    """Sets each row's ``split``: per class (sorted), whole groups in ``rng``'s order to test, then val, then
    train, with ``round(fraction * n)`` images each and at least one image left in train."""
    for class_name in sorted(by_class):
        class_groups = by_class[class_name]
        n = sum(len(members) for members in class_groups)
        n_test = min(round_half_up(test_fraction * n), n - 1)
        n_val = min(round_half_up(val_fraction * n), n - 1 - n_test)
        taken = {"test": 0, "val": 0}
        for index in rng.permutation(len(class_groups)):
            members = class_groups[index]
            if taken["test"] < n_test:
                split = "test"
            elif taken["val"] < n_val:
                split = "val"
            else:
                split = "train"
            if split in taken:
                taken[split] += len(members)
            for row in members:
                row["split"] = split


def hold_out_validation(manifest, share, seed):
    """A manifest whose ``val`` split is a seeded, stratified share of ``manifest``'s train split.

    Per class, ``round(share * n_train)`` train images (halves up, at least one left in train) become val,
    whole groups of identical bytes at a time, so no validation image has a byte-identical twin in train; the
    test rows stay as they are and the manifest's own val rows, if any, are left out (the study never trains
    on them). The groups of a class are shuffled with ``numpy.random.default_rng(seed)``, class by class.

    Args:
      manifest: a :class:`SplitManifest`.
      share: the fraction of each class's train images to hold out, in (0, 1).
      seed: the hold-out seed; same manifest and seed, same hold-out.

    Returns:
      A new :class:`SplitManifest` with train, val and test rows.

    Raises:
      UserError: ``share`` outside (0, 1).
      DataError: a class whose share rounds to no validation image (too few train images for the share).
    """
    if not 0.0 < share < 1.0:
        raise UserError(f"validation share={share!r}; expected a fraction of the train split in (0, 1)")
    train = [dict(row) for row in manifest.rows if row["split"] == "train"]
    by_class, _ = _groups_by_class(train)
    _assign(by_class, 0.0, share, np.random.default_rng(seed))
    empty = sorted(
        name
        for name, groups in by_class.items()
        if not any(row["split"] == "val" for members in groups for row in members)
    )
    if empty:
        raise DataError(
            f"class(es) {', '.join(empty)} get no validation image with validation share {share:g} of "
            f"their train images in {manifest.image_root}; raise the share or add images"
        )
    return SplitManifest(manifest.image_root, train + [row for row in manifest.rows if row["split"] == "test"])


def _verify(manifest, manifest_path):
    """Raises DataError when files listed in the manifest are gone or changed; warns about unlisted files."""
    image_root, _, candidates, others = folder.list_image_files(manifest.image_root)
    on_disk = {path.relative_to(image_root).as_posix(): path for path, _ in candidates}
    missing, changed = [], []
    for row in manifest.rows:
        path = on_disk.pop(row["path"], None)
        if path is None:
            missing.append(row["path"])
        elif io.sha256_file(path) != row["sha256"]:
            changed.append(row["path"])
    if missing or changed:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:_NAMED])})")
        if changed:
            parts.append(f"{len(changed)} changed ({', '.join(changed[:_NAMED])})")
        raise DataError(
            f"split manifest {manifest_path} no longer matches {image_root}: {'; '.join(parts)}; restore the "
            "files or delete the manifest to split again"
        )
    unlisted = sorted(on_disk) + sorted(path.relative_to(image_root).as_posix() for path in others)
    if unlisted:
        warnings.warn(
            f"{len(unlisted)} file(s) in {image_root} are not in {manifest_path} (unreadable when it was made, "
            f"or added since) and are not used: {', '.join(unlisted[:_NAMED])}; delete the manifest to split "
            "again",
            folder.DataWarning,
            stacklevel=3,
        )


def load_or_create_split(
    data_dir,
    workdir=None,
    test_fraction=0.3,
    val_fraction=0.0,
    seed=0,
    min_images_per_class=1,
    progress=False,
    scan=None,
    read_only_fallback=None,
):
    """Reads ``split_manifest.csv`` if it exists, else scans, splits and writes it.

    The manifest lives in ``workdir`` when given, else in ``data_dir``. An existing manifest wins over the
    arguments (delete it to split again); it is checked against the folder by listing and hashing (no
    decode: the bytes it lists were decoded when it was made).

    Args:
      data_dir: the data folder (``<root>/<class>/...`` or ``<root>/images/<class>/...``).
      workdir: where to keep the manifest instead of next to the data (e.g. when the data is read-only).
      read_only_fallback: without ``workdir``, a folder (a stage's workdir) that holds the manifest when
        ``data_dir`` has none and cannot be written (read-only, no permission): a manifest already there is
        used, else the new one is written there and a ``DataWarning`` says where. The split is seeded, so
        every stage splitting the same read-only folder with the same settings gets the same split.
      test_fraction, val_fraction, seed: see :func:`make_split`.
      min_images_per_class, progress: see ``folder.scan_image_folder``.
      scan: a ``FolderScan`` of ``data_dir`` made already (e.g. for a run report), to avoid decoding twice.

    Returns:
      A :class:`SplitManifest` whose paths resolve under the data folder.

    Raises:
      DataError: the data folder is unusable, or the stored manifest lists files that are now missing or
        whose bytes changed (the message names the first ones).
    """
    _check_fractions(test_fraction, val_fraction)
    image_root = folder.find_image_root(data_dir)
    manifest_path = Path(workdir if workdir is not None else data_dir) / MANIFEST_NAME
    fallback = Path(read_only_fallback) / MANIFEST_NAME if workdir is None and read_only_fallback else None
    if not manifest_path.exists() and fallback is not None and fallback.exists():
        manifest_path = fallback
    if manifest_path.exists():
        manifest = SplitManifest.load(manifest_path, image_root=image_root)
        _verify(manifest, manifest_path)
        return manifest
    if scan is None:
        scan = folder.scan_image_folder(data_dir, min_images_per_class=min_images_per_class, progress=progress)
    elif Path(scan.root) != image_root:
        raise UserError(f"scan of {scan.root} does not belong to data_dir={data_dir}; expected a scan of {image_root}")
    manifest = make_split(scan, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed)
    try:
        manifest.save(manifest_path)
    except OSError as error:
        if fallback is None or error.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        manifest.save(fallback)
        warnings.warn(
            f"{data_dir} cannot be written ({error.strerror}): its split manifest went to {fallback}",
            folder.DataWarning,
            stacklevel=2,
        )
    return manifest


def read_sources(path):
    """The SHA-256 lines of a ``sources.txt`` (blank lines and ``#`` comments ignored), lower-cased."""
    with open(path, encoding="utf-8") as f:
        return {line.strip().lower() for line in f if line.strip() and not line.lstrip().startswith("#")}


def check_no_leak(manifest, synthetic_dirs=()):
    """Refuses a split whose test images reach training.

    A test image leaks when its SHA-256 equals that of a train or val image, of any image file under a
    synthetic folder, or a line of any ``sources.txt`` under it (the real images its generators were trained
    on; a GAN workdir keeps one per class, ``<workdir>/<class>/sources.txt``).

    Args:
      manifest: a :class:`SplitManifest`.
      synthetic_dirs: synthetic image folders (or GAN workdirs) whose images or sources feed training.

    Raises:
      DataError: naming the first leaking test image and where its bytes were found.
    """
    test = manifest.hashes("test")
    seen = {}  # sha256 -> where it was found, for the message
    for split in ("train", "val"):
        for sha, path in manifest.hashes(split).items():
            seen.setdefault(sha, f"the {split} split as {path}")
    for directory in map(Path, synthetic_dirs):
        if not directory.is_dir():
            raise DataError(f"synthetic folder {directory} does not exist; expected a folder written by generate")
        sources = sorted(directory.rglob("sources.txt"))
        if not sources:
            warnings.warn(
                f"synthetic folder {directory} has no sources.txt: only its files are checked, not the real "
                "images its generators were trained on",
                folder.DataWarning,
                stacklevel=2,
            )
        for source in sources:
            for sha in read_sources(source):
                seen.setdefault(sha, f"{source}")
        for path in sorted(directory.rglob("*")):
            if path.suffix.lower() in folder.IMAGE_EXTENSIONS and path.is_file():
                seen.setdefault(io.sha256_file(path), f"synthetic file {path}")
    leaks = [(path, seen[sha]) for sha, path in test.items() if sha in seen]
    if leaks:
        first, where = leaks[0]
        raise DataError(
            f"test image {manifest.image_root / first} leaks into training: its bytes are in {where} "
            f"({len(leaks)} leaking test image(s) in all); re-split or regenerate without test images"
        )
