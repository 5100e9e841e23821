"""Exact deduplication on lightly normalized text with a 64-bit hash.

Global: each unit summarises (hash, id); the plan groups equal hashes across the corpus and
keeps the smallest id of each group, a rule that does not depend on file order or worker
count; the apply pass drops the others, recording the kept twin as `duplicate_of`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from pipeline.document import Document, Removal
from pipeline.steps.base import GlobalStep, ParallelMap, Summaries

_SPACES = re.compile(r"\s+")


def text_key(text: str, casefold: bool) -> int:
    """The 64-bit hash two texts share when they differ only in whitespace (and case)."""
    t = _SPACES.sub(" ", text).strip()
    return xxhash.xxh3_64_intdigest((t.casefold() if casefold else t).encode("utf-8"))


class ExactDedup(GlobalStep):
    """Reason: `exact_duplicate`, with `duplicate_of` the kept document's id."""

    name = "exact_dedup"

    def __init__(self, *, casefold: bool = False) -> None:
        super().__init__()
        self._drop: dict[str, str] = {}

    def summarize(self, docs: list[Document], unit: str) -> pa.Table:
        return pa.table(
            {
                "hash": pa.array([text_key(d.text, self.casefold) for d in docs], pa.uint64()),
                "id": pa.array([d.id for d in docs], pa.string()),
            }
        )

    def plan(self, summaries: Summaries, state_dir: Path, pmap: ParallelMap) -> dict[str, Any]:
        tables = list(summaries)
        table = (
            pa.concat_tables(tables)
            if tables
            else pa.table({"hash": pa.array([], pa.uint64()), "id": pa.array([], pa.string())})
        )
        table = table.sort_by([("hash", "ascending"), ("id", "ascending")])
        hashes = table["hash"].to_numpy()
        first = np.ones(len(hashes), dtype=bool)
        first[1:] = hashes[1:] != hashes[:-1]
        group_start = np.maximum.accumulate(np.where(first, np.arange(len(hashes)), 0))
        ids = table["id"]
        dup = ~first
        drops = pa.table(
            {
                "id": pc.filter(ids, pa.array(dup)),
                "duplicate_of": pc.take(ids, pa.array(group_start[dup])),
            }
        )
        pq.write_table(drops, state_dir / "duplicates.parquet")
        return {
            "documents": len(hashes),
            "duplicates": int(dup.sum()),
            "groups": int((~first[1:] & first[:-1]).sum()),
        }

    def load(self, state_dir: Path) -> None:
        t = pq.read_table(state_dir / "duplicates.parquet").to_pydict()
        self._drop = dict(zip(t["id"], t["duplicate_of"], strict=True))

    def apply(self, docs: list[Document], unit: str) -> tuple[list[Document], list[Removal]]:
        kept, removed = [], []
        for d in docs:
            twin = self._drop.get(d.id)
            if twin is None:
                kept.append(d)
            else:
                removed.append(Removal(d, self.step_name, "exact_duplicate", duplicate_of=twin))
        return kept, removed
