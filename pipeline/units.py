"""Work units: what one task reads. A whole input file, or a part of a large one.

One big file must not leave the other workers idle (a 42 MB single-file corpus used to run
every stage on one core). So an uncompressed JSON Lines file larger than the recipe's
`unit_mb` is cut into byte ranges of about that size, each cut just after a newline, and a
Parquet file into runs of whole row groups of about that size on disk. Every part reads the
same records, with the same line or row numbers, as the whole file would, so document ids
derived from positions, quarantine entries and error messages do not change with the cut.

What cannot be cut: a gzip or zstd stream can only be read from its start, a WARC file is one
stream of records, a text file is one document, a Hugging Face dataset is read through
`datasets`. Such an input is one unit whatever its size; `pipeline plan` names the large ones
and says how to split them.

The cut depends only on the file and `unit_mb` (in the recipe's fingerprint), never on the
number of workers, so a resumed run finds the same units.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow.parquet as pq

from pipeline.document import Document
from pipeline.readers import BadRecord, Span, expand_paths, read_source
from pipeline.readers.compression import is_compressed
from pipeline.recipe import Recipe
from pipeline.storage import AnyPath, as_path, is_url

SCAN_BYTES = 8 << 20  # chunk of the newline count that numbers a JSONL file's parts


@dataclass(frozen=True)
class Unit:
    """A work unit: one input (file or dataset), or one part of a file (`span`)."""

    id: str
    source: int
    path: str
    span: Span | None = None


def list_units(recipe: Recipe) -> list[Unit]:
    """Every source's inputs, in order, large splittable files cut into parts."""
    units = []
    limit = round(recipe.unit_mb * 1e6)
    for si, src in enumerate(recipe.sources):
        for fi, path in enumerate(expand_paths(src.path, src.format)):
            name = f"{src.name}-{fi:05d}"
            spans = split(path, src.format, limit)
            if len(spans) <= 1:
                units.append(Unit(name, si, str(path)))
            else:
                units += [Unit(f"{name}-{k:04d}", si, str(path), s) for k, s in enumerate(spans)]
    return units


def split(path: AnyPath, format: str, limit: int) -> list[Span]:
    """The parts of one input of about `limit` bytes each; [] when it is read whole."""
    if format not in ("jsonl", "parquet") or not path.is_file():
        return []
    size = path.stat().st_size
    if size <= limit:
        return []
    if format == "parquet":
        return _row_group_spans(path, limit)
    if is_compressed(path):
        return []
    return _line_spans(path, size, math.ceil(size / limit))


def _why_whole(path: AnyPath, format: str) -> str:
    if format == "jsonl":
        return (
            "compressed: a gzip or zstd stream is read from its start" if is_compressed(path) else "one line"
        )
    return "a single row group" if format == "parquet" else f"{format}: read as one stream"


def unsplittable(recipe: Recipe) -> list[tuple[str, int, str]]:
    """(path, bytes, why) of input files over `unit_mb` that `split` leaves whole."""
    limit = round(recipe.unit_mb * 1e6)
    found = []
    for src in recipe.sources:
        for path in expand_paths(src.path, src.format):
            if (
                path.is_file()
                and (size := path.stat().st_size) > limit
                and len(split(path, src.format, limit)) <= 1
            ):
                found.append((str(path), size, _why_whole(path, src.format)))
    return found


def _line_spans(path: AnyPath, size: int, parts: int) -> list[Span]:
    """Byte ranges cut just after the first newline at or past each k/parts of the file, each
    with the number of its first line (one pass counting newlines, about 3 GB/s)."""
    cuts = [0]
    with path.open("rb") as f:
        for k in range(1, parts):
            target = max(size * k // parts, cuts[-1])
            f.seek(target)
            while chunk := f.read(1 << 16):
                if (i := chunk.find(b"\n")) >= 0:
                    if target + i + 1 < size:
                        cuts.append(target + i + 1)
                    break
                target += len(chunk)
        bounds = [*cuts, size]
        first_lines, line, pos = [], 1, 0
        f.seek(0)
        for cut in cuts:
            while pos < cut:
                chunk = f.read(min(SCAN_BYTES, cut - pos))
                line += chunk.count(b"\n")
                pos += len(chunk)
            first_lines.append(line)
    return [Span(bounds[i], bounds[i + 1], first_lines[i]) for i in range(len(cuts))]


def _row_group_spans(path: AnyPath, limit: int) -> list[Span]:
    """Runs of consecutive row groups of about `limit` bytes on disk, with their first row."""
    with path.open("rb") as f:
        meta = pq.ParquetFile(f).metadata
    spans, start, first, row, size = [], 0, 0, 0, 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        size += sum(group.column(c).total_compressed_size for c in range(group.num_columns))
        row += group.num_rows
        if size >= limit or g == meta.num_row_groups - 1:
            spans.append(Span(start, g + 1, first))
            start, first, size = g + 1, row, 0
    return spans


def read_unit(recipe: Recipe, unit: Unit) -> Iterator[Document | BadRecord]:
    """A unit's input records, read as its source in the recipe says."""
    src = recipe.sources[unit.source]
    options = {"span": unit.span} if unit.span is not None else {}
    return read_source(
        as_path(unit.path),
        source=src.name,
        format=src.format,
        text_field=src.text_field,
        id_field=src.id_field,
        html_extractor=src.html_extractor,
        **options,
    )


def input_files(units: list[Unit]) -> list[str]:
    """The distinct input files of `units`, in order (a cut file counts once; a Hugging Face
    dataset directory or hub id is not a file)."""
    return list(dict.fromkeys(u.path for u in units if is_url(u.path) or os.path.isfile(u.path)))
