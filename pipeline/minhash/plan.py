"""The MinHash plan: every phase after the per-unit signatures, each one a parallel map.

    band keys per unit -> candidates per (band, key partition) -> distinct pairs per pair
    group -> [ship shingle sets per unit -> verify per pair group] -> union-find ->
    [members' set sizes per unit] -> members per unit -> keep rule per cluster group ->
    [save the index per unit]

Partition counts come from the memory budget, so no task ever holds more than its share:
one unit, one (band, partition) slice, one pair group, or one cluster group. Everything
intermediate lives under `<state>/work/` and is deleted at the end; what `apply` and `report`
read stays: `drops/`, `clusters/`, `examples.json`, `summary.json` (and `index/` when saved).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from pipeline.atomic import write_json
from pipeline.minhash import index as index_mod
from pipeline.minhash.clustering import components
from pipeline.minhash.config import NONE, MinHashConfig
from pipeline.minhash.keep import (
    BYTES_PER_SET_VALUE,
    bytes_per_member,
    clustered_values,
    collect_members,
    decide_group,
)
from pipeline.minhash.lsh import (
    BYTES_PER_PAIR,
    UnitRef,
    find_candidates,
    merge_pairs,
    partition_bits,
    write_band_file,
)
from pipeline.minhash.verify import ship_sets, verify_group
from pipeline.steps.base import ParallelMap

N_EXAMPLES = 3  # largest clusters shown in the report, and as many drawn at random
MIN_GROUPS = 8  # pair groups however small the corpus: verification is the plan's heaviest phase


def _column_bytes(path: str, column: str) -> int:
    meta = pq.ParquetFile(path).metadata
    total = 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for c in range(rg.num_columns):
            if rg.column(c).path_in_schema.split(".")[0] == column:
                total += rg.column(c).total_uncompressed_size
    return total


def _units(summaries: list[tuple[str, Path]], old: list[tuple[str, Path]]) -> list[UnitRef]:
    units, gid0 = [], 0
    for i, (name, path) in enumerate([*summaries, *old]):
        rows = pq.ParquetFile(path).metadata.num_rows
        units.append(UnitRef(i, name, str(path), gid0, rows, i >= len(summaries)))
        gid0 += rows
    if gid0 >= int(NONE):
        raise ValueError(f"minhash_dedup: {gid0:,} documents, more than the 2^32 - 2 this step supports")
    return units


class _Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = round(now - self._t, 3)
        self._t = now


def _map(pmap: ParallelMap, fn: Callable[[Any], Any], items: list[Any], desc: str) -> list[Any]:
    return list(pmap(fn, items, f"minhash_dedup: {desc}")) if items else []


def run_plan(
    cfg: MinHashConfig,
    summaries: list[tuple[str, Path]],
    state: Path,
    pmap: ParallelMap,
    index: str | None,
    save_index: bool,
) -> dict[str, Any]:
    clock = _Clock()
    for name in ("work", "drops", "clusters", "index"):
        shutil.rmtree(state / name, ignore_errors=True)  # a plan killed halfway starts over
    work = state / "work"
    generation, old_files = index_mod.open_index(index, cfg) if index else (0, [])
    units = _units(summaries, old_files)
    new_units = [u for u in units if not u.old]
    n_ids = units[-1].gid0 + units[-1].rows if units else 0
    first_old = sum(u.rows for u in new_units)
    budget = cfg.memory_budget

    band_dir = work / "bands"
    band_dir.mkdir(parents=True)
    bits = partition_bits(n_ids, budget)
    signed = sum(_map(pmap, write_band_file, [(cfg, u, bits, str(band_dir)) for u in units], "band keys"))
    clock.lap("band keys")

    n_groups = -(-signed * cfg.bands * BYTES_PER_PAIR // budget)
    if cfg.verify:
        set_bytes = sum(_column_bytes(u.path, "shingles") for u in units)
        n_groups = max(n_groups, -(-2 * set_bytes // budget))
    n_groups = max(MIN_GROUPS, n_groups)
    pair_dir = work / "pairs"
    pair_dir.mkdir()
    slots = cfg.bands << bits
    slot_tasks = [
        (
            str(band_dir),
            s,
            1 << bits,
            cfg.bands,
            [u.index for u in units],
            n_groups,
            first_old,
            str(pair_dir),
        )
        for s in range(slots)
    ]
    slot_stats = _map(pmap, find_candidates, slot_tasks, "candidates per band")
    shutil.rmtree(band_dir)
    clock.lap("candidates")

    merged_dir = work / "merged"
    merged_dir.mkdir()
    merge_tasks = [
        (
            str(pair_dir),
            r,
            slots,
            str(merged_dir / f"g{r:06d}.npy"),
            str(merged_dir / f"g{r:06d}.need.npy") if cfg.verify else None,
        )
        for r in range(n_groups)
    ]
    candidates = sum(_map(pmap, merge_pairs, merge_tasks, "distinct pairs"))
    shutil.rmtree(pair_dir)
    clock.lap("distinct pairs")

    verify_stats: list[dict[str, Any]] = []
    if cfg.verify:
        need = [str(merged_dir / f"g{r:06d}.need.npy") for r in range(n_groups)]
        ship_dir = work / "ship"
        shipped = sum(_map(pmap, ship_sets, [(u, need, str(ship_dir)) for u in units], "ship shingle sets"))
        clock.lap("ship sets")
        verify_tasks = [
            (
                str(merged_dir / f"g{r:06d}.npy"),
                str(ship_dir / f"g{r:06d}"),
                cfg.jaccard_threshold,
                str(merged_dir / f"g{r:06d}.verified"),
            )
            for r in range(n_groups)
        ]
        verify_stats = _map(pmap, verify_group, verify_tasks, "verify pairs")
        shutil.rmtree(ship_dir, ignore_errors=True)
        pair_files = [merged_dir / f"g{r:06d}.verified.npy" for r in range(n_groups)]
        clock.lap("verify")
    else:
        shipped = 0
        pair_files = [merged_dir / f"g{r:06d}.npy" for r in range(n_groups)]
    kept_pairs = sum(int(np.load(p, mmap_mode="r").shape[0]) for p in pair_files)

    labels_path = work / "labels.npy"
    cluster_stats = components(pair_files, n_ids, budget, work / "uf", labels_path)
    clock.lap("union-find")

    labels = np.load(labels_path, mmap_mode="r")
    in_clusters = sum(int((labels[lo : lo + (1 << 24)] != NONE).sum()) for lo in range(0, n_ids, 1 << 24))
    del labels
    member_bytes = in_clusters * bytes_per_member(cfg)
    if cfg.verify:  # the keep rule checks removals against kept documents' shingle sets
        set_tasks = [(u, str(labels_path)) for u in units]
        member_bytes += BYTES_PER_SET_VALUE * sum(_map(pmap, clustered_values, set_tasks, "member sets"))
    n_cluster_groups = max(1, -(-member_bytes // budget))
    member_dir = work / "members"
    member_tasks = [(cfg, u, str(labels_path), n_cluster_groups, str(member_dir)) for u in units]
    _map(pmap, collect_members, member_tasks, "cluster members")
    (state / "drops").mkdir()
    (state / "clusters").mkdir()
    decide_tasks = [
        (
            cfg,
            str(member_dir / f"k{k:06d}"),
            str(state / "drops" / f"k{k:06d}.parquet"),
            str(state / "clusters" / f"k{k:06d}.parquet"),
            N_EXAMPLES,
        )
        for k in range(n_cluster_groups)
    ]
    decided = _map(pmap, decide_group, decide_tasks, "keep rule")
    clock.lap("keep rule")

    index_docs = 0
    if save_index:
        root = state / "index"
        (root / "docs").mkdir(parents=True)
        gen = generation + 1
        tasks = [
            (cfg, u.name, u.path, str(state / "drops"), str(root / "docs" / f"g{gen:04d}-{u.name}.parquet"))
            for u in new_units
        ]
        index_docs = sum(_map(pmap, index_mod.save_unit, tasks, "save index"))
        files = index_mod.link_old([p for _, p in old_files], root / "docs")
        files += [Path(t[-1]).name for t in tasks]
        index_docs += sum(u.rows for u in units if u.old)
        index_mod.write_meta(root, cfg, gen, files, index_docs)
        clock.lap("save index")
    shutil.rmtree(work)

    size_counts: dict[int, int] = {}
    for d in decided:
        for size, count in d["size_counts"].items():
            size_counts[int(size)] = size_counts.get(int(size), 0) + count
    examples = [e for d in decided for e in d["examples"]]
    shown = sorted(examples, key=lambda e: (-e["size"], e["cluster"]))[:N_EXAMPLES]
    shown += sorted((e for e in examples if e not in shown), key=lambda e: e["draw"])[:N_EXAMPLES]
    write_json(state / "examples.json", shown)
    stats = {
        "documents": first_old,
        "index_documents": n_ids - first_old,
        "with_signature": signed,
        "bands": cfg.bands,
        "rows": cfg.rows,
        "num_perm": cfg.num_perm,
        "jaccard_threshold": round(cfg.jaccard_threshold, 4),
        "verify": cfg.verify,
        "key_partitions": 1 << bits,
        "pair_groups": n_groups,
        "cluster_groups": n_cluster_groups,
        "bucket_entries": sum(s["entries"] for s in slot_stats),
        "candidate_pairs": candidates,
        "sets_shipped": shipped,
        "pairs_verified": kept_pairs if cfg.verify else None,
        "jaccard_hist": np.sum([v["jaccard_hist"] for v in verify_stats], axis=0).tolist()
        if verify_stats
        else None,
        "union_find": cluster_stats,
        "documents_in_clusters": in_clusters,
        "clusters": sum(d["clusters"] for d in decided),
        "duplicates": sum(d["removed"] for d in decided),
        "kept_beyond_first": sum(d["kept_beyond_first"] for d in decided),
        "chars_removed": sum(d["chars_removed"] for d in decided),
        "cluster_sizes": {str(k): v for k, v in sorted(size_counts.items())},
        "index_saved": str(state / "index") if save_index else None,
        "index_saved_documents": index_docs if save_index else None,
        "index_used": str(index) if index else None,
        "seconds": clock.seconds,
    }
    write_json(state / "summary.json", stats)
    return stats
