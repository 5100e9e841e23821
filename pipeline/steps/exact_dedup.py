"""Exact deduplication on lightly normalized text with a 64-bit hash.

Global: each unit summarises (hash, id); the plan groups equal hashes across the corpus and
keeps the smallest id of each group, a rule that does not depend on file order or worker
count; the apply pass drops the others, recording the kept twin as `duplicate_of`.

At scale the plan never holds the corpus' hashes in one place. It is a shuffle through the
executor: each unit's summary is split by hash into P partitions (P from the summaries' size
and `memory_budget_mb`, so one partition fits one task), one task per partition finds the
duplicate groups there (equal hashes always share a partition), and writes each unit's drops
to its own file; the apply pass of a unit loads only that unit's drops. Memory: a plan task
holds one partition (<= the budget); an apply worker one unit's drops; the driver, file names.
Disk: the summaries (hash and id: 19 bytes a document with 36-character ids, zstd, 19 GB per
billion, `scale_bench`'s memory section) once more during the shuffle.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from pydantic import PositiveFloat

from pipeline.document import Document, Removal
from pipeline.shuffle import partition_count, partition_dirs, read_partition, table_bytes, write_partitions
from pipeline.steps.base import GlobalStep, ParallelMap, Summaries

_SPACES = re.compile(r"\s+")
# A partition in memory: the Arrow table, its sort permutation and the numpy views the group
# search makes. Measured 3.8x the summary's uncompressed bytes (4 M documents in one partition:
# a 840 MB peak for 192 MB of summaries, about 110 MB of it the process itself; scale_bench).
MEMORY_FACTOR = 4


def text_key(text: str, casefold: bool) -> int:
    """The 64-bit hash two texts share when they differ only in whitespace (and case)."""
    t = _SPACES.sub(" ", text).strip()
    return xxhash.xxh3_64_intdigest((t.casefold() if casefold else t).encode("utf-8"))


def split_unit(task: tuple[int, str, int, str]) -> int:
    """Shuffle, map side: one unit's summary by hash, each row tagged with the unit's index.
    Returns the rows."""
    index, path, parts, work = task
    table = pq.read_table(path)
    table = table.append_column("unit", pa.array(np.full(len(table), index, np.int32)))
    write_partitions(table, table["hash"].to_numpy(), parts, Path(work), f"u{index:06d}")
    return len(table)


def dedup_partition(task: tuple[str, list[str], str]) -> dict[str, int]:
    """Shuffle, reduce side: the duplicate groups of one partition; each unit's drops (id,
    kept twin: the group's smallest id) written to `drops/<unit>/<partition>.parquet`."""
    part_dir, units, drops_dir = task
    table = read_partition(part_dir).sort_by([("hash", "ascending"), ("id", "ascending")])
    hashes = table["hash"].to_numpy()
    first = np.ones(len(hashes), dtype=bool)
    first[1:] = hashes[1:] != hashes[:-1]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(hashes)), 0))
    dup = np.flatnonzero(~first)
    unit = table["unit"].to_numpy()[dup]
    order = np.argsort(unit, kind="stable")  # each unit's drops together, one slice each
    dup, unit = dup[order], unit[order]
    drops = pa.table(
        {"id": table["id"].take(pa.array(dup)), "duplicate_of": table["id"].take(pa.array(group_start[dup]))}
    )
    bounds = np.flatnonzero(np.diff(unit)) + 1
    for lo, hi in zip([0, *bounds], [*bounds, len(unit)], strict=True):
        if hi > lo:
            out = Path(drops_dir) / units[unit[lo]] / f"{Path(part_dir).name}.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(drops.slice(lo, hi - lo), out)
    return {
        "documents": len(hashes),
        "duplicates": len(dup),
        "groups": int((~first[1:] & first[:-1]).sum()),
    }


class ExactDedup(GlobalStep):
    """Reason: `exact_duplicate`, with `duplicate_of` the kept document's id.

    memory_budget_mb: what one plan task may hold; the corpus' hashes are partitioned to fit."""

    name = "exact_dedup"

    def __init__(self, *, casefold: bool = False, memory_budget_mb: PositiveFloat = 1024) -> None:
        super().__init__()

    def summarize(self, docs: list[Document], unit: str) -> pa.Table:
        return pa.table(
            {
                "hash": pa.array([text_key(d.text, self.casefold) for d in docs], pa.uint64()),
                "id": pa.array([d.id for d in docs], pa.string()),
            }
        )

    def plan(self, summaries: Summaries, state_dir: Path, pmap: ParallelMap) -> dict[str, Any]:
        state_dir = Path(state_dir)
        units = [u for u, _ in summaries.files]
        size = sum(table_bytes(p) for _, p in summaries.files)
        parts = partition_count(size, int(self.memory_budget_mb * (1 << 20)), MEMORY_FACTOR)
        work, drops = state_dir / "shuffle", state_dir / "drops"
        for d in (work, drops):
            shutil.rmtree(d, ignore_errors=True)  # of a plan killed half way: redone whole
        tasks = [(i, str(p), parts, str(work)) for i, (_, p) in enumerate(summaries.files)]
        rows = sum(pmap(split_unit, tasks, "exact_dedup: split by hash"))
        reduce = [(str(d), units, str(drops)) for d in partition_dirs(work)]
        stats = list(pmap(dedup_partition, reduce, "exact_dedup: duplicate groups"))
        shutil.rmtree(work, ignore_errors=True)
        return {
            "documents": rows,
            "duplicates": sum(s["duplicates"] for s in stats),
            "groups": sum(s["groups"] for s in stats),
            "partitions": parts,
        }

    def read_decisions(self, state_dir: Path, unit: str) -> dict[str, str]:
        """id -> kept twin, for the unit's documents to remove."""
        files = sorted((state_dir / "drops" / unit).glob("*.parquet"))
        if not files:
            return {}
        t = pa.concat_tables(pq.read_table(f) for f in files).to_pydict()
        return dict(zip(t["id"], t["duplicate_of"], strict=True))

    def apply(self, docs: list[Document], unit: str) -> tuple[list[Document], list[Removal]]:
        drops = self.unit_decisions(unit)
        kept, removed = [], []
        for d in docs:
            twin = drops.get(d.id)
            if twin is None:
                kept.append(d)
            else:
                removed.append(Removal(d, self.step_name, "exact_duplicate", duplicate_of=twin))
        return kept, removed
