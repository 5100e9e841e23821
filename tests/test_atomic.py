"""Commits survive a crash and a power loss: data synced before the rename, the rename synced
before the caller goes on (and writes the marker that says a unit is done)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline import atomic
from pipeline.atomic import atomic_path, write_json
from train.checkpoint import save_checkpoint


def record_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = atomic.fsync_path, os.replace

    def fsync(path: Path) -> None:
        calls.append(("fsync", str(path)))
        real_fsync(path)

    def replace(src: str | Path, dst: str | Path) -> None:
        calls.append(("rename", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(atomic, "fsync_path", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_commit_syncs_the_file_then_renames_then_syncs_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = record_calls(monkeypatch)
    target = tmp_path / "sub" / "unit.done.json"
    write_json(target, {"unit": 1})
    tmp = atomic.tmp_path_for(target)
    assert calls == [("fsync", str(tmp)), ("rename", str(target)), ("fsync", str(target.parent))]
    assert target.read_text().strip().startswith("{") and not tmp.exists()


def test_checkpoints_commit_the_same_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = record_calls(monkeypatch)
    save_checkpoint(tmp_path / "last.pt", {"step": 3})
    assert [kind for kind, _ in calls] == ["fsync", "rename", "fsync"]
    assert calls[-1] == ("fsync", str(tmp_path))


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == '{\n  "v": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
