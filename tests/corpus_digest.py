"""A digest of what a corpus run produced, so a refactor can prove the output unchanged.

It covers the shards, the removal records, the quarantine and the tokenizer, hashed by content
rather than file bytes where a library writes the file (Parquet metadata names the pyarrow
version, `tokenizers` may order JSON keys differently): the digest moves only when the data do.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq

COVERED = ("shards/train", "shards/val", "removed", "quarantine")


def _content(path: Path) -> bytes:
    if path.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
        return json.dumps(rows, sort_keys=True, ensure_ascii=False, default=str).encode()
    return path.read_bytes()


def corpus_digest(out: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for d in COVERED if (out / d).is_dir() for p in (out / d).rglob("*") if p.is_file())
    for p in files:
        h.update(str(p.relative_to(out)).encode() + b"\0" + hashlib.sha256(_content(p)).digest())
    tokenizer = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    h.update(json.dumps(tokenizer, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()
