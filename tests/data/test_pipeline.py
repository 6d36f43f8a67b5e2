"""tf.data pipelines and ratio mixing: values, ranges, seeds, exact counts, no test image in training, fit."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_morsa.data import folder, pipeline, splits
from keras_morsa.errors import DataError, UserError

from .test_splits import image_id, write_solid_images

SIZE = 16


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Real folder (a: 10, b: 8 -> 7 and 6 train images) and a synthetic folder (a: 20, b: 8)."""
    real = tmp_path_factory.mktemp("real")
    write_solid_images(real, {"a": 10, "b": 8})
    manifest = splits.load_or_create_split(real, seed=0)
    synthetic = tmp_path_factory.mktemp("synthetic")
    write_solid_images(synthetic, {"a": 20, "b": 8}, start=1000)
    (synthetic / "manifest.csv").write_text("path,class_name\n")
    (synthetic / "sources.txt").write_text("")
    return manifest, synthetic


def _ids(files):
    return [image_id(folder.load_image(path)) for path in files]


def _epoch(ds):
    """All (images, labels) of a finite dataset as numpy arrays."""
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(images), np.concatenate(labels)


def test_load_resized_eager_and_in_map(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "nöise.png")
    Image.new("RGB", (8, 8), (10, 200, 30)).save(tmp_path / "solid.png")
    paths = [str(tmp_path / "nöise.png"), str(tmp_path / "solid.png")]
    eager = [pipeline.load_resized(tf.constant(path), SIZE) for path in paths]
    mapped = list(tf.data.Dataset.from_tensor_slices(paths).map(lambda p: pipeline.load_resized(p, SIZE)))
    for e, m in zip(eager, mapped):
        assert e.dtype == tf.uint8 and e.shape == (SIZE, SIZE, 3)
        np.testing.assert_array_equal(e.numpy(), m.numpy())
    np.testing.assert_array_equal(eager[1].numpy(), np.broadcast_to([10, 200, 30], (SIZE, SIZE, 3)))
    # Averaging through the antialiased resize keeps the mean colour of the noise image.
    np.testing.assert_allclose(eager[0].numpy().mean((0, 1)), noise.mean((0, 1)), atol=3)


def test_classifier_eval_dataset_keeps_order_values_and_remainder(data):
    manifest, _ = data
    files, labels = manifest.files("test"), manifest.labels("test")
    ds = pipeline.classifier_dataset(files, labels, SIZE, 4, seed=0, training=False)
    images, got_labels = _epoch(ds)
    assert images.dtype == np.float32 and images.shape == (len(files), SIZE, SIZE, 3)
    assert got_labels.dtype == np.int32 and got_labels.tolist() == labels
    assert 0.0 <= images.min() and images.max() <= 255.0
    assert [image_id(image) for image in images] == _ids(files)


def test_load_images_gives_the_eval_images_as_one_array(data):
    manifest, _ = data
    files, labels = manifest.files("train"), manifest.labels("train")
    images = pipeline.load_images(files, SIZE, batch_size=4)
    expected, _ = _epoch(pipeline.classifier_dataset(files, labels, SIZE, 4, seed=0, training=False))
    assert images.dtype == np.float32 and images.shape == (len(files), SIZE, SIZE, 3)
    np.testing.assert_array_equal(images, expected)
    assert pipeline.load_images([], SIZE).shape == (0, SIZE, SIZE, 3)
    with pytest.raises(UserError, match="batch_size=0"):
        pipeline.load_images(files, SIZE, batch_size=0)


def test_classifier_training_dataset_seeded_shuffle_and_full_batches(data):
    manifest, _ = data
    files, labels = manifest.files("train"), manifest.labels("train")

    def order(seed):
        ds = pipeline.classifier_dataset(files, labels, SIZE, 4, seed=seed, training=True)
        images, got = _epoch(ds)
        assert images.shape == (12, SIZE, SIZE, 3)  # 13 images, batches of 4, last partial batch dropped
        ids = [image_id(image) for image in images]
        id_to_label = dict(zip(_ids(files), labels))
        assert got.tolist() == [id_to_label[i] for i in ids]
        return ids

    assert order(0) == order(0)
    assert order(0) != order(1)
    repeated = pipeline.classifier_dataset(files, labels, SIZE, 4, seed=0, training=True, repeat=True)
    assert len(list(repeated.take(10))) == 10


def test_augment_runs_on_training_batches(data):
    manifest, _ = data
    files, labels = manifest.files("train"), manifest.labels("train")

    def invert(images, labels):
        return 255.0 - images, labels

    ds = pipeline.classifier_dataset(files, labels, SIZE, 13, seed=0, training=True, augment=invert)
    images, _ = _epoch(ds)
    ids = {image_id(255.0 - image) for image in images}
    assert ids == set(_ids(files))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"training": False, "augment": lambda x, y: (x, y)}, "training=True"),
        ({"training": True, "batch_size": 100}, "batch_size=100"),
        ({"training": True, "labels": [0]}, "1 labels"),
        ({"training": True, "image_size": 0}, "image_size=0"),
    ],
)
def test_classifier_dataset_errors(data, kwargs, match):
    manifest, _ = data
    arguments = dict(
        files=manifest.files("train"), labels=manifest.labels("train"), image_size=SIZE, batch_size=4, seed=0
    )
    arguments.update(kwargs)
    with pytest.raises(UserError, match=match):
        pipeline.classifier_dataset(**arguments)


def test_gan_dataset_range_shape_class_and_repeat(data):
    manifest, _ = data
    ds = pipeline.gan_dataset(manifest, "b", SIZE, batch_size=4, seed=0)
    assert ds.element_spec.shape == (4, SIZE, SIZE, 3) and ds.element_spec.dtype == tf.float32
    batches = [batch.numpy() for batch in ds.take(5)]  # 20 images from 6: it repeats
    images = np.concatenate(batches)
    assert images.min() >= -1.0 and images.max() <= 1.0
    ids = {image_id((image + 1.0) * 127.5) for image in images}
    assert ids == set(_ids(manifest.files("train", "b")))
    again = np.concatenate([batch.numpy() for batch in pipeline.gan_dataset(manifest, "b", SIZE, 4, 0).take(5)])
    np.testing.assert_array_equal(images, again)


def test_gan_dataset_flips_are_seeded(tmp_path):
    (tmp_path / "x").mkdir()
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :4] = 255  # white left half
    Image.fromarray(image).save(tmp_path / "x" / "half.png")
    Image.fromarray(image).save(tmp_path / "x" / "half.bmp")
    manifest = splits.make_split(folder.scan_image_folder(tmp_path), test_fraction=0.0)

    def left_is_white(flip, seed):
        ds = pipeline.gan_dataset(manifest, "x", 8, batch_size=8, seed=seed, flip=flip)
        return (next(iter(ds)).numpy()[:, 4, 0, 0] > 0).tolist()

    assert all(left_is_white(False, 0))
    flipped = left_is_white(True, 0)
    assert 0 < sum(flipped) < 8 and flipped == left_is_white(True, 0)
    assert flipped != left_is_white(True, 1)


def test_gan_dataset_without_train_images(data):
    manifest, _ = data
    rows = [dict(row, split="test") if row["class_name"] == "b" else row for row in manifest.rows]
    with pytest.raises(DataError, match="'b' has no train images"):
        pipeline.gan_dataset(splits.SplitManifest(manifest.image_root, rows), "b", SIZE, 4, 0)


def test_list_synthetic_uses_manifest_label_order(data, tmp_path):
    manifest, synthetic = data
    files, labels = pipeline.list_synthetic(synthetic, ["b", "a"])
    assert len(files) == 28
    assert all(["b", "a"][label] == path.parent.name for path, label in zip(files, labels))
    files, labels = pipeline.list_synthetic(synthetic, manifest.class_names + ["c"])
    assert sorted(set(labels)) == [0, 1]
    write_solid_images(tmp_path, {"a": 1, "zebra": 1})
    with pytest.raises(DataError, match=f"{tmp_path}.*'zebra'"):
        pipeline.list_synthetic(tmp_path, ["a", "b"])


@pytest.mark.parametrize("ratio, expected", [(0, (7, 6)), (0.25, (9, 8)), (1.0, (14, 12)), (1.25, (16, 14))])
def test_mix_exact_per_class_counts(data, ratio, expected):
    manifest, synthetic = data
    real_files, real_labels = manifest.files("train"), manifest.labels("train")
    files, labels = pipeline.mix_real_synthetic(
        real_files, real_labels, *pipeline.list_synthetic(synthetic, manifest.class_names), ratio=ratio, seed=0
    )
    # a: 7 real + round(r * 7) = 0, 2 (1.75), 7, 9 (8.75); b: 6 real + 0, 2 (1.5), 6, 8 (7.5).
    assert (labels.count(0), labels.count(1)) == expected
    assert len(set(files)) == len(files)  # drawn without replacement
    assert set(real_files) <= set(files)
    assert all(manifest.class_names[label] == path.parent.name for path, label in zip(files, labels))


def test_mix_is_seeded_and_nested(data):
    manifest, synthetic = data
    real = (manifest.files("train"), manifest.labels("train"))
    pool = pipeline.list_synthetic(synthetic, manifest.class_names)

    def drawn(ratio, seed):
        files, _ = pipeline.mix_real_synthetic(*real, *pool, ratio=ratio, seed=seed)
        return [path for path in files if path not in real[0]]

    assert drawn(1.0, 0) == drawn(1.0, 0)
    assert set(drawn(1.0, 0)) != set(drawn(1.0, 1))
    assert set(drawn(0.25, 0)) <= set(drawn(1.0, 0))
    shuffled = list(zip(*pool))[::-1]
    files, _ = pipeline.mix_real_synthetic(*real, *zip(*shuffled), ratio=1.0, seed=0)
    assert [path for path in files if path not in real[0]] == drawn(1.0, 0)  # input order does not matter


def test_mix_too_few_synthetic_names_class_and_counts(data):
    manifest, synthetic = data
    with pytest.raises(DataError, match=r"'b' needs 9 synthetic images .* only 8 are available"):
        pipeline.mix_real_synthetic(
            manifest.files("train"),
            manifest.labels("train"),
            *pipeline.list_synthetic(synthetic, manifest.class_names),
            ratio=1.5,
            seed=0,
            class_names=manifest.class_names,
        )
    with pytest.raises(UserError, match="ratio=-1"):
        pipeline.mix_real_synthetic([], [], [], [], ratio=-1, seed=0)


def test_no_test_image_in_any_training_pipeline(data):
    manifest, synthetic = data
    test_ids = set(_ids(manifest.files("test")))
    splits.check_no_leak(manifest, synthetic_dirs=[synthetic])
    files, labels = pipeline.mix_real_synthetic(
        manifest.files("train"),
        manifest.labels("train"),
        *pipeline.list_synthetic(synthetic, manifest.class_names),
        ratio=1.0,
        seed=0,
    )
    images, _ = _epoch(pipeline.classifier_dataset(files, labels, SIZE, 2, seed=0, training=True))
    seen = {image_id(image) for image in images}
    for class_name in manifest.class_names:
        gan = pipeline.gan_dataset(manifest, class_name, SIZE, 4, seed=0, flip=False)
        seen |= {image_id((image + 1.0) * 127.5) for batch in gan.take(4) for image in batch.numpy()}
    assert seen and not seen & test_ids


def test_weighted_mixture_shares(data):
    manifest, synthetic = data
    pool_files, pool_labels = pipeline.list_synthetic(synthetic, manifest.class_names)

    def synthetic_fraction(share, seed=0):
        # Fresh inputs each time: iterating one shuffled dataset twice gives two different epochs.
        real = pipeline.classifier_dataset(manifest.files("train"), manifest.labels("train"), SIZE, 4, 0, True)
        fake = pipeline.classifier_dataset(pool_files, pool_labels, SIZE, 4, 0, training=True)
        ds = pipeline.weighted_mixture(real, fake, share, seed)
        assert ds.element_spec[0].shape == (4, SIZE, SIZE, 3)
        ids = [image_id(image) for x, _ in ds.take(25) for image in x.numpy()]
        return np.mean([i >= 1000 for i in ids]), ids

    assert synthetic_fraction(0.0)[0] == 0.0 and synthetic_fraction(1.0)[0] == 1.0
    fraction, ids = synthetic_fraction(0.5)
    assert 0.3 < fraction < 0.7 and ids == synthetic_fraction(0.5)[1]
    with pytest.raises(UserError, match="synthetic_share=1.5"):
        pipeline.weighted_mixture(None, None, 1.5, 0)


@pytest.mark.multibackend
def test_batches_feed_fit_on_every_backend(data):
    manifest, _ = data
    keras.utils.set_random_seed(0)
    train = pipeline.classifier_dataset(manifest.files("train"), manifest.labels("train"), SIZE, 4, 0, training=True)
    classifier = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    classifier.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.copy() for w in classifier.get_weights()]
    history = classifier.fit(train, epochs=2, shuffle=False, verbose=0)  # the pipeline shuffles
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert any(not np.allclose(a, b) for a, b in zip(before, classifier.get_weights()))
    test = pipeline.classifier_dataset(manifest.files("test"), manifest.labels("test"), SIZE, 4, 0, training=False)
    assert classifier.predict(test, verbose=0).shape == (len(manifest.files("test")), 2)

    gan = pipeline.gan_dataset(manifest, "a", SIZE, 4, 0).map(lambda x: (x, x))
    autoencoder = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Conv2D(3, 3, padding="same")])
    autoencoder.compile(optimizer="sgd", loss="mse")
    history = autoencoder.fit(gan, epochs=1, steps_per_epoch=3, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
