"""The bin/ scripts' promise: a user's mistake is one line on stderr, exit status 2, no traceback."""

import errno
import importlib.util
from pathlib import Path

import pytest

from keras_morsa import cli
from keras_morsa.errors import UserError, check_variant

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.py"))


def _guarded(error):
    def main(argv):
        raise error

    return cli._guard(main)


@pytest.mark.parametrize("error, line", [
    (UserError("--class='x' is not a class"), "error: --class='x' is not a class"),
    (OSError(errno.ENOSPC, "No space left on device", "/w/ckpt.npz"),
     "error: No space left on device: /w/ckpt.npz; free some space or use another --workdir/--out_dir"),
    (OSError(errno.EROFS, "Read-only file system", "/ro/x"),
     "error: Read-only file system: /ro/x; use a writable --workdir/--out_dir"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/w/file/jaw"),
     "error: Not a directory: /w/file/jaw; a path component is a file where a folder is expected"),
])
def test_user_and_disk_errors_are_one_line_and_exit_2(error, line, capsys):
    with pytest.raises(SystemExit) as exit_:
        _guarded(error)([])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == line + "\n"


@pytest.mark.parametrize("error", [RuntimeError("bug"), OSError("no errno: a bug, keeps its traceback")])
def test_bugs_keep_their_traceback(error):
    with pytest.raises(type(error)):
        _guarded(error)([])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_refuses_an_unknown_variant(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(UserError, match=r"unknown config variant 'smok'; accepted: .*smoke"):
        module.get_config("smok")
    assert module.get_config("smoke") is not None and module.get_config() is not None
    assert module.get_config("").to_dict() == module.get_config().to_dict()


def test_check_variant():
    assert check_variant(None, ("smoke",)) is None and check_variant("smoke", ("smoke",)) == "smoke"
    with pytest.raises(UserError, match="accepted: full, smoke, or none"):
        check_variant("ful", ("full", "smoke"))


def test_prefer_onednn_sets_the_variable_only_when_unset(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert cli.prefer_onednn() == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # the user's choice wins
    assert cli.prefer_onednn() == "0"
