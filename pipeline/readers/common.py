"""What the record readers share: turning one parsed record into a `Document` (or a `BadRecord`),
stable ids, excerpts, and the Arrow batch loop used by both Parquet and Hugging Face datasets."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.document import Document
from pipeline.readers import BadRecord
from pipeline.storage import AnyPath

EXCERPT_CHARS = 200
_SURROGATE = re.compile("[\\ud800-\\udfff]")


def derived_id(source: str, name: str, position: int) -> str:
    """The id of a record that brings none: stable across runs because it only depends on where
    the record sits, not on when or by which worker it was read."""
    return f"{source}/{name}#{position}"


def excerpt(raw: bytes | str | Any) -> str:
    """Up to EXCERPT_CHARS of the raw record, always safe to write (no invalid UTF-8, no surrogates)."""
    if isinstance(raw, bytes):
        return raw[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
    if not isinstance(raw, str):
        raw = json.dumps(raw, ensure_ascii=False, default=str)
    return _SURROGATE.sub("\ufffd", raw[:EXCERPT_CHARS])


def bad_record(
    path: AnyPath, line: int | None, field: str | None, reason: str, detail: str, raw: Any
) -> BadRecord:
    """A BadRecord whose excerpt is cut from `raw` (bytes, str, or a parsed record)."""
    return BadRecord(str(path), line, field, reason, detail, excerpt(raw))


def surrogate_field(record: Any) -> str | None:
    """The top-level key of `record` whose key or value holds a lone surrogate, else None.

    JSON allows escapes like "\\ud800" that decode to a str Python accepts but UTF-8 (and so
    Arrow, Parquet and every tokenizer) cannot encode; they must be caught at the door."""
    if isinstance(record, dict):
        for key, value in record.items():
            if _has_surrogate(key) or _has_surrogate(value):
                return key
    return None


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def jsonable(value: Any) -> Any:
    """An Arrow value (as `to_pylist` gives it) in JSON form, since Document.meta is stored as JSON.

    Timestamps and dates become ISO strings, decimals strings (exact), durations seconds, map
    entries lists, and binary values base64 (lossless; text corpora rarely carry any)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


@dataclass(frozen=True, slots=True)
class RecordMapper:
    """Maps parsed records of one input unit to Documents.

    The text comes from `text_field`, the id from `id_field` (else `derived_id`). Every other
    field lands in `Document.meta` so nothing upstream is lost: the contents of a "meta" object
    (or of a JSON-object string, which is how grist's own Parquet stores it) are merged in, other
    top-level fields (url, ...) are copied as is, an upstream "source" that differs from ours is
    kept as "orig_source", and an unusable id as "orig_id". When a nested meta key collides with
    a top-level field of a different value, the nested one is kept as "meta.<key>".
    """

    source: str
    text_field: str
    id_field: str
    path: AnyPath
    name: str  # the unit's name in derived ids

    def bad(self, position: int | None, field: str | None, reason: str, detail: str, raw: Any) -> BadRecord:
        return bad_record(self.path, position, field, reason, detail, raw)

    def convert(self, record: Any, position: int, raw: bytes | None = None) -> Document | BadRecord:
        """`raw` is the record's bytes when there are any (JSONL), for the excerpt of a BadRecord."""
        raw_or_record = record if raw is None else raw
        if not isinstance(record, dict):
            kind = type(record).__name__
            return self.bad(
                position, None, "not_an_object", f"record is a {kind}, not an object", raw_or_record
            )
        field = self.text_field
        text = record.get(field)
        if not isinstance(text, str):
            if text is not None:
                detail = f"{field!r} is a {type(text).__name__}, not a string"
                return self.bad(position, field, "not_a_string", detail, raw_or_record)
            detail = f"{field!r} is null" if field in record else f"no {field!r} field"
            return self.bad(position, field, "missing_field", detail, raw_or_record)
        if not text or text.isspace():
            return self.bad(position, field, "empty_text", f"{field!r} is empty or whitespace", raw_or_record)

        meta: dict[str, Any] = {}
        for key, value in record.items():
            if key == field or key == self.id_field or key == "meta":
                continue
            if key == "source":
                if value is not None and value != self.source:
                    meta["orig_source"] = value
                continue
            meta[key] = value
        if "meta" in record:
            _merge_meta(meta, record["meta"])

        doc_id = record.get(self.id_field)
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        elif not (isinstance(doc_id, str) and doc_id.strip()):
            if doc_id is not None:
                meta["orig_id"] = doc_id
            doc_id = derived_id(self.source, self.name, position)
        return Document(doc_id, self.source, text, meta, position)


def _merge_meta(meta: dict[str, Any], nested: Any) -> None:
    if isinstance(nested, str):
        try:
            parsed = json.loads(nested)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict) and not _has_surrogate(parsed):
            nested = parsed
    if not isinstance(nested, dict):
        meta["meta"] = nested
        return
    for key, value in nested.items():
        if key in meta and meta[key] != value:
            meta[f"meta.{key}"] = value
        else:
            meta[key] = value


def read_arrow_batches(
    batches: Iterable[pa.RecordBatch | pa.Table],
    mapper: RecordMapper,
    errors: tuple[type[Exception], ...] = (),
    first_row: int = 0,
) -> Iterator[Document | BadRecord]:
    """Rows of Arrow batches as documents, numbered from `first_row` across batches.

    Only one batch is materialised as Python objects at a time. An exception of one of the
    `errors` types from the batch source (a corrupt Parquet page, say) ends the unit with one
    "corrupt_file" BadRecord at the first row that could not be read."""
    row = first_row
    try:
        for batch in batches:
            for record in batch.to_pylist():
                yield mapper.convert(jsonable(record), row)
                row += 1
    except errors as e:
        yield mapper.bad(row, None, "corrupt_file", f"unreadable from row {row} on: {e}", "")
