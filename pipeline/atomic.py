"""Crash-safe file writes: write a temporary sibling, fsync it, rename it over the final name,
then fsync the directory.

A rename is atomic on POSIX, so a reader (or a resumed run) sees either the old file or the
complete new one, never a torn write. The two fsyncs make that hold across a power loss too:
the data reach the disk before the name points at them, and the directory entry (the rename
itself) is on disk before the caller goes on to write the marker that says "committed". Every
output grist commits goes through here.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's contents to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_path_for(path: Path) -> Path:
    return path.with_name(f".tmp-{os.getpid()}-{path.name}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is synced and renamed to `path`, and the
    rename synced; on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


_CRASH_HITS: dict[str, int] = {}


def crash_point(name: str) -> None:
    """A place where tests kill the process, deterministically: with `GRIST_CRASH=name` (or
    `name@n`, the n-th time this process gets here) set, SIGKILL, as a power cut or the OOM
    killer would. Placed right after commits, inside plans, during shard finalize and
    checkpoint writes, so recovery is tested at every kind of point instead of at random times."""
    spec = os.environ.get("GRIST_CRASH")
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _CRASH_HITS[name] = _CRASH_HITS.get(name, 0) + 1
    if _CRASH_HITS[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
