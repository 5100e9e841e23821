"""Which member of each cluster survives, and the record of every removal.

1. `collect_members` (one task per unit): the unit's rows that belong to a cluster, with what
   the keep rule needs, written by cluster group (a hash of the cluster id) sized to the budget.
2. `decide_group` (one task per cluster group): orders each cluster's members by the rule and
   keeps the first. With verification, each later member is then removed only when it is a
   near-duplicate (true Jaccard >= the cut) of a member already KEPT, and otherwise kept too:
   representatives are chosen greedily in rule order. Union-find chains (A~B and B~C put A, B
   and C in one cluster however unlike A and C are), so "keep one per cluster" would remove C
   as a copy of A; here C stays unless it resembles a kept document. Without verification
   there are no sets to check against and the cluster keeps its first member only (LSH alone).
   A removal records `duplicate_of` (the first kept member, in rule order, that it is a
   near-duplicate of), its cluster id (the
   cluster's least global id) and its Jaccard to that twin (true with verification, else the
   signature estimate).

The rule is a total order, so the decision depends on neither file order nor worker count:
old documents (an earlier run's index) first, as they are already published (all of them stay
representatives); then `quality`: highest score, documents without one last; then longest
text; then smallest id. `longest` skips the score, `id` keeps the smallest id only.

Cost: every member's exact Jaccard with its cluster's first (always kept) is computed for all
clusters at once (in a cluster of two it is the verified pair's); a member at or above the cut
goes, as the greedy rule would remove it too. Only the rest,
members of chains, are walked in order: each one's signature is compared with every
representative so far, and those whose estimate comes within `ESTIMATE_MARGIN` of the cut get
an exact Jaccard. Representatives are the cluster's mutually unlike documents, usually one.
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
from pipeline.minhash.verify import jaccard
from pipeline.text.hashing import fmix64_array

BYTES_PER_MEMBER_EXTRA = 1100  # ids, sort keys, their sorted copies, allocator slack (measured)
BYTES_PER_SET_VALUE = 12  # a shingle hash read, concatenated, and its offsets (verification only)
# A representative whose signature estimate is this far below the cut still gets an exact
# Jaccard: 112 permutations estimate J near 0.7 with a standard deviation of 0.043, so 0.2 is
# over 4.5 of them; a true near-duplicate of a kept document is almost never skipped.
ESTIMATE_MARGIN = 0.2
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
    """Memory per cluster member in `decide_group`: its signature, ids, sort keys and copies
    (its shingle set comes on top: `clustered_values`)."""
    return 4 * cfg.num_perm + BYTES_PER_MEMBER_EXTRA


def clustered_values(task: tuple[UnitRef, str]) -> int:
    """Shingle hashes held by the unit's cluster members: what `decide_group` loads besides
    the fixed `bytes_per_member`, when verifying."""
    unit, labels_path = task
    labels = np.asarray(np.load(labels_path, mmap_mode="r")[unit.gid0 : unit.gid0 + unit.rows])
    rows = labels != NONE
    if not rows.any():
        return 0
    n = pq.read_table(unit.path, columns=["n_shingles"])["n_shingles"].to_numpy()
    return int(n[rows].astype(np.int64).sum())


def collect_members(task: tuple[MinHashConfig, UnitRef, str, int, str]) -> int:
    """Phase K1 for one unit: `<out_dir>/k<group>/u<unit>.parquet`; returns members found."""
    cfg, unit, labels_path, n_groups, out_dir = task
    labels = np.asarray(np.load(labels_path, mmap_mode="r")[unit.gid0 : unit.gid0 + unit.rows])
    rows = np.flatnonzero(labels != NONE)
    if len(rows) == 0:
        return 0
    columns = ["id", "chars", "quality", "sig", "excerpt"] + (["shingles"] if cfg.verify else [])
    table = pq.read_table(unit.path, columns=columns).take(pa.array(rows))
    label = labels[rows]
    table = table.append_column("cluster", pa.array(label, pa.uint32()))
    table = table.append_column("gid", pa.array(rows + unit.gid0, pa.uint32()))
    table = table.append_column("unit", pa.array([unit.name] * len(rows), pa.string()))
    table = table.append_column("old", pa.array(np.full(len(rows), unit.old)))
    group = group_of(label, n_groups)
    for g in np.unique(group).tolist():
        out = Path(out_dir) / f"k{g:06d}" / f"u{unit.index:06d}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        # sets are random ints: neither compression nor dictionaries pay, and writing them
        # with both cost half the keep rule's time on the bench corpus
        pq.write_table(table.filter(pa.array(group == g)), out, compression="none", use_dictionary=False)
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
        return {
            "clusters": 0,
            "removed": 0,
            "kept_beyond_first": 0,
            "chars_removed": 0,
            "size_counts": {},
            "examples": [],
        }
    # Sort the small columns; signatures and excerpts are read apart and never reordered.
    small = ["cluster", "old", "quality", "chars", "id", "gid", "unit"]
    table = pa.concat_tables([pq.read_table(f, columns=small) for f in files])
    order = pc.sort_indices(table, sort_keys=_sort_keys(cfg.keep)).to_numpy()
    table = table.take(order)
    cluster = table["cluster"].to_numpy()
    old = table["old"].to_numpy(zero_copy_only=False)
    first = np.ones(len(cluster), dtype=bool)
    first[1:] = cluster[1:] != cluster[:-1]
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, len(cluster)))
    sigs = np.empty((len(cluster), cfg.num_perm), np.uint32)
    filled = 0
    for f in files:  # one file's column at a time into the one array
        part = sig_matrix(pq.read_table(f, columns=["sig"])["sig"], cfg.num_perm)
        sigs[filled : filled + len(part)] = part
        filled += len(part)
    # twin[i]: the sorted row of the kept document that sorted row i duplicates; -1 when kept.
    twin = np.full(len(cluster), -1, np.int64)
    if cfg.verify:
        offsets, values = _sets(files)
        head = np.maximum.accumulate(np.where(first, np.arange(len(cluster)), 0))
        later = np.flatnonzero(~first & ~old)  # every member but the first and the old ones ...
        similarity = np.zeros(len(cluster), np.float32)
        sims = jaccard(offsets, values, order[later], order[head[later]])
        near_head = sims >= cfg.jaccard_threshold
        twin[later[near_head]] = head[later[near_head]]  # ... goes when it duplicates the first
        similarity[later[near_head]] = sims[near_head]
        chained = np.unique(np.searchsorted(starts, later[~near_head], side="right") - 1)
        for c in chained.tolist():  # clusters with a member unlike their first: the greedy walk
            _representatives(
                int(starts[c]), int(sizes[c]), order, old, sigs, (offsets, values), cfg, twin, similarity
            )
        removed = twin >= 0
        del offsets, values
    else:  # LSH alone: the cluster is taken as found and keeps its first member
        keeper = np.maximum.accumulate(np.where(first, np.arange(len(cluster)), 0))
        removed = ~first & ~old
        twin[removed] = keeper[removed]
        similarity = np.empty(len(cluster), np.float32)
        for lo in range(0, len(cluster), 1 << 14):  # sorted row i is file row order[i]
            rows, kept_rows = order[lo : lo + (1 << 14)], order[keeper[lo : lo + (1 << 14)]]
            similarity[lo : lo + len(rows)] = (sigs[rows] == sigs[kept_rows]).mean(axis=1)
    del sigs
    ids = table["id"]
    drops = pa.table(
        {
            "unit": pc.filter(table["unit"], pa.array(removed)),
            "id": pc.filter(ids, pa.array(removed)),
            "duplicate_of": pc.take(ids, pa.array(twin[removed])),
            "cluster": pa.array(cluster[removed].astype(np.int64)),
            "similarity": pa.array(similarity[removed]),
        },
        schema=DROP_SCHEMA,
    ).sort_by([("unit", "ascending"), ("id", "ascending")])
    pq.write_table(drops, drops_path, row_group_size=1 << 16)
    kept_per_cluster = sizes - np.add.reduceat(removed.astype(np.int64), starts)
    pq.write_table(
        pa.table(
            {
                "cluster": pa.array(cluster[starts].astype(np.int64)),
                "size": pa.array(sizes),
                "old": pa.array(np.add.reduceat(old.astype(np.int64), starts)),
                "kept": pc.take(ids, pa.array(starts)),  # the first representative
                "kept_count": pa.array(kept_per_cluster),
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
        gone = s + 1 + np.flatnonzero(removed[s + 1 : end])
        shown[c] = [s] + gone[np.argsort(similarity[gone], kind="stable")[:2]].tolist()
    excerpts = _excerpts(files, sorted(order[i] for rows in shown.values() for i in rows))
    examples = [
        {
            "cluster": int(cluster[rows[0]]),
            "size": int(sizes[c]),
            "draw": int(draw[c]),
            "members": [
                {
                    "id": ids[i].as_py(),
                    "kept": not bool(removed[i]),
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
        "kept_beyond_first": int((~first & ~old & ~removed).sum()),  # new documents only
        "chars_removed": int(chars[removed].sum()),
        "size_counts": {int(k): int(v) for k, v in zip(*np.unique(sizes, return_counts=True), strict=True)},
        "examples": examples,
    }


def _sets(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, values) of the members' shingle sets, in the files' concatenated row order."""
    lists = pa.concat_arrays(
        [c for f in files for c in pq.read_table(f, columns=["shingles"])["shingles"].chunks]
    )
    offsets = lists.offsets.to_numpy().astype(np.int64)
    values = lists.values.to_numpy()[offsets[0] : offsets[-1]]
    return offsets - offsets[0], values


def _representatives(
    start: int,
    size: int,
    order: np.ndarray,
    old: np.ndarray,
    sigs: np.ndarray,
    sets: tuple[np.ndarray, np.ndarray],
    cfg: MinHashConfig,
    twin: np.ndarray,
    similarity: np.ndarray,
) -> None:
    """The greedy keep rule in one cluster of three or more (sorted rows start..start+size):
    in rule order, a member is removed as the twin of the first kept member whose true Jaccard
    with it reaches the cut, and kept (a new representative) otherwise. Old members are
    representatives whatever they resemble. Members already removed as near-duplicates of the
    first (`twin` set) are skipped; the others were found unlike it, so it is not asked again.
    Fills `twin` and `similarity` (the true Jaccard to the twin) of the members it removes."""
    reps = np.empty(size, np.int64)  # sorted rows of the representatives so far
    rep_sigs = np.empty((size, sigs.shape[1]), sigs.dtype)
    n_reps = 0
    for i in range(start, start + size):
        if twin[i] >= 0:
            continue
        row = order[i]
        if n_reps > 1 and not old[i]:
            estimate = (rep_sigs[1:n_reps] == sigs[row]).mean(axis=1)
            near = reps[1:n_reps][estimate >= cfg.jaccard_threshold - ESTIMATE_MARGIN]
            if len(near):
                sims = jaccard(*sets, np.full(len(near), row), order[near])
                hits = np.flatnonzero(sims >= cfg.jaccard_threshold)
                if len(hits):
                    twin[i], similarity[i] = near[hits[0]], sims[hits[0]]
                    continue
        reps[n_reps] = i
        rep_sigs[n_reps] = sigs[row]
        n_reps += 1


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
