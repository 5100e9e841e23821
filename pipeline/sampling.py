"""Choosing documents by the lowest hash of their id, within a byte budget.

The tokenizer's training sample (the `tokenize` step) and each source's token-counting sample
(the `mix` step) are both "the documents with the lowest hashes until the budget is reached".
That rule composes: each batch may offer its own lowest-hash documents up to the budget, and the
lowest of all the offers is the global selection (a document in the global selection has less
than the budget of lower-hash text before it anywhere, so also within its batch). So a step can
pick the sample while it summarises a corpus batch by batch, and a summary compacted part way
through selects exactly what an uncompacted one would.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MB = 1_000_000  # sample budgets are given in 10^6 bytes


def lowest_within(hashes: np.ndarray, sizes: np.ndarray, budget: int) -> np.ndarray:
    """Indices of the lowest hashes, in hash order, taken while the bytes before each are under
    `budget` (so the selection reaches the budget unless everything fits)."""
    order = np.argsort(hashes, kind="stable")
    before = np.cumsum(sizes[order]) - sizes[order]
    return order[: int(np.searchsorted(before, budget, side="left"))]


def keep_lowest_texts(
    table: pa.Table, hashes: np.ndarray, budget: int, groups: Iterable[np.ndarray] | None = None
) -> pa.Table:
    """`table` with its `text` column nulled except in the lowest-hash rows holding text, within
    `budget` bytes (`n_bytes` column) for the table or for each group of row indices. Selecting
    by lowest hash composes across batches, as a summary compaction must."""
    has_text = table["text"].is_valid().to_numpy(zero_copy_only=False)
    sizes = table["n_bytes"].to_numpy()
    keep = np.zeros(len(table), dtype=bool)
    for rows in groups if groups is not None else [np.arange(len(table))]:
        rows = rows[has_text[rows]]
        keep[rows[lowest_within(hashes[rows], sizes[rows], budget)]] = True
    texts = pc.if_else(pa.array(keep), table["text"], pa.scalar(None, pa.large_string()))
    return table.set_column(table.schema.get_field_index("text"), "text", texts)
