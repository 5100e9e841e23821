"""A corpus written to object storage (`output_dir: s3://bucket/corpus`, or any fsspec URL).

Object stores have no rename, so grist's local commit protocol (write a temporary file, rename
it into place, then write the unit's marker) becomes: the run works in a local staging
directory, and after every phase (each stage's units, each plan, the shards, the report) its
committed files are published, every file first and the markers that vouch for them (`*done.json`,
`finalized.json`) last. A PUT makes an object visible whole or not at all, so whoever reads
the store, a resumed run included, sees a unit's marker only after all of the unit's files.
Files the run deleted (a `--restart`, a unit undone) are unpublished markers first.

A run that finds its staging directory empty (another machine, a wiped cache) pulls what the
store holds and resumes from the last published phase; on the same machine it resumes from
the last committed unit, as a local run does. Temporaries and the lock are never published.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from upath import UPath

from pipeline.atomic import write_json
from pipeline.run import OUTPUT_MARKER, RunError
from pipeline.run import PUBLISHED_RECORD as RECORD  # size and mtime of each file as published

PRIVATE = (".lock", RECORD)


def default_staging(url: str) -> Path:
    return Path.home() / ".cache" / "grist" / "runs" / hashlib.sha256(url.encode()).hexdigest()[:16]


def is_marker(name: str) -> bool:
    return name.endswith("done.json") or name == "finalized.json"


class Mirror:
    """Publishes a staging directory to `url` and pulls it back."""

    def __init__(self, url: str, staging: Path) -> None:
        self.root = UPath(url)
        self.fs = self.root.fs
        self.base = self.root.path.rstrip("/")
        self.staging = staging
        self.record_path = staging / RECORD

    def _local(self) -> dict[str, list[int]]:
        files = {}
        for p in self.staging.rglob("*"):
            if p.is_file() and p.name not in PRIVATE and not p.name.startswith(".tmp-"):
                st = p.stat()
                files[p.relative_to(self.staging).as_posix()] = [st.st_size, st.st_mtime_ns]
        return files

    def _record(self) -> dict[str, list[int]]:
        return json.loads(self.record_path.read_text()) if self.record_path.exists() else {}

    def _remote(self) -> dict[str, int]:
        """Size of every object under the URL, by relative path. Refuses a prefix that holds
        objects but no grist output marker: grist neither reads nor deletes what it did not write."""
        found = {
            remote[len(self.base) + 1 :]: info["size"]
            for remote, info in self.fs.find(self.base, detail=True).items()
            if remote.startswith(self.base + "/")
        }
        if found and OUTPUT_MARKER not in found:
            listed = ", ".join(sorted(found)[:5])
            raise RunError(
                f"output_dir {self.root} is not empty and was not written by grist (it holds {listed}): "
                "give an empty or new location"
            )
        return found

    def track_remote(self) -> None:
        """Take what the store holds as published, without fetching it: a `--restart` then
        deletes it all on the next push, whatever staging held before."""
        self.staging.mkdir(parents=True, exist_ok=True)
        write_json(self.record_path, {rel: [size, -1] for rel, size in self._remote().items()})

    def pull(self) -> int:
        """Download what the store holds that staging lacks; the number of files fetched."""
        self.staging.mkdir(parents=True, exist_ok=True)
        record, fetched = self._record(), 0
        for rel, size in self._remote().items():
            remote = f"{self.base}/{rel}"
            local = self.staging / rel
            if local.exists() and local.stat().st_size == size:
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(remote, str(local))
            st = local.stat()
            record[rel] = [st.st_size, st.st_mtime_ns]
            fetched += 1
        write_json(self.record_path, record)
        return fetched

    def push(self) -> int:
        """Publish what changed in staging since the last push (markers last) and unpublish what
        staging no longer holds (markers first); the number of files uploaded."""
        local, record = self._local(), self._record()
        gone = sorted((r for r in record if r not in local), key=lambda r: not is_marker(Path(r).name))
        for rel in gone:
            self.fs.rm_file(f"{self.base}/{rel}")
            del record[rel]
        changed = [r for r, st in local.items() if record.get(r) != st]
        changed.sort(key=lambda r: is_marker(Path(r).name))
        for rel in changed:
            self.fs.put_file(str(self.staging / rel), f"{self.base}/{rel}")
            record[rel] = local[rel]
        write_json(self.record_path, record)
        return len(changed)
