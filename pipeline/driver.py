"""Drives a corpus-wide step (`GlobalStep`) through its phases: summarize every unit, plan once,
apply to every unit. One implementation for every caller:

* the runner (`pipeline.run`) fuses `UnitSummary` into the pass before the step and `apply` into
  the pass after it, and calls `plan_once` in between;
* everything else that needs a global step's verdict on documents in memory (the leak audit of
  `pipeline verify`, the benches, the tests) calls `run_global`, which strings the same pieces
  together in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.atomic import atomic_path, crash_point, read_json, write_json
from pipeline.document import Document, Removal
from pipeline.steps.base import GlobalStep, ParallelMap, Summaries

SUMMARY_COMPACT_BYTES = 256 << 20  # compact a unit's summaries in memory beyond this
PLAN_DONE = "done.json"


class UnitSummary:
    """One unit's summary for a global step, built batch by batch. Memory stays bounded however
    large the unit: past `SUMMARY_COMPACT_BYTES` the tables so far are compacted into one."""

    def __init__(self, step: GlobalStep, unit: str, compact_bytes: int = SUMMARY_COMPACT_BYTES) -> None:
        self.step = step
        self.unit = unit
        self.compact_bytes = compact_bytes
        self.tables: list[pa.Table] = []
        self.pending = 0

    def add(self, docs: list[Document]) -> None:
        if not docs:
            return
        table = self.step.summarize(docs, self.unit)
        if table is None:
            return
        self.tables.append(table)
        self.pending += table.nbytes
        if self.pending > self.compact_bytes:
            self.tables = [self.step.compact_summary(pa.concat_tables(self.tables))]
            self.pending = self.tables[0].nbytes

    def write(self, path: Path) -> bool:
        """Write the compacted summary atomically; False (nothing written) when it is empty."""
        if not self.tables:
            return False
        with atomic_path(path) as tmp:
            pq.write_table(self.step.compact_summary(pa.concat_tables(self.tables)), tmp)
        return True


def plan_once(step: GlobalStep, summaries: Summaries, state_dir: Path, pmap: ParallelMap) -> dict[str, Any]:
    """The step's plan over all summaries, run once: its stats are committed last (`done.json`),
    so a plan killed half way is redone and a finished one is never run again."""
    done = Path(state_dir) / PLAN_DONE
    if not done.exists():
        done.parent.mkdir(parents=True, exist_ok=True)
        stats = step.plan(summaries, done.parent, pmap) or {}
        crash_point(f"plan/{step.step_name}")  # the plan's work done, not yet committed
        write_json(done, stats)
    return read_json(done)


def serial_map(fn: Callable[[Any], Any], items: Sequence[Any], desc: str) -> Iterator[Any]:
    """A `ParallelMap` that runs in this process, for callers without an executor."""
    return map(fn, items)


@dataclass
class GlobalResult:
    """What `run_global` decided: the plan's stats and, per unit, the kept and removed documents."""

    stats: dict[str, Any]
    kept: dict[str, list[Document]]
    removed: dict[str, list[Removal]]


def run_global(
    step: GlobalStep,
    units: Mapping[str, Iterable[list[Document]]],
    state_dir: Path,
    pmap: ParallelMap = serial_map,
    compact_bytes: int = SUMMARY_COMPACT_BYTES,
) -> GlobalResult:
    """Run a global step over documents in memory, unit by unit (`units`: unit id -> batches).
    Summaries go under `state_dir/summaries`, the plan's state under `state_dir/plan`; a unit's
    summary is compacted whenever it grows past `compact_bytes`."""
    state_dir = Path(state_dir)
    batches = {unit: list(b) for unit, b in units.items()}
    files = []
    for unit, unit_batches in batches.items():
        summary = UnitSummary(step, unit, compact_bytes)
        for docs in unit_batches:
            summary.add(docs)
        path = state_dir / "summaries" / f"{unit}.parquet"
        if summary.write(path):
            files.append((unit, path))
    stats = plan_once(step, Summaries(files), state_dir / "plan", pmap)
    step.load(state_dir / "plan")
    kept: dict[str, list[Document]] = {}
    removed: dict[str, list[Removal]] = {}
    for unit, unit_batches in batches.items():
        kept[unit], removed[unit] = [], []
        for docs in unit_batches:
            k, r = step.apply(docs, unit)
            kept[unit] += k
            removed[unit] += r
    return GlobalResult(stats, kept, removed)
