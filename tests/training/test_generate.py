"""bin/generate's library: PNG folders, manifest, sources, resumability and the interpolation GIF.

The GAN workdir here is a finished run's layout written directly (an untrained 64-px generator), so these
tests cost no training; tests/training/test_train_gan.py generates from a really trained run.
"""

import functools
import os
import socket

import numpy as np
import pytest
from PIL import Image

from keras_morsa import io
from keras_morsa.errors import DataError, UserError
from keras_morsa.io import read_csv, read_json, write_json
from keras_morsa.models.fastgan import Generator
from keras_morsa.training import generate as gen

pytestmark = pytest.mark.multibackend

SOURCES = {"jaw": ["a" * 64, "b" * 64], "pin": ["b" * 64, "c" * 64]}


@pytest.fixture(scope="module")
def gan_workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("gan")
    generator = Generator(ngf=8, nz=16, image_size=64, seed=0)
    generator(np.zeros((1, 16), "float32"))
    for step, name in enumerate(SOURCES, start=10):
        (root / name).mkdir()
        generator.save(root / name / "generator_ema.keras")
        (root / name / "sources.txt").write_text("".join(f"{s}\n" for s in SOURCES[name]))
        write_json(root / name / "done.json", {"step": step})
    (root / "unfinished").mkdir()  # no done.json: never offered
    return root


def test_writes_pngs_manifest_and_the_union_of_sources(gan_workdir, tmp_path):
    rows = gen.generate(gan_workdir, tmp_path, 3, progress=False)
    assert len(rows) == 6
    for name, step in (("jaw", "10"), ("pin", "11")):
        files = sorted((tmp_path / name).iterdir())
        assert [p.name for p in files] == [f"{name}_seed0_0000{i}.png" for i in range(3)]
        for p in files:
            image = Image.open(p)
            assert image.size == (64, 64) and image.mode == "RGB"
        assert [
            (r["path"], r["checkpoint_step"], r["seed"], r["latent_index"])
            for r in read_csv(tmp_path / "manifest.csv")
            if r["class_name"] == name
        ] == [(f"{name}/{name}_seed0_0000{i}.png", step, "0", str(i)) for i in range(3)]
    assert (tmp_path / "sources.txt").read_text().split() == ["a" * 64, "b" * 64, "c" * 64]


def test_is_resumable_and_reproducible(gan_workdir, tmp_path):
    gen.generate(gan_workdir, tmp_path, 2, class_names=["jaw"], progress=False)
    first = tmp_path / "jaw" / "jaw_seed0_00000.png"
    first.write_bytes(b"kept")  # an existing file is not redrawn
    gen.generate(gan_workdir, tmp_path, 3, class_names=["jaw"], progress=False)
    assert first.read_bytes() == b"kept"
    again = tmp_path / "again"
    gen.generate(gan_workdir, again, 3, class_names=["jaw"], progress=False)
    for i in (1, 2):
        name = f"jaw/jaw_seed0_0000{i}.png"
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / name)), np.asarray(Image.open(again / name)))
    gen.generate(gan_workdir, tmp_path, 1, class_names=["jaw"], seed=5, progress=False)
    rows = read_csv(tmp_path / "manifest.csv")
    assert [(r["seed"], r["latent_index"]) for r in rows] == [("0", "0"), ("0", "1"), ("0", "2"), ("5", "0")]


def test_interpolation_gif_has_the_expected_frames(gan_workdir, tmp_path):
    generator, _ = gen.load_generator(gan_workdir / "jaw")
    path = tmp_path / "walk.gif"
    assert gen.interpolation_gif(generator, path, num_keyframes=3, frames_between=4) == 12
    gif = Image.open(path)
    assert gif.n_frames == 12 and gif.size == (64, 64)


def test_slerp_keeps_the_endpoints_and_the_norm():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_allclose(gen.slerp(a, b, 0.0), a)
    np.testing.assert_allclose(gen.slerp(a, b, 1.0), b, atol=1e-12)
    assert np.linalg.norm(gen.slerp(a, b, 0.5)) == pytest.approx(1.0)


def test_refuses_unknown_classes_and_bad_counts(gan_workdir, tmp_path):
    with pytest.raises(UserError, match=r"--class='unfinished' has no finished generator .*: jaw, pin"):
        gen.generate(gan_workdir, tmp_path, 1, class_names=["unfinished"])
    with pytest.raises(UserError, match="--num_images=0"):
        gen.generate(gan_workdir, tmp_path, 0)
    with pytest.raises(UserError, match="no such folder"):
        gen.generate(tmp_path / "missing", tmp_path, 1)


def test_sources_are_written_before_the_first_image(gan_workdir, tmp_path, monkeypatch):
    def killed(path, image):
        raise KeyboardInterrupt  # the run dies while writing its first PNG

    monkeypatch.setattr(gen, "save_png", killed)
    with pytest.raises(KeyboardInterrupt):
        gen.generate(gan_workdir, tmp_path, 3, progress=False)
    assert not list(tmp_path.rglob("*.png"))
    assert (tmp_path / "sources.txt").read_text().split() == ["a" * 64, "b" * 64, "c" * 64]


def test_a_class_without_sources_is_refused_before_anything_is_written(gan_workdir, tmp_path):
    broken = tmp_path / "gan"
    (broken / "jaw").mkdir(parents=True)
    for name in ("generator_ema.keras", "done.json"):
        (broken / "jaw" / name).write_bytes((gan_workdir / "jaw" / name).read_bytes())
    with pytest.raises(DataError, match=r"jaw/sources.txt is missing: .*leak check could not be trusted"):
        gen.generate(broken, tmp_path / "out", 1, progress=False)
    assert not (tmp_path / "out").exists()


def test_a_class_folder_or_synthetic_folder_in_use_stops_generate(gan_workdir, tmp_path):
    holder = {"pid": os.getppid(), "host": socket.gethostname(), "started": "2026-12-02T08:00:00+00:00"}
    (tmp_path / "out").mkdir()
    write_json(tmp_path / "out" / io.LOCK_NAME, holder)
    with pytest.raises(io.FolderLocked, match=rf"out is in use by pid {os.getppid()} on .* since 2026-12-02T08:00"):
        gen.generate(gan_workdir, tmp_path / "out", 1, class_names=["jaw"], progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [io.LOCK_NAME]
    busy = tmp_path / "gan"
    (busy / "pin").mkdir(parents=True)
    for name in ("generator_ema.keras", "done.json", "sources.txt"):
        (busy / "pin" / name).write_bytes((gan_workdir / "pin" / name).read_bytes())
    write_json(busy / "pin" / io.LOCK_NAME, holder)  # train_gan is continuing this class
    with pytest.raises(io.FolderLocked, match=r"pin is in use by pid"):
        gen.generate(busy, tmp_path / "out2", 1, progress=False)


def biased_classifier(path, bias, size=32, names=("jaw", "pin")):
    """A classifier whose probabilities ignore the image: softmax(bias)."""
    import keras

    from keras_morsa.models.probabilities import Probabilities

    images = keras.Input((size, size, 3), name="images")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(images)
    logits = keras.layers.Dense(
        len(names), kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(bias), name="logits"
    )(x)
    keras.Model(images, Probabilities(list(names), name="probabilities")(logits)).save(path)
    return path


def test_classifier_filter_keeps_confident_images_scores_them_and_bounds_the_draws(gan_workdir, tmp_path):
    classifier = biased_classifier(tmp_path / "clf.keras", [2.0, -2.0])  # p(jaw) = 0.982 for every image
    out = tmp_path / "out"
    (out / "jaw").mkdir(parents=True)
    (out / "jaw" / "jaw_seed0_00099.png").write_bytes(b"stale")  # not kept by this call: removed
    filtered = functools.partial(
        gen.generate, gan_workdir, out, filter="classifier", classifier=classifier, progress=False
    )
    rows = filtered(3, class_names=["jaw"], min_confidence=0.9)
    assert [r["latent_index"] for r in rows] == [0, 1, 2]
    assert sorted(p.name for p in (out / "jaw").iterdir()) == [f"jaw_seed0_0000{i}.png" for i in range(3)]
    scores = [float(r["score"]) for r in read_csv(out / "manifest.csv")]
    np.testing.assert_allclose(scores, np.exp(2) / (np.exp(2) + np.exp(-2)), rtol=1e-5)
    # Latents are drawn a batch (16) at a time: all 16 passed, the first 3 are kept.
    assert read_json(out / "yield.json")["jaw"] == {
        "kept": 3,
        "passed": 16,
        "drawn": 16,
        "yield": 1.0,
        "min_confidence": 0.9,
        "seed": 0,
    }
    # No image is a confident 'pin': the bound (num_images x max_draws_per_image latents) ends it with the yield.
    with pytest.raises(UserError, match=r"class 'pin': only 0 of 8 drawn images \(yield 0.0 %\)"):
        filtered(2, class_names=["pin"], max_draws_per_image=4)
    assert read_json(out / "yield.json")["pin"]["drawn"] == 8
    with pytest.raises(UserError, match="--filter=classifier needs --classifier"):
        gen.generate(gan_workdir, out, 1, filter="classifier")
    with pytest.raises(UserError, match="--filter=best; accepted: none, classifier"):
        gen.generate(gan_workdir, out, 1, filter="best")


def _solid(value):
    return np.full((64, 64, 3), value, np.uint8)


def test_dedupe_drops_near_copies_of_training_images_and_draws_more(tmp_path, monkeypatch):
    # Train images of 'jaw': ten dark greys. The "generator" makes image i a solid colour: latents 0 and 2 give
    # exact copies of two train images, the others bright colours far from every train image.
    data = tmp_path / "data"
    (data / "jaw").mkdir(parents=True)
    greys = [10 * k for k in range(10)]
    for k, grey in enumerate(greys):
        Image.fromarray(_solid(grey)).save(data / "jaw" / f"{k}.png")
    (data / "jaw" / "not_learned.png").write_bytes((data / "jaw" / "0.png").read_bytes()[:-1] + b"\x00")
    run = tmp_path / "gan" / "jaw"
    run.mkdir(parents=True)
    generator = Generator(ngf=8, nz=16, image_size=64, seed=0)
    generator(np.zeros((1, 16), "float32"))
    generator.save(run / "generator_ema.keras")
    (run / "sources.txt").write_text("".join(f"{io.sha256_file(data / 'jaw' / f'{k}.png')}\n" for k in range(10)))
    write_json(run / "done.json", {"step": 7})
    colours = {0: greys[3], 2: greys[7]}
    monkeypatch.setattr(gen, "latent", lambda seed, index, nz: np.full(nz, index, np.float32))
    monkeypatch.setattr(
        gen,
        "_images",
        lambda generator, z, batch_size: np.stack([_solid(colours.get(int(i), 120 + 10 * int(i))) for i in z[:, 0]]),
    )

    out = tmp_path / "out"
    with pytest.raises(UserError, match=r"--dedupe needs --data_dir=<the folder bin/train_gan learned 'jaw' from>"):
        gen.generate(tmp_path / "gan", out, 3, dedupe=True, progress=False)
    write_json(run / "done.json", {"step": 7, "data_root": str(data)})  # what train_gan records
    rows = gen.generate(tmp_path / "gan", out, 3, dedupe=True, batch_size=4, progress=False)
    assert [r["latent_index"] for r in rows] == [1, 3, 4]
    assert sorted(p.name for p in (out / "jaw").iterdir()) == [f"jaw_seed0_0000{i}.png" for i in (1, 3, 4)]
    entry = read_json(out / "yield.json")["jaw"]
    # Two batches of 4 latents: 0 and 2 are copies; 1, 3 and 4 are kept; 5-7 pass unkept.
    assert (entry["kept"], entry["drawn"], entry["passed"], entry["near_copies"]) == (3, 8, 6, 2)
    assert entry["copy_threshold"] > 0 and entry["dedupe_percentile"] == 5.0
    distances = [float(r["train_distance"]) for r in read_csv(out / "manifest.csv")]
    assert min(distances) >= entry["copy_threshold"]
    with pytest.raises(UserError, match=r"--dedupe_percentile=100; expected a value in \(0, 100\)"):
        gen.generate(tmp_path / "gan", out, 3, dedupe=True, dedupe_percentile=100, progress=False)
    # The run's sources name images that are not in the folder given: refused, naming what to pass.
    other = tmp_path / "other" / "jaw"
    other.mkdir(parents=True)
    Image.fromarray(_solid(200)).save(other / "x.png")
    with pytest.raises(DataError, match=r"0 of the 10 training images of 'jaw'"):
        gen.generate(tmp_path / "gan", out, 3, dedupe=True, data_dir=tmp_path / "other", progress=False)
