"""The round-two regimes: share@p, weighted+synthetic@r, pretrain_synthetic; cosine schedule, final mean,
and the report's verdicts against real and traditional with the minimum detectable effect."""

import numpy as np
import pytest

from configs.eval_ratios import get_config
from keras_morsa import io
from keras_morsa.data import pipeline, splits
from keras_morsa.errors import UserError
from keras_morsa.evaluation import regimes, report, study, summary

import helpers

CLASSES = ("a", "b")


def _folder(root, count, value):
    """Two classes of flat 16-px images; every pixel of every image of the folder is ``value``."""

    def draw(name, i):
        pixels = np.full((16, 16, 3), value, np.uint8)
        pixels[0, 0] = (i, CLASSES.index(name), 0)  # distinct bytes: no duplicate files
        return pixels

    helpers.write_image_folder(root, dict.fromkeys(CLASSES, count), draw)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("strategies")
    real = _folder(base / "real", 10, value=250)  # real images white, synthetic black: a pixel tells them apart
    synthetic = _folder(base / "synthetic", 12, value=5)
    (synthetic / "sources.txt").write_text("# the hashes of the GAN's training images would be here\n")
    manifest = splits.load_or_create_split(real, test_fraction=0.3, seed=0)
    return manifest, {"": pipeline.list_synthetic(synthetic, manifest.class_names)}, base


def _config(**overrides):
    config = get_config("smoke")
    config.image_size, config.batch_size = 16, 8
    config.update(overrides)
    return config


def test_plan_names_share_runs_and_refuses_bad_parameters():
    config = _config(regimes=("share", "pretrain_synthetic", "weighted+synthetic"), shares=(0.1, 0.25))
    cells = [run.cell for run in regimes.plan_runs(config)]
    assert cells == ["share@0.1", "share@0.25", "pretrain_synthetic", "weighted+synthetic@0.5"]
    assert regimes.plan_runs(config)[0].run_id == "mobilenet_v3_small-share-p0.1-s0"
    with pytest.raises(UserError, match=r"config.shares=\(0.1, 0.6\).*\(0, 0.5\]"):
        regimes.plan_runs(_config(regimes=("share",), shares=(0.1, 0.6)))
    with pytest.raises(UserError, match="pretrain_share=1.0"):
        regimes.plan_runs(_config(regimes=("pretrain_synthetic",), pretrain_share=1.0))
    for key, value, match in (
        ("lr_schedule", "step", "'step'; accepted: constant, cosine"),
        ("final_evals", 3, "final_evals=3; expected 1 to the 2 evaluations"),
        ("archs", ("mobilenet_v3_small", "resnet"), r"config.recipes has no entry for \['resnet'\]"),
    ):
        with pytest.raises(UserError, match=match):
            study.run_study(_config(**{key: value}), "unused")


def _first_batches(run, training_set, config, count):
    phases = study._pipelines(run, training_set, config, num_classes=2)
    return phases, [batch for _, batch in zip(range(count), phases[0][0])]


def test_weighted_synthetic_rows_get_the_weight_and_smoothed_labels(data):
    manifest, synthetic, _ = data
    config = _config(synthetic_weight=0.25, synthetic_label_smoothing=0.2)
    run = regimes.Run("mobilenet_v3_small", "weighted+synthetic", 0.5, 0)
    training_set = study._training_set(run, manifest, synthetic, config)
    assert training_set.counts == (14, 8)  # 7 real per class, round(3.5) = 4 synthetic per class
    _, batches = _first_batches(run, training_set, config, 6)
    for images, targets, weights in batches:
        fake = images.numpy()[:, 8, 8, 0] < 128
        assert np.all(weights.numpy() == np.where(fake, 0.25, 1.0))
        # Real rows keep hard one-hot labels; synthetic rows are (1 - 0.2) * one_hot + 0.2 / 2.
        assert np.allclose(np.sort(targets.numpy(), axis=1), np.where(fake[:, None], [0.1, 0.9], [0.0, 1.0]))
    assert any(images.numpy()[:, 8, 8, 0].min() < 128 for images, _, _ in batches)


def test_share_draws_synthetic_examples_with_probability_p(data):
    manifest, synthetic, _ = data
    config = _config()
    run = regimes.Run("mobilenet_v3_small", "share", 0.25, 0)
    training_set = study._training_set(run, manifest, synthetic, config)
    assert training_set.counts == (14, 24)  # the whole synthetic pool is available
    phases, batches = _first_batches(run, training_set, config, 100)
    assert len(phases) == 1
    fake = np.concatenate([images.numpy()[:, 8, 8, 0] < 128 for images, _, _ in batches])
    assert len(fake) == 800 and 0.20 < fake.mean() < 0.30  # binomial(800, 0.25): std 0.015
    for _, _, weights in batches:
        assert np.all(weights.numpy() == 1.0)


def test_pretrain_synthetic_splits_the_budget_synthetic_first(data):
    manifest, synthetic, _ = data
    config = _config(steps=12, eval_every=3, pretrain_share=0.5)
    run = regimes.Run("mobilenet_v3_small", "pretrain_synthetic", None, 0)
    training_set = study._training_set(run, manifest, synthetic, config)
    phases = study._pipelines(run, training_set, config, num_classes=2)
    assert [epochs for _, epochs in phases] == [2, 2]
    first = next(iter(phases[0][0]))[0].numpy()[:, 8, 8, 0]
    second = next(iter(phases[1][0]))[0].numpy()[:, 8, 8, 0]
    assert np.all(first < 128) and np.all(second > 128)
    assert training_set.counts == (14, 14)  # synthetic_only_ratio 1: as many synthetic as real per class


@pytest.mark.multibackend
def test_study_runs_the_new_regimes_and_reports_verdicts(data):
    manifest, _, base = data
    config = _config(
        regimes=("real", "traditional", "share", "pretrain_synthetic"),
        shares=(0.25,),
        seeds=(0, 1),
        steps=6,
        eval_every=3,
        lr_schedule="cosine",
        final_evals=2,
        image_size=32,
    )
    # Every regime trains with the architecture's recipe; this one takes the warm-up, clipping and SGD paths.
    config.recipes.mobilenet_v3_small.update(
        optimizer="sgd", learning_rate=0.01, warmup_steps=2, clipnorm=1.0, conv_init="he_normal"
    )
    rows = study.run_study(config, base / "work", synthetic_dir=base / "synthetic", data_dir=manifest.image_root)
    by_cell = {}
    for row in rows:
        by_cell.setdefault(row["cell"], []).append(row)
        assert row["final_evals"] == 2 and row["lr_schedule"] == "cosine"
        assert row["recipe"] == "SGD-Nesterov 0.9 0.01, 2-step warm-up, clipnorm 1, He-normal kernels"
        curve = io.read_csv(base / "work" / "runs" / row["run_id"] / "curve.csv")
        assert [point["step"] for point in curve] == ["3", "6"]
        assert row["test_accuracy"] == pytest.approx(np.mean([float(p["test_accuracy"]) for p in curve]))
    assert sorted(by_cell) == ["pretrain_synthetic", "real", "share@0.25", "traditional"]
    markdown = (base / "work" / "report.md").read_text()
    assert "Recipes (the same in every regime): mobilenet_v3_small: SGD-Nesterov 0.9 0.01, 2-step" in markdown
    assert "Best cell against real:" in markdown and "Best cell against traditional:" in markdown
    assert "| MDE |" in markdown and "](accuracy_by_cell_mobilenet_v3_small.png)" in markdown


def test_verdicts_say_helps_only_above_zero_and_state_the_detectable_effect():
    def rows(cell, regime, accuracies):
        return [
            {
                "arch": "m",
                "regime": regime,
                "ratio": None,
                "cell": cell,
                "seed": seed,
                "test_accuracy": acc,
                "macro_f1": acc,
            }
            for seed, acc in enumerate(accuracies)
        ]

    results = rows("real", "real", [0.60, 0.62, 0.64]) + rows("traditional", "traditional", [0.61, 0.78, 0.62])
    results += rows("share@0.1", "share", [0.70, 0.72, 0.74]) + rows(
        "pretrain_synthetic", "pretrain_synthetic", [0.50, 0.52, 0.54]
    )
    found = summary.verdicts(summary.summarize(results), "m")
    assert found["real"]["cell"] == "share@0.1" and found["real"]["verdict"] == "helps"
    assert found["real"]["difference"]["mean"] == pytest.approx(0.10)
    assert found["traditional"]["verdict"].startswith("no clear difference (could detect about")
    cells = {row["cell"]: row for row in summary.summarize(results)}
    assert cells["pretrain_synthetic"]["vs_real"]["high"] < 0
    assert cells["real"]["vs_real"] is None and cells["traditional"]["vs_traditional"] is None


def test_per_class_change_is_paired_over_the_seeds_that_ran_both():
    def row(cell, seed, blue, red):
        return {"arch": "m", "cell": cell, "seed": seed, "per_class_accuracy": {"blue": blue, "red": red}}

    results = [
        row("real", 0, 0.5, 0.9),
        row("real", 1, 0.7, 0.9),
        row("share@0.1", 0, 0.6, 0.8),
        row("share@0.1", 1, 0.9, 0.9),
        row("share@0.1", 2, 0.0, 0.0),  # seed 2 has no real run: unpaired
        {**row("real", 0, 0.0, 0.0), "arch": "other"},
    ]
    change = report.per_class_change(results, "m", "share@0.1")
    assert change["blue"] == pytest.approx((0.6, 0.75, 0.15)) and change["red"] == pytest.approx((0.9, 0.85, -0.05))
    assert report.per_class_change(results, "m", "real") == {} and report.per_class_change(results, "m", "x") == {}
