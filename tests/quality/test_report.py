"""bin/gan_quality end to end on tiny data with planted answers: a class of copies, a class of noise."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from configs.gan_quality import get_config
from keras_morsa.data import splits
from keras_morsa.data.folder import DataWarning
from keras_morsa.errors import UserError
from keras_morsa.io import read_json, sha256_file
from keras_morsa.quality import files
from keras_morsa.quality.report import gan_quality

from .test_features import tiny_classifier

CLASSES = ("disc", "square")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A 2-class folder (16 images each, 48 px) and a synthetic folder: 'disc' holds exact copies of its train
    images, 'square' uniform noise."""
    root = tmp_path_factory.mktemp("quality")
    rng = np.random.default_rng(0)
    real = root / "real"
    for name in CLASSES:
        (real / name).mkdir(parents=True)
        for i in range(16):
            image = np.full((48, 48, 3), 240, np.uint8)
            y, x = rng.integers(4, 20, 2)
            yy, xx = np.mgrid[:48, :48]
            mask = (
                (yy - y - 12) ** 2 + (xx - x - 12) ** 2 < 144
                if name == "disc"
                else ((yy >= y) & (yy < y + 24) & (xx >= x) & (xx < x + 24))
            )
            image[mask] = rng.integers(0, 255, 3)
            Image.fromarray(image).save(real / name / f"{name}_{i}.png")
    manifest = splits.load_or_create_split(real)
    synthetic = root / "synthetic"
    (synthetic / "disc").mkdir(parents=True)
    (synthetic / "square").mkdir()
    for i, path in enumerate(manifest.files("train", "disc")):
        shutil.copy(path, synthetic / "disc" / f"disc_{i}.png")
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(synthetic / "square" / f"s_{i}.png")
    (synthetic / "sources.txt").write_text("".join(f"{s}\n" for s in sorted(manifest.hashes("train"))))
    tiny_classifier(32, CLASSES).save(root / "classifier.keras")
    return root, manifest


def _report(root, out_dir, **options):
    """gan_quality of the smoke config on the fixture's synthetic and real folders."""
    return gan_quality(
        get_config("smoke"),
        out_dir,
        synthetic_dir=root / "synthetic",
        data_dir=root / "real",
        progress=False,
        **options,
    )


def test_report_files_and_planted_answers(data, tmp_path):
    root, manifest = data
    report = _report(root, tmp_path, features="random", classifier=root / "classifier.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nearest", "quality.html", "quality.json", "quality.md"]
    assert sorted(p.name for p in (tmp_path / "nearest").iterdir()) == ["disc.png", "square.png"]
    assert read_json(tmp_path / "quality.json") == json.loads(json.dumps(report))
    # A copy in the synthetic folder, stamped, for the ratio study; stale once the folder's manifest changes.
    assert files.synthetic_quality(root / "synthetic") == json.loads(json.dumps(report))
    stale = tmp_path / "regenerated"
    shutil.copytree(root / "synthetic", stale)
    (stale / "manifest.csv").write_text("path,class_name\n")
    with pytest.warns(DataWarning, match=r"quality.json was measured on other images than .* holds"):
        assert files.synthetic_quality(stale) is None
    assert files.synthetic_quality(tmp_path / "nearest") is None  # no quality file: nothing to show
    disc, square = report["classes"]["disc"], report["classes"]["square"]
    n_train = len(manifest.files("train", "disc"))
    assert (disc["generated"], disc["train"]) == (n_train, n_train) and square["generated"] == 8
    # Copies of the train set: all memorised, perfect fidelity and coverage, KID ~0 against train.
    assert disc["memorised_share"] == 1.0 and disc["median_nearest_train_distance"] == pytest.approx(0, abs=1e-3)
    assert disc["precision"] == disc["recall"] == disc["coverage"] == 1.0
    assert abs(disc["kid"]) < abs(square["kid"]) and square["kid"] > 0
    assert "may copy training images" in disc["reading"] and "narrower" not in disc["reading"]
    # Noise: nothing copied, nothing inside the class's manifold.
    assert square["memorised_share"] == 0.0 and square["precision"] == 0.0 and square["coverage"] == 0.0
    assert "misses part of the class" in square["reading"] and "narrower than the class" in square["reading"]
    # CAS from the (untrained) classifier given: a share in [0, 1] beside its real test accuracy.
    assert 0.0 <= disc["cas"] <= 1.0 and 0.0 <= disc["classifier_real_accuracy"] <= 1.0
    assert report["mean"]["memorised_share"] == pytest.approx(0.5)
    assert report["settings"]["features"].startswith("random CNN (seed 0")
    html = (tmp_path / "quality.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "nearest/disc.png'" not in html.split("alt=")[0]
    markdown = (tmp_path / "quality.md").read_text()
    assert "| disc |" in markdown and "![nearest/square.png](nearest/square.png)" in markdown


def test_classifier_features_without_a_classifier_file_give_no_cas_only_with_random(data, tmp_path):
    root, _ = data
    report = _report(root, tmp_path, features=str(root / "classifier.keras"))
    assert report["settings"]["features"] == f"penultimate features of {root / 'classifier.keras'}"
    assert "cas" in report["classes"]["disc"]  # the features file is a classifier of these classes
    report = _report(root, tmp_path / "r", features="random")
    assert "cas" not in report["classes"]["disc"] and "cas" not in report["mean"]
    assert "No classifier: no CAS." in (tmp_path / "r" / "quality.md").read_text()


def test_refusals(data, tmp_path):
    root, _ = data
    config = get_config("smoke")
    with pytest.raises(UserError, match="exactly one of --gan_workdir"):
        gan_quality(config, tmp_path, data_dir=root / "real")
    with pytest.raises(UserError, match="--classifier=missing.keras: no such file"):
        gan_quality(
            config, tmp_path, synthetic_dir=root / "synthetic", data_dir=root / "real", classifier="missing.keras"
        )
    leaky = tmp_path / "leaky"
    shutil.copytree(root / "synthetic", leaky)
    test_file = splits.SplitManifest.load(root / "real" / splits.MANIFEST_NAME, root / "real").files("test")[0]
    (leaky / "sources.txt").write_text(sha256_file(test_file) + "\n")
    with pytest.raises(UserError, match="leaks into training"):
        gan_quality(config, tmp_path, synthetic_dir=leaky, data_dir=root / "real", features="random")


def test_bin_trains_a_classifier_on_the_train_split_when_none_is_given(data, tmp_path, run_script):
    root, _ = data
    out = tmp_path / "q"
    result = run_script(
        "gan_quality",
        "--config=configs/gan_quality.py:smoke",
        f"--synthetic_dir={root / 'synthetic'}",
        f"--data_dir={root / 'real'}",
        f"--out_dir={out}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training a mobilenet_v3_small classifier on the real train split (4 steps of 4)" in result.stdout
    report = read_json(out / "quality.json")
    assert report["classifier"].endswith("trained here: mobilenet_v3_small, 4 steps of 4 on the real train split")
    assert (out / "classifier.keras").is_file() and "cas" in report["classes"]["square"]
    bad = run_script("gan_quality", f"--out_dir={out}")
    assert bad.returncode == 2 and "error: pass exactly one of --gan_workdir" in bad.stderr
