import os

import pytest

from keras_morsa import io


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.json"
    io.write_json(target, {"x": 1})
    io.write_json(target, {"x": 2})
    assert io.read_json(target) == {"x": 2}
    assert os.listdir(target.parent) == ["a.json"]


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_csv_roundtrip_and_hash(tmp_path):
    rows = [{"a": "1", "b": "é"}, {"a": "2", "b": "x"}]
    io.write_csv(tmp_path / "r.csv", rows, ["a", "b"])
    assert io.read_csv(tmp_path / "r.csv") == rows
    (tmp_path / "f").write_bytes(b"abc")
    assert io.sha256_file(tmp_path / "f") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
