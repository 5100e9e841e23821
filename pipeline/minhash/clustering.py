"""Connected components of the candidate graph (union-find), within a memory budget.

Input: files of packed pairs (a << 32 | b, a < b, uint32 ids below 2^32 - 1). Output: one
uint32 label per id, the least id of its component, or NONE for an id in no pair. Pairs are
always streamed from disk in chunks; what must fit is the label array.

* In memory (labels fit the budget): union by minimum, vectorised over all pairs. Each
  sweep hooks, for every pair, the larger of the two current labels onto the smaller
  (`minimum.at`), then pointer jumping flattens every chain; sweeps repeat until every pair
  has equal labels. A handful of sweeps, even for long chains of edited copies.
* Out of core (labels do not fit): ids are cut into shards of consecutive ids, two of which
  fit the budget. Pairs are first spilled into one run file per (shard, shard) block. A sweep
  visits each block with its two shards loaded and lowers both endpoints' labels to the pair's
  minimum label, then jumps every label through the shards below it. Same fixed point: labels
  only decrease, stay ids of the same component, and a sweep that changes nothing leaves every
  pair with equal labels, so each component carries its least id.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.minhash.config import NONE
from pipeline.minhash.lsh import unpack

BYTES_PER_ID_IN_MEMORY = 13  # label, its jumped copy, the in-a-pair flag
BYTES_PER_ID_SHARDED = 10  # per shard: label, flag, temporaries of a jump; two shards at once
BYTES_PER_PAIR_CHUNK = 64  # packed pair, unpacked ends, labels, minima
MIN_CHUNK = 256  # pairs per step and ids per shard at the least, however small the budget:
MIN_SHARD = 256  # below that, per-file overheads would dominate


def _chunks(paths: list[Path], size: int) -> Iterator[np.ndarray]:
    for p in paths:
        pairs = np.load(p, mmap_mode="r") if p.suffix == ".npy" else np.memmap(p, np.uint64, "r")
        for lo in range(0, len(pairs), size):
            yield np.asarray(pairs[lo : lo + size])


def components(pair_files: list[Path], n_ids: int, budget: int, work: Path, out: Path) -> dict[str, int]:
    """Write labels (.npy, uint32, `n_ids` long) to `out`; return how the work was done."""
    chunk = max(MIN_CHUNK, min(1 << 22, budget // (4 * BYTES_PER_PAIR_CHUNK)))
    if n_ids * BYTES_PER_ID_IN_MEMORY + chunk * BYTES_PER_PAIR_CHUNK <= budget:
        labels, sweeps = _in_memory(pair_files, n_ids, chunk)
        np.save(out, labels)
        return {"shards": 1, "sweeps": sweeps}
    shard = max(MIN_SHARD, (budget - chunk * BYTES_PER_PAIR_CHUNK) // (2 * BYTES_PER_ID_SHARDED))
    return _sharded(pair_files, n_ids, shard, chunk, work, out)


def _in_memory(pair_files: list[Path], n_ids: int, chunk: int) -> tuple[np.ndarray, int]:
    parent = np.arange(n_ids, dtype=np.uint32)
    in_pair = np.zeros(n_ids, dtype=bool)
    sweeps = 0
    while True:
        sweeps += 1
        merged = False
        for packed in _chunks(pair_files, chunk):
            a, b = unpack(packed)
            if sweeps == 1:
                in_pair[a] = True
                in_pair[b] = True
            la, lb = parent[a], parent[b]
            differ = la != lb
            if differ.any():
                merged = True
                lo, hi = np.minimum(la[differ], lb[differ]), np.maximum(la[differ], lb[differ])
                np.minimum.at(parent, hi, lo)
        while True:  # pointer jumping until every id points at its root
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        if not merged:
            break
    return np.where(in_pair, parent, NONE), sweeps


def _sharded(
    pair_files: list[Path], n_ids: int, shard: int, chunk: int, work: Path, out: Path
) -> dict[str, int]:
    n_shards = -(-n_ids // shard)
    runs = work / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)
    blocks: set[tuple[int, int]] = set()
    for packed in _chunks(pair_files, chunk):  # spill pairs into one sorted run per block
        a, b = unpack(packed)
        block = (a // shard).astype(np.int64) * n_shards + (b // shard)
        order = np.argsort(block, kind="stable")
        block, packed = block[order], packed[order]
        edges = np.flatnonzero(np.diff(block)) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(block)], strict=True):
            i, j = divmod(int(block[lo]), n_shards)
            blocks.add((i, j))
            with (runs / f"{i}_{j}.bin").open("ab") as f:
                packed[lo:hi].tofile(f)
    labels_dir = work / "labels"
    shutil.rmtree(labels_dir, ignore_errors=True)
    labels_dir.mkdir(parents=True)
    for i in range(n_shards):
        lo, hi = i * shard, min(n_ids, (i + 1) * shard)
        np.save(labels_dir / f"{i}.npy", np.arange(lo, hi, dtype=np.uint32))
        np.save(labels_dir / f"{i}.in.npy", np.zeros(hi - lo, dtype=bool))

    def load(i: int) -> tuple[np.ndarray, np.ndarray]:
        return np.load(labels_dir / f"{i}.npy"), np.load(labels_dir / f"{i}.in.npy")

    def save(i: int, lab: np.ndarray, flag: np.ndarray) -> None:
        np.save(labels_dir / f"{i}.npy", lab)
        np.save(labels_dir / f"{i}.in.npy", flag)

    sweeps = 0
    while True:
        sweeps += 1
        changed = False
        for i, j in sorted(blocks):
            li, fi = load(i)
            lj, fj = (li, fi) if j == i else load(j)
            for packed in _chunks([runs / f"{i}_{j}.bin"], chunk):
                a, b = unpack(packed)
                a_loc, b_loc = a - np.uint32(i * shard), b - np.uint32(j * shard)
                fi[a_loc] = True
                fj[b_loc] = True
                la, lb = li[a_loc], lj[b_loc]
                low = np.minimum(la, lb)
                if (low < la).any() or (low < lb).any():
                    changed = True
                    np.minimum.at(li, a_loc, low)
                    np.minimum.at(lj, b_loc, low)
            save(i, li, fi)
            if j != i:
                save(j, lj, fj)
        for i in range(n_shards):  # jump each label through the (already jumped) shards below
            li, fi = load(i)
            for j in range(i + 1):
                lj = li if j == i else load(j)[0]
                sel = (li >= j * shard) & (li < (j + 1) * shard)
                li[sel] = lj[li[sel] - np.uint32(j * shard)]
            save(i, li, fi)
        if not changed:
            break
    result = np.lib.format.open_memmap(out, mode="w+", dtype=np.uint32, shape=(n_ids,))
    for i in range(n_shards):
        li, fi = load(i)
        result[i * shard : i * shard + len(li)] = np.where(fi, li, NONE)
    result.flush()
    del result
    shutil.rmtree(runs)
    shutil.rmtree(labels_dir)
    return {"shards": n_shards, "sweeps": sweeps, "blocks": len(blocks)}
