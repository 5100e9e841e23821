"""The binary shard format: the one contract between the corpus builder and the trainer.

A shard is two files that share a name:

* `<name>.bin` -- a fixed 1024-byte little-endian header, then every token of the shard as one
  flat array (uint16 when the vocabulary fits in 16 bits, else uint32). Each document is
  *preceded* by the separator token, so the separator is both the document boundary and a BOS
  the trainer can align windows on. The trainer memmaps the tokens at offset 1024 (aligned for
  both dtypes) and never parses anything else.
* `<name>.idx.parquet` -- one row per document: id, source, start (token offset of its
  separator), n_tokens (including the separator) and n_bytes (UTF-8 bytes of its text, which
  the trainer needs to report bits per byte).

Header layout (all little-endian, zero padded to 1024 bytes)::

    offset size field
         0    8 magic            b"GRISTSHD"
         8    4 version          uint32, currently 1
        12    4 itemsize         uint32, 2 or 4 (bytes per token)
        16    8 vocab_size       uint64
        24    8 sep_id           uint64, the separator token id
        32    8 n_tokens         uint64, separators included
        40    8 n_docs           uint64
        48    8 tokens_xxh3      uint64, xxh3_64 of the token bytes
        56    8 index_xxh3       uint64, xxh3_64 of the .idx.parquet file bytes
        64    8 header_xxh3      uint64, xxh3_64 of bytes 0..64 (a flipped bit in vocab_size or
                                 sep_id would otherwise go unnoticed)

Writes are atomic: both files are written under temporary names and renamed into place, the
index first and the .bin last, so a crash never leaves a `.bin` with a valid name and no
matching index. A crash between the two renames of a *re-run* leaves the old .bin next to the
new index; the index checksum in the header catches that mismatch.
"""

from __future__ import annotations

import io
import json
import os
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from pipeline.atomic import atomic_path, tmp_path_for, write_json

MAGIC = b"GRISTSHD"
VERSION = 1
HEADER_SIZE = 1024
SPLITS = ("train", "val")
BIN_SUFFIX = ".bin"
INDEX_SUFFIX = ".idx.parquet"

_FIELDS = struct.Struct("<8sIIQQQQQQ")  # magic .. index_xxh3: the bytes header_xxh3 covers
_CHECKSUM = struct.Struct("<Q")
_VERIFY_CHUNK = 1 << 24  # tokens per pass when verifying, so memory stays bounded on huge shards

INDEX_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("start", pa.int64(), nullable=False),
        pa.field("n_tokens", pa.int64(), nullable=False),
        pa.field("n_bytes", pa.int64(), nullable=False),
    ]
)


class ShardError(Exception):
    """A shard (or a directory of shards) is malformed; the message names the file."""


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits in 16 bits (half the disk and memory), else uint32."""
    if not 0 < vocab_size <= 1 << 32:
        raise ValueError(f"vocab_size must be in 1..2**32, got {vocab_size}")
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def shard_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(`<name>.bin`, `<name>.idx.parquet`) for a shard given with or without `.bin`."""
    path = Path(path)
    stem = path.with_name(path.name.removesuffix(BIN_SUFFIX))
    return stem.with_name(stem.name + BIN_SUFFIX), stem.with_name(stem.name + INDEX_SUFFIX)


def _pack_header(
    *,
    itemsize: int,
    vocab_size: int,
    sep_id: int,
    n_tokens: int,
    n_docs: int,
    tokens_checksum: int,
    index_checksum: int,
) -> bytes:
    fields = _FIELDS.pack(
        MAGIC, VERSION, itemsize, vocab_size, sep_id, n_tokens, n_docs, tokens_checksum, index_checksum
    )
    header = fields + _CHECKSUM.pack(xxhash.xxh3_64_intdigest(fields))
    return header.ljust(HEADER_SIZE, b"\0")


@dataclass(frozen=True)
class Shard:
    """A shard opened for reading. Header fields are read eagerly (1 KB); `tokens` and `index`
    are loaded on first access, so opening thousands of shards to count tokens is cheap."""

    path: Path  # the .bin file
    version: int
    itemsize: int
    vocab_size: int
    sep_id: int
    n_tokens: int
    n_docs: int
    tokens_checksum: int
    index_checksum: int

    @property
    def index_path(self) -> Path:
        return shard_paths(self.path)[1]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(f"<u{self.itemsize}")

    @cached_property
    def tokens(self) -> np.ndarray:
        """All tokens, separators included, memory-mapped read-only."""
        if self.n_tokens == 0:  # mmap cannot map zero bytes
            return np.empty(0, dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=HEADER_SIZE, shape=(self.n_tokens,))

    @cached_property
    def index(self) -> pa.Table:
        """The document index (see INDEX_SCHEMA)."""
        try:
            return pq.read_table(self.index_path)
        except (OSError, pa.ArrowException) as e:
            raise ShardError(f"{self.index_path}: cannot read the document index: {e}") from e


def read_shard(path: str | os.PathLike[str]) -> Shard:
    """Open a shard: parse and check its header and file size (cheap; `verify_shard` checks
    the contents)."""
    bin_path, _ = shard_paths(path)
    try:
        with open(bin_path, "rb") as f:
            raw = f.read(HEADER_SIZE)
    except OSError as e:
        raise ShardError(f"{bin_path}: cannot open: {e}") from e
    if len(raw) < HEADER_SIZE:
        raise ShardError(f"{bin_path}: {len(raw)} bytes, shorter than the {HEADER_SIZE}-byte header")
    magic, version, itemsize, vocab_size, sep_id, n_tokens, n_docs, *checksums = _FIELDS.unpack_from(raw)
    if magic != MAGIC:
        raise ShardError(f"{bin_path}: bad magic {magic!r}, expected {MAGIC!r}: not a grist shard")
    if version != VERSION:
        raise ShardError(f"{bin_path}: format version {version}, this code reads version {VERSION}")
    (header_sum,) = _CHECKSUM.unpack_from(raw, _FIELDS.size)
    if header_sum != xxhash.xxh3_64_intdigest(raw[: _FIELDS.size]):
        raise ShardError(f"{bin_path}: header checksum mismatch: the header is corrupt")
    if not 0 <= sep_id < vocab_size <= 1 << 32 or np.dtype(f"<u{itemsize}") != token_dtype(vocab_size):
        raise ShardError(
            f"{bin_path}: itemsize {itemsize}, vocab_size {vocab_size}, sep_id {sep_id} disagree"
        )
    expected = HEADER_SIZE + n_tokens * itemsize
    actual = bin_path.stat().st_size
    if actual != expected:
        raise ShardError(
            f"{bin_path}: size mismatch: {actual} bytes on disk, header says {n_tokens} tokens "
            f"x {itemsize} B + {HEADER_SIZE} = {expected} (truncated or appended to)"
        )
    return Shard(bin_path, version, itemsize, vocab_size, sep_id, n_tokens, n_docs, *checksums)


class ShardWriter:
    """Streams documents into a new shard; `close()` publishes it atomically.

    Tokens go straight to a temporary file as documents are added (memory stays flat however
    big the shard), checksummed on the way. Use as a context manager to discard the temporary
    files if anything raises before `close()`.
    """

    def __init__(self, path: str | os.PathLike[str], vocab_size: int, sep_id: int) -> None:
        self.bin_path, self.index_path = shard_paths(path)
        self.dtype = token_dtype(vocab_size)
        if not 0 <= sep_id < vocab_size:
            raise ValueError(f"sep_id {sep_id} is outside the vocabulary (size {vocab_size})")
        self.vocab_size = vocab_size
        self.sep_id = sep_id
        self._ids: list[str] = []
        self._sources: list[str] = []
        self._lengths: list[int] = []
        self._n_bytes: list[int] = []
        self._n_tokens = 0
        self._hasher = xxhash.xxh3_64()
        self.bin_path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp_bin = tmp_path_for(self.bin_path)
        self._file = open(self._tmp_bin, "wb")  # noqa: SIM115 -- stays open across add() calls
        self._file.write(bytes(HEADER_SIZE))  # placeholder until the counts and checksums are known

    def add(self, doc_id: str, source: str, token_ids: np.ndarray | Sequence[int], n_bytes: int) -> None:
        """Append one document: its separator, then its tokens (which must not contain the
        separator: it would make a false document boundary)."""
        ids = np.asarray(token_ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"document {doc_id!r}: token_ids must be a 1-D array of integers")
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(f"document {doc_id!r}: token ids outside 0..{self.vocab_size - 1}")
        if ids.size and bool((ids == self.sep_id).any()):
            raise ValueError(f"document {doc_id!r} contains the separator token {self.sep_id}")
        block = np.empty(ids.size + 1, dtype=self.dtype)
        block[0] = self.sep_id
        block[1:] = ids
        data = block.tobytes()
        self._file.write(data)
        self._hasher.update(data)
        self._ids.append(doc_id)
        self._sources.append(source)
        self._lengths.append(block.size)
        self._n_bytes.append(n_bytes)
        self._n_tokens += block.size

    def close(self) -> Shard:
        """Write the index and the header, then rename both into place (.bin last)."""
        lengths = np.asarray(self._lengths, dtype=np.int64)
        starts = _starts(lengths)
        index = pa.table(
            [self._ids, self._sources, starts, lengths, np.asarray(self._n_bytes, dtype=np.int64)],
            schema=INDEX_SCHEMA,
        )
        buf = io.BytesIO()
        pq.write_table(index, buf)
        index_bytes = buf.getvalue()
        header = _pack_header(
            itemsize=self.dtype.itemsize,
            vocab_size=self.vocab_size,
            sep_id=self.sep_id,
            n_tokens=self._n_tokens,
            n_docs=len(self._ids),
            tokens_checksum=self._hasher.intdigest(),
            index_checksum=xxhash.xxh3_64_intdigest(index_bytes),
        )
        try:
            with atomic_path(self.index_path) as tmp:
                tmp.write_bytes(index_bytes)
            self._file.seek(0)
            self._file.write(header)
            self._file.close()
            os.replace(self._tmp_bin, self.bin_path)
        except BaseException:
            self.abort()
            raise
        return read_shard(self.bin_path)

    def abort(self) -> None:
        """Drop the temporary file; any previously published shard of this name is untouched."""
        self._file.close()
        self._tmp_bin.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()


def remove_shard(path: str | os.PathLike[str]) -> None:
    """Delete a shard if present, .bin first so a half-deleted shard never looks valid."""
    for p in shard_paths(path):
        p.unlink(missing_ok=True)


@dataclass
class Counts:
    docs: int = 0
    tokens: int = 0
    bytes: int = 0

    def add(self, other: Counts) -> None:
        self.docs += other.docs
        self.tokens += other.tokens
        self.bytes += other.bytes


@dataclass
class ShardReport:
    """What a verified shard holds. Tokens and docs include separators."""

    path: Path
    vocab_size: int
    sep_id: int
    totals: Counts
    sources: dict[str, Counts]


def _by_source(index: pa.Table) -> dict[str, Counts]:
    grouped = index.group_by("source").aggregate([("id", "count"), ("n_tokens", "sum"), ("n_bytes", "sum")])
    return {
        r["source"]: Counts(r["id_count"], r["n_tokens_sum"], r["n_bytes_sum"]) for r in grouped.to_pylist()
    }


def _starts(lengths: np.ndarray) -> np.ndarray:
    """Offsets of contiguous documents of the given lengths."""
    return np.cumsum(lengths) - lengths


def _check_contents(shard: Shard) -> ShardReport:
    """Every check that needs the token bytes or the index, in one streaming pass."""
    where = shard.path
    index_bytes = _read_bytes(shard.index_path)
    if xxhash.xxh3_64_intdigest(index_bytes) != shard.index_checksum:
        raise ShardError(f"{shard.index_path}: index checksum mismatch with {where.name} (stale or corrupt)")
    index = shard.index
    if not index.schema.equals(INDEX_SCHEMA, check_metadata=False):
        raise ShardError(f"{shard.index_path}: schema {index.schema} is not {INDEX_SCHEMA}")
    if index.num_rows != shard.n_docs:
        raise ShardError(f"{where}: header says {shard.n_docs} documents, the index has {index.num_rows}")

    hasher = xxhash.xxh3_64()
    tokens = shard.tokens
    n_sep = 0
    max_id = -1
    for lo in range(0, shard.n_tokens, _VERIFY_CHUNK):
        chunk = np.asarray(tokens[lo : lo + _VERIFY_CHUNK])
        hasher.update(chunk.tobytes())
        n_sep += int(np.count_nonzero(chunk == shard.sep_id))
        max_id = max(max_id, int(chunk.max()))
    if hasher.intdigest() != shard.tokens_checksum:
        raise ShardError(f"{where}: token checksum mismatch: the token bytes are corrupt")
    if max_id >= shard.vocab_size:
        raise ShardError(f"{where}: token id {max_id} >= vocab_size {shard.vocab_size}")

    starts = index["start"].to_numpy()
    lengths = index["n_tokens"].to_numpy()
    if lengths.size and lengths.min() < 1:
        raise ShardError(f"{where}: a document has n_tokens < 1 (its separator is missing)")
    if not np.array_equal(starts, _starts(lengths)):
        raise ShardError(f"{where}: index offsets are not contiguous (start != previous start + n_tokens)")
    if int(lengths.sum()) != shard.n_tokens:
        raise ShardError(f"{where}: index covers {int(lengths.sum())} tokens, the shard has {shard.n_tokens}")
    if starts.size and not bool((tokens[starts] == shard.sep_id).all()):
        bad = int(starts[np.argmax(tokens[starts] != shard.sep_id)])
        raise ShardError(f"{where}: index offset {bad} does not point at a separator token")
    if n_sep != shard.n_docs:
        raise ShardError(
            f"{where}: {n_sep} separator tokens for {shard.n_docs} documents: separators inside documents"
        )
    if index.num_rows and pc.min(index["n_bytes"]).as_py() < 0:
        raise ShardError(f"{where}: negative n_bytes in the index")
    if pc.count_distinct(index["id"]).as_py() != index.num_rows:
        dup = _first_duplicate(index["id"].to_pylist())
        raise ShardError(f"{where}: document id {dup!r} appears more than once")
    by_source = _by_source(index)
    totals = Counts(shard.n_docs, shard.n_tokens, int(pc.sum(index["n_bytes"]).as_py() or 0))
    return ShardReport(where, shard.vocab_size, shard.sep_id, totals, by_source)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ShardError(f"{path}: cannot read the document index: {e}") from e


def _first_duplicate(ids: Iterable[str]) -> str:
    return next(i for i, n in Counter(ids).items() if n > 1)


def verify_shard(path: str | os.PathLike[str]) -> ShardReport:
    """Check everything about one shard: header, size, both checksums, index against
    separators, token range, unique ids. Raises ShardError naming the file."""
    return _check_contents(read_shard(path))


@dataclass
class DirReport:
    """A verified shards directory: `<dir>/train/*.bin` and `<dir>/val/*.bin`."""

    path: Path
    vocab_size: int
    sep_id: int
    shards: list[ShardReport]
    totals: Counts
    splits: dict[str, Counts] = field(default_factory=dict)
    sources: dict[str, Counts] = field(default_factory=dict)

    def describe(self) -> str:
        """A short human-readable summary (what `python -m pipeline verify` prints)."""
        lines = [
            f"{self.path}: {len(self.shards)} shards OK, vocab {self.vocab_size}, separator {self.sep_id}"
        ]
        rows = [*self.splits.items(), ("total", self.totals)]
        lines += [
            f"  {name:6s} {c.docs:>10,} docs {c.tokens:>14,} tokens {c.bytes:>15,} bytes" for name, c in rows
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary with paths relative to the directory."""
        return {
            "vocab_size": self.vocab_size,
            "sep_id": self.sep_id,
            "totals": vars(self.totals),
            "splits": {k: vars(v) for k, v in self.splits.items()},
            "sources": {k: vars(v) for k, v in sorted(self.sources.items())},
            "shards": [
                {"path": r.path.relative_to(self.path).as_posix(), **vars(r.totals)} for r in self.shards
            ],
        }


INDEX_FILE = "index.json"


def _check_against_index(root: Path, report: DirReport) -> None:
    """The shards on disk must be exactly those `index.json` lists, with its counts: a shard
    deleted together with its index file (or one left over from another run) is otherwise
    invisible, every remaining shard being valid on its own."""
    index_path = root / INDEX_FILE
    if not index_path.is_file():
        raise ShardError(f"{index_path}: missing: the corpus was not finalized (run the recipe again)")
    index = json.loads(index_path.read_text(encoding="utf-8"))
    listed = {s["path"]: s for s in index.get("shards", [])}
    found = report.to_dict()
    present = {s["path"]: s for s in found["shards"]}
    missing = sorted(set(listed) - set(present))
    if missing:
        raise ShardError(
            f"{root}: {len(missing)} shard(s) listed in {INDEX_FILE} are missing: {', '.join(missing)}"
        )
    extra = sorted(set(present) - set(listed))
    if extra:
        raise ShardError(
            f"{root}: shard(s) not listed in {INDEX_FILE} (from another run?): {', '.join(extra)}"
        )
    for path, counts in listed.items():
        if present[path] != counts:
            raise ShardError(f"{root / path}: holds {present[path]}, {INDEX_FILE} says {counts}")
    for key in ("totals", "splits", "vocab_size", "sep_id"):
        if index.get(key) != found[key]:
            raise ShardError(f"{index_path}: {key} {index.get(key)} differ from the shards' {found[key]}")


def write_index(report: DirReport, **extra: Any) -> None:
    """Publish `index.json` for a verified directory: its shard list and totals (which
    `verify_dir` checks the files against from then on) and `extra` facts (tokenizer, val rule)."""
    write_json(report.path / INDEX_FILE, {"format_version": VERSION, **extra, **report.to_dict()})


def verify_dir(shards_dir: str | os.PathLike[str], *, indexed: bool = True) -> DirReport:
    """Verify every shard under `train/` and `val/`; check that they agree on the vocabulary,
    that no document id appears twice anywhere (so train and val are disjoint) and, when
    `indexed` (every finished corpus), that they are exactly the shards `index.json` lists."""
    root = Path(shards_dir)
    paths = [
        (split, p)
        for split in SPLITS
        for p in sorted((root / split).glob(f"*{BIN_SUFFIX}"))
        if not p.name.startswith(".")  # a writer's temporary file, never part of the output
    ]
    if not paths:
        raise ShardError(f"{root}: no shards in {'/ or '.join(SPLITS)}/")
    reports: list[ShardReport] = []
    ids: list[pa.ChunkedArray] = []
    splits = {split: Counts() for split in SPLITS}
    sources: dict[str, Counts] = {}
    totals = Counts()
    for split, path in paths:
        shard = read_shard(path)
        report = _check_contents(shard)
        first = reports[0] if reports else report
        if (report.vocab_size, report.sep_id) != (first.vocab_size, first.sep_id):
            raise ShardError(
                f"{path}: vocab_size {report.vocab_size} / sep_id {report.sep_id} differ from "
                f"{first.path}: {first.vocab_size} / {first.sep_id}"
            )
        reports.append(report)
        ids.append(shard.index["id"])
        splits[split].add(report.totals)
        totals.add(report.totals)
        for src, counts in report.sources.items():
            sources.setdefault(src, Counts()).add(counts)
    all_ids = pa.chunked_array([c for a in ids for c in a.chunks], type=pa.string())
    if pc.count_distinct(all_ids).as_py() != len(all_ids):
        dup = _first_duplicate(all_ids.to_pylist())
        where = [
            str(r.path.relative_to(root))
            for r, a in zip(reports, ids, strict=True)
            if pc.any(pc.equal(a, dup)).as_py()
        ]
        raise ShardError(
            f"{root}: document id {dup!r} is in {' and '.join(where)}: "
            "ids must be unique and train/val disjoint"
        )
    report = DirReport(root, reports[0].vocab_size, reports[0].sep_id, reports, totals, splits, sources)
    if indexed:
        _check_against_index(root, report)
    return report
