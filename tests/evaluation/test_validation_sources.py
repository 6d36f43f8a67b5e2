"""The validation share (hold-out, choice of settings on validation only, repeated hold-outs) and several named
synthetic sources (filtered against unfiltered) compared in one report."""

import numpy as np
import pytest

from configs.eval_ratios import get_config
from keras_morsa import io
from keras_morsa.data import folder, pipeline, splits
from keras_morsa.errors import DataError, UserError
from keras_morsa.evaluation import regimes, study, summary
from keras_morsa.evaluation import results as results_lib

import helpers


def _manifest(root, counts, duplicates=0):
    """A split of solid-colour images; ``duplicates`` extra files of class a copy the bytes of a_0."""
    written = helpers.write_solid_images(root, counts)
    first = next(path for path in written if path.parent.name == "a")
    for i in range(duplicates):
        (root / "a" / f"copy_{i}.png").write_bytes(first.read_bytes())
    return splits.make_split(folder.scan_image_folder(root), test_fraction=0.3, val_fraction=0.1, seed=0)


def test_validation_share_is_stratified_seeded_and_disjoint_from_train_and_test(tmp_path):
    manifest = _manifest(tmp_path / "data", {"a": 20, "b": 30}, duplicates=2)
    held = splits.hold_out_validation(manifest, 0.25, seed=3)
    rows = {split: [row for row in held.rows if row["split"] == split] for split in splits.SPLITS}
    # The test rows are untouched; the manifest's own val rows are left out; train + val = the old train.
    assert rows["test"] == [row for row in manifest.rows if row["split"] == "test"]
    old_train = {row["path"] for row in manifest.rows if row["split"] == "train"}
    assert {row["path"] for row in rows["train"] + rows["val"]} == old_train
    # Disjoint by bytes, not only by path: the copies of a_0 land on one side together.
    hashes = {split: {row["sha256"] for row in rows[split]} for split in splits.SPLITS}
    assert not hashes["val"] & hashes["train"] and not hashes["val"] & hashes["test"]
    # Stratified: round(0.25 * n_train) per class (the copies of a_0 may add up to a group's size - 1).
    for name in ("a", "b"):
        n_train = sum(row["class_name"] == name for row in manifest.rows if row["split"] == "train")
        n_val = sum(row["class_name"] == name for row in rows["val"])
        assert splits.round_half_up(0.25 * n_train) <= n_val <= splits.round_half_up(0.25 * n_train) + 2
    # Seeded: the same seed gives the same hold-out, another seed another one.
    assert splits.hold_out_validation(manifest, 0.25, seed=3).rows == held.rows
    assert splits.hold_out_validation(manifest, 0.25, seed=4).rows != held.rows
    with pytest.raises(UserError, match=r"validation share=1.0; expected a fraction of the train split in \(0, 1\)"):
        splits.hold_out_validation(manifest, 1.0, seed=0)
    small = _manifest(tmp_path / "small", {"a": 20, "b": 3})  # b keeps 2 train images: 0.1 of them rounds to 0
    with pytest.raises(DataError, match=r"class\(es\) b get no validation image with validation share 0.1"):
        splits.hold_out_validation(small, 0.1, seed=0)


def test_the_choice_takes_the_best_mean_validation_accuracy():
    runs = [
        {"lr_schedule": "constant", "val_curve": [0.6, 0.9, 0.6]},
        {"lr_schedule": "constant", "val_curve": [0.6, 0.9, 0.8]},
        {"lr_schedule": "cosine", "val_curve": [0.5, 0.8, 0.8]},
        {"lr_schedule": "cosine", "val_curve": [0.5, 0.6, 0.8]},
    ]
    choice = summary.choose_setting(runs, ["constant", "cosine"], [1, 2, 3])
    scores = {(row["lr_schedule"], row["final_evals"]): row["mean"] for row in choice["candidates"]}
    assert scores[("constant", 1)] == pytest.approx(0.7) and scores[("constant", 2)] == pytest.approx(0.8)
    assert scores[("cosine", 1)] == pytest.approx(0.8) and scores[("cosine", 3)] == pytest.approx(2.0 / 3)
    # constant/2 and cosine/1 tie at 0.8: the earlier candidate wins.
    assert choice["chosen"] == {"lr_schedule": "constant", "final_evals": 2} and choice["score"] == pytest.approx(0.8)
    assert summary.choose_setting(runs, ["cosine", "constant"], [1])["chosen"]["lr_schedule"] == "cosine"
    with pytest.raises(UserError, match="no validation run with lr_schedule='step'"):
        summary.choose_setting(runs, ["step"], [1])
    with pytest.raises(UserError, match="final_evals=4 is longer than a validation curve"):
        summary.choose_setting(runs, ["constant"], [4])


def _config(**overrides):
    config = get_config("smoke")
    config.update(regimes=("real", "synthetic"), ratios=(0.5,), batch_size=8)
    config.update(overrides)
    return config


def test_bad_sources_and_choice_settings_are_refused(tmp_path):
    with pytest.raises(UserError, match=r"synthetic source name\(s\) \['Bad-Name'\]"):
        study.run_study(_config(), tmp_path / "w", synthetic_dir={"Bad-Name": tmp_path})
    with pytest.raises(UserError, match=r"reference_source='nope' is not a synthetic source; accepted: 'a', 'b'"):
        study.run_study(_config(reference_source="nope"), tmp_path / "w", synthetic_dir={"a": tmp_path, "b": tmp_path})
    with pytest.raises(UserError, match="--synthetic_source='filtered'; expected name=folder"):
        study.parse_sources(["filtered"])
    with pytest.raises(UserError, match="once per name"):
        study.parse_sources(["a=x", "a=y"])
    assert study.parse_sources(["unfiltered=s", "filtered=f"]) == {"unfiltered": "s", "filtered": "f"}
    choose = _config()
    choose.choose.lr_schedule = ("constant", "cosine")
    with pytest.raises(UserError, match="but config.validation_share is 0: a choice needs a validation share"):
        study.run_study(choose, tmp_path / "w")
    choose.validation_share = 0.3
    choose.choose.regimes = ("real", "synthetic")
    with pytest.raises(UserError, match=r"choose.regimes=\('real', 'synthetic'\); accepted: a non-empty subset of"):
        study.run_study(choose, tmp_path / "w")
    choose.choose.regimes = ("real",)
    choose.choose.final_evals = (9,)
    with pytest.raises(UserError, match=r"config.choose candidate\(s\) \[9\]"):
        study.run_study(choose, tmp_path / "w")
    unknown = _config()
    unknown.choose.patience = 3
    with pytest.raises(UserError, match=r"config.choose has unknown key\(s\) \['patience'\]"):
        study.run_study(unknown, tmp_path / "w")
    with pytest.raises(UserError, match="validation_share=1.0"):
        regimes.plan_runs(_config(validation_share=1.0))
    with pytest.raises(UserError, match="no validation choice in .* yet: make it first without a shard"):
        choose.choose.final_evals = (1,)
        study.run_study(choose, tmp_path / "w", shard=(0, 2))


def _coloured(root, count, seed):
    rng = np.random.default_rng(seed)
    colours = {"blue": (30, 30, 220), "red": (220, 30, 30)}
    return helpers.write_image_folder(
        root,
        dict.fromkeys(colours, count),
        lambda name, _: np.clip(np.array(colours[name]) + rng.normal(0, 25, (16, 16, 3)), 0, 255).astype(np.uint8),
    )


@pytest.mark.multibackend
def test_choice_on_validation_then_two_sources_over_repeated_hold_outs(tmp_path, monkeypatch):
    real, work = tmp_path / "real", tmp_path / "work"
    _coloured(real, 14, seed=0)
    sources = {"unfiltered": tmp_path / "unfiltered", "filtered": tmp_path / "filtered"}
    for seed, path in enumerate(sources.values(), start=1):
        _coloured(path, 8, seed=seed)
        (path / "sources.txt").write_text("# the hashes of the GAN's training images would be here\n")
    config = _config(validation_share=0.3, validation_seeds=(0, 1))
    config.choose.update(lr_schedule=("constant", "cosine"), final_evals=(1, 2), regimes=("real",))

    # The choice: every image it loads (to train or to evaluate) is outside the test split.
    loaded = []
    for name in ("load_images", "classifier_dataset"):
        original = getattr(pipeline, name)
        monkeypatch.setattr(
            pipeline, name, lambda files, *a, _f=original, **k: loaded.extend(files) or _f(files, *a, **k)
        )
    assert study.run_study(config, work, synthetic_dir=sources, data_dir=real, choose_only=True) == []
    manifest = splits.SplitManifest.load(work / splits.MANIFEST_NAME, image_root=real)
    test_files = set(map(str, manifest.files("test")))
    assert loaded and not test_files & set(map(str, loaded))
    assert not (work / "runs").exists() and not (work / "report.md").exists()
    choice = io.read_json(work / results_lib.CHOICE_FILE)
    runs = [io.read_json(path) for path in sorted((work / "validation" / "runs").glob("*/*/result.json"))]
    assert len(runs) == 2 * 2  # 2 schedules x 2 hold-outs x 1 seed of real
    assert all(len(run["val_curve"]) == 2 and run["val_images"] == 6 for run in runs)  # round(0.3 * 10) x 2
    assert choice["chosen"] == summary.choose_setting(runs, ["constant", "cosine"], [1, 2])["chosen"]
    monkeypatch.undo()

    # The study with the choice, on both sources and both hold-outs.
    trained = study.run_study(config, work, synthetic_dir=sources, data_dir=real)
    assert len(trained) == 3 * 2  # (real, synthetic x 2 sources) x 2 hold-outs
    assert {row["lr_schedule"] for row in trained} == {choice["chosen"]["lr_schedule"]}
    assert {row["final_evals"] for row in trained} == {choice["chosen"]["final_evals"]}
    assert {row["real_images"] for row in trained} == {14}  # 10 train per class less 3 held out
    rows = io.read_csv(work / "results.csv")
    assert sorted(row["run_id"] for row in rows if row["split"] == "1") == [
        "mobilenet_v3_small-real-v1-s0",
        "mobilenet_v3_small-synthetic-r0.5-filtered-v1-s0",
        "mobilenet_v3_small-synthetic-r0.5-unfiltered-v1-s0",
    ]
    markdown = (work / "report.md").read_text()
    assert "## Validation choice" in markdown and "The test split was not read for the choice." in markdown
    assert f"Chosen: lr_schedule={choice['chosen']['lr_schedule']}" in markdown
    assert "intervals over hold-outs x seeds" in markdown and "| synthetic@0.5 (filtered) | 2 |" in markdown
    header = "| cell | unfiltered mean | 95 % CI | filtered mean | 95 % CI | filtered - unfiltered | 95 % CI | MDE |"
    assert header in markdown
    # The paired difference: filtered minus unfiltered, per (hold-out, seed), averaged.
    accuracy = {(row["source"], row["split"]): float(row["test_accuracy"]) for row in rows if row["source"]}
    mean = np.mean([accuracy["filtered", v] - accuracy["unfiltered", v] for v in ("0", "1")])
    line = next(line for line in markdown.splitlines() if line.startswith("| synthetic@0.5 | "))
    assert line.split(" | ")[5] == f"{100 * mean:+.1f}"
    assert io.read_json(work / results_lib.SOURCES_NAME) == [[name, str(path)] for name, path in sources.items()]
    # A merge rebuilds the same report from the files alone.
    results_lib.merge_study(config, work)
    assert (work / "report.md").read_text() == markdown
