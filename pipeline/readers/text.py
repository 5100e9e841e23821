"""Plain-text files (optionally gzip/zstd compressed): one document per file.

The id is `source/<path relative to root>` (root defaults to the current directory, the same
base `expand_paths` resolves globs against), because file names alone repeat across folders
(`chapter1.txt`). A file outside root keeps its absolute path in the id. The whole file is read:
it is a single document, so it has to be in memory anyway.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.document import Document
from pipeline.readers import BadRecord
from pipeline.readers.common import bad_record
from pipeline.readers.compression import CORRUPTION_ERRORS, decompressed_chunks, looks_binary
from pipeline.storage import AnyPath


def read_text(path: AnyPath, *, source: str, root: Path | None = None) -> Iterator[Document | BadRecord]:
    """The file as one document, or one BadRecord saying why it cannot be one."""
    chunks: list[bytes] = []
    try:
        chunks.extend(decompressed_chunks(path))
    except (EOFError, *CORRUPTION_ERRORS) as e:
        line = sum(chunk.count(b"\n") for chunk in chunks) + 1
        reason = "truncated_file" if isinstance(e, EOFError) else "corrupt_file"
        yield bad_record(
            path, line, None, reason, f"unreadable from line {line} on: {e}", b"".join(chunks[:1])
        )
        return
    data = b"".join(chunks)
    if looks_binary(data):
        detail = "NUL bytes or mostly invalid UTF-8: not a text file"
        yield bad_record(path, None, None, "binary_file", detail, data)
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        detail = f"invalid UTF-8 byte(s) {data[e.start : e.end]!r} on line {line}"
        yield bad_record(path, line, None, "invalid_utf8", detail, data)
        return
    if not text or text.isspace():
        yield bad_record(path, None, None, "empty_text", "the file is empty or whitespace", data)
        return
    yield Document(f"{source}/{_relative_name(path, root)}", source, text, {})


def _relative_name(path: AnyPath, root: Path | None) -> str:
    if not isinstance(path, Path):
        return str(path)  # a URL names itself
    # abspath, not resolve(): a symlinked data folder must not move ids out from under root.
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(os.path.abspath(root or Path.cwd())).as_posix()
    except ValueError:
        return absolute.as_posix()
