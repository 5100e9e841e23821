"""The document record that flows through every step, and its on-disk (Parquet) form.

Ids are stable strings carried end to end so that stages can be re-run, re-sharded and
resumed independently: nothing downstream ever refers to a document by list position.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

EXCERPT_CHARS = 300
COPIES = "mix_copies"  # meta key: how many times the sink writes the document (absent: once)


@dataclass(slots=True)
class Document:
    id: str
    source: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    # Where the reader found it (a JSON Lines line, a Parquet row, a WARC record number), for
    # messages about the input; not stored past the first stage.
    position: int | None = field(default=None, compare=False)


@dataclass(slots=True)
class Removal:
    """Why a step dropped a document; `duplicate_of` names the kept twin for dedup steps."""

    doc: Document
    step: str
    reason: str
    duplicate_of: str | None = None
    detail: dict[str, Any] | None = None  # e.g. a near-duplicate's cluster and similarity


DOC_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        # JSON keeps the schema fixed while steps add arbitrary metadata (scores, urls, ...).
        pa.field("meta", pa.string(), nullable=False),
    ]
)

REMOVAL_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("step", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("excerpt", pa.string()),
        pa.field("duplicate_of", pa.string()),
        pa.field("detail", pa.string()),  # JSON
        pa.field("chars", pa.int64()),
    ]
)


def docs_to_table(docs: Iterable[Document]) -> pa.Table:
    docs = list(docs)
    return pa.table(
        {
            "id": [d.id for d in docs],
            "source": [d.source for d in docs],
            "text": [d.text for d in docs],
            "meta": [json.dumps(d.meta, ensure_ascii=False, sort_keys=True) for d in docs],
        },
        schema=DOC_SCHEMA,
    )


def table_to_docs(table: pa.Table) -> list[Document]:
    cols = table.select(["id", "source", "text", "meta"]).to_pydict()
    return [
        Document(i, s, t, json.loads(m) if m and m != "{}" else {})
        for i, s, t, m in zip(cols["id"], cols["source"], cols["text"], cols["meta"], strict=True)
    ]


def removals_to_table(removals: Iterable[Removal]) -> pa.Table:
    removals = list(removals)
    return pa.table(
        {
            "id": [r.doc.id for r in removals],
            "source": [r.doc.source for r in removals],
            "step": [r.step for r in removals],
            "reason": [r.reason for r in removals],
            "excerpt": [r.doc.text[:EXCERPT_CHARS] for r in removals],
            "duplicate_of": [r.duplicate_of for r in removals],
            "detail": [None if r.detail is None else json.dumps(r.detail, sort_keys=True) for r in removals],
            "chars": [len(r.doc.text) for r in removals],
        },
        schema=REMOVAL_SCHEMA,
    )


def copies_of(doc: Document) -> int:
    """How many times to write `doc`: `meta[COPIES]`, a positive integer, else once."""
    n = doc.meta.get(COPIES, 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"tokenize: document {doc.id!r} has meta {COPIES}={n!r}, not a positive integer")
    return n


def copy_id(doc_id: str, k: int) -> str:
    """The id of a document's k-th copy; the first keeps the document's own id."""
    return doc_id if k == 1 else f"{doc_id}#copy{k}"
