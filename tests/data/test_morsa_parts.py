"""Tests of the built-in morsa_parts dataset: layout, masks, determinism, the load() cache and bin/make_dataset."""

import json

import ml_collections
import numpy as np
import pytest
from PIL import Image

from keras_morsa.data import morsa_parts
from keras_morsa.errors import DataError, UserError
from keras_morsa.io import sha256_file

CLASSES = morsa_parts.CLASS_NAMES


def _files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def _bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in _files(root)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """3 images per class at 32 px, drawn by 2 processes."""
    return morsa_parts.build(
        tmp_path_factory.mktemp("tiny"), images_per_class=3, image_size=32, seed=0, progress=False, workers=2
    )


def test_class_names_fixed_order():
    assert CLASSES == (
        "base",
        "jaw",
        "jaw_plate",
        "lead_screw",
        "handle",
        "clamp",
        "clamp_screw",
        "nut",
        "washer",
        "pin",
    )


def test_layout_counts_and_manifest(tiny):
    for name in CLASSES:
        assert sorted(p.name for p in (tiny / "images" / name).iterdir()) == [f"{name}_{i}.jpg" for i in range(3)]
        assert sorted(p.name for p in (tiny / "masks" / name).iterdir()) == [f"{name}_{i}.png" for i in range(3)]
    manifest = json.loads((tiny / "dataset.json").read_text())
    assert manifest["class_names"] == list(CLASSES)
    assert (manifest["images_per_class"], manifest["image_size"], manifest["seed"]) == (3, 32, 0)
    assert manifest["format_version"] == morsa_parts.FORMAT_VERSION
    assert len(manifest["files"]) == 30
    assert manifest["files"][0]["image"] == "images/base/base_0.jpg"
    for row in manifest["files"]:
        assert sha256_file(tiny / row["image"]) == row["image_sha256"]
        assert sha256_file(tiny / row["mask"]) == row["mask_sha256"]
        with Image.open(tiny / row["image"]) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (32, 32))
    assert morsa_parts.is_complete(tiny, 3, 32, 0)
    assert not morsa_parts.is_complete(tiny, 3, 32, 1)


def test_masks_binary_nonempty_and_plausible(tiny):
    for name in CLASSES:
        for i in range(3):
            with Image.open(tiny / "masks" / name / f"{name}_{i}.png") as mask:
                assert (mask.mode, mask.size) == ("L", (32, 32))
                values = np.asarray(mask)
            assert set(np.unique(values)) <= {0, 255}
            area = np.mean(values == 255)
            # Parts fill 45-90 % of the frame's width; a thin handle still covers some pixels, a washer not all.
            assert 0.002 < area < 0.75, (name, i, area)


def test_images_vary_within_a_class(tiny):
    images = [np.asarray(Image.open(tiny / "images" / "nut" / f"nut_{i}.jpg"), np.float32) for i in range(3)]
    assert np.abs(images[0] - images[1]).mean() > 5.0
    assert np.abs(images[1] - images[2]).mean() > 5.0


def test_same_seed_same_bytes_in_one_process_other_seed_differs(tiny, tmp_path):
    again = morsa_parts.build(tmp_path / "again", images_per_class=3, image_size=32, seed=0, progress=False, workers=1)
    assert _bytes(again) == _bytes(tiny)
    other = _bytes(
        morsa_parts.build(tmp_path / "other", images_per_class=3, image_size=32, seed=1, progress=False, workers=2)
    )
    first = _bytes(tiny)
    images = [key for key in first if key.suffix == ".jpg"]
    assert all(other[key] != first[key] for key in images)


def test_image_depends_only_on_seed_class_and_index(tiny):
    rgb, mask, _ = morsa_parts.render_image("washer", 2, image_size=32, seed=0)
    with Image.open(tiny / "masks" / "washer" / "washer_2.png") as saved:
        np.testing.assert_array_equal(np.asarray(saved), mask)
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8


def test_same_scene_at_another_size():
    _, small, _ = morsa_parts.render_image("clamp", 0, image_size=32, seed=3)
    _, large, _ = morsa_parts.render_image("clamp", 0, image_size=64, seed=3)
    reduced = np.asarray(Image.fromarray(large).resize((32, 32), Image.BOX)) >= 128
    small = small == 255
    assert np.sum(small & reduced) / np.sum(small | reduced) > 0.7


def test_smaller_rebuild_removes_stale_files(tmp_path):
    root = morsa_parts.build(tmp_path, images_per_class=3, image_size=16, progress=False, workers=2)
    morsa_parts.build(root, images_per_class=2, image_size=16, progress=False, workers=2)
    assert sorted(p.name for p in (root / "images" / "pin").iterdir()) == ["pin_0.jpg", "pin_1.jpg"]
    assert sorted(p.name for p in (root / "masks" / "pin").iterdir()) == ["pin_0.png", "pin_1.png"]
    assert morsa_parts.is_complete(root, 2, 16, 0)


def test_load_reuses_complete_build_and_rebuilds_incomplete(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_MORSA_HOME", str(tmp_path / "home"))
    root = morsa_parts.load(images_per_class=1, image_size=16, seed=2, progress=False)
    assert root.parent == tmp_path / "home"
    assert root == morsa_parts.cache_dir(1, 16, 2)
    assert root.name == f"1_per_class_16px_seed2_v{morsa_parts.FORMAT_VERSION}"
    assert morsa_parts.is_complete(root, 1, 16, 2)
    stamps = {p: p.stat().st_mtime_ns for p in _files(root)}

    assert morsa_parts.load(images_per_class=1, image_size=16, seed=2, progress=False) == root
    assert {p: p.stat().st_mtime_ns for p in _files(root)} == stamps  # reused, nothing rewritten

    content = _bytes(root)
    (root / "dataset.json").unlink()
    morsa_parts.load(images_per_class=1, image_size=16, seed=2, progress=False)
    assert _bytes(root) == content

    (root / "images" / "jaw" / "jaw_0.jpg").unlink()
    assert not morsa_parts.is_complete(root, 1, 16, 2)
    morsa_parts.load(images_per_class=1, image_size=16, seed=2, progress=False)
    assert _bytes(root) == content

    (root / "masks" / "nut" / "nut_0.png").write_bytes(b"truncated")
    morsa_parts.load(images_per_class=1, image_size=16, seed=2, progress=False)
    assert _bytes(root) == content


def test_dataset_root_renders_the_builtin_dataset_at_data_render_size(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_MORSA_HOME", str(tmp_path / "home"))
    data = ml_collections.ConfigDict(dict(images_per_class=1, render_size=16, seed=2))
    root = morsa_parts.dataset_root(data)
    assert root == morsa_parts.cache_dir(1, 16, 2) and morsa_parts.is_complete(root, 1, 16, 2)
    with Image.open(root / "images" / "jaw" / "jaw_0.jpg") as image:
        assert image.size == (16, 16)
    assert morsa_parts.dataset_root(data, tmp_path) == tmp_path  # a user folder: nothing rendered
    with pytest.raises(DataError, match="--data_dir=.*nope: no such folder"):
        morsa_parts.dataset_root(data, tmp_path / "nope")


def test_home_defaults_to_keras_datasets(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_MORSA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert morsa_parts.home() == tmp_path / ".keras" / "datasets" / "morsa_parts"
    assert morsa_parts.cache_dir(300, 256, 0).parent == tmp_path / ".keras" / "datasets" / "morsa_parts"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": 0}, "image_size must be an integer from 16 to 1024, got 0"),
        ({"image_size": 64.0}, "image_size must be an integer from 16 to 1024, got 64.0"),
        ({"images_per_class": 0}, "images_per_class must be an integer >= 1, got 0"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"workers": 0}, "workers must be an integer >= 1, got 0"),
    ],
)
def test_bad_arguments_raise_one_line_user_errors(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        morsa_parts.build(tmp_path, **kwargs)
    assert not (tmp_path / "dataset.json").exists()


def test_bad_difficulty_and_class_name():
    with pytest.raises(UserError, match=r"Difficulty.alike must lie in \[0, 1\], got 1.5"):
        morsa_parts.Difficulty(alike=1.5)
    with pytest.raises(UserError, match=r"Difficulty.max_rotation_deg must lie in \[0, 180\], got 270"):
        morsa_parts.Difficulty(max_rotation_deg=270)
    with pytest.raises(UserError, match=r"Difficulty.part_scale must be \(min, max\)"):
        morsa_parts.Difficulty(part_scale=(0.9, 0.4))
    with pytest.raises(UserError, match="unknown morsa_parts class 'vise'"):
        morsa_parts.render_image("vise", 0)


def test_contact_sheet(tiny, tmp_path):
    path = morsa_parts.contact_sheet(tiny, tmp_path / "sheet.png", per_class=2, tile=32)
    with Image.open(path) as sheet:
        assert sheet.format == "PNG"
        assert sheet.size == (10 * 32, 18 + 2 * 32)
    with pytest.raises(UserError, match="build at least 4 images per class"):
        morsa_parts.contact_sheet(tiny, tmp_path / "more.png", per_class=4)


def test_make_dataset_script(run_script, tmp_path):
    # The numpy backend only makes the script's Keras import (for the progress bar) quicker.
    result = run_script(
        "make_dataset",
        f"--out_dir={tmp_path / 'out'}",
        "--images_per_class=1",
        "--image_size=32",
        "--seed=5",
        env={"KERAS_BACKEND": "numpy"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert str(tmp_path / "out") in lines  # the root on a line of its own, then the summary listing it
    assert f"  wrote {tmp_path / 'out'}" in lines
    assert lines[-1].startswith("next: ") and f"bin/train_gan --class=all --data_dir={tmp_path / 'out'}" in lines[-1]
    assert "10/10" in result.stdout  # the progress bar reached the end
    assert morsa_parts.is_complete(tmp_path / "out", 1, 32, 5)
    assert len(list((tmp_path / "out" / "images").rglob("*.jpg"))) == 10


def test_make_dataset_script_bad_flag_value(run_script, tmp_path):
    result = run_script("make_dataset", f"--out_dir={tmp_path / 'out'}", "--image_size=0")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: image_size must be an integer from 16 to 1024, got 0"
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_rebuild_drops_a_split_manifest_of_the_old_files(tmp_path):
    from keras_morsa.data import splits

    root = morsa_parts.build(tmp_path / "ds", images_per_class=2, image_size=32, progress=False)
    manifest = splits.load_or_create_split(root, test_fraction=0.5, seed=0)
    assert (root / splits.MANIFEST_NAME).is_file()
    morsa_parts.build(root, images_per_class=2, image_size=32, seed=1, progress=False)
    assert not (root / splits.MANIFEST_NAME).exists()
    rebuilt = splits.load_or_create_split(root, test_fraction=0.5, seed=0)
    assert rebuilt.hashes("train") != manifest.hashes("train")
