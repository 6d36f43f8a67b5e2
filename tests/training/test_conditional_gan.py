"""One class-conditional FastGAN for every class: balanced data, the game, train_gan, generate and export."""

import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops
from PIL import Image

from configs.fastgan_cpu import get_config
from keras_morsa.data import pipeline, splits
from keras_morsa.errors import UserError
from keras_morsa.io import read_csv, read_json
from keras_morsa.models.fastgan import Generator
from keras_morsa.models.fastgan.layers import ConditionalBatchNorm
from keras_morsa.models.saving import load_model
from keras_morsa.training.callbacks import images_to_uint8
from keras_morsa.training.fastgan import FastGAN
from keras_morsa.training.generate import generate, latent
from keras_morsa.training.train_gan import train_gan

import helpers

REPO = Path(__file__).resolve().parents[2]
SMOKE = f"--config={REPO / 'configs' / 'fastgan_cpu.py'}:smoke"
# One common class and one rare one: balanced sampling must show the rare one as often.
COUNTS = {"common": 12, "rare": 4}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    helpers.write_solid_images(root, COUNTS)
    return root


@pytest.fixture(scope="module")
def manifest(data_dir):
    return splits.load_or_create_split(data_dir)


def _conditional_config(**train):
    config = get_config("smoke")
    config.model.conditional = True
    for key, value in train.items():
        setattr(config.train, key, value)
    return config


def test_balanced_batches_show_the_rare_class_as_often_and_each_image_under_its_own_label(manifest):
    ds = pipeline.conditional_gan_dataset(manifest, 16, 8, seed=3, flip=False)
    batches = list(ds.take(60).as_numpy_iterator())
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert images.shape == (480, 16, 16, 3) and labels.dtype == np.int32
    assert manifest.class_names == ["common", "rare"]
    assert len(manifest.files("train", "rare")) < len(manifest.files("train", "common")) / 2
    assert 0.42 < labels.mean() < 0.58  # share of "rare" (label 1): a half, not its share of the files
    ids = {
        c: {helpers.image_id(np.asarray(Image.open(p))) for p in manifest.files("train", c)}
        for c in manifest.class_names
    }
    for image, label in zip(images, labels):
        assert helpers.image_id((image + 1.0) * 127.5) in ids[manifest.class_names[label]]
    again = next(iter(pipeline.conditional_gan_dataset(manifest, 16, 8, seed=3, flip=False)))
    np.testing.assert_array_equal(again[1].numpy(), batches[0][1])
    np.testing.assert_array_equal(again[0].numpy(), batches[0][0])
    other = next(iter(pipeline.conditional_gan_dataset(manifest, 16, 8, seed=4, flip=False)))
    assert not np.array_equal(other[0].numpy(), batches[0][0])


@pytest.mark.multibackend
def test_the_conditional_game_trains_on_images_and_labels_and_refuses_images_alone():
    keras.utils.set_random_seed(0)
    gan = FastGAN(
        helpers.tiny_generator(build=False, num_classes=2), helpers.tiny_discriminator(build=False, num_classes=2)
    )
    gan.compile(
        g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5), d_optimizer=keras.optimizers.Adam(4e-4, beta_1=0.5)
    )
    rng = np.random.default_rng(0)
    images = np.tanh(rng.normal(size=(8, 64, 64, 3))).astype("float32")
    labels = np.array([0, 1] * 4, "int32")
    before = [ops.convert_to_numpy(v).copy() for v in gan.generator.trainable_variables]
    history = gan.fit(images, labels, batch_size=4, epochs=1, shuffle=False, verbose=0).history
    assert all(np.isfinite(history[name][-1]) for name in ("d_loss", "g_loss", "rec_loss"))
    moved = [
        not np.array_equal(ops.convert_to_numpy(v), old) for v, old in zip(gan.generator.trainable_variables, before)
    ]
    names = [v.path for v in gan.generator.trainable_variables]
    assert all(m for m, n in zip(moved, names) if "label_embedding" in n or "gamma" in n)
    with pytest.raises(UserError, match=r"\(images, labels\) batches"):
        gan.fit(images, batch_size=4, epochs=1, verbose=0)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory, run_script):
    """bin/train_gan --class=all --config.model.conditional=True on the tiny folder (the smoke config)."""
    workdir = tmp_path_factory.mktemp("gan")
    args = [f"--data_dir={data_dir}", f"--workdir={workdir}", "--class=all", SMOKE, "--config.model.conditional=True"]
    done = run_script("train_gan", *args, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


@pytest.mark.multibackend
def test_bin_train_gan_trains_one_conditional_model(trained, manifest):
    run = trained / "conditional"
    assert sorted(p.name for p in trained.iterdir() if p.is_dir()) == ["conditional"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["ckpt_00000004.npz", "ckpt_00000006.npz"]
    assert [r["step"] for r in read_csv(run / "log.csv")] == ["2", "4", "6"]
    assert Image.open(run / "samples" / "step_000006.png").size == (128, 128)
    done = read_json(run / "done.json")
    assert done["step"] == 6 and done["conditional"] and done["class_names"] == ["common", "rare"]
    assert (run / "sources.txt").read_text().split() == sorted(
        r["sha256"] for r in manifest.rows if r["split"] == "train"
    )
    generator = load_model(run / "generator_ema.keras")
    assert generator.num_classes == 2


@pytest.mark.multibackend
def test_a_rerun_resumes_from_the_last_checkpoint(trained, data_dir, tmp_path, capsys):
    workdir = tmp_path / "gan"
    shutil.copytree(trained, workdir)
    config = _conditional_config(num_steps=8)
    assert train_gan(config, workdir, "all", data_dir=data_dir) == {"conditional": workdir / "conditional"}
    assert "steps 6 -> 8" in capsys.readouterr().out
    run = workdir / "conditional"
    assert [r["step"] for r in read_csv(run / "log.csv")] == ["2", "4", "6", "8"]
    assert read_json(run / "done.json")["step"] == 8 and (run / "checkpoints" / "ckpt_00000008.npz").exists()


def test_a_conditional_model_needs_class_all(data_dir, tmp_path):
    with pytest.raises(UserError, match=r"--class='common' with model.conditional=True.*--class=all"):
        train_gan(_conditional_config(), tmp_path, "common", data_dir=data_dir)


@pytest.mark.multibackend
def test_generate_writes_per_class_folders_from_the_one_model(trained, tmp_path):
    out = tmp_path / "synthetic"
    rows = generate(trained, out, 2, progress=False, checkpoint="final")
    assert sorted(p.name for p in out.iterdir()) == ["common", "manifest.csv", "rare", "sources.txt"]
    manifest = read_csv(out / "manifest.csv")
    assert [(r["path"], r["class_name"], r["checkpoint_step"], r["checkpoint"]) for r in manifest] == [
        (f"{c}/{c}_seed0_0000{i}.png", c, "6", "final") for c in ("common", "rare") for i in (0, 1)
    ]
    assert len(rows) == 4
    assert (out / "sources.txt").read_text() == (trained / "conditional" / "sources.txt").read_text()
    # Each class's images are the generator's for that class's label.
    generator = load_model(trained / "conditional" / "generator_ema.keras")
    z = np.stack([latent(0, i, generator.nz) for i in (0, 1)])
    for label, name in enumerate(("common", "rare")):
        expected = images_to_uint8(generator(z, labels=np.full(2, label, "int32"), training=False)[0])
        written = np.stack([np.asarray(Image.open(out / name / f"{name}_seed0_0000{i}.png")) for i in (0, 1)])
        # Within one grey level: generate calls the network on padded batches (torch rounds differently).
        assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1, name
    with pytest.raises(UserError, match="no finished conditional/ run"):
        generate(out, tmp_path / "none", 1, progress=False, conditional=True)


def _distinct_classes(generator):
    rng = np.random.default_rng(5)
    for layer in generator._flatten_layers():
        if isinstance(layer, ConditionalBatchNorm):
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.3, layer.beta.shape).astype("float32"))


@pytest.mark.tf_backend
def test_export_of_a_conditional_generator_takes_class_id(tmp_path):
    import tensorflow as tf

    from keras_morsa.export.generator import latents_for_seed, seeded_images, to_grey_levels
    from keras_morsa.export.saved_model import export_model

    model = Generator(ngf=4, nz=8, image_size=64, seed=1, num_classes=3)
    model(np.zeros((1, 8), "float32"), labels=np.zeros(1, "int32"))
    _distinct_classes(model)
    model.save(tmp_path / "generator_ema.keras")
    signatures = tf.saved_model.load(
        str(export_model(tmp_path / "generator_ema.keras", tmp_path / "serving"))
    ).signatures
    for name in ("serving_default", "from_latents"):
        assert "class_id" in signatures[name].structured_input_signature[1]
    serve = signatures["serving_default"]

    def images(**inputs):
        dtypes = {"num_images": tf.int32, "seed": tf.int64, "class_id": tf.int32, "latents": tf.float32}
        return serve(**{k: tf.constant(v, dtypes[k]) for k, v in inputs.items()})["images"].numpy()

    first = images(num_images=2, seed=7, class_id=1)
    assert first.shape == (2, 64, 64, 3) and first.dtype == np.uint8
    assert np.abs(images(num_images=2, seed=7, class_id=2).astype(int) - first.astype(int)).mean() > 1
    expected = to_grey_levels(seeded_images(model, latents_for_seed(2, 7, 8), 7, labels=np.full(2, 1, "int32")))
    assert np.abs(first.astype(int) - expected.numpy().astype(int)).max() <= 1
    from_latents = signatures["from_latents"](
        latents=latents_for_seed(2, 7, 8), seed=tf.constant(7, tf.int64), class_id=tf.constant(1, tf.int32)
    )["images"].numpy()
    np.testing.assert_array_equal(from_latents, first)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class_id must be in \[0, 2\]"):
        images(num_images=1, seed=0, class_id=3)
