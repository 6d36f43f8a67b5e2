"""Small file helpers shared by every stage: atomic writes, hashing, CSV rows, JSON.

Anything a killed run must not leave half-written goes through :func:`atomic_write` (write a temporary file
in the same folder, flush and fsync it, then ``os.replace`` it over the target, which is atomic on POSIX).
A folder one process writes at a time (a GAN class folder, a study workdir, a synthetic folder) is held with
:func:`folder_lock`.
"""

import contextlib
import csv
import datetime
import hashlib
import json
import os
import re
import socket
from pathlib import Path

from keras_morsa.errors import UserError

LOCK_NAME = ".lock"
# The hidden temporary files of atomic_write (".name.tmp<pid>"), of model saves (".stem.tmp.keras") and of
# folder_lock (".lock.<pid>.tmp"); group 1 or 2 is the writer's pid where the name has one.
_TEMP_FILE = re.compile(r"^\..+\.(\d+)\.tmp$|^\..+\.tmp(\d*)(?:\.keras)?$")


class FolderLocked(UserError):
    """Another live process holds the folder's lock; the message names its pid, host and start time."""


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Opens a temporary sibling of ``path`` for writing; on success renames it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path, obj):
    """Writes ``obj`` as indented JSON, atomically."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.write("\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_csv(path, rows, fieldnames):
    """Writes dict rows as CSV with a header, atomically."""
    with atomic_write(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def sha256_file(path, chunk_size=1 << 20):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@contextlib.contextmanager
def folder_lock(folder, name=LOCK_NAME):
    """Holds ``<folder>/.lock`` while the block runs, so a second process on the same folder stops at once.

    The lock file records ``pid``, ``host`` and ``started`` (UTC). It is written completely to a private
    temporary file (opened with ``O_EXCL``) and then hard-linked to ``.lock``: the link fails if the lock
    exists, so taking it is atomic and a reader never sees a half-written record. A lock whose holder is a
    dead process on this host (``os.kill(pid, 0)`` fails) is stale: it is replaced. A lock from another
    host cannot be checked and is respected. The lock is removed when the block ends (a SIGKILL leaves it,
    stale, for the next run to recognise).

    Args:
        folder: the folder to hold (created).
        name: the lock file's name; processes that may share the folder (the shards of one study) each take
            their own.

    Raises:
        FolderLocked: a live process (or one on another host) holds it; the message names pid, host, start.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / name
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = folder / f"{name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())
    try:
        for _ in range(3):
            try:
                os.link(tmp, lock)
                break
            except FileExistsError:
                try:
                    holder = read_json(lock)
                except (OSError, ValueError):
                    continue  # removed (or replaced) meanwhile: try again
                if holder.get("host") == record["host"] and not _alive(int(holder.get("pid", -1))):
                    lock.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                raise FolderLocked(
                    f"{folder} is in use by pid {holder.get('pid')} on {holder.get('host')} since "
                    f"{holder.get('started')}; wait for it to finish, or delete {lock} if that process is gone"
                ) from None
        else:
            raise FolderLocked(f"{folder}: could not take {lock} (other processes keep replacing it); retry")
    finally:
        tmp.unlink(missing_ok=True)
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError, ValueError):
            if read_json(lock).get("pid") == record["pid"]:
                lock.unlink()


def remove_temp_files(folder):
    """Deletes the hidden temporary files a killed process left under ``folder``; returns their paths.

    Call it while holding ``folder``'s :func:`folder_lock`: a temporary file whose writer (the pid in its
    name) is still alive on this host is kept, every other one is removed (a name without a pid can only be
    a leftover, since the lock holder is the only writer).
    """
    removed = []
    for path in sorted(Path(folder).rglob(".*")):
        match = _TEMP_FILE.match(path.name)
        if not match or not path.is_file():
            continue
        pid = match.group(1) or match.group(2)
        if pid and _alive(int(pid)):
            continue  # still being written (our own process included)
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
