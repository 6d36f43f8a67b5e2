"""Split manifests: stratification, determinism, duplicates, round-trip, mismatch detection, leak checks."""

import errno
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_morsa import io
from keras_morsa.data import folder, splits
from keras_morsa.errors import DataError, UserError


def write_solid_images(root, counts, start=0):
    """Writes 8x8 PNGs of one colour each, ``root/<class>/<class>_<id>.png``; ids encode the colour.

    Image ``id`` is filled with ``(id % 256, id // 256, 7)``, so every file has distinct bytes and a decoded
    (even resized) image tells which file it came from (see :func:`image_id`). Returns ``{path: id}``.
    """
    ids, next_id = {}, start
    for class_name, count in counts.items():
        (root / class_name).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            path = root / class_name / f"{class_name}_{next_id}.png"
            Image.new("RGB", (8, 8), (next_id % 256, next_id // 256, 7)).save(path)
            ids[path] = next_id
            next_id += 1
    return ids


def image_id(image):
    """The id of an image written by :func:`write_solid_images` (any size, uint8 or float 0..255)."""
    pixel = np.rint(np.asarray(image, np.float64)[0, 0])
    return int(pixel[0]) + 256 * int(pixel[1])


@pytest.fixture
def folder_3(tmp_path):
    write_solid_images(tmp_path, {"a": 10, "b": 20, "c": 7})
    return tmp_path


def test_stratified_counts(folder_3):
    manifest = splits.make_split(folder.scan_image_folder(folder_3), test_fraction=0.3, val_fraction=0.2, seed=0)
    # round(0.3 n) and round(0.2 n), halves up: a 10 -> 3/2, b 20 -> 6/4, c 7 -> 2 (2.1)/1 (1.4).
    assert manifest.counts() == {
        "a": {"train": 5, "val": 2, "test": 3},
        "b": {"train": 10, "val": 4, "test": 6},
        "c": {"train": 4, "val": 1, "test": 2},
    }
    default = splits.make_split(folder.scan_image_folder(folder_3))
    assert [default.counts()[c]["test"] for c in "abc"] == [3, 6, 2]
    assert all(default.counts()[c]["val"] == 0 for c in "abc")


def test_every_class_keeps_a_train_image(tmp_path):
    write_solid_images(tmp_path, {"one": 1, "two": 2})
    manifest = splits.make_split(folder.scan_image_folder(tmp_path), test_fraction=0.9)
    assert manifest.counts()["one"] == {"train": 1, "val": 0, "test": 0}
    assert manifest.counts()["two"] == {"train": 1, "val": 0, "test": 1}


def test_seeded_determinism(folder_3):
    scan = folder.scan_image_folder(folder_3)
    first, again = splits.make_split(scan, seed=3), splits.make_split(scan, seed=3)
    other = splits.make_split(scan, seed=4)
    assert first.rows == again.rows
    assert first.files("test") != other.files("test")


def test_duplicates_stay_on_one_side(tmp_path):
    write_solid_images(tmp_path, {"a": 12, "b": 12})
    source = tmp_path / "a" / "a_0.png"
    for name in ("copy1.png", "copy2.png", "sub/copy3.png"):
        (tmp_path / "a" / name).parent.mkdir(exist_ok=True)
        shutil.copy(source, tmp_path / "a" / name)
    shutil.copy(source, tmp_path / "b" / "cross.png")
    scan = folder.scan_image_folder(tmp_path)
    for seed in range(6):
        with pytest.warns(folder.DataWarning, match="different classes.*a/a_0.png"):
            manifest = splits.make_split(scan, seed=seed)
        sides = {row["split"] for row in manifest.rows if row["sha256"] == io.sha256_file(source)}
        assert len(sides) == 1, seed
        assert len([row for row in manifest.rows if row["sha256"] == io.sha256_file(source)]) == 5
        splits.check_no_leak(manifest)


def test_manifest_round_trip(folder_3, tmp_path_factory):
    manifest = splits.make_split(folder.scan_image_folder(folder_3), val_fraction=0.1, seed=1)
    path = tmp_path_factory.mktemp("work") / "m.csv"
    manifest.save(path)
    assert io.read_csv(path)[0].keys() == set(splits.FIELDS)
    loaded = splits.SplitManifest.load(path, image_root=folder_3)
    assert loaded.rows == manifest.rows and loaded.class_names == ["a", "b", "c"]
    for split in splits.SPLITS:
        assert loaded.files(split) == manifest.files(split) and loaded.labels(split) == manifest.labels(split)
    files, labels = loaded.files("train"), loaded.labels("train")
    assert all(path.is_absolute() and path.exists() for path in files)
    assert [loaded.class_names[label] for label in labels] == [path.parent.name for path in files]
    assert all(path.parent.name == "b" for path in loaded.files("test", "b"))
    with pytest.raises(UserError, match="'nope'"):
        loaded.files("test", "nope")
    with pytest.raises(UserError, match="'training'"):
        loaded.files("training")


def test_load_or_create_writes_once_and_reuses(folder_3, tmp_path_factory):
    manifest = splits.load_or_create_split(folder_3, seed=0)
    assert (folder_3 / splits.MANIFEST_NAME).is_file()
    # An existing manifest wins over new arguments.
    assert splits.load_or_create_split(folder_3, seed=99).rows == manifest.rows
    workdir = tmp_path_factory.mktemp("work")
    in_workdir = splits.load_or_create_split(folder_3, workdir=workdir, seed=5)
    assert (workdir / splits.MANIFEST_NAME).is_file()
    assert in_workdir.files("train")[0].parent.parent == folder_3
    assert in_workdir.rows != manifest.rows  # its own seed, its own file
    scan = folder.scan_image_folder(folder_3)
    from_scan = splits.load_or_create_split(folder_3, workdir=tmp_path_factory.mktemp("work"), seed=5, scan=scan)
    assert from_scan.rows == in_workdir.rows
    with pytest.raises(UserError, match="does not belong"):
        splits.load_or_create_split(workdir, workdir=tmp_path_factory.mktemp("work"), scan=scan)


def test_builtin_layout_paths_are_relative_to_images(tmp_path):
    write_solid_images(tmp_path / "images", {"jaw": 4, "nut": 4})
    (tmp_path / "masks" / "jaw").mkdir(parents=True)
    manifest = splits.load_or_create_split(tmp_path)
    assert (tmp_path / splits.MANIFEST_NAME).is_file()
    assert manifest.rows[0]["path"] == "jaw/jaw_0.png"
    assert splits.SplitManifest.load(tmp_path / splits.MANIFEST_NAME).files("train")[0].parent.parent == (
        tmp_path / "images"
    )


def test_mismatch_is_detected_and_named(folder_3):
    manifest = splits.load_or_create_split(folder_3)
    first, second = manifest.files("train")[:2]
    first.unlink()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(second)
    with pytest.raises(DataError) as info:
        splits.load_or_create_split(folder_3)
    message = str(info.value)
    assert "1 missing" in message and first.name in message
    assert "1 changed" in message and second.name in message
    assert str(folder_3 / splits.MANIFEST_NAME) in message and "\n" not in message


def test_unlisted_files_warn(folder_3):
    splits.load_or_create_split(folder_3)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(folder_3 / "a" / "late.png")
    with pytest.warns(folder.DataWarning, match="1 file.*not in .*late.png"):
        splits.load_or_create_split(folder_3)


@pytest.mark.parametrize("test_fraction, val_fraction", [(1.0, 0.0), (-0.1, 0.0), (0.6, 0.4)])
def test_bad_fractions(folder_3, test_fraction, val_fraction):
    with pytest.raises(UserError, match="test_fraction="):
        splits.load_or_create_split(folder_3, test_fraction=test_fraction, val_fraction=val_fraction)


@pytest.fixture
def split_3(folder_3):
    return splits.make_split(folder.scan_image_folder(folder_3), seed=0)


def test_clean_split_passes_leak_check(split_3, tmp_path_factory):
    synthetic = tmp_path_factory.mktemp("synthetic")
    write_solid_images(synthetic, {"a": 3}, start=1000)
    (synthetic / "sources.txt").write_text(
        "".join(row["sha256"] + "\n" for row in split_3.rows if row["split"] == "train")
    )
    splits.check_no_leak(split_3, synthetic_dirs=[synthetic])


def test_leak_train_test_overlap(split_3):
    rows = [dict(row) for row in split_3.rows]
    test_row = next(row for row in rows if row["split"] == "test")
    next(row for row in rows if row["split"] == "train")["sha256"] = test_row["sha256"]
    with pytest.raises(DataError, match=f"{test_row['path']}.*train split"):
        splits.check_no_leak(splits.SplitManifest(split_3.image_root, rows))


def test_leak_synthetic_file_equal_to_test_image(split_3, tmp_path_factory):
    synthetic = tmp_path_factory.mktemp("synthetic")
    write_solid_images(synthetic, {"a": 2}, start=1000)
    leaked = split_3.files("test", "b")[0]
    shutil.copy(leaked, synthetic / "a" / "innocent_name.png")
    (synthetic / "sources.txt").write_text("")
    with pytest.raises(DataError, match=f"{leaked}.*synthetic file .*innocent_name.png"):
        splits.check_no_leak(split_3, synthetic_dirs=[synthetic])


@pytest.mark.parametrize("sources_at", ["sources.txt", "jaw/sources.txt"])
def test_leak_through_recorded_sources(split_3, tmp_path_factory, sources_at):
    synthetic = tmp_path_factory.mktemp("synthetic")
    write_solid_images(synthetic, {"a": 2}, start=1000)
    (synthetic / sources_at).parent.mkdir(exist_ok=True)
    leaked = split_3.rows[[row["split"] for row in split_3.rows].index("test")]
    (synthetic / sources_at).write_text(f"# trained on\n\n{leaked['sha256'].upper()}\n")
    with pytest.raises(DataError, match=f"{leaked['path']}.*{sources_at}"):
        splits.check_no_leak(split_3, synthetic_dirs=[synthetic])


def test_synthetic_folder_without_sources_warns_and_missing_raises(split_3, tmp_path_factory):
    synthetic = tmp_path_factory.mktemp("synthetic")
    write_solid_images(synthetic, {"a": 2}, start=1000)
    with pytest.warns(folder.DataWarning, match="no sources.txt"):
        splits.check_no_leak(split_3, synthetic_dirs=[synthetic])
    with pytest.raises(DataError, match="nowhere"):
        splits.check_no_leak(split_3, synthetic_dirs=[synthetic / "nowhere"])


@pytest.mark.parametrize("path", ["../x/a.png", "a/../../b.png", "/etc/passwd", "a\\..\\b.png", ""])
def test_manifest_rows_must_stay_inside_the_image_root(tmp_path, path):
    rows = [
        {"path": "a/1.png", "class_name": "a", "sha256": "0" * 64, "split": "train"},
        {"path": path, "class_name": "a", "sha256": "1" * 64, "split": "test"},
    ]
    with pytest.raises(DataError, match=rf"row {re.escape(repr(path))} is not a path inside {tmp_path}"):
        splits.SplitManifest(tmp_path, rows)


def test_read_only_data_keeps_its_manifest_in_the_fallback_workdir(folder_3, tmp_path_factory, monkeypatch):
    data = folder_3
    save = splits.SplitManifest.save

    def read_only(self, path):
        if Path(path).parent == data:
            raise PermissionError(errno.EROFS, "Read-only file system", str(path))
        save(self, path)

    monkeypatch.setattr(splits.SplitManifest, "save", read_only)
    workdir = tmp_path_factory.mktemp("work")
    with pytest.warns(
        folder.DataWarning,
        match=rf"{data} cannot be written \(Read-only file system\): its split "
        rf"manifest went to {workdir / splits.MANIFEST_NAME}",
    ):
        first = splits.load_or_create_split(data, read_only_fallback=workdir)
    assert not (data / splits.MANIFEST_NAME).exists()
    again = splits.load_or_create_split(data, read_only_fallback=workdir)  # found there, not split again
    assert again.rows == first.rows and again.image_root == first.image_root
    with pytest.raises(PermissionError):  # without a fallback the disk's error stands (cli reports it)
        splits.load_or_create_split(data)
