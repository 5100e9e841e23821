"""The shard format on real documents: round trips, and every corruption caught with the file named.

Tokens here are the documents' UTF-8 bytes (+1, so 0 stays the separator) or shifted code points,
which exercises both token widths without training a tokenizer."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xxhash

from pipeline import shards
from pipeline.document import Document
from pipeline.shards import (
    HEADER_SIZE,
    INDEX_SCHEMA,
    ShardError,
    ShardWriter,
    read_shard,
    token_dtype,
    verify_dir,
    verify_shard,
    write_index,
)
from tests.conftest import load_sample

BYTE_VOCAB = 257  # separator 0, byte b -> b + 1
WIDE_OFFSET = 70_000  # code point c -> c + 70,000: needs uint32


def byte_tokens(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16) + 1


@pytest.fixture(scope="module")
def docs() -> list[Document]:
    return (
        load_sample("web_dclm_quality_labeled.jsonl.gz", 40)
        + load_sample("multilingual_udhr.jsonl.gz", 15)
        + load_sample("code_python_stdlib.jsonl.gz", 5)
    )


def write_bytes_shard(path: Path, docs: list[Document]) -> Path:
    with ShardWriter(path, BYTE_VOCAB, 0) as writer:
        for d in docs:
            writer.add(d.id, d.source, byte_tokens(d.text), len(d.text.encode("utf-8")))
        return writer.close().path


def test_round_trip_uint16(tmp_path: Path, docs: list[Document]) -> None:
    path = write_bytes_shard(tmp_path / "a", docs)
    assert path == tmp_path / "a.bin" and (tmp_path / "a.idx.parquet").exists()
    shard = read_shard(tmp_path / "a")  # with or without .bin
    expected = np.concatenate([np.concatenate([[0], byte_tokens(d.text)]) for d in docs])
    assert shard.tokens.dtype == np.dtype("<u2") and shard.itemsize == 2
    assert (shard.vocab_size, shard.sep_id, shard.n_docs) == (BYTE_VOCAB, 0, len(docs))
    np.testing.assert_array_equal(shard.tokens, expected)
    assert path.stat().st_size == HEADER_SIZE + 2 * expected.size
    index = shard.index.to_pydict()
    assert index["id"] == [d.id for d in docs]
    assert index["source"] == [d.source for d in docs]
    assert index["n_bytes"] == [len(d.text.encode("utf-8")) for d in docs]
    assert index["n_tokens"] == [len(byte_tokens(d.text)) + 1 for d in docs]
    for start, n, d in zip(index["start"], index["n_tokens"], docs, strict=True):
        doc = shard.tokens[start : start + n]
        assert doc[0] == 0 and bytes((doc[1:] - 1).astype(np.uint8)).decode("utf-8") == d.text
    report = verify_shard(path)
    assert (report.totals.docs, report.totals.tokens) == (len(docs), expected.size)
    assert report.totals.bytes == sum(index["n_bytes"])
    assert sum(c.docs for c in report.sources.values()) == len(docs) and "udhr" in report.sources


def test_round_trip_uint32(tmp_path: Path, docs: list[Document]) -> None:
    vocab = WIDE_OFFSET + 0x110000
    with ShardWriter(tmp_path / "wide", vocab, 7) as writer:
        for d in docs:
            writer.add(d.id, d.source, [ord(c) + WIDE_OFFSET for c in d.text], len(d.text.encode()))
        shard = writer.close()
    assert shard.tokens.dtype == np.dtype("<u4")
    first = shard.tokens[: 1 + len(docs[0].text)]
    assert first[0] == 7 and "".join(chr(t - WIDE_OFFSET) for t in first[1:]) == docs[0].text
    assert verify_shard(shard.path).totals.tokens == sum(len(d.text) + 1 for d in docs)


def test_token_width_follows_vocab_size() -> None:
    assert token_dtype(65_536) == np.dtype("<u2")
    assert token_dtype(65_537) == np.dtype("<u4")
    with pytest.raises(ValueError):
        token_dtype(0)


def test_empty_shard_is_valid(tmp_path: Path) -> None:
    with ShardWriter(tmp_path / "empty", BYTE_VOCAB, 0) as writer:
        shard = writer.close()
    assert shard.tokens.size == 0 and shard.index.num_rows == 0
    assert verify_shard(shard.path).totals.docs == 0


def test_writer_rejects_bad_tokens_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside"), ShardWriter(tmp_path / "s", BYTE_VOCAB, 0) as writer:
        writer.add("a", "src", [1, 2, BYTE_VOCAB], 3)
    with pytest.raises(ValueError, match="separator"), ShardWriter(tmp_path / "s", BYTE_VOCAB, 0) as writer:
        writer.add("a", "src", [1, 0, 2], 3)
    assert list(tmp_path.iterdir()) == []  # no shard, no temporary file


def test_rewrite_is_identical_and_atomic(tmp_path: Path, docs: list[Document]) -> None:
    path = write_bytes_shard(tmp_path / "s", docs)
    before = path.read_bytes(), (tmp_path / "s.idx.parquet").read_bytes()
    with pytest.raises(RuntimeError), ShardWriter(tmp_path / "s", BYTE_VOCAB, 0) as writer:
        writer.add("x", "src", [5], 1)
        raise RuntimeError("crash mid-write")
    assert (path.read_bytes(), (tmp_path / "s.idx.parquet").read_bytes()) == before  # old shard untouched
    write_bytes_shard(tmp_path / "s", docs)
    assert (path.read_bytes(), (tmp_path / "s.idx.parquet").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.bin", "s.idx.parquet"]


# ---------------------------------------------------------------------------- corruption


def patch(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data)


def rewrite(
    path: Path, tokens: np.ndarray | None = None, index: pa.Table | None = None, extra_docs: int = 0
) -> None:
    """Replace a shard's tokens and/or index and re-sign the header, as a buggy writer would:
    the checksums then pass and only the structural checks can catch the problem."""
    shard = read_shard(path)
    tokens = np.asarray(shard.tokens if tokens is None else tokens, dtype=shard.dtype)
    index = shard.index if index is None else index
    pq.write_table(index, shard.index_path)
    header = shards._pack_header(
        itemsize=shard.itemsize,
        vocab_size=shard.vocab_size,
        sep_id=shard.sep_id,
        n_tokens=tokens.size,
        n_docs=index.num_rows + extra_docs,
        tokens_checksum=xxhash.xxh3_64_intdigest(tokens.tobytes()),
        index_checksum=xxhash.xxh3_64_intdigest(shard.index_path.read_bytes()),
    )
    path.write_bytes(header + tokens.tobytes())


def flip_token_byte(path: Path) -> None:
    patch(path, HEADER_SIZE + 1001, b"\x7f")


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-2])


def bad_magic(path: Path) -> None:
    patch(path, 0, b"NOTSHARD")


def bad_version(path: Path) -> None:
    patch(path, 8, struct.pack("<I", 99))


def flip_vocab_size(path: Path) -> None:
    patch(path, 16, struct.pack("<Q", 65_000))


def stale_index(path: Path) -> None:
    index = read_shard(path).index
    pq.write_table(index.slice(1), shards.shard_paths(path)[1])


def missing_index(path: Path) -> None:
    shards.shard_paths(path)[1].unlink()


def shifted_offsets(path: Path) -> None:
    index = read_shard(path).index
    starts = index["start"].to_numpy().copy()
    starts[3] += 1
    rewrite(path, index=index.set_column(2, INDEX_SCHEMA.field("start"), pa.array(starts)))


def offsets_off_separator(path: Path) -> None:
    index = read_shard(path).index
    lengths = index["n_tokens"].to_numpy().copy()
    lengths[0] += 1
    lengths[1] -= 1
    starts = np.cumsum(lengths) - lengths
    index = index.set_column(2, INDEX_SCHEMA.field("start"), pa.array(starts))
    rewrite(path, index=index.set_column(3, INDEX_SCHEMA.field("n_tokens"), pa.array(lengths)))


def separator_inside_document(path: Path) -> None:
    tokens = np.array(read_shard(path).tokens)
    tokens[5] = 0
    rewrite(path, tokens=tokens)


def token_beyond_vocab(path: Path) -> None:
    tokens = np.array(read_shard(path).tokens)
    tokens[5] = BYTE_VOCAB + 3
    rewrite(path, tokens=tokens)


def duplicate_id(path: Path) -> None:
    index = read_shard(path).index
    ids = index["id"].to_pylist()
    ids[4] = ids[2]
    rewrite(path, index=index.set_column(0, INDEX_SCHEMA.field("id"), pa.array(ids)))


def index_of_another_schema(path: Path) -> None:
    index = read_shard(path).index
    rewrite(path, index=index.append_column("extra", pa.array([0] * index.num_rows)))


def header_counts_another_document(path: Path) -> None:
    rewrite(path, extra_docs=1)


def empty_document_without_separator(path: Path) -> None:
    index = read_shard(path).index
    lengths = index["n_tokens"].to_numpy().copy()
    lengths[-1] = 0  # its tokens, separator included, are no longer covered
    starts = np.cumsum(lengths) - lengths
    index = index.set_column(2, INDEX_SCHEMA.field("start"), pa.array(starts))
    rewrite(path, index=index.set_column(3, INDEX_SCHEMA.field("n_tokens"), pa.array(lengths)))


def index_covers_fewer_tokens(path: Path) -> None:
    tokens = np.array(read_shard(path).tokens)
    rewrite(path, tokens=np.concatenate([tokens, tokens[-3:]]))  # the index does not reach the tail


def negative_byte_count(path: Path) -> None:
    index = read_shard(path).index
    n_bytes = index["n_bytes"].to_numpy().copy()
    n_bytes[1] = -5
    rewrite(path, index=index.set_column(4, INDEX_SCHEMA.field("n_bytes"), pa.array(n_bytes)))


CORRUPTIONS = {
    flip_token_byte: "token checksum mismatch",
    truncate: "size mismatch",
    bad_magic: "bad magic",
    bad_version: "format version 99",
    flip_vocab_size: "header checksum mismatch",
    stale_index: "index checksum mismatch",
    missing_index: "cannot read the document index",
    shifted_offsets: "not contiguous",
    offsets_off_separator: "does not point at a separator",
    separator_inside_document: "separators inside documents",
    token_beyond_vocab: "token id 260 >= vocab_size 257",
    duplicate_id: "appears more than once",
    index_of_another_schema: "schema",
    header_counts_another_document: "header says 61 documents, the index has 60",
    empty_document_without_separator: "n_tokens < 1",
    index_covers_fewer_tokens: "index covers",
    negative_byte_count: "negative n_bytes",
}


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS), ids=lambda f: f.__name__)
def test_verify_names_file_and_problem(tmp_path: Path, docs: list[Document], corrupt) -> None:
    path = write_bytes_shard(tmp_path / "unit-00007", docs)
    verify_shard(path)
    corrupt(path)
    with pytest.raises(ShardError, match=CORRUPTIONS[corrupt]) as err:
        verify_shard(path)
    assert "unit-00007" in str(err.value)


def test_index_schema_is_the_documented_one(tmp_path: Path, docs: list[Document]) -> None:
    path = write_bytes_shard(tmp_path / "s", docs[:3])
    assert read_shard(path).index.schema.equals(INDEX_SCHEMA)


# ---------------------------------------------------------------------------- directories


def make_dir(root: Path, docs: list[Document]) -> None:
    """Three shards and the index that lists them, as a finished corpus has."""
    write_bytes_shard(root / "train" / "u0", docs[:30])
    write_bytes_shard(root / "train" / "u1", docs[30:55])
    write_bytes_shard(root / "val" / "u0", docs[55:])
    write_index(verify_dir(root, indexed=False))


def test_verify_dir_totals(tmp_path: Path, docs: list[Document]) -> None:
    make_dir(tmp_path, docs)
    (tmp_path / "train" / ".tmp-123-u2.bin").write_bytes(b"half written")  # a killed writer's leftover
    report = verify_dir(tmp_path)
    assert [r.path.name for r in report.shards] == ["u0.bin", "u1.bin", "u0.bin"]
    assert report.splits["train"].docs == 55 and report.splits["val"].docs == len(docs) - 55
    assert report.totals.docs == len(docs)
    assert report.totals.tokens == sum(len(d.text.encode()) + 1 for d in docs)
    assert report.totals.tokens == report.splits["train"].tokens + report.splits["val"].tokens
    assert report.sources["udhr"].docs == 15 and report.sources["code-python"].docs == 5
    assert report.to_dict()["shards"][2]["path"] == "val/u0.bin"
    assert "3 shards OK" in report.describe()


def test_verify_dir_rejects_train_val_overlap(tmp_path: Path, docs: list[Document]) -> None:
    make_dir(tmp_path, docs)
    write_bytes_shard(tmp_path / "val" / "u9", docs[10:12])  # two training documents leak into val
    with pytest.raises(ShardError, match=rf"{docs[10].id!r} is in train/u0.bin and val/u9.bin"):
        verify_dir(tmp_path)


def test_verify_dir_rejects_mixed_vocabularies(tmp_path: Path, docs: list[Document]) -> None:
    make_dir(tmp_path, docs)
    with ShardWriter(tmp_path / "val" / "u5", 1000, 0) as writer:
        writer.add("other", "src", [1, 2, 3], 3)
        writer.close()
    with pytest.raises(ShardError, match="u5.bin: vocab_size 1000"):
        verify_dir(tmp_path)


def test_verify_dir_reports_a_corrupt_shard_and_an_empty_dir(tmp_path: Path, docs: list[Document]) -> None:
    with pytest.raises(ShardError, match="no shards"):
        verify_dir(tmp_path)
    make_dir(tmp_path, docs)
    truncate(tmp_path / "train" / "u1.bin")
    with pytest.raises(ShardError, match="u1.bin: size mismatch"):
        verify_dir(tmp_path)


def test_verify_dir_checks_the_shards_against_their_index(tmp_path: Path, docs: list[Document]) -> None:
    make_dir(tmp_path, docs)
    (tmp_path / "index.json").rename(tmp_path / "index.bak")
    with pytest.raises(ShardError, match="index.json: missing: the corpus was not finalized"):
        verify_dir(tmp_path)
    (tmp_path / "index.bak").rename(tmp_path / "index.json")
    for suffix in (".bin", ".idx.parquet"):  # a whole shard gone: every remaining one is valid
        (tmp_path / "train" / f"u1{suffix}").rename(tmp_path / f"u1{suffix}")
    with pytest.raises(ShardError, match=r"1 shard\(s\) listed in index.json are missing: train/u1.bin"):
        verify_dir(tmp_path)
    for suffix in (".bin", ".idx.parquet"):
        (tmp_path / f"u1{suffix}").rename(tmp_path / "train" / f"u1{suffix}")
    write_bytes_shard(tmp_path / "train" / "u7", docs[:0] + [Document("new", "s", "a stray shard")])
    with pytest.raises(ShardError, match=r"not listed in index.json \(from another run\?\): train/u7.bin"):
        verify_dir(tmp_path)
