"""train_gan's checkpoint quality monitor: its features (quality.features), the cached classifier, the ranking."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from configs.fastgan_cpu import get_config
from keras_morsa.errors import UserError
from keras_morsa.io import read_csv, read_json
from keras_morsa.quality import classifier as quality_classifier
from keras_morsa.quality.features import classifier_embedding, random_cnn
from keras_morsa.quality.monitor import QualityMonitor
from keras_morsa.training.train_gan import QUALITY_CLASSIFIER_FILE, train_gan

import helpers

CLASSES = ("disc", "square")
COLOURS = ((200, 40, 40), (40, 40, 200))


def test_an_unknown_features_value_is_refused_naming_what_is_accepted(tmp_path):
    config = get_config("smoke")
    config.quality.features = "inception"
    with pytest.raises(UserError, match=r"quality.features='inception'; accepted: 'classifier' .*'random'.*\.keras"):
        train_gan(config, tmp_path / "gan", "disc", data_dir=tmp_path / "never_read")


def _score(embedding, images, train_images, tmp_path):
    monitor = QualityMonitor(
        lambda: images,
        embedding,
        embedding.embed(train_images),
        every=1,
        num_steps=1,
        save_best=lambda: None,
        best_file=tmp_path / "best.json",
        curve_path=tmp_path / "curve.png",
        k=3,
        kid_subsets=5,
    )
    return monitor.score()


def _images(count, seed, colour=0):
    draw = helpers.squares_on_white(CLASSES, COLOURS, size=32, side=12, seed=seed)
    return np.stack([draw(CLASSES[colour], i) for i in range(count)])


@pytest.mark.multibackend
def test_classifier_features_rank_constant_and_blurred_samples_below_real_like_ones(tmp_path):
    # A tiny classifier learns red vs blue squares on white; its pool features judge the samples.
    import keras

    keras.utils.set_random_seed(0)
    model = helpers.tiny_classifier(32, CLASSES)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.concatenate([_images(32, 1, 0), _images(32, 2, 1)]).astype("float32")
    history = model.fit(x, np.repeat([0, 1], 32), epochs=30, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] == 1.0  # it tells the two classes apart
    embedding = classifier_embedding(model).features_only()
    assert not embedding.has_probabilities and embedding.embed(x[:2]).shape == (2, 4)

    train = _images(32, 3).astype("float32")  # the "disc" class: red squares
    real_like = _images(16, 4)
    constant = np.full_like(real_like, 128)
    blurred = np.stack([np.asarray(Image.fromarray(x).filter(ImageFilter.GaussianBlur(4))) for x in real_like])
    kid = {
        name: _score(embedding, x, train, tmp_path)["kid"]
        for name, x in (("real_like", real_like), ("constant", constant), ("blurred", blurred))
    }
    assert kid["real_like"] < kid["constant"] and kid["real_like"] < kid["blurred"], kid


# Not multibackend: the cache is files and JSON (the backend-specific features are the tests around it), and
# the test trains a classifier and two GANs (~2.5 min per pass).
def test_the_workdir_classifier_is_trained_once_and_reused_by_every_class_and_resume(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    helpers.write_image_folder(data, dict.fromkeys(CLASSES, 8), helpers.squares_on_white(CLASSES, COLOURS, seed=0))
    workdir = tmp_path / "gan"
    # What a run killed between saving the model and its JSON twin leaves: a model file without the JSON.
    workdir.mkdir()
    (workdir / QUALITY_CLASSIFIER_FILE).write_bytes(b"not a model")
    calls = []
    real_train = quality_classifier.train_classifier

    def spy(*args, **kwargs):
        calls.append(args)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(quality_classifier, "train_classifier", spy)
    config = get_config("smoke")
    config.quality.features = "classifier"
    config.quality.image_size = 32
    config.train.num_steps = 4
    train_gan(config, workdir, "all", data_dir=data)
    assert len(calls) == 1  # the leftover was not trusted; the second class reused the new classifier
    info = read_json(workdir / "quality_classifier.json")
    assert info["budget"] == config.quality.classifier.to_dict() and info["image_size"] == 32
    assert info["class_names"] == list(CLASSES) and 0.0 <= info["train_accuracy"] <= 1.0
    assert "reusing" in capsys.readouterr().out

    config.train.num_steps = 6  # resume one class
    train_gan(config, workdir, "disc", data_dir=data)
    assert len(calls) == 1
    run = workdir / "disc"
    kid = {int(r["step"]): float(r["kid"]) for r in read_csv(run / "log.csv")}
    assert sorted(kid) == [2, 4, 6] and all(np.isfinite(list(kid.values())))
    best = read_json(run / "generator_best.json")
    assert best["step"] == min(kid, key=kid.get) and best["features"].startswith("penultimate features")
    assert (run / "generator_best.keras").is_file()


@pytest.mark.multibackend
def test_a_resume_with_other_features_chooses_the_best_afresh(tmp_path, capsys):
    (tmp_path / "best.json").write_text('{"step": 2, "kid": -1.0, "coverage": 1.0}')
    embedding = random_cnn(32)
    train = _images(8, 0).astype("float32")
    saved = []
    monitor = QualityMonitor(
        lambda: _images(8, 1),
        embedding,
        embedding.embed(train),
        every=1,
        num_steps=4,
        save_best=lambda: saved.append(True),
        best_file=tmp_path / "best.json",
        curve_path=tmp_path / "curve.png",
        history=[{"step": "2", "kid": "-1.0", "coverage": "1.0"}],
        k=3,
        kid_subsets=2,
    )
    assert monitor.best is None and monitor.history == []
    assert "scored with other features" in capsys.readouterr().out
