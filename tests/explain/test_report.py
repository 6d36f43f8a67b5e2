"""The Grad-CAM report on a tiny study workdir made here: two saved classifiers, a split, masks, synthetic."""

import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest
from PIL import Image

from keras_morsa.data import splits
from keras_morsa.errors import DataError, UserError
from keras_morsa.explain import metrics, render, report, scores
from keras_morsa.explain.compute import Explained
from keras_morsa.io import read_csv, sha256_file, write_csv
from keras_morsa.models.probabilities import Probabilities

import helpers

CLASSES = ["left", "right"]
SIZE = 16


def _image(class_name, index):
    """A dark image with a bright 8x8 square in its class's half; the mask is the square."""
    rng = np.random.default_rng(index)
    image = rng.uniform(0, 8, (SIZE, SIZE, 3))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    top = 2 + index % 6
    left = 0 if class_name == "left" else 8
    image[top : top + 8, left : left + 8] = 220
    mask[top : top + 8, left : left + 8] = 255
    return image.astype(np.uint8), mask


def _classifier(swapped):
    """Brightness map (nested backbone) -> flatten -> logits: class = brighter half (or the other, if swapped)."""
    backbone_input = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.Conv2D(1, 2, strides=2, activation="relu", name="features")(backbone_input)
    backbone = keras.Model(backbone_input, features, name="backbone")
    images = keras.Input((SIZE, SIZE, 3), name="images")
    x = keras.layers.Flatten(name="flatten")(backbone(images))
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    logits = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(images, Probabilities(CLASSES, name="probabilities")(logits))
    backbone.get_layer("features").set_weights([np.full((2, 2, 3, 1), 1 / 12, np.float32), np.zeros(1)])
    left_half = np.zeros((8, 8), np.float32)
    left_half[:, :4] = 0.001  # small logits: probabilities that can still drop
    kernel = np.stack([left_half.ravel(), left_half[:, ::-1].ravel()], axis=1)
    model.get_layer("logits").set_weights([kernel[:, ::-1] if swapped else kernel, np.zeros(2, np.float32)])
    return model


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """``home/tiny/{images,masks,split_manifest.csv}`` (a built-in-like build), ``workdir/models``, ``synthetic``."""
    base = tmp_path_factory.mktemp("study")
    data = base / "home" / "tiny"
    six = dict.fromkeys(CLASSES, 6)
    helpers.write_image_folder(data / "images", six, lambda class_name, index: _image(class_name, index)[0])
    helpers.write_image_folder(data / "masks", six, lambda class_name, index: _image(class_name, index)[1])
    helpers.write_image_folder(
        base / "synthetic",
        dict.fromkeys(CLASSES, 3),
        lambda class_name, index: _image(class_name, 10 + index)[0],
        pattern="{index}.png",
    )
    workdir = base / "workdir"
    # Like the study: the split lives beside the data.
    splits.load_or_create_split(data, test_fraction=0.5, seed=0)
    (workdir / "models").mkdir(parents=True)
    _classifier(swapped=False).save(workdir / "models" / "real.keras")
    _classifier(swapped=True).save(workdir / "models" / "best_augmented.keras")
    return base


@pytest.mark.multibackend
def test_report_writes_grids_html_and_metrics_with_known_groups(study, tmp_path, monkeypatch):
    # No data_dir: the dataset is found among the built-in cache's builds by the manifest's hashes.
    monkeypatch.setenv("KERAS_MORSA_HOME", str(study / "home"))
    out = tmp_path / "out"
    result = report.gradcam_report(
        study / "workdir", out, synthetic_dir=study / "synthetic", max_images=5, progress=False
    )
    for group in report.GROUPS:
        with Image.open(out / "grids" / f"{group}.png") as grid:
            assert grid.format == "PNG" and grid.width > 100
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "n/a" in page
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(result))
    baseline, augmented = result["groups"]["real"], result["groups"]["best_augmented"]
    # The baseline reads the bright half correctly, the swapped model never does; 5 of 6 test images drawn.
    assert baseline["real_correct"]["n"] == 5 and baseline["real_wrong"]["n"] == 0
    assert augmented["real_wrong"]["n"] == 5 and augmented["generated_wrong"]["n"] == 5
    assert baseline["real_wrong"]["area"] == {"mean": None, "low": None, "high": None, "n": 0}
    # One feature channel: both maps are the brightness map, on the square (the mask).
    assert baseline["real_correct"]["mask_energy"]["mean"] > 0.8
    assert baseline["real_correct"]["pointing_game"]["mean"] == 1.0
    assert 0.1 < baseline["real_correct"]["area"]["mean"] < 0.5
    assert baseline["generated_correct"]["mask_energy"] == "n/a"
    deletion = baseline["real_correct"]["deletion"]["0.5"]
    assert deletion["map"]["mean"] > deletion["random"]["mean"]
    assert result["comparison"]["real"]["area_difference"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert result["narrower"].startswith("no clear difference")
    assert result["settings"]["layer"] == {"real": "features", "best_augmented": "features"}
    map_size = result["settings"]["map_size"]["real"]
    assert map_size == result["settings"]["map_size"]["best_augmented"] and min(map_size) >= 4
    assert f"real: features ({map_size[0]}x{map_size[1]} map)" in page


def test_grid_columns_take_one_class_in_turn_with_a_seeded_draw():
    labels = np.repeat([0, 1, 2], 6)  # file order: all of class 0 first, as in a split manifest
    images = np.broadcast_to(np.arange(18.0)[:, None, None, None], (18, 4, 4, 3))  # image i is filled with i
    wrong = (labels + 1) % 3
    views = [
        Explained(
            model=name,
            source="real",
            images=images,
            labels=labels,
            masks=None,
            pred=wrong,
            maps=np.zeros((18, 4, 4)),
            drops={},
        )
        for name in report.MODELS
    ]
    columns = render.grid_columns(views, "wrong", 8, seed=0)
    assert [c.label for c in columns] == [0, 1, 2, 0, 1, 2, 0, 1]
    again = render.grid_columns(views, "wrong", 8, seed=0)
    other = render.grid_columns(views, "wrong", 8, seed=1)
    picked = [int(c.image[0, 0, 0]) for c in columns]
    assert all(labels[i] == c.label for i, c in zip(picked, columns)) and len(set(picked)) == 8
    assert picked == [int(c.image[0, 0, 0]) for c in again]
    assert picked != [int(c.image[0, 0, 0]) for c in other]
    assert render.grid_columns(views, "correct", 8, seed=0) == []


def test_report_script_without_masks_and_without_synthetic_images(study, tmp_path, run_script):
    out = tmp_path / "out"
    done = run_script(
        "gradcam_report",
        f"--eval_workdir={study / 'workdir'}",
        f"--out_dir={out}",
        f"--data_dir={study / 'home' / 'tiny'}",
        f"--mask_dir={tmp_path / 'no_masks'}",
        "--max_images=2",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((out / "metrics.json").read_text())
    assert result["groups"]["real"]["real_correct"]["n"] == 2
    assert result["groups"]["real"]["real_correct"]["mask_energy"] == "n/a"
    assert result["groups"]["real"]["generated_correct"]["n"] == 0
    assert sorted(p.name for p in (out / "grids").iterdir()) == sorted(f"{g}.png" for g in report.GROUPS)
    assert "no clear difference" in done.stdout


def test_report_refuses_bad_inputs(study, tmp_path):
    with pytest.raises(UserError, match="real.keras does not exist"):
        report.gradcam_report(tmp_path, tmp_path / "out")
    with pytest.raises(UserError, match="method='lime'"):
        report.gradcam_report(study / "workdir", tmp_path, method="lime")
    with pytest.raises(UserError, match="max_images=0"):
        report.gradcam_report(study / "workdir", tmp_path, max_images=0)
    with pytest.raises(DataError, match="pass data_dir="):
        report.gradcam_report(study / "workdir", tmp_path, data_dir=study / "synthetic")


def test_study_split_is_found_in_the_workdir_or_beside_the_data(study, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_MORSA_HOME", str(study / "home"))
    beside = report.study_split(study / "workdir")
    assert beside.image_root == study / "home" / "tiny" / "images" and len(beside.files("test")) == 6
    (tmp_path / splits.MANIFEST_NAME).write_bytes((study / "home" / "tiny" / splits.MANIFEST_NAME).read_bytes())
    kept = report.study_split(tmp_path, data_dir=study / "home" / "tiny")
    assert kept.files("test") == beside.files("test")
    monkeypatch.setenv("KERAS_MORSA_HOME", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="no split"):
        report.study_split(study / "workdir")


def test_verdict_calls_maps_narrower_only_when_the_interval_excludes_zero():
    assert scores.verdict(metrics.Interval(-0.1, -0.15, -0.05, 20)).startswith("narrower")
    assert scores.verdict(metrics.Interval(0.1, 0.05, 0.15, 20)).startswith("wider")
    assert scores.verdict(metrics.Interval(-0.1, -0.2, 0.01, 20)).startswith("no clear difference")
    assert scores.verdict(metrics.Interval(None, None, None, 0)).startswith("not measured")


def test_a_manifest_row_outside_the_data_root_is_refused(study, tmp_path):
    # A planted study folder: its split_manifest.csv sends a test row to a file outside the data.
    workdir = tmp_path / "workdir"
    shutil.copytree(study / "workdir", workdir)
    secret = study / "home" / "secret.png"
    Image.fromarray(_image(CLASSES[0], 0)[0]).save(secret)
    rows = read_csv(study / "home" / "tiny" / splits.MANIFEST_NAME)
    rows.append({"path": "../../secret.png", "class_name": CLASSES[0], "sha256": sha256_file(secret), "split": "test"})
    write_csv(workdir / splits.MANIFEST_NAME, rows, splits.FIELDS)
    with pytest.raises(DataError, match=r"split manifest row '../../secret.png' is not a path inside .*tiny/images"):
        report.gradcam_report(workdir, tmp_path / "out", data_dir=study / "home" / "tiny")
    assert not (tmp_path / "out").exists()


def test_scores_of_one_model_and_group_come_from_its_record_alone():
    maps = np.zeros((4, 4, 4), np.float32)
    maps[:, :2, :2] = 1.0  # area 0.25, peak at the top-left pixel
    masks = np.zeros((4, 4, 4), bool)
    masks[:2, :2, :2] = True  # the first two images' objects are under the map
    drops = {0.5: {"map": np.array([0.4, 0.2, 0.0, 0.0], np.float32), "random": np.zeros(4, np.float32)}}
    view = Explained(
        model="real",
        source="real",
        images=np.zeros((4, 4, 4, 3)),
        labels=np.array([0, 1, 0, 1]),
        masks=masks,
        pred=np.array([0, 1, 1, 0]),
        maps=maps,
        drops=drops,
    )
    correct = scores.score_group(view, "correct", fractions=(0.5,), seed=0)
    assert (correct.model, correct.group, correct.n) == ("real", "real_correct", 2)
    assert correct.area.mean == pytest.approx(0.25) and correct.mask_energy.mean == pytest.approx(1.0)
    assert correct.pointing_game.mean == 1.0 and correct.deletion[0].map.mean == pytest.approx(0.3)
    wrong = scores.score_group(view, "wrong", fractions=(0.5,), seed=0).to_json()
    assert wrong["n"] == 2 and wrong["mask_energy"]["mean"] == 0.0 and set(wrong["deletion"]) == {"0.5"}
    no_masks = scores.score_group(dataclasses.replace(view, masks=None), "wrong", fractions=(0.5,)).to_json()
    assert no_masks["mask_energy"] == no_masks["pointing_game"] == "n/a"
    with pytest.raises(ValueError, match="outcome='right'"):
        view.members("right")
