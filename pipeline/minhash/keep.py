"""Which member of each cluster survives, and the record of every removal.

1. `collect_members` (one task per unit): the unit's rows that belong to a cluster, with what
   the keep rule needs, written by cluster group (a hash of the cluster id) sized to the budget.
2. `decide_group` (one task per cluster group): orders each cluster's members by the rule and
   keeps the first; every other new member is removed with `duplicate_of` (the kept id), its
   cluster id (the cluster's least global id) and its estimated Jaccard to the kept document.

The rule is a total order, so the decision depends on neither file order nor worker count:
old documents (an earlier run's index) first, as they are already published; then
`quality`: highest score, documents without one last; then longest text; then smallest id.
`longest` skips the score, `id` keeps the smallest id only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.minhash.config import NONE, MinHashConfig, sig_matrix
from pipeline.minhash.lsh import UnitRef, group_of
from pipeline.text.hashing import fmix64_array

BYTES_PER_MEMBER_EXTRA = 1100  # ids, sort keys, their sorted copies, allocator slack (measured)
DROP_SCHEMA = pa.schema(
    [
        pa.field("unit", pa.string()),
        pa.field("id", pa.string()),
        pa.field("duplicate_of", pa.string()),
        pa.field("cluster", pa.int64()),
        pa.field("similarity", pa.float32()),
    ]
)


def bytes_per_member(cfg: MinHashConfig) -> int:
    """Memory per cluster member in `decide_group`: its signature, ids, sort keys and copies."""
    return 4 * cfg.num_perm + BYTES_PER_MEMBER_EXTRA


def collect_members(task: tuple[UnitRef, str, int, str]) -> int:
    """Phase K1 for one unit: `<out_dir>/k<group>/u<unit>.parquet`; returns members found."""
    unit, labels_path, n_groups, out_dir = task
    labels = np.asarray(np.load(labels_path, mmap_mode="r")[unit.gid0 : unit.gid0 + unit.rows])
    rows = np.flatnonzero(labels != NONE)
    if len(rows) == 0:
        return 0
    table = pq.read_table(unit.path, columns=["id", "chars", "quality", "sig", "excerpt"]).take(
        pa.array(rows)
    )
    label = labels[rows]
    table = table.append_column("cluster", pa.array(label, pa.uint32()))
    table = table.append_column("gid", pa.array(rows + unit.gid0, pa.uint32()))
    table = table.append_column("unit", pa.array([unit.name] * len(rows), pa.string()))
    table = table.append_column("old", pa.array(np.full(len(rows), unit.old)))
    group = group_of(label, n_groups)
    for g in np.unique(group).tolist():
        out = Path(out_dir) / f"k{g:06d}" / f"u{unit.index:06d}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(pa.array(group == g)), out)
    return len(rows)


def _sort_keys(keep: str) -> list[tuple[str, str, str]]:
    keys = [("cluster", "ascending", "at_end"), ("old", "descending", "at_end")]
    if keep == "quality":
        keys.append(("quality", "descending", "at_end"))  # documents without a score last
    if keep in ("quality", "longest"):
        keys.append(("chars", "descending", "at_end"))
    return [*keys, ("id", "ascending", "at_end"), ("gid", "ascending", "at_end")]


def decide_group(task: tuple[MinHashConfig, str, str, str, int]) -> dict[str, Any]:
    """Phase K2 for one cluster group: writes drops and cluster sizes; returns stats and
    example clusters for the report: the largest here, and as many drawn by a hash of their id."""
    cfg, member_dir, drops_path, clusters_path, n_examples = task
    files = sorted(Path(member_dir).glob("*.parquet"))
    if not files:
        return {"clusters": 0, "removed": 0, "chars_removed": 0, "size_counts": {}, "examples": []}
    # Sort the small columns; signatures and excerpts are read apart and never reordered.
    small = ["cluster", "old", "quality", "chars", "id", "gid", "unit"]
    table = pa.concat_tables([pq.read_table(f, columns=small) for f in files])
    order = pc.sort_indices(table, sort_keys=_sort_keys(cfg.keep)).to_numpy()
    table = table.take(order)
    cluster = table["cluster"].to_numpy()
    first = np.ones(len(cluster), dtype=bool)
    first[1:] = cluster[1:] != cluster[:-1]
    keeper = np.maximum.accumulate(np.where(first, np.arange(len(cluster)), 0))
    sigs = np.empty((len(cluster), cfg.num_perm), np.uint32)
    filled = 0
    for f in files:  # one file's column at a time into the one array
        part = sig_matrix(pq.read_table(f, columns=["sig"])["sig"], cfg.num_perm)
        sigs[filled : filled + len(part)] = part
        filled += len(part)
    similarity = np.empty(len(cluster), np.float32)
    for lo in range(0, len(cluster), 1 << 14):  # sorted row i is file row order[i]
        rows, kept_rows = order[lo : lo + (1 << 14)], order[keeper[lo : lo + (1 << 14)]]
        similarity[lo : lo + len(rows)] = (sigs[rows] == sigs[kept_rows]).mean(axis=1)
    del sigs
    ids = table["id"]
    old = table["old"].to_numpy(zero_copy_only=False)
    removed = ~first & ~old
    drops = pa.table(
        {
            "unit": pc.filter(table["unit"], pa.array(removed)),
            "id": pc.filter(ids, pa.array(removed)),
            "duplicate_of": pc.take(ids, pa.array(keeper[removed])),
            "cluster": pa.array(cluster[removed].astype(np.int64)),
            "similarity": pa.array(similarity[removed]),
        },
        schema=DROP_SCHEMA,
    ).sort_by([("unit", "ascending"), ("id", "ascending")])
    pq.write_table(drops, drops_path, row_group_size=1 << 16)
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, len(cluster)))
    pq.write_table(
        pa.table(
            {
                "cluster": pa.array(cluster[starts].astype(np.int64)),
                "size": pa.array(sizes),
                "old": pa.array(np.add.reduceat(old.astype(np.int64), starts)),
                "kept": pc.take(ids, pa.array(starts)),
            }
        ),
        clusters_path,
    )
    chars = table["chars"].to_numpy()
    draw = fmix64_array(cluster[starts].astype(np.uint64))
    largest = np.argsort(-sizes, kind="stable")[:n_examples]
    drawn = np.argsort(draw, kind="stable")[:n_examples]
    shown: dict[int, list[int]] = {}  # example cluster -> its kept row and least similar removed rows
    for c in sorted(set(largest.tolist()) | set(drawn.tolist())):
        s, end = int(starts[c]), int(starts[c] + sizes[c])
        shown[c] = [s] + (s + 1 + np.argsort(similarity[s + 1 : end], kind="stable")[:2]).tolist()
    excerpts = _excerpts(files, sorted(order[i] for rows in shown.values() for i in rows))
    examples = [
        {
            "cluster": int(cluster[rows[0]]),
            "size": int(sizes[c]),
            "draw": int(draw[c]),
            "members": [
                {
                    "id": ids[i].as_py(),
                    "kept": i == rows[0],
                    "old": bool(old[i]),
                    "chars": int(chars[i]),
                    "similarity": round(float(similarity[i]), 3),
                    "excerpt": excerpts[order[i]],
                }
                for i in rows
            ],
        }
        for c, rows in shown.items()
    ]
    return {
        "clusters": len(starts),
        "removed": int(removed.sum()),
        "chars_removed": int(chars[removed].sum()),
        "size_counts": {int(k): int(v) for k, v in zip(*np.unique(sizes, return_counts=True), strict=True)},
        "examples": examples,
    }


def _excerpts(files: list[Path], rows: list[int]) -> dict[int, str]:
    """Excerpts of a few rows, by position in the concatenation of `files`, one file at a time."""
    out: dict[int, str] = {}
    base = 0
    for f in files:
        n = pq.ParquetFile(f).metadata.num_rows
        local = [r - base for r in rows if base <= r < base + n]
        if local:
            got = pq.read_table(f, columns=["excerpt"])["excerpt"].take(pa.array(local)).to_pylist()
            out.update({base + r: e for r, e in zip(local, got, strict=True)})
        base += n
    return out


def read_unit_drops(drops_dir: Path, unit: str) -> pa.Table:
    """The removals decided for one unit (drop files are sorted by unit: row groups prune)."""
    files = sorted(Path(drops_dir).glob("*.parquet"))
    if not files:
        return DROP_SCHEMA.empty_table()
    tables = [pq.read_table(f, filters=[("unit", "=", unit)], schema=DROP_SCHEMA) for f in files]
    return pa.concat_tables(tables)
