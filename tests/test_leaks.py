"""The leak audit of `pipeline verify`: a val document that nearly copies a train document, or that
holds a benchmark item, is found and named; a clean split passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train_corpus import sample_docs

from pipeline.__main__ import main
from pipeline.leaks import audit
from pipeline.shards import ShardWriter, verify_dir, write_index
from pipeline.tokenizer import SEPARATOR, Encoder, save_tokenizer, train_bpe

ITEMS = Path(__file__).parent / "data" / "benchmark_items.jsonl"


def write_corpus(root: Path, train: list[dict], val: list[dict]) -> Path:
    tokenizer = train_bpe((d["text"] for d in train + val), 512)
    save_tokenizer(tokenizer, root / "tokenizer.json")
    encoder = Encoder(tokenizer)
    for split, docs in (("train", train), ("val", val)):
        ids = encoder.encode_batch([d["text"] for d in docs])
        with ShardWriter(root / "shards" / split / "part-0", 512, tokenizer.token_to_id(SEPARATOR)) as w:
            for d, doc_ids in zip(docs, ids, strict=True):
                w.add(d["id"], d["source"], doc_ids, len(d["text"].encode()))
            w.close()
    write_index(verify_dir(root / "shards", indexed=False))
    return root


def test_audit_finds_planted_near_duplicates_and_benchmark_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = [d for d in sample_docs(400_000) if len(d["text"].split()) > 200]
    train, val = docs[:-6], docs[-6:]
    assert audit(write_corpus(tmp_path / "clean", train, val)).clean

    copied = train[3]
    words = copied["text"].split()
    words[10] = "indubitably"  # a light edit: still a near-duplicate
    near = {"id": "val-near", "source": copied["source"], "text": " ".join(words)}
    item = json.loads(ITEMS.read_text().splitlines()[0])
    host = val[0]
    cut = len(host["text"]) // 2
    planted = {"id": "val-bench", "source": host["source"], "text": f"{host['text'][:cut]} {item['text']}. "}
    planted["text"] += host["text"][cut:]
    out = write_corpus(tmp_path / "leaky", train, [near, planted, *val[1:]])
    report = audit(out)
    assert [(v, t) for v, t, _ in report.near_duplicates] == [("val-near", copied["id"])]
    assert report.near_duplicates[0][2] > 0.9
    assert [v for v, _ in report.contaminated] == ["val-bench"]
    assert item["id"] in report.contaminated[0][1][item["benchmark"]]
    assert not report.clean and "val-near" in report.describe()
    assert main(["verify", str(out)]) == 1
    assert main(["verify", str(out), "--no-leaks"]) == 0
    (out / "tokenizer.json").unlink()
    assert main(["verify", str(out)]) == 1  # named, not a traceback
    assert "tokenizer.json not found" in capsys.readouterr().err
