import json
import os
import re
import socket
import subprocess
import sys

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
    assert io.sha256_file(tmp_path / "f") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def _lock_record(folder, **record):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / io.LOCK_NAME).write_text(json.dumps(record))


def test_a_held_folder_stops_the_second_process_naming_the_holder(tmp_path):
    with io.folder_lock(tmp_path) as lock:
        held = json.loads(lock.read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        with pytest.raises(
            io.FolderLocked,
            match=rf"{tmp_path} is in use by pid {os.getpid()} on "
            rf"{socket.gethostname()} since {re.escape(held['started'])}; wait .* delete {lock}",
        ):
            with io.folder_lock(tmp_path):
                pass
    assert not lock.exists()  # released
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary file left


def test_a_stale_lock_of_a_dead_process_is_replaced_and_another_hosts_is_respected(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    _lock_record(tmp_path / "a", pid=int(dead.stdout), host=socket.gethostname(), started="yesterday")
    with io.folder_lock(tmp_path / "a") as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    _lock_record(tmp_path / "b", pid=os.getppid(), host=socket.gethostname(), started="t0")  # alive
    with pytest.raises(io.FolderLocked, match=rf"pid {os.getppid()} on .* since t0"):
        with io.folder_lock(tmp_path / "b"):
            pass
    _lock_record(tmp_path / "c", pid=int(dead.stdout), host="elsewhere", started="t1")
    with pytest.raises(io.FolderLocked, match="pid .* on elsewhere since t1"):
        with io.folder_lock(tmp_path / "c"):
            pass


def test_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = int(
        subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
        ).stdout
    )
    names = {
        f"ckpt/.ckpt_00000004.npz.tmp{dead}": False,
        f".log.csv.tmp{os.getpid()}": True,
        ".generator_ema.tmp.keras": False,
        f".lock.{dead}.tmp": False,
        f".lock.{os.getppid()}.tmp": True,
        "kept.png": True,
        ".hidden_but_ours.txt": True,
    }
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    removed = io.remove_temp_files(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in removed) == sorted(
        n for n, keep in names.items() if not keep
    )
    assert all((tmp_path / name).exists() == keep for name, keep in names.items())
