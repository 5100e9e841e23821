"""Input readers: one input unit (a file, or a Hugging Face dataset) in, `Document`s out.

Every reader streams with bounded memory and never raises on bad *input*: a record that cannot
become a document is yielded as a `BadRecord` (quarantined with where it was and why) so that one
broken line never costs a shard, and nothing is ever dropped without a trace. Problems that are
not about the input's content (a missing file, an unknown format or option, an unreachable hub
dataset) do raise, because no quarantine entry would help anyone fix them.

Positions (`BadRecord.line`, and the `#n` in derived ids) are 1-based line numbers for JSONL and
text, 0-based row indices for Parquet and Hugging Face datasets (so `dataset[row]` and
`table.slice(row, 1)` fetch the record) and 1-based record ordinals for WARC/WET (every WARC record
counts, including warcinfo and request records).

Reader modules are imported on first use, so a worker that only reads JSONL never pays for
importing `datasets` or `trafilatura`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.document import Document
from pipeline.storage import as_path, glob, is_url

if TYPE_CHECKING:
    from upath import UPath


@dataclass(slots=True)
class BadRecord:
    """One quarantined input record (or a whole file, when `line` is None)."""

    path: str
    line: int | None
    field: str | None
    reason: str
    detail: str
    excerpt: str


@dataclass(frozen=True, slots=True)
class Span:
    """Part of a file read as its own unit (`pipeline.units`): bytes [start, end) of a JSONL file
    whose first line is line `first`, or row groups [start, end) of a Parquet file whose first
    row is row `first`, so positions stay those of the whole file."""

    start: int
    end: int
    first: int


FORMATS: tuple[str, ...] = ("jsonl", "parquet", "text", "warc", "wet", "hf")
HTML_EXTRACTORS: tuple[str, ...] = ("trafilatura", "resiliparse")

# What a directory expands to. Compression is detected from the bytes, not the name, so these
# only decide which files in a folder belong to the format (".warc.wet.gz" ends with ".wet.gz",
# which keeps WET files out of "warc" and WARC files out of "wet").
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "jsonl": (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json.zst", ".ndjson"),
    "parquet": (".parquet",),
    "text": (".txt", ".txt.gz", ".txt.zst"),
    "warc": (".warc", ".warc.gz"),
    "wet": (".wet", ".wet.gz"),
}
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def read_source(
    path: Path,
    *,
    source: str,
    format: str,
    text_field: str = "text",
    id_field: str = "id",
    html_extractor: str = "trafilatura",
    **options,
) -> Iterator[Document | BadRecord]:
    """Stream one input file (or one HF dataset dir) as documents, yielding BadRecords for bad input.

    `source` names the corpus the documents belong to; it always becomes `Document.source`.
    `text_field` / `id_field` apply to record formats (jsonl, parquet, hf); `html_extractor`
    to "warc". Format-specific `options`: jsonl `span` (a part of the file); parquet
    `batch_size`, `span`; hf `split`, `batch_size`; text `root` (ids are paths relative to it,
    default the current directory). An option the format does not take raises TypeError here,
    at call time, not on first iteration.
    """
    path = as_path(path)
    if not source:
        raise ValueError("source must be a non-empty name")
    if format in ("jsonl", "parquet", "hf"):
        from pipeline.readers.common import RecordMapper

        mapper = RecordMapper(source, text_field, id_field, path, path.name)
        if format == "jsonl":
            from pipeline.readers.jsonl import read_jsonl

            return read_jsonl(mapper, **options)
        if format == "parquet":
            from pipeline.readers.parquet import read_parquet

            return read_parquet(mapper, **options)
        from pipeline.readers.hf import read_hf

        return read_hf(mapper, **options)
    if format == "text":
        from pipeline.readers.text import read_text

        return read_text(path, source=source, **options)
    if format in ("warc", "wet"):
        if html_extractor not in HTML_EXTRACTORS:
            raise ValueError(f"unknown html_extractor {html_extractor!r}; expected one of {HTML_EXTRACTORS}")
        from pipeline.readers.warc import read_warc

        return read_warc(path, source=source, kind=format, html_extractor=html_extractor, **options)
    raise ValueError(f"unknown input format {format!r}; expected one of {FORMATS}")


def expand_paths(pattern: str | os.PathLike[str], format: str) -> list[Path | UPath]:
    """Resolve a glob (relative to the current directory, or an fsspec URL such as
    `s3://bucket/dir/*.jsonl.gz`: `pipeline.storage`) into sorted input units.

    A matched file is one unit; a matched directory expands (recursively) to its files with the
    format's suffixes, so `data/books/` and `data/books/**/*.txt` mean the same thing. For "hf"
    a matched path is one unit as is (a saved dataset dir or a data-files dir), and a pattern that
    matches nothing but looks like a hub id (`owner/name`) is returned unchanged for
    `load_dataset` to resolve. Raises FileNotFoundError naming the pattern if nothing matches.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown input format {format!r}; expected one of {FORMATS}")
    pattern = os.fspath(pattern)
    matches = glob(pattern)
    if format == "hf":
        if not matches and _HUB_ID.fullmatch(pattern):  # no glob characters can match _HUB_ID
            return [Path(pattern)]
        units = set(matches)
    else:
        suffixes = _SUFFIXES[format]
        units = set()
        for match in matches:
            if match.is_dir():
                units.update(p for p in match.rglob("*") if p.name.endswith(suffixes) and p.is_file())
            else:
                units.add(match)
    if not units:
        raise FileNotFoundError(f"no {format} input matches {pattern!r}")
    return sorted(units, key=str) if is_url(pattern) else sorted(units)


__all__ = ["FORMATS", "HTML_EXTRACTORS", "BadRecord", "Span", "expand_paths", "read_source"]
