"""Verification: each candidate pair's true Jaccard on its two shingle sets.

The sets live in the summaries, one file per unit, and a pair's two documents may sit in any
two units; reading a unit per pair would be quadratic. So the sets are shuffled once:

1. `ship_sets` (one task per unit): the unit's shingle column is read once, and each set some
   pair group needs (an endpoint of one of its pairs) is written to that group's folder.
2. `verify_group` (one task per pair group): its sets and pairs in memory (groups are sized
   to the budget), every pair's Jaccard computed in vectorised chunks, pairs below the cut
   dropped: these are LSH's false positives.

Sets hold 32-bit shingle hashes, so "true" is up to hash collisions: about |A|*|B| / 2^32
spurious matches, 0.0002 for two 1,000-shingle documents.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.minhash.lsh import UnitRef, unpack

_CHUNK_VALUES = 1 << 18  # set elements per vectorised step: the binary searches stay in cache


def ship_sets(task: tuple[UnitRef, list[str], str]) -> int:
    """Phase V1 for one unit: writes `<ship_dir>/g<group>/u<unit>.parquet`; returns sets shipped."""
    unit, need_paths, ship_dir = task
    wanted = []
    for group, path in enumerate(need_paths):
        need = np.load(path, mmap_mode="r")
        lo, hi = np.searchsorted(need, [unit.gid0, unit.gid0 + unit.rows])
        if hi > lo:
            wanted.append((group, np.asarray(need[lo:hi])))
    if not wanted:
        return 0
    sets = pq.read_table(unit.path, columns=["shingles"])["shingles"]
    shipped = 0
    for group, gids in wanted:
        rows = pa.array((gids - unit.gid0).astype(np.int64))
        table = pa.table({"gid": pa.array(gids, pa.uint32()), "shingles": pc.take(sets, rows)})
        out = Path(ship_dir) / f"g{group:06d}" / f"u{unit.index:06d}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out, compression="none", use_dictionary=False)  # random ints: neither pays
        shipped += len(gids)
    return shipped


def _load_sets(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gids sorted, offsets, values) of every set shipped to one group."""
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return np.empty(0, np.uint32), np.zeros(1, np.int64), np.empty(0, np.uint32)
    table = pa.concat_tables([pq.read_table(f) for f in files]).sort_by("gid")
    lists = table["shingles"].combine_chunks()
    offsets = lists.offsets.to_numpy().astype(np.int64)
    return table["gid"].to_numpy(), offsets - offsets[0], lists.flatten().to_numpy()


def _tagged(offsets: np.ndarray, values: np.ndarray, sets: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """The elements of `sets` (in order), each as tag << 32 | value. Sets are sorted and tags
    non-decreasing, so the result is sorted without sorting."""
    n = np.diff(offsets)[sets]
    pos = np.repeat(offsets[sets] - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
    return (np.repeat(tags.astype(np.uint64), n) << np.uint64(32)) | values[pos].astype(np.uint64)


def jaccard(offsets: np.ndarray, values: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Jaccard of set `left[i]` and set `right[i]` (indices into offsets), for all i.

    Per chunk of pairs, both sides' elements are tagged with their pair number; each tagged
    left element is looked up among the tagged right ones by binary search: an intersection
    count per pair, with no sort and no Python loop over pairs."""
    sizes = np.diff(offsets)
    out = np.zeros(len(left), np.float32)
    per_pair = sizes[left] + sizes[right]
    cum = np.cumsum(per_pair)
    start = 0
    while start < len(left):
        done = int(cum[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(cum, done + _CHUNK_VALUES, side="right")))
        tags = np.arange(start, stop)
        lhs = _tagged(offsets, values, left[start:stop], tags)
        rhs = _tagged(offsets, values, right[start:stop], tags)
        found = np.zeros(len(lhs), dtype=bool)
        if len(rhs):
            at = np.minimum(np.searchsorted(rhs, lhs), len(rhs) - 1)
            found = rhs[at] == lhs
        inter = np.bincount((lhs[found] >> np.uint64(32)).astype(np.int64) - start, minlength=stop - start)
        union = per_pair[start:stop] - inter
        out[start:stop] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        start = stop
    return out


def verify_group(task: tuple[str, str, float, str]) -> dict[str, object]:
    """Phase V2 for one pair group: keeps the pairs at or above the cut, with their Jaccard."""
    pairs_path, ship_folder, cut, out_stem = task
    pairs = np.load(pairs_path)
    gids, offsets, values = _load_sets(Path(ship_folder))
    a, b = unpack(pairs)
    sims = (
        jaccard(offsets, values, np.searchsorted(gids, a), np.searchsorted(gids, b)) if len(pairs) else None
    )
    keep = sims >= cut if sims is not None else np.zeros(0, bool)
    np.save(f"{out_stem}.npy", pairs[keep])
    np.save(f"{out_stem}.sim.npy", sims[keep] if sims is not None else np.zeros(0, np.float32))
    hist = np.histogram(sims if sims is not None else [], bins=10, range=(0, 1))[0]
    return {"candidates": len(pairs), "verified": int(keep.sum()), "jaccard_hist": hist.tolist()}
