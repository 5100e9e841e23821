"""The trainer's view of a corpus: windows, the validation split, refusing a mismatched corpus.

`build_corpus` (used by every train test) writes a real grist corpus directory from the shipped
sample: a BPE trained on the text, shards written with pipeline.shards.ShardWriter, every 10th
document in val. Small (about 1 MB of text, vocab 512) so it builds in a couple of seconds.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.shards import ShardWriter, verify_dir, write_index
from pipeline.tokenizer import SEPARATOR, Encoder, save_tokenizer, train_bpe
from train.data import Corpus, CorpusError, TrainWindows, val_set

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
FILES = ("wiki_wikitext2.jsonl.gz", "books_tinyshakespeare.jsonl.gz", "web_dclm_quality_labeled.jsonl.gz")


def sample_docs(max_bytes: int) -> list[dict]:
    """Real documents from a few sources (an equal share of max_bytes each), interleaved."""
    per_source = []
    for name in FILES:
        docs, total = [], 0
        with gzip.open(SAMPLE / name, "rt", encoding="utf-8") as f:
            for line in f:
                if total >= max_bytes // len(FILES):
                    break
                docs.append(json.loads(line) | {"source": name.split("_")[0]})
                total += len(docs[-1]["text"].encode())
        per_source.append(docs)
    return [d for group in itertools.zip_longest(*per_source) for d in group if d is not None]


def build_corpus(root: Path, *, max_bytes: int = 1_000_000, vocab_size: int = 512, shards: int = 2) -> Path:
    """A corpus directory as `make corpus` lays it out: tokenizer.json, shards/{train,val}/*.bin."""
    docs = sample_docs(max_bytes)
    tokenizer = train_bpe((d["text"] for d in docs), vocab_size)
    save_tokenizer(tokenizer, root / "tokenizer.json")
    encoder = Encoder(tokenizer)
    ids = encoder.encode_batch([d["text"] for d in docs])
    sep = tokenizer.token_to_id(SEPARATOR)
    for split in ("train", "val"):
        chosen = [i for i in range(len(docs)) if (i % 10 == 9) == (split == "val")]
        for k in range(shards if split == "train" else 1):
            with ShardWriter(root / "shards" / split / f"part-{k}", vocab_size, sep) as w:
                for i in chosen[k::shards] if split == "train" else chosen:
                    w.add(docs[i]["id"], docs[i]["source"], ids[i], len(docs[i]["text"].encode()))
                w.close()
    write_index(verify_dir(root / "shards", indexed=False))
    return root


@functools.cache
def _cached_corpus(base: Path, max_bytes: int, vocab_size: int) -> Path:
    return build_corpus(base / f"corpus-{max_bytes}-{vocab_size}", max_bytes=max_bytes, vocab_size=vocab_size)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per test session, shared by every train test module (treat as read-only)."""
    return _cached_corpus(tmp_path_factory.getbasetemp(), 1_000_000, 512)


def test_corpus_reads_both_splits_and_tokenizer(tiny_corpus: Path) -> None:
    corpus = Corpus(tiny_corpus)
    assert corpus.vocab_size == 512
    assert corpus.sep_id == 0
    assert len(corpus.train) == 2 and len(corpus.val) == 1
    assert corpus.train_tokens > 10 * corpus.val_tokens / 2  # roughly 9:1 by documents
    token_bytes = corpus.token_bytes()
    assert token_bytes[corpus.sep_id] == 0 and token_bytes.min() == 0 and token_bytes.max() > 3
    # the byte lengths of a document's tokens add up to the document's UTF-8 size
    shard = corpus.val[0]
    row = shard.index.slice(0, 1).to_pylist()[0]
    doc = np.asarray(shard.tokens[row["start"] : row["start"] + row["n_tokens"]], dtype=np.int64)
    assert int(token_bytes[torch.from_numpy(doc)].sum()) == row["n_bytes"]
    assert 0 < corpus.unigram_entropy() < np.log(512)


def test_train_windows_cover_each_epoch_once_in_a_seeded_order(tiny_corpus: Path) -> None:
    corpus = Corpus(tiny_corpus)
    windows = TrainWindows(corpus.train, context=64, bos_aligned=False, seed=1)
    n = len(windows)
    assert n == sum((s.n_tokens - 1) // 64 for s in corpus.train)
    first = windows.batch(0, n)
    assert first.shape == (n, 65) and first.dtype == torch.int64
    # consecutive windows share one token (the last target is the next window's first input)
    starts = sorted(windows.start_of(i) for i in range(n))
    assert starts[:3] == [0, 64, 128]
    # the same seed gives the same order, another seed another, and a new epoch reshuffles
    assert torch.equal(TrainWindows(corpus.train, 64, False, seed=1).batch(5, 3), windows.batch(5, 3))
    assert not torch.equal(TrainWindows(corpus.train, 64, False, seed=2).batch(0, 8), windows.batch(0, 8))
    assert not torch.equal(windows.batch(n, 8), windows.batch(0, 8))
    assert sorted(windows.start_of(i) for i in range(n, 2 * n)) == starts
    # a window is exactly the tokens at its start
    shard = corpus.train[0]
    i = next(i for i in range(n) if windows.start_of(i) < shard.n_tokens)
    s = windows.start_of(i)
    assert windows.batch(i, 1)[0].tolist() == shard.tokens[s : s + 65].tolist()


def test_bos_aligned_windows_start_at_document_starts(tiny_corpus: Path) -> None:
    corpus = Corpus(tiny_corpus)
    windows = TrainWindows(corpus.train, context=64, bos_aligned=True, seed=0)
    shard = corpus.train[0]
    doc_starts = shard.index["start"].to_numpy()
    firsts = sorted(windows.start_of(i) for i in range(len(windows)) if windows.start_of(i) < shard.n_tokens)
    # every document's first window is there, and the others continue a document every 64 tokens
    assert set(doc_starts[doc_starts + 65 <= shard.n_tokens]) <= set(firsts)
    owner = doc_starts[np.searchsorted(doc_starts, firsts, side="right") - 1]
    assert all((np.asarray(firsts) - owner) % 64 == 0)
    first_tokens = windows.read(np.asarray(firsts))[:, 0]
    assert int((first_tokens == corpus.sep_id).sum()) == int((doc_starts + 65 <= shard.n_tokens).sum())


def test_val_windows_are_fixed_and_spread_over_the_split(tiny_corpus: Path) -> None:
    corpus = Corpus(tiny_corpus)
    a = val_set(corpus.val, context=64, max_tokens=64 * 10).windows
    assert a.shape == (10, 65)
    assert torch.equal(a, val_set(corpus.val, context=64, max_tokens=64 * 10).windows)
    everything = val_set(corpus.val, context=64, max_tokens=10**9).windows
    assert everything.shape[0] == (corpus.val[0].n_tokens - 1) // 64
    rows = {tuple(r) for r in everything.tolist()}
    assert all(tuple(r) in rows for r in a.tolist())
    assert tuple(a[-1].tolist()) != tuple(everything[9].tolist())  # not just the first ten


def test_val_targets_carry_the_source_of_their_document(tiny_corpus: Path) -> None:
    corpus = Corpus(tiny_corpus)
    val = val_set(corpus.val, context=64, max_tokens=10**9)
    assert val.sources == ["books", "web", "wiki"]
    shard = corpus.val[0]
    index = shard.index.to_pydict()
    # Walk the shard token by token with the index: the target at (row, j) is token 64 * row + 1 + j.
    expected = np.empty(shard.n_tokens, dtype=np.int64)
    for start, n, source in zip(index["start"], index["n_tokens"], index["source"], strict=True):
        expected[start : start + n] = val.sources.index(source)
    targets = 64 * np.arange(val.windows.shape[0])[:, None] + 1 + np.arange(64)[None, :]
    assert np.array_equal(val.source_of_target.numpy(), expected[targets])
    assert np.array_equal(val.windows[:, 1:].numpy(), shard.tokens[targets])
    assert set(val.source_of_target.unique().tolist()) == {0, 1, 2}


def test_max_train_tokens_is_a_fixed_sample_from_all_over_the_split(tiny_corpus: Path) -> None:
    corpus = Corpus(tiny_corpus)
    full = TrainWindows(corpus.train, context=64, bos_aligned=False, seed=0)
    part = TrainWindows(corpus.train, context=64, bos_aligned=False, seed=0, max_tokens=64 * 50)
    assert len(part) == 50 and set(part.starts) <= set(full.starts)
    assert np.array_equal(part.starts, TrainWindows(corpus.train, 64, False, 0, 64 * 50).starts)
    assert part.starts.max() > full.starts.max() // 2  # not just the beginning of the split
    epoch = {part.start_of(p) for p in range(50)}
    assert epoch == set(part.starts) == {part.start_of(p) for p in range(50, 100)}
    assert len(TrainWindows(corpus.train, 64, False, 0, 10**9)) == len(full)


def test_refuses_mismatched_tokenizer(tiny_corpus: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "shards").symlink_to(tiny_corpus / "shards")
    docs = sample_docs(200_000)
    save_tokenizer(train_bpe((d["text"] for d in docs), 600), other / "tokenizer.json")
    with pytest.raises(CorpusError, match="tokenizer.json has 600 tokens, the shards a vocabulary of 512"):
        Corpus(other)
    with pytest.raises(CorpusError, match="no corpus"):
        Corpus(tmp_path / "missing")


def test_the_trainer_reads_back_exactly_the_documents_written(tiny_corpus: Path) -> None:
    """Every document of every shard the trainer opens decodes to the text it was built from,
    behind one separator, and both splits together hold each document once."""
    corpus = Corpus(tiny_corpus)
    texts = {d["id"]: d["text"] for d in sample_docs(1_000_000)}
    encoder = Encoder(corpus.tokenizer)
    seen = []
    for shard in corpus.train + corpus.val:
        for row in shard.index.to_pylist():
            tokens = shard.tokens[row["start"] : row["start"] + row["n_tokens"]]
            assert tokens[0] == corpus.sep_id and corpus.sep_id not in tokens[1:]
            assert encoder.decode(tokens[1:].tolist()) == texts[row["id"]]
            seen.append(row["id"])
    assert sorted(seen) == sorted(texts)


def tiny_config(corpus: Path, out_dir: Path, **overrides: object) -> dict:
    """A train config for a model small enough that a step takes milliseconds."""
    cfg: dict = {
        "name": "tiny",
        "corpus": str(corpus),
        "out_dir": str(out_dir),
        "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "context": 32, "tie_embeddings": False},
        "optim": {"lr": 1e-2, "warmup_steps": 5},
        "batch_tokens": 1024,
        "micro_batch": 32,
        "max_steps": 30,
        "log_every": 1,
        "eval": {"every": 10, "val_tokens": 1024, "sample_tokens": 0},
        "threads": 1,
    }
    for key, value in overrides.items():
        node = cfg
        *path, last = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return cfg


def test_refuses_a_corpus_missing_a_whole_shard(tiny_corpus: Path, tmp_path: Path) -> None:
    """Every shard left is valid on its own: only the index shows that one is gone."""
    copy = tmp_path / "copy"
    shutil.copytree(tiny_corpus, copy)
    for suffix in (".bin", ".idx.parquet"):
        (copy / "shards" / "train" / f"part-1{suffix}").unlink()
    with pytest.raises(CorpusError, match=r"shards do not verify: .*missing: train/part-1.bin"):
        Corpus(copy)
    Corpus(tiny_corpus)  # the original still loads
