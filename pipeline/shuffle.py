"""A hash shuffle on disk, for corpus-wide plans too big for one task's memory.

Map side: each unit's summary rows go to one of P partitions by a 64-bit hash (its top bits),
one file per non-empty (partition, unit). Reduce side: one task per partition reads its files.
Rows with equal hashes always meet in one partition. P is a power of two chosen so that one
partition, at `factor` times its Arrow size while a task works on it, fits the budget.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def partition_count(nbytes: int, budget: int, factor: float) -> int:
    need = max(1, int(-(-nbytes * factor // budget)))
    return 1 << (need - 1).bit_length()


def table_bytes(path: str | Path) -> int:
    """A Parquet file's uncompressed size: what its table takes in memory, about."""
    meta = pq.ParquetFile(path).metadata
    return sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))


def write_partitions(table: pa.Table, hashes: np.ndarray, parts: int, out: Path, name: str) -> None:
    """`table`'s rows into `out/p<j>/<name>.parquet` by the top bits of `hashes` (uint64)."""
    bits = parts.bit_length() - 1
    part = (hashes >> np.uint64(64 - bits)) if bits else np.zeros(len(table), np.uint64)
    order = np.argsort(part, kind="stable")
    part = part[order]
    table = table.take(pa.array(order))
    bounds = np.flatnonzero(np.diff(part)) + 1
    for lo, hi in zip([0, *bounds], [*bounds, len(part)], strict=True):
        if hi > lo:
            path = out / f"p{int(part[lo]):05d}" / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.slice(lo, hi - lo), path)


def partition_dirs(out: Path) -> list[Path]:
    return sorted(out.glob("p*")) if out.exists() else []


def read_partition(part_dir: str | Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(f) for f in sorted(Path(part_dir).glob("*.parquet")))
