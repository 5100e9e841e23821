"""Tokenizer training, the fast Encoder's id-for-id equivalence with HF `tokenizers` on real text,
and the tokenize sink end to end (summarize -> plan -> load -> write_unit -> finalize)."""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

from pipeline.document import Document
from pipeline.driver import run_global
from pipeline.executor.local import LocalExecutor
from pipeline.shards import read_shard, verify_dir
from pipeline.steps.tokenize import Tokenize, val_hash
from pipeline.tokenizer import (
    SEPARATOR,
    SPLIT_PATTERN,
    Encoder,
    byte_to_unicode,
    load_tokenizer,
    save_tokenizer,
    tiktoken_encoding,
    train_bpe,
)
from tests.conftest import SAMPLE, load_sample

VOCAB = 1024


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    """Every document of the shipped sample: web, wiki, books, Python code, UDHR in 79 languages."""
    return [d for p in sorted(SAMPLE.glob("*.jsonl.gz")) for d in load_sample(p.name)]


@pytest.fixture(scope="module")
def tokenizer(corpus: list[Document]) -> Tokenizer:
    return train_bpe([d.text for d in corpus[::8]], VOCAB)  # ~1.7 MB of every kind of text


@pytest.fixture(scope="module")
def encoder(tokenizer: Tokenizer) -> Encoder:
    return Encoder(tokenizer)


def hf_ids(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def test_train_bpe_layout_and_determinism(corpus: list[Document], tokenizer: Tokenizer) -> None:
    assert tokenizer.get_vocab_size() == VOCAB
    assert tokenizer.token_to_id(SEPARATOR) == 0
    vocab = tokenizer.get_vocab()
    assert all(c in vocab for c in byte_to_unicode().values())  # any byte sequence encodes
    assert train_bpe([d.text for d in corpus[::8]], VOCAB).to_str() == tokenizer.to_str()
    with pytest.raises(ValueError, match="below 256"):
        train_bpe(["text"], 200)


def test_fast_ids_equal_hf_on_real_text(
    corpus: list[Document], tokenizer: Tokenizer, encoder: Encoder
) -> None:
    texts = [d.text for d in corpus[1::2]]  # half the documents (~6.7 MB): none the tokenizer saw
    # and thousands of paragraphs and lines that start and end on whitespace runs: indented code and
    # every UDHR script (CJK, Arabic, Devanagari, Thai...)
    for d in corpus:
        if d.source == "udhr" or (d.source == "code-python" and len(texts) < 8000):
            texts += d.text.split("\n\n") + d.text.splitlines(keepends=True)
    assert encoder.fast and len(texts) > 10_000, len(texts)
    fast = encoder.encode_batch(texts)
    for text, expected, got in zip(texts, hf_ids(tokenizer, texts), fast, strict=True):
        assert got.tolist() == expected, text[:200]


def test_fast_ids_equal_hf_at_the_default_vocabulary(corpus: list[Document]) -> None:
    """At vocab 8192, the default corpus', merges are longer and rarer than at 1024."""
    tokenizer = train_bpe([d.text for d in corpus[::4]], 8192)
    encoder = Encoder(tokenizer)
    texts = [d.text for d in corpus[1::4]]  # none the tokenizer saw
    texts += [line for d in corpus[3::16] for line in d.text.splitlines(keepends=True)]
    assert encoder.fast and tokenizer.get_vocab_size() == 8192
    for text, expected, got in zip(texts, hf_ids(tokenizer, texts), encoder.encode_batch(texts), strict=True):
        assert got.tolist() == expected, text[:200]


def test_fast_ids_equal_hf_on_random_strings(encoder: Encoder) -> None:
    pieces = [
        *"aabeet  \n\n\t\r'’09.,;:!?-_=()[]{}<>|/\\\"",
        "\u0085",
        "\u00a0",
        "\u3000",
        "é",
        "e\u0301",
        "人",
        "ب",
        "अ",
        "ि",
        "😀",
        "🇫",
        "\u200d",
        "ß",
        "İ",
        "ﬁ",
        "\x00",
        "'s",
        "'LL",
        "    ",
        SEPARATOR,
    ]
    rng = random.Random(0)
    texts = ["".join(rng.choices(pieces, k=rng.randint(0, 120))) for _ in range(3000)]
    # encoder.tokenizer is HF with encode_special_tokens=True: the literal separator is text
    for text, expected, got in zip(
        texts, hf_ids(encoder.tokenizer, texts), encoder.encode_batch(texts), strict=True
    ):
        assert got.tolist() == expected, repr(text)


def test_decode_round_trips(corpus: list[Document], encoder: Encoder) -> None:
    texts = [d.text for d in corpus]
    for text, ids in zip(texts, encoder.encode_batch(texts), strict=True):
        assert encoder.decode(ids) == text


def test_separator_literal_is_encoded_as_text(tokenizer: Tokenizer, encoder: Encoder) -> None:
    text = f"before {SEPARATOR} after"
    ids = encoder.encode(text)
    assert 0 not in ids.tolist() and encoder.decode(ids) == text
    assert 0 in hf_ids(tokenizer, [text])[0]  # what plain HF would emit: a false document boundary


def test_save_and_load(
    tmp_path: Path, corpus: list[Document], tokenizer: Tokenizer, encoder: Encoder
) -> None:
    path = tmp_path / "tok" / "tokenizer.json"
    save_tokenizer(tokenizer, path)
    assert load_tokenizer(path).to_str() == tokenizer.to_str()
    texts = [d.text for d in corpus[:50]]
    from_file = Encoder(path)
    assert from_file.fast
    for a, b in zip(from_file.encode_batch(texts), encoder.encode_batch(texts), strict=True):
        np.testing.assert_array_equal(a, b)


def unreachable_token_bpe() -> Tokenizer:
    """A hand-made BPE that no trainer would produce: "abc" is built from "ab" + "c" but "bc" merges
    first, so HF can never reach "abc" while tiktoken, which merges any pair whose concatenation is
    a token, would. The Encoder must notice and stay on HF."""
    chars = list(byte_to_unicode().values())
    vocab = {SEPARATOR: 0, **{c: i + 1 for i, c in enumerate(chars)}, "bc": 257, "ab": 258, "abc": 259}
    tokenizer = Tokenizer(models.BPE(vocab, [("b", "c"), ("a", "b"), ("ab", "c")]))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([SEPARATOR])
    return tokenizer


def with_normalizer(tokenizer: Tokenizer) -> Tokenizer:
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.normalizer = normalizers.NFKC()
    return copy


def test_unreachable_token_is_a_real_divergence() -> None:
    odd = unreachable_token_bpe()
    assert hf_ids(odd, ["abc"])[0] == [odd.token_to_id("a"), odd.token_to_id("bc")]
    assert tiktoken_encoding(odd).encode_ordinary("abc") == [odd.token_to_id("abc")]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda trained: unreachable_token_bpe(), "does not rebuild vocabulary token 'abc'"),
        (with_normalizer, "normalizer"),
    ],
    ids=["unreachable_token", "normalizer"],
)
def test_falls_back_to_hf_with_a_warning(
    make: Callable[[Tokenizer], Tokenizer], reason: str, tokenizer: Tokenizer
) -> None:
    with pytest.warns(RuntimeWarning, match="encoding with HF"):
        encoder = Encoder(make(tokenizer))
    assert not encoder.fast and reason in (encoder.fallback_reason or "")
    texts = ["abc abcd xabc", "ﬁne ½ ＡＢＣ", "plain text"]
    for text, ids in zip(texts, encoder.encode_batch(texts), strict=True):
        assert ids.tolist() == hf_ids(encoder.tokenizer, [text])[0]


def test_fast_false_forces_hf_silently(tokenizer: Tokenizer) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder = Encoder(tokenizer, fast=False)
    assert not encoder.fast and encoder.encode("hello").tolist() == hf_ids(tokenizer, ["hello"])[0]


# ---------------------------------------------------------------------------- the tokenize sink


def plan_sink(step: Tokenize, units: dict[str, list[Document]], batch: int, root: Path) -> dict:
    """The sink's summarize and plan phases as the runner drives them; its state: `root/plan`."""
    batches = {uid: [docs[i : i + batch] for i in range(0, len(docs), batch)] for uid, docs in units.items()}
    return run_global(step, batches, root, LocalExecutor(1).map).stats


def run_sink(
    root: Path, units: dict[str, list[Document]], batch: int = 100, **params
) -> tuple[Tokenize, dict]:
    """plan in one instance, write and finalize in another, as separate worker processes would."""
    plan_stats = plan_sink(Tokenize(**params), units, batch, root)
    worker = Tokenize(**params)
    worker.load(root / "plan")
    unit_stats = {
        uid: worker.write_unit((docs[i : i + 40] for i in range(0, len(docs), 40)), uid, root / "out")
        for uid, docs in units.items()
    }
    worker.finalize(root / "out")
    return worker, {"plan": plan_stats, "units": unit_stats}


SINK = {"vocab_size": VOCAB, "train_sample_mb": 1.5, "seed": 3}


@pytest.fixture(scope="module")
def sink_run(
    tmp_path_factory: pytest.TempPathFactory, corpus: list[Document]
) -> tuple[Path, list[Document], dict]:
    docs = corpus[::2]
    root = tmp_path_factory.mktemp("sink")
    _, stats = run_sink(root, {"u0": docs[::2], "u1": docs[1::2]}, val_fraction=0.1, **SINK)
    return root, docs, stats


def test_sink_end_to_end(sink_run: tuple[Path, list[Document], dict]) -> None:
    root, docs, stats = sink_run
    report = verify_dir(root / "out" / "shards")  # also proves train and val disjoint
    assert stats["plan"]["fast_encoder"] and stats["plan"]["vocab_size"] == VOCAB
    budget, largest = 1_500_000, max(len(d.text.encode()) for d in docs)
    assert budget <= stats["plan"]["sample_bytes"] < budget + largest  # up to the doc that crosses it
    assert report.totals.docs == len(docs)
    for split in ("train", "val"):
        assert report.splits[split].tokens == sum(s[split]["tokens"] for s in stats["units"].values())
        assert report.splits[split].bytes == sum(s[split]["bytes"] for s in stats["units"].values())
    index = json.loads((root / "out" / "shards" / "index.json").read_text())
    assert index["totals"]["docs"] == len(docs) and len(index["shards"]) == 4
    assert (root / "out" / "tokenizer.json").read_bytes() == (root / "plan" / "tokenizer.json").read_bytes()
    # the shards hold the documents' text exactly
    encoder = Encoder(root / "out" / "tokenizer.json")
    shard = read_shard(root / "out" / "shards" / "train" / "u1.bin")
    by_id = {d.id: d for d in docs}
    for row in shard.index.slice(0, 20).to_pylist():
        tokens = shard.tokens[row["start"] : row["start"] + row["n_tokens"]]
        assert tokens[0] == 0 and encoder.decode(tokens[1:]) == by_id[row["id"]].text


def test_sink_val_split_is_the_hash_rule(sink_run: tuple[Path, list[Document], dict]) -> None:
    root, docs, _ = sink_run
    cut = json.loads((root / "plan" / "val.json").read_text())["hash_cut"]
    expected_val = {d.id for d in docs if val_hash(d.id, SINK["seed"]) < cut}
    val_ids = {
        i
        for p in (root / "out" / "shards" / "val").glob("*.bin")
        for i in read_shard(p).index["id"].to_pylist()
    }
    assert val_ids == expected_val and 0.05 < len(val_ids) / len(docs) < 0.15


def test_sink_rewrite_is_byte_identical(
    sink_run: tuple[Path, list[Document], dict], corpus: list[Document]
) -> None:
    root, docs, stats = sink_run
    shards_dir = root / "out" / "shards"
    before = {p: p.read_bytes() for p in sorted(shards_dir.rglob("u0.*"))}
    worker = Tokenize(val_fraction=0.1, **SINK)
    worker.load(root / "plan")
    assert worker.write_unit([docs[::2]], "u0", root / "out") == stats["units"]["u0"]
    assert {p: p.read_bytes() for p in sorted(shards_dir.rglob("u0.*"))} == before
    assert not [p for p in shards_dir.rglob("*") if p.name.startswith(".")]  # no temporaries left


def test_sink_sample_does_not_depend_on_partition(
    tmp_path: Path, sink_run: tuple[Path, list[Document], dict]
) -> None:
    root, docs, _ = sink_run
    units = {"a": docs[:100], "b": docs[100:130], "c": docs[130:]}
    plan_sink(Tokenize(val_fraction=0.1, **SINK), units, 37, tmp_path)
    assert (tmp_path / "plan" / "tokenizer.json").read_bytes() == (
        root / "plan" / "tokenizer.json"
    ).read_bytes()


def test_sink_val_tokens_budget(tmp_path: Path, corpus: list[Document]) -> None:
    docs = corpus[1::2]
    budget = 150_000
    _, stats = run_sink(tmp_path, {"u0": docs[:400], "u1": docs[400:]}, val_tokens=budget, **SINK)
    assert stats["plan"]["val_tokens_expected"] >= budget
    val = [read_shard(p) for p in (tmp_path / "out" / "shards" / "val").glob("*.bin")]
    val_tokens = sum(s.n_tokens for s in val)
    largest_doc = max(max(s.index["n_tokens"].to_pylist()) for s in val)
    # the estimate (bytes / the sample's bytes per token) is within ~10 %, and the documents are
    # taken until the estimate reaches the budget: over by at most about the last document
    assert 0.9 * budget <= val_tokens <= 1.1 * budget + largest_doc
    with pytest.raises(ValueError, match="more than half of the corpus"):
        run_sink(tmp_path / "too-big", {"u0": docs[:40]}, val_tokens=100_000, **SINK)


def test_sink_with_given_tokenizer_and_no_val(
    tmp_path: Path, corpus: list[Document], tokenizer: Tokenizer
) -> None:
    save_tokenizer(tokenizer, tmp_path / "given.json")
    docs = corpus[:60]
    _, stats = run_sink(tmp_path, {"u0": docs}, tokenizer=str(tmp_path / "given.json"), val_fraction=0.0)
    assert not stats["plan"]["trained"] and stats["units"]["u0"]["val"]["docs"] == 0
    assert (tmp_path / "plan" / "tokenizer.json").read_text() == tokenizer.to_str()
    report = verify_dir(tmp_path / "out" / "shards")
    assert report.splits["val"].docs == 0 and report.splits["train"].docs == len(docs)
    assert not (tmp_path / "out" / "shards" / "val").exists()
