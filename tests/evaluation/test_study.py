"""The ratio study end to end on a tiny dataset: files, curves, report, models, resume, shard + merge.

One study run (module scope) serves several tests: compiling MobileNetV3 costs ~30 s per backend.
"""

import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from configs.eval_ratios import get_config
from keras_morsa import io
from keras_morsa.errors import DataError, UserError
from keras_morsa.evaluation import regimes, study
from keras_morsa.evaluation import results as results_lib
from keras_morsa.models.classifier import class_names_of

import helpers

SMOKE = f"--config={Path(__file__).resolve().parents[2] / 'configs' / 'eval_ratios.py'}:smoke"
COLOURS = {"blue": (30, 30, 220), "green": (30, 200, 30), "red": (220, 30, 30)}
RUN_IDS = [
    "mobilenet_v3_small-real-s0",
    "mobilenet_v3_small-synthetic_only-s0",
    "mobilenet_v3_small-traditional_synthetic-r0.5-s0",
]


def _folder(root, count, seed):
    helpers.write_image_folder(root, dict.fromkeys(COLOURS, count), helpers.noisy_colours(COLOURS, 32, seed=seed))
    return root


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    base = tmp_path_factory.mktemp("study")
    real = _folder(base / "real", 10, seed=0)
    synthetic = _folder(base / "synthetic", 8, seed=1)
    (synthetic / "sources.txt").write_text("# the hashes of the GAN's training images would be here\n")
    # What bin/gan_quality leaves in the folder (this one has no manifest.csv, so its stamp is None).
    io.write_json(
        synthetic / "quality.json",
        {
            "settings": {"features": "random CNN", "synthetic_manifest_sha256": None},
            "classes": {
                name: {"kid": 0.01 * i, "precision": 0.5, "coverage": 0.1 * i, "memorised_share": 0.0, "cas": 0.3 * i}
                for i, name in enumerate(COLOURS)
            },
        },
    )
    config = get_config("smoke")
    trained = study.run_study(config, base / "work", synthetic_dir=synthetic, data_dir=real)
    return {"config": config, "work": base / "work", "real": real, "synthetic": synthetic, "trained": trained}


@pytest.mark.multibackend
def test_sweep_writes_results_curves_report_and_plots(sweep):
    work = sweep["work"]
    rows = io.read_csv(work / "results.csv")
    assert sorted(row["run_id"] for row in rows) == sorted(RUN_IDS)
    by_id = {row["run_id"]: row for row in rows}
    synthetic_only = by_id["mobilenet_v3_small-synthetic_only-s0"]
    mixed = by_id["mobilenet_v3_small-traditional_synthetic-r0.5-s0"]
    assert int(synthetic_only["real_images"]) == 0 and int(synthetic_only["synthetic_images"]) > 0
    # 7 real training images per class; ratio 0.5 adds round(3.5) = 4 (halves round up) per class.
    assert (int(mixed["real_images"]), int(mixed["synthetic_images"])) == (21, 12)
    for row in rows:
        assert row["steps"] == "6" and 0.0 <= float(row["test_accuracy"]) <= 1.0
        assert {"acc_blue", "acc_green", "acc_red", "macro_f1", "wall_time_s"} <= set(row)
    curves = io.read_csv(work / "curves.csv")
    assert sorted((c["run_id"], c["step"]) for c in curves) == sorted((r, s) for r in RUN_IDS for s in ("3", "6"))
    final = {c["run_id"]: float(c["test_accuracy"]) for c in curves if c["step"] == "6"}
    assert all(final[r] == pytest.approx(float(by_id[r]["test_accuracy"])) for r in RUN_IDS)
    assert io.read_csv(work / "split_manifest.csv") == io.read_csv(sweep["real"] / "split_manifest.csv")
    markdown = (work / "report.md").read_text()
    assert "6 optimizer steps of batch 8" in markdown and "| traditional+synthetic@0.5 |" in markdown
    assert "t-interval" in markdown.replace("Student-t interval", "t-interval")
    assert "<table>" in (work / "report.html").read_text()
    # The synthetic folder's quality, beside per-class accuracy of real and the one mixing cell.
    assert io.read_json(work / "synthetic_quality.json") == io.read_json(sweep["synthetic"] / "quality.json")
    assert (
        "| class | KID | precision | coverage | memorised % | CAS | real | traditional+synthetic@0.5 | change |"
        in markdown
        and "| red | 0.0200 | 0.50 | 0.20 | 0.0 | 60.0 |" in markdown
    )
    assert "Spearman rank correlation of cas with the change over 3 classes" in markdown
    for png in (
        "curves_mobilenet_v3_small.png",
        "accuracy_vs_ratio_mobilenet_v3_small.png",
        "confusion_mobilenet_v3_small_real.png",
        "confusion_mobilenet_v3_small_best.png",
        "quality_vs_change_mobilenet_v3_small.png",
    ):
        assert (work / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in markdown


@pytest.mark.multibackend
def test_kept_models_reload_and_inference_is_not_stuck_at_one_class(sweep):
    work = sweep["work"]
    real = keras.saving.load_model(work / "models" / "real.keras")
    best = keras.saving.load_model(work / "models" / "best_augmented.keras")
    assert class_names_of(real) == class_names_of(best) == ["blue", "green", "red"]
    best_info = io.read_json(work / "models" / "best_augmented.json")
    results = {row["run_id"]: row for row in results_lib.load_results(work)}
    augmented = [row for row in results.values() if row["regime"] != "real"]
    assert best_info["test_accuracy"] == max(row["test_accuracy"] for row in augmented)
    # Only the best augmented run keeps its model file; the first seed's real run keeps its own.
    assert sorted(r for r, row in results.items() if row["has_model"]) == sorted(
        ["mobilenet_v3_small-real-s0", best_info["run_id"]]
    )
    # Inference mode (BatchNorm moving statistics) must not collapse onto one class.
    images = np.stack([np.full((32, 32, 3), colour, np.float32) for colour in COLOURS.values()])
    predicted = np.argmax(keras.ops.convert_to_numpy(real.predict(images, verbose=0)), axis=-1)
    assert len(set(predicted.tolist())) > 1
    confusion = np.asarray(results["mobilenet_v3_small-real-s0"]["confusion"])
    assert np.count_nonzero(confusion.sum(axis=0)) > 1


@pytest.mark.multibackend
def test_rerun_skips_finished_runs(sweep):
    marker = sweep["work"] / "runs" / RUN_IDS[0] / results_lib.RESULT_NAME
    before = marker.stat().st_mtime_ns
    again = study.run_study(sweep["config"], sweep["work"], synthetic_dir=sweep["synthetic"], data_dir=sweep["real"])
    assert again == [] and marker.stat().st_mtime_ns == before
    assert len(sweep["trained"]) == len(RUN_IDS)


def test_shard_restart_and_merge_equal_a_single_run(sweep, tmp_path):
    config, work = sweep["config"], sweep["work"]
    plan = regimes.plan_runs(config)
    first, second = study.shard_runs(plan, (0, 2)), study.shard_runs(plan, (1, 2))
    assert sorted(first + second, key=plan.index) == plan and not set(first) & set(second)
    # Shard 0 finished elsewhere (its runs copied in); shard 1 was killed inside its first run.
    shards = tmp_path / "shards"
    for run in first:
        shutil.copytree(work / "runs" / run.run_id, shards / "runs" / run.run_id)
    partial = shards / "runs" / second[0].run_id
    partial.mkdir(parents=True)
    (partial / "curve.csv").write_text("step,test_accuracy,train_loss,train_accuracy\n3,0.1,1,0\n")
    trained = study.run_study(config, shards, synthetic_dir=sweep["synthetic"], data_dir=sweep["real"], shard=(1, 2))
    assert [row["run_id"] for row in trained] == [run.run_id for run in second]
    assert not (shards / "results.csv").exists()
    # The killed run started over: its curve is the uninterrupted run's, step for step, not the partial one.
    steps = [row["step"] for row in io.read_csv(partial / "curve.csv")]
    assert steps == [row["step"] for row in io.read_csv(work / "runs" / second[0].run_id / "curve.csv")]
    single_by_id = {row["run_id"]: row for row in io.read_csv(work / "results.csv")}
    metrics = ("test_accuracy", "macro_f1", "wall_time_s") + tuple(f"acc_{name}" for name in COLOURS)
    for row in trained:
        for key, value in single_by_id[row["run_id"]].items():
            if key not in metrics:
                assert str(row[key] if row[key] is not None else "") == value, key
    # Merge: with the retrained runs' results swapped for the single run's (TF CPU training is not
    # bit-reproducible when threads are scheduled differently), the merged files equal the single run's.
    for run in second:
        for name in (results_lib.RESULT_NAME, "curve.csv"):
            shutil.copy(work / "runs" / run.run_id / name, shards / "runs" / run.run_id / name)
    results_lib.merge_study(config, shards)
    merged, single = io.read_csv(shards / "results.csv"), io.read_csv(work / "results.csv")
    for row in merged + single:
        row.pop("wall_time_s")
    assert merged == single
    assert (shards / "report.md").read_text() == (work / "report.md").read_text()


def test_missing_synthetic_dir_skips_or_refuses(tmp_path, caplog):
    config = get_config("smoke")
    config.regimes = ("synthetic",)
    with caplog.at_level("WARNING"), pytest.raises(UserError, match="every regime"):
        study.run_study(config, tmp_path / "w", data_dir=tmp_path)
    assert "no synthetic_dir given: skipping the 1 runs of the synthetic regimes" in caplog.text
    config.require_synthetic = True
    with pytest.raises(UserError, match="require_synthetic"):
        study.run_study(config, tmp_path / "w", data_dir=tmp_path)


def test_plan_and_argument_errors():
    config = get_config()
    plan = regimes.plan_runs(config)
    assert len(plan) == (2 + 1 + 2 * 5) * 3
    assert plan[0].run_id == "mobilenet_v3_small-real-s0" and plan[-1].cell == "traditional+synthetic@1.25"
    assert study.parse_shard("1/4") == (1, 4) and study.parse_shard(None) is None
    for bad in ("4/4", "a/b", "1"):
        with pytest.raises(UserError, match="shard="):
            study.parse_shard(bad)
    config.regimes = ("real", "mixup")
    with pytest.raises(UserError, match="mixup"):
        regimes.plan_runs(config)
    config = get_config("smoke")
    config.eval_every = 4
    with pytest.raises(UserError, match="eval_every dividing steps"):
        study.run_study(config, "unused")
    config = get_config("smoke")
    config.backbone_library = "timm"
    with pytest.raises(UserError, match=r"backbone_library='timm'; accepted: keras_cv, keras_hub"):
        study.run_study(config, "unused")


def test_script_merge_builds_the_same_results(sweep, tmp_path, run_script):
    work = tmp_path / "work"
    shutil.copytree(sweep["work"] / "runs", work / "runs")
    merged = run_script("eval_ratios", SMOKE, f"--workdir={work}", "--merge")
    assert merged.returncode == 0, merged.stderr
    assert io.read_csv(work / "results.csv") == io.read_csv(sweep["work"] / "results.csv")
    assert (work / "models" / "best_augmented.keras").exists()


def test_a_class_without_test_images_is_refused_before_training(tmp_path):
    data = tmp_path / "data"
    for name, count in (("many", 6), ("lonely", 1)):  # 30 % of one image rounds to no test image
        (data / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((16, 16, 3), 30 * i + (name == "many"), np.uint8)).save(data / name / f"{i}.png")
    config = get_config("smoke")
    config.regimes = ("real",)
    with pytest.raises(
        DataError,
        match=r"class\(es\) lonely have no test images in the split of .*data: their "
        r"accuracy \(and the overall figure\) would be undefined",
    ):
        study.run_study(config, tmp_path / "study", data_dir=data)
    assert not (tmp_path / "study" / "runs").exists()


def test_non_numeric_ratios_are_refused():
    config = get_config("smoke")
    config.ratios = ("abc",)
    with pytest.raises(UserError, match=r"config.ratios=\('abc',\); expected numbers > 0"):
        regimes.plan_runs(config)
