"""bin/run_pipeline's library call end to end on a tiny folder: every stage's outputs, index.html, resume after
a failed stage, a rerun that skips everything, settings checks, the filter's wiring, and the reports in a
real browser (headless Chromium).

SLOW PART: one smoke pipeline (module scope; a few minutes on 2 CPU cores: two 6-step GANs, three 6-step
classifier trainings, an export). Backend-agnostic orchestration: it runs in the TensorFlow pass only; the
stages' own code is tested under every backend in their modules.
"""

import html.parser
import os
import shutil

import chromium_check  # tests/chromium_check.py: pytest puts tests/ on sys.path
import pytest
from PIL import Image

from configs.pipeline import get_config
from keras_morsa import io
from keras_morsa.errors import UserError
from keras_morsa.pipeline import stages

import helpers

CLASSES = {"blue": (30, 30, 220), "red": (220, 30, 30)}


def _folder(root, count=14):
    # 14 per class: 4 test images, the fewest the smoke quality config's k=2 neighbourhoods accept.
    helpers.write_image_folder(root, dict.fromkeys(CLASSES, count), helpers.noisy_colours(CLASSES, 64))
    return root


def _mtimes(workdir):
    return {name: stages._marker_path(workdir, name).stat().st_mtime_ns for name in stages.STAGES}


def _refuse(name):
    def run(ctx):
        raise AssertionError(f"stage {name} ran again")

    return run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("pipeline")
    data, work = _folder(base / "photos"), base / "work"
    config = get_config("smoke")
    with pytest.MonkeyPatch.context() as patch:  # the quality stage dies: a killed run in the middle
        patch.setitem(stages._RUN, "quality", lambda ctx: (_ for _ in ()).throw(RuntimeError("killed")))
        with pytest.raises(RuntimeError, match="killed"):
            stages.run_pipeline(config, work, data_dir=data, progress=False)
    interrupted = {name: stages._read_marker(work, name) is not None for name in stages.STAGES}
    partial_index = (work / stages.INDEX_FILE).read_text()
    before = {name: stages._marker_path(work, name).stat().st_mtime_ns for name, done in interrupted.items() if done}
    with pytest.MonkeyPatch.context() as patch:  # resumed: the finished stages must not run again
        for name in ("split", "gan", "baseline", "generate"):
            patch.setitem(stages._RUN, name, _refuse(name))
        markers = stages.run_pipeline(config, work, data_dir=data, progress=False)
    after_resume = _mtimes(work)
    with pytest.MonkeyPatch.context() as patch:  # a rerun of a finished pipeline runs nothing
        for name in stages.STAGES:
            patch.setitem(stages._RUN, name, _refuse(name))
        rerun = stages.run_pipeline(config, work, data_dir=data, progress=False)
    return {
        "config": config,
        "data": data,
        "work": work,
        "markers": markers,
        "rerun": rerun,
        "interrupted": interrupted,
        "partial_index": partial_index,
        "before": before,
        "after_resume": after_resume,
        "after_rerun": _mtimes(work),
    }


def test_a_failed_stage_keeps_the_earlier_ones_and_the_rerun_resumes_there(run):
    assert run["interrupted"] == {name: name in ("split", "gan", "baseline", "generate") for name in stages.STAGES}
    assert "4 of 8 stages done" in run["partial_index"] and "not run yet" in run["partial_index"]
    # The resumed run skipped the four finished stages (their run functions refused to run) and kept their markers.
    assert all(run["after_resume"][name] == mtime for name, mtime in run["before"].items())
    assert set(run["markers"]) == set(stages.STAGES) and all(run["markers"].values())


def test_a_rerun_of_a_finished_pipeline_skips_every_stage(run):
    assert run["after_rerun"] == run["after_resume"]
    assert run["rerun"] == run["markers"]


def test_every_stage_writes_its_outputs(run):
    work, markers = run["work"], run["markers"]
    assert io.read_csv(work / "split" / "split_manifest.csv") == io.read_csv(run["data"] / "split_manifest.csv")
    assert markers["split"]["outputs"]["counts"] == {name: {"train": 10, "val": 0, "test": 4} for name in CLASSES}
    for name in CLASSES:
        assert io.read_json(work / "gan" / name / "done.json")["step"] == 6
        assert (work / "gan" / name / "generator_ema.keras").is_file()
        # images_needed: synthetic_only at ratio 1.0 of 10 train images (the smoke ratio 0.5 needs 5).
        assert len(list((work / "synthetic" / name).glob("*.png"))) == 10
        assert (work / "synthetic" / f"interpolation_{name}.gif").is_file()
    assert markers["generate"]["outputs"] == {"num_images": 10, "images": 20, "filtered": False}
    assert markers["baseline"]["outputs"]["regimes"] == ["real"]
    for path in (
        "study/models/real.keras",
        "study/models/best_augmented.keras",
        "study/report.html",
        "quality/quality.html",
        "gradcam/report.html",
        "gradcam/metrics.json",
    ):
        assert (work / path).is_file(), path
    # Unfiltered images: the quality report uses the baseline classifier (CAS).
    assert "models/real.keras" in io.read_json(work / "quality" / "quality.json")["classifier"]
    study_runs = {row["run_id"] for row in io.read_csv(work / "study" / "results.csv")}
    assert study_runs == {
        "mobilenet_v3_small-real-s0",
        "mobilenet_v3_small-synthetic_only-s0",
        "mobilenet_v3_small-traditional_synthetic-r0.5-s0",
    }
    real = io.read_json(work / "study" / "models" / "real.json")["test_accuracy"]  # the default, never test-picked
    export = markers["export"]["outputs"]
    assert (export["test_accuracy"], export["model"]) == (real, "real")
    assert export["version_dir"] == "export/classifier/1"
    assert (work / "export" / "classifier" / "1" / "saved_model.pb").is_file()
    assert markers["gan"]["settings"] == stages._normalised(run["config"].gan.to_dict())


class _Refs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        self.refs += [value for key, value in attrs if key in ("href", "src")]


def test_the_index_links_every_stage_with_relative_links_to_existing_files(run):
    work = run["work"]
    page = (work / stages.INDEX_FILE).read_text()
    parser = _Refs()
    parser.feed(page)
    files = [ref for ref in parser.refs if not ref.startswith("#")]
    assert {f"#{name}" for name in stages.STAGES} <= set(parser.refs)
    assert all(f"id='{name}'" in page for name in stages.STAGES)
    assert page.count("done 20") == 2 * len(stages.STAGES)  # overview and section of each stage
    for ref in files:
        assert not ref.startswith("/") and ":" not in ref, ref
        assert (work / ref).exists(), ref
    for expected in (
        "quality/quality.html",
        "study/report.html",
        "gradcam/report.html",
        "split/split_manifest.csv",
        "export/classifier/1/saved_model.pb",
        "gan/blue/samples/step_000006.png",
        "synthetic/interpolation_red.gif",
        "gradcam/grids/real_correct.png",
    ):
        assert expected in files, expected


def _needs_chromium():
    if chromium_check.chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")


def test_the_index_and_every_report_open_in_a_browser(run, tmp_path):
    _needs_chromium()
    work = run["work"]
    pages = [work / stages.INDEX_FILE] + [
        work / p for p in ("quality/quality.html", "study/report.html", "gradcam/report.html")
    ]
    for page in pages:
        seen = chromium_check.check_page(page, tmp_path / "profile")
        assert seen["images"], page
        assert seen["broken_images"] == [] and seen["broken_links"] == [], (page, seen)
    index = chromium_check.check_page(work / stages.INDEX_FILE, tmp_path / "profile")
    assert len(index["links"]) > len(stages.STAGES) and any(link["anchor"] for link in index["links"])


def test_the_browser_check_sees_a_missing_image_and_broken_links(tmp_path):
    _needs_chromium()
    Image.new("RGB", (3, 2), "red").save(tmp_path / "ok.png")
    (tmp_path / "page.html").write_text(
        "<!DOCTYPE html><html><body><h2 id='here'>x</h2><img src='ok.png'><img src='gone.png'>"
        "<a href='#here'>a</a><a href='#nowhere'>b</a><a href='ok.png'>c</a><a href='gone.csv'>d</a>"
        "<a href='https://example.invalid/'>e</a></body></html>"
    )
    seen = chromium_check.check_page(tmp_path / "page.html", tmp_path / "profile")
    assert [(image["src"], image["width"]) for image in seen["images"]] == [("ok.png", 3), ("gone.png", 0)]
    assert seen["broken_images"] == ["gone.png"]
    assert seen["broken_links"] == ["#nowhere", "gone.csv", "https://example.invalid/"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.png", "page.html", "profile"]  # the probe is gone


def test_changed_settings_of_a_finished_stage_are_refused_and_redo_runs_it_again(run, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(run["work"], work)
    config = get_config("smoke")
    config.gradcam.max_images = 3
    with pytest.raises(
        UserError,
        match=r"stage gradcam of .* other settings \(max_images: 4 -> 3\); pass "
        r"--redo=gradcam",
    ):
        stages.run_pipeline(config, work, data_dir=run["data"], progress=False)
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        for name in stages.STAGES[:6]:
            patch.setitem(stages._RUN, name, _refuse(name))
        for name in ("gradcam", "export"):
            patch.setitem(stages._RUN, name, lambda ctx, name=name: calls.append(name) or {})
        markers = stages.run_pipeline(config, work, data_dir=run["data"], redo="gradcam", progress=False)
    assert calls == ["gradcam", "export"]
    assert markers["gradcam"]["settings"]["max_images"] == 3 and markers["export"]["outputs"] == {}
    with pytest.raises(UserError, match="--redo=nope; accepted: split, gan, baseline"):
        stages.run_pipeline(config, work, data_dir=run["data"], redo="nope")


def test_another_data_folder_is_refused_for_a_finished_split(run, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(run["work"], work, ignore=shutil.ignore_patterns("gan", "study", "synthetic", "export"))
    other = _folder(tmp_path / "other")
    with pytest.raises(UserError, match=r"stage split .* other settings \(root: "):
        stages.run_pipeline(get_config("smoke"), work, data_dir=other, progress=False)


def test_generate_filters_with_the_baseline_classifier_and_quality_then_uses_random_features(
    run, tmp_path, monkeypatch
):
    from keras_morsa.quality import report as quality_report
    from keras_morsa.training import generate as generate_lib

    calls = {}
    monkeypatch.setattr(generate_lib, "generate", lambda *args, **kwargs: calls.setdefault("generate", kwargs) and [])
    monkeypatch.setattr(
        quality_report, "gan_quality", lambda *args, **kwargs: calls.setdefault("quality", kwargs) and {"mean": {}}
    )
    config = get_config("smoke")
    config.generate.filter = "classifier"
    ctx = stages._Context(config, run["work"], run["data"], False)
    assert stages._generate(ctx)["filtered"] is True
    assert calls["generate"]["filter"] == "classifier"
    assert calls["generate"]["classifier"] == str(run["work"] / "study" / "models" / "real.keras")
    stages._quality(ctx)
    assert calls["quality"]["features"] == "random" and "classifier" not in calls["quality"]
    # No baseline classifier (a study without the real regime): nothing to filter with.
    calls.clear()
    ctx = stages._Context(config, tmp_path, run["data"], False)
    assert stages._generate(ctx)["filtered"] is False and calls["generate"]["filter"] == "none"
    stages._quality(ctx)
    assert calls["quality"]["classifier"] is None


def test_the_baseline_is_the_study_without_synthetic_regimes():
    config = get_config()
    baseline = stages._baseline_config(config)
    assert baseline.regimes == ("real", "traditional") and config.study.regimes[0] == "real"
    assert baseline.to_dict() == {**config.study.to_dict(), "regimes": ("real", "traditional")}
    config.study.regimes = ("traditional", "synthetic")
    assert stages._baseline_config(config) is None


def test_the_data_section_is_one_for_every_stage():
    config = get_config("smoke")
    config.data.images_per_class = 20
    config.study.data.test_fraction = 0.25
    for section in (config.gan, config.quality, config.study):
        assert (section.data.images_per_class, section.data.test_fraction) == (20, 0.25)
    assert get_config().gan.data.render_size == get_config().study.data.render_size == 256


def test_bad_pipeline_settings_are_refused_before_any_stage(tmp_path):
    for key, value, message in (
        ("filter", "best", "config.generate.filter='best'; accepted: none, classifier"),
        ("num_images", -1, "config.generate.num_images=-1"),
        ("checkpoint", "last", "config.generate.checkpoint='last'"),
    ):
        config = get_config("smoke")
        config.generate[key] = value
        with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
            stages.run_pipeline(config, tmp_path / "work")
    config = get_config("smoke")
    config.export.model = "best"  # "whichever tested better" is not offered: it would choose on the test split
    with pytest.raises(UserError, match="config.export.model='best'; accepted: real, best_augmented"):
        stages.run_pipeline(config, tmp_path / "work")
    assert not (tmp_path / "work").exists()


def test_bin_run_pipeline_rerun_skips_every_stage(run, run_script):
    result = run_script(
        "run_pipeline",
        f"--workdir={run['work']}",
        f"--data_dir={run['data']}",
        "--config=configs/pipeline.py:smoke",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("done already") == len(stages.STAGES)
    assert f"pipeline done: {run['work'] / stages.INDEX_FILE}" in result.stdout
    assert _mtimes(run["work"]) == run["after_rerun"]


def test_images_needed_is_the_largest_draw_of_the_study():
    class Manifest:
        def counts(self):
            return {"a": {"train": 10, "val": 0, "test": 4}, "b": {"train": 7, "val": 0, "test": 3}}

    study = get_config().study  # ratios up to 1.25, synthetic_only at 1.0
    assert stages.images_needed(study, Manifest()) == 13  # round(1.25 * 10), halves up
    study.regimes, study.synthetic_only_ratio = ("real", "synthetic_only"), 1.5
    assert stages.images_needed(study, Manifest()) == 15
    study.regimes = ("real", "share")
    assert stages.images_needed(study, Manifest()) == 10
    study.regimes = ("real", "traditional")
    assert stages.images_needed(study, Manifest()) == 1
