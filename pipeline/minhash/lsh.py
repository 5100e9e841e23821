"""LSH candidates, out of core: band keys per unit -> partitioned files -> candidate pairs.

Every document gets a global id (`gid`, uint32): its row in the concatenation of all units'
summaries, new units first, then the units of an earlier run's index ("old" documents).

1. `write_band_file` (one task per unit): the unit's band keys, one (key, gid) entry per band,
   written grouped by (band, key partition). Partitions are key ranges (top bits of the key),
   sized so one (band, partition) fits in the memory budget.
2. `find_candidates` (one task per band and partition): that slice of every unit's file,
   sorted by key; each run of equal keys is a bucket. A bucket yields star pairs (its smallest
   gid, every other member): enough for connectivity, linear in the bucket size however large
   a templated bucket grows. Pairs of two old documents are dropped, as that run already judged
   them. Pairs are written by pair group (a hash of the leader: groups stay even however
   duplicates gather in the first units, whose documents lead), for the next phase.
3. `merge_pairs` (one task per pair group): the same pair found in several bands is kept once.

Signatures are read one unit at a time and never all held; each task holds one slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipeline.minhash.config import MinHashConfig, sig_matrix
from pipeline.minhash.signatures import band_keys
from pipeline.text.hashing import fmix64_array

BYTES_PER_BAND_ENTRY = 64  # key + gid, their sorted copies and the sort's index, with headroom
BYTES_PER_PAIR = 48  # packed pair, sort temporaries
BATCH_ROWS = 1 << 16  # signatures turned into keys at a time: numpy copies stay small


@dataclass(frozen=True)
class UnitRef:
    """One summary (or index) file and where its rows sit in the global id space."""

    index: int
    name: str
    path: str
    gid0: int
    rows: int
    old: bool  # from an earlier run's index: never removed, preferred as the cluster's keeper


def partition_bits(entries_per_band: int, budget: int) -> int:
    """log2 of the number of key partitions so that one (band, partition) fits `budget`."""
    parts = max(1, -(-entries_per_band * BYTES_PER_BAND_ENTRY // budget))
    return int(np.ceil(np.log2(parts)))


def _part_of(keys: np.ndarray, bits: int) -> np.ndarray:
    if bits == 0:
        return np.zeros(keys.shape, np.int64)
    return (keys >> np.uint64(64 - bits)).astype(np.int64)


def write_band_file(task: tuple[MinHashConfig, UnitRef, int, str]) -> int:
    """Phase 1 for one unit; returns how many documents have a signature."""
    cfg, unit, bits, out_dir = task
    key_parts, gid_parts, row0 = [], [], 0
    for batch in pq.ParquetFile(unit.path).iter_batches(BATCH_ROWS, columns=["n_shingles", "sig"]):
        rows = np.flatnonzero(batch.column("n_shingles").to_numpy() > 0)
        key_parts.append(band_keys(sig_matrix(batch.column("sig"), cfg.num_perm)[rows], cfg.bands, cfg.rows))
        gid_parts.append((rows + unit.gid0 + row0).astype(np.uint32))
        row0 += batch.num_rows
    keys = np.concatenate(key_parts) if key_parts else np.empty((0, cfg.bands), np.uint64)  # (docs, bands)
    gids = np.concatenate(gid_parts) if gid_parts else np.empty(0, np.uint32)
    del key_parts, gid_parts
    parts = 1 << bits
    bucket = (np.arange(cfg.bands)[None, :] * parts + _part_of(keys, bits)).ravel()
    order = np.argsort(bucket, kind="stable")
    flat_keys = keys.ravel()[order]
    flat_gids = np.repeat(gids, cfg.bands)[order]
    offsets = np.searchsorted(bucket[order], np.arange(cfg.bands * parts + 1))
    base = Path(out_dir) / f"u{unit.index:06d}"
    np.save(f"{base}.keys.npy", flat_keys)
    np.save(f"{base}.gids.npy", flat_gids)
    np.save(f"{base}.offs.npy", offsets)
    return len(gids)


def group_of(ids: np.ndarray, n_groups: int) -> np.ndarray:
    """Hash partition of global ids: even group sizes whatever the ids' distribution."""
    return (fmix64_array(ids.astype(np.uint64)) % np.uint64(n_groups)).astype(np.int64)


def find_candidates(task: tuple[str, int, int, int, list[int], int, int, str]) -> dict[str, int]:
    """Phase 2 for one (band, partition) slot across all units."""
    band_dir, slot, parts, bands, unit_ids, n_groups, first_old, out_dir = task
    keys_parts, gid_parts = [], []
    for u in unit_ids:
        base = Path(band_dir) / f"u{u:06d}"
        offs = np.load(f"{base}.offs.npy")
        lo, hi = int(offs[slot]), int(offs[slot + 1])
        if hi > lo:
            keys_parts.append(np.load(f"{base}.keys.npy", mmap_mode="r")[lo:hi])
            gid_parts.append(np.load(f"{base}.gids.npy", mmap_mode="r")[lo:hi])
    stats = {"entries": 0, "buckets": 0, "pairs": 0}
    leaders = members = np.empty(0, np.uint32)
    if keys_parts:
        keys = np.concatenate(keys_parts)
        gids = np.concatenate(gid_parts)
        del keys_parts, gid_parts
        order = np.argsort(keys, kind="stable")  # units in gid order: a bucket's first gid is its least
        keys, gids = keys[order], gids[order]
        del order
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        del keys
        start = np.maximum.accumulate(np.where(first, np.arange(len(gids)), 0))
        leaders, members = gids[start[~first]], gids[~first]
        new = leaders < first_old  # the leader is the least gid: old-old pairs have an old leader
        leaders, members = leaders[new], members[new]
        stats = {
            "entries": len(gids),
            "buckets": int((first[:-1] & ~first[1:]).sum()),  # buckets of 2 or more
            "pairs": len(leaders),
        }
    group = group_of(leaders, n_groups)
    order = np.argsort(group, kind="stable")
    packed = (leaders[order].astype(np.uint64) << np.uint64(32)) | members[order].astype(np.uint64)
    np.save(Path(out_dir) / f"s{slot:06d}.pairs.npy", packed)
    np.save(Path(out_dir) / f"s{slot:06d}.offs.npy", np.searchsorted(group[order], np.arange(n_groups + 1)))
    return stats


def merge_pairs(task: tuple[str, int, int, str, str | None]) -> int:
    """Phase 3 for one pair group: distinct packed pairs (leader << 32 | member), sorted;
    with `need_path`, also the distinct ids they touch (whose sets verification needs)."""
    pair_dir, group, n_slots, out_path, need_path = task
    chunks = []
    for s in range(n_slots):
        offs = np.load(Path(pair_dir) / f"s{s:06d}.offs.npy")
        lo, hi = int(offs[group]), int(offs[group + 1])
        if hi > lo:
            chunks.append(np.load(Path(pair_dir) / f"s{s:06d}.pairs.npy", mmap_mode="r")[lo:hi])
    pairs = np.concatenate(chunks) if chunks else np.empty(0, np.uint64)
    pairs.sort()
    if len(pairs):
        pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]
    np.save(out_path, pairs)
    if need_path:
        ends = np.concatenate(unpack(pairs))
        ends.sort()
        np.save(need_path, ends[np.concatenate([[True], ends[1:] != ends[:-1]])] if len(ends) else ends)
    return len(pairs)


def unpack(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (pairs >> np.uint64(32)).astype(np.uint32), (pairs & np.uint64(0xFFFFFFFF)).astype(np.uint32)
