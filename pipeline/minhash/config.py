"""The settings every MinHash phase shares, and the per-document summary schema.

One frozen, picklable object travels with every parallel task, so a worker never rebuilds the
step to know how to hash or band.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from pipeline.minhash.signatures import Scheme

Keep = Literal["quality", "longest", "id"]
NONE = np.uint32(0xFFFFFFFF)  # "no cluster" label, and the reason document ids stay below 2^32 - 1


@dataclass(frozen=True)
class MinHashConfig:
    ngram: int
    num_perm: int
    bands: int
    rows: int
    seed: int
    scheme: Scheme
    verify: bool
    jaccard_threshold: float  # verification cut
    keep: Keep
    quality_key: str
    memory_budget: int  # bytes one plan task may use

    def hashing(self) -> dict[str, Any]:
        """What decides a signature: an index is only usable by a run that hashes the same way."""
        return {
            k: v
            for k, v in asdict(self).items()
            if k in ("ngram", "num_perm", "bands", "rows", "seed", "scheme")
        }

    def summary_schema(self) -> pa.Schema:
        fields = [
            pa.field("id", pa.string(), nullable=False),
            pa.field("chars", pa.int64(), nullable=False),
            pa.field("quality", pa.float64()),  # null when the document has no score
            pa.field("n_shingles", pa.int32(), nullable=False),  # 0: no word, never a candidate
            pa.field("sig", pa.binary(4 * self.num_perm), nullable=False),  # uint32 little-endian
            pa.field("excerpt", pa.string(), nullable=False),  # for the report's example clusters
        ]
        if self.verify:
            fields.append(pa.field("shingles", pa.large_list(pa.uint32()), nullable=False))
        return pa.schema(fields)


def sig_matrix(column: pa.ChunkedArray | pa.Array, num_perm: int) -> np.ndarray:
    """A fixed-size binary signature column as a (rows, num_perm) uint32 array (a copy)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = 4 * num_perm
    if len(arr) == 0:
        return np.empty((0, num_perm), np.uint32)
    data = np.frombuffer(arr.buffers()[1], np.uint8)[arr.offset * width : (arr.offset + len(arr)) * width]
    return data.view("<u4").reshape(len(arr), num_perm).astype(np.uint32)
