"""The bin/ scripts' promise: a user's mistake is one line on stderr, exit status 2, no traceback."""

import errno
import importlib.util
import sys
from pathlib import Path

import pytest
from absl import flags
from ml_collections import config_flags

from keras_morsa import cli
from keras_morsa.errors import UserError, check_variant

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (REPO / "configs").glob("*.py") if p.name != "common.py")  # common.py: not a config


def _guarded(error):
    def main(argv):
        raise error

    return cli._guard(main)


@pytest.mark.parametrize(
    "error, line",
    [
        (UserError("--class='x' is not a class"), "error: --class='x' is not a class"),
        (
            OSError(errno.ENOSPC, "No space left on device", "/w/ckpt.npz"),
            "error: No space left on device: /w/ckpt.npz; free some space or use another --workdir/--out_dir",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/ro/x"),
            "error: Read-only file system: /ro/x; use a writable --workdir/--out_dir",
        ),
        (
            NotADirectoryError(errno.ENOTDIR, "Not a directory", "/w/file/jaw"),
            "error: Not a directory: /w/file/jaw; a path component is a file where a folder is expected",
        ),
    ],
)
def test_user_and_disk_errors_are_one_line_and_exit_2(error, line, capsys):
    with pytest.raises(SystemExit) as exit_:
        _guarded(error)([])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == line + "\n"


def test_a_script_takes_only_flags(capsys):
    seen = []
    main = cli._guard(cli._flags_only("bin/x", seen.append))
    main(["bin/x"])
    assert seen == [["bin/x"]]
    with pytest.raises(SystemExit) as exit_:
        main(["bin/x", "jaw", "two words"])
    assert exit_.value.code == 2
    line = "error: unexpected arguments jaw 'two words': bin/x takes only --flags (see --help)"
    assert capsys.readouterr().err == line + "\n"
    assert len(seen) == 1


@pytest.mark.parametrize(
    "args, strategy, split",
    [
        ([], "none", []),
        (["--strategy=mirrored", "--cpu_devices=2"], "mirrored", [2]),
        (["--strategy=data_parallel"], "data_parallel", []),
    ],
)
def test_strategy_flags(args, strategy, split, monkeypatch):
    from keras_morsa.training import distribute

    splits = []
    monkeypatch.setattr(distribute, "split_cpu", splits.append)
    values = flags.FlagValues()
    chosen = cli.define_strategy_flags(values)
    values(["bin/x", *args])
    assert splits == []  # the CPU is split when the strategy is asked for, not at parse time
    assert chosen() == strategy
    assert splits == split


def test_strategy_flags_refuse_an_unknown_strategy():
    values = flags.FlagValues()
    cli.define_strategy_flags(values)
    with pytest.raises(flags.IllegalFlagValueError, match="strategy.*pipeline"):
        values(["bin/x", "--strategy=pipeline"])


def test_flag_values_names_each_value_by_its_flag():
    values = flags.FlagValues()
    seed = flags.DEFINE_integer("seed", 0, "Seed.", flag_values=values)
    layer = flags.DEFINE_string("layer", None, "Layer.", flag_values=values)
    values(["bin/x", "--seed=3"])
    assert cli.flag_values(seed, layer) == {"seed": 3, "layer": None}


@pytest.mark.parametrize("error", [RuntimeError("bug"), OSError("no errno: a bug, keeps its traceback")])
def test_bugs_keep_their_traceback(error):
    with pytest.raises(type(error)):
        _guarded(error)([])


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_refuses_an_unknown_variant(path):
    module = _load(path)
    with pytest.raises(UserError, match=r"unknown config variant 'smok'; accepted: .*smoke"):
        module.get_config("smok")
    assert module.get_config("smoke") is not None and module.get_config() is not None
    assert module.get_config("").to_dict() == module.get_config().to_dict()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads_as_a_config_flag_from_another_directory(path, tmp_path, monkeypatch):
    # What bin/ scripts do with --config=<file>:smoke, run elsewhere, with `import configs` made impossible:
    # a config finds configs/common.py by its own path.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "configs", None)
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", f"{path}:smoke", flag_values=values, lock_config=True)
    values(["prog"])
    assert values.config.data.render_size == 64


def test_fastgan_size_takes_the_image_side():
    module = _load(REPO / "configs" / "fastgan_size.py")
    assert [module.get_config(arg).model.image_size for arg in (None, "256", "512", "1024")] == [256, 256, 512, 1024]
    assert module.get_config("smoke").model.image_size == 64
    assert module.get_config("512").to_dict() == {
        **module.get_config().to_dict(),
        "model": {**module.get_config().model.to_dict(), "image_size": 512},
    }
    with pytest.raises(UserError, match=r"unknown config variant '2048'; accepted: 256, 512, 1024, smoke, or none"):
        module.get_config("2048")


def test_config_module_imports_a_sibling_by_path(tmp_path):
    (tmp_path / "shared.py").write_text("VALUE = 7\n")
    assert cli.config_module(tmp_path / "mine.py", "shared").VALUE == 7
    with pytest.raises(FileNotFoundError):
        cli.config_module(tmp_path / "mine.py", "absent")


def test_check_variant():
    assert check_variant(None, ("smoke",)) is None and check_variant("smoke", ("smoke",)) == "smoke"
    with pytest.raises(UserError, match="accepted: full, smoke, or none"):
        check_variant("ful", ("full", "smoke"))


def test_prefer_onednn_sets_the_variable_only_when_unset(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert cli.prefer_onednn() == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # the user's choice wins
    assert cli.prefer_onednn() == "0"
