"""Small file helpers shared by every stage: atomic writes, hashing, CSV rows, JSON.

Anything a killed run must not leave half-written goes through :func:`atomic_write` (write a temporary file
in the same folder, flush and fsync it, then ``os.replace`` it over the target, which is atomic on POSIX).
"""

import contextlib
import csv
import hashlib
import json
import os
from pathlib import Path


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
