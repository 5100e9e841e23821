"""Parquet files, via pyarrow, one record batch at a time.

Rows are numbered from 0 across the file (`table.slice(row, 1)` finds one). A `meta` column that
holds JSON-object strings, as grist's own document Parquet does, is parsed back into meta, so
grist output can be read again as input. A file pyarrow cannot open (not Parquet, or cut off
before its footer) is one whole-file "corrupt_file" BadRecord; damage found later ends the file
with one "corrupt_file" BadRecord at the first unreadable row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.document import Document
from pipeline.readers import BadRecord, Span
from pipeline.readers.common import RecordMapper, read_arrow_batches

_ERRORS = (pa.ArrowException, OSError)


def read_parquet(
    mapper: RecordMapper, *, batch_size: int = 1024, span: Span | None = None
) -> Iterator[Document | BadRecord]:
    """Documents of one Parquet file, or of its row groups `span` (rows numbered as in the whole
    file). `batch_size` rows are held as Python objects at a time: pyarrow's default (65,536)
    times multi-KB texts would be hundreds of MB."""
    path = mapper.path
    with path.open("rb") if not isinstance(path, Path) else nullcontext(path) as source:
        try:
            parquet_file = pq.ParquetFile(source)
        except _ERRORS as e:
            yield mapper.bad(None, None, "corrupt_file", f"not a readable Parquet file: {e}", "")
            return
        groups = None if span is None else list(range(span.start, span.end))
        with parquet_file:
            batches = parquet_file.iter_batches(batch_size=batch_size, row_groups=groups)
            yield from read_arrow_batches(
                batches, mapper, _ERRORS, first_row=0 if span is None else span.first
            )
