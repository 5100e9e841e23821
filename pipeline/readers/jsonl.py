"""JSON Lines (plain, gzip or zstd): one JSON object per line. The pipeline's hot input path.

Each line is decoded strictly as UTF-8 and parsed on its own, so one bad line is one BadRecord
and never poisons its neighbours. Blank (empty or whitespace-only) lines are not records: they
are skipped without a BadRecord but still counted, so line numbers match `sed -n Np` on the
decompressed file. A UTF-8 byte order mark at the start of the file is ignored.

Speed: stdlib `json` on strictly decoded lines split from ~1 MiB chunks runs at ~140-160 MB/s
of decompressed input on one core over the sample's .jsonl.gz files (~80 MB/s when lines are
only ~600 bytes; `pytest -m slow tests/test_readers.py` guards > 50 MB/s). The lone-surrogate
check only walks a record whose raw line holds a surrogate-range escape, which is rare, so the
common path pays one regex scan per line.
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from collections.abc import Iterator

from pipeline.document import Document
from pipeline.readers import BadRecord, Span
from pipeline.readers.common import RecordMapper, surrogate_field
from pipeline.readers.compression import (
    CORRUPTION_ERRORS,
    decompressed_chunks,
    iter_lines,
    looks_binary,
    range_chunks,
)

# Matches both halves of a proper pair too ("\ud83d\ude00" is one emoji); the walk decides.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def read_jsonl(mapper: RecordMapper, span: Span | None = None) -> Iterator[Document | BadRecord]:
    """Documents of one JSONL file, or of the part `span` of an uncompressed one (whole lines,
    numbered as in the whole file); see the module docstring for what counts as a record."""
    line_no = 0 if span is None else span.first - 1
    try:
        if span is None:
            chunks = decompressed_chunks(mapper.path)
        else:
            chunks = range_chunks(mapper.path, span.start, span.end)
        head = next(chunks, b"")
        if span is None or span.start == 0:
            head = head.removeprefix(codecs.BOM_UTF8)
        if looks_binary(head):
            detail = "NUL bytes or mostly invalid UTF-8 at the start: binary (or UTF-16/32), not JSON Lines"
            yield mapper.bad(None, None, "binary_file", detail, head)
            return
        first = line_no + 1
        for line_no, line in enumerate(iter_lines(itertools.chain((head,), chunks)), first):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                detail = f"invalid UTF-8 byte(s) {line[e.start : e.end]!r} at byte {e.start}"
                yield mapper.bad(line_no, _invalid_utf8_field(line), "invalid_utf8", detail, line)
                continue
            try:
                record = json.loads(text)
            except (ValueError, RecursionError) as e:  # JSONDecodeError, int too long, nesting
                if text and not text.isspace():
                    yield mapper.bad(line_no, None, "malformed_json", str(e)[:200], line)
                continue
            if _SURROGATE_ESCAPE.search(line) and (field := surrogate_field(record)) is not None:
                detail = (
                    f"{field!r} holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair)"
                )
                yield mapper.bad(line_no, field, "lone_surrogate", detail, line)
                continue
            yield mapper.convert(record, line_no, line)
    except EOFError as e:
        yield mapper.bad(line_no + 1, None, "truncated_file", f"file ends inside line {line_no + 1}: {e}", "")
    except CORRUPTION_ERRORS as e:
        detail = f"compressed stream corrupt at line {line_no + 1}: {e}"
        yield mapper.bad(line_no + 1, None, "corrupt_file", detail, "")


def _invalid_utf8_field(line: bytes) -> str | None:
    """Which field holds the invalid bytes: parse with the bytes smuggled through as surrogates,
    then look for them. None when the line is not a JSON object even so."""
    try:
        record = json.loads(line.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return None
    return surrogate_field(record)
