"""Ablation (train/ablate.py): a tiny ablation end to end on real documents from data/sample,
and the fixed eval set held out of every variant."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import SAMPLE
from test_train_corpus import tiny_config

from pipeline.recipe import load_recipe
from pipeline.tokenizer import Encoder
from train.ablate import NearCopies, bits_per_byte, check_held_out, read_eval, run_ablation, variant_steps
from train.config import ModelConfig
from train.data import Corpus
from train.experiment import ExperimentError
from train.model import GPT


def small_source(tmp_path: Path, source: str, name: str, limit: int) -> Path:
    """The first `limit` documents of a shipped sample file, ids prefixed with the source's name
    (two sources may read the same file)."""
    path = tmp_path / "in" / f"{source}.jsonl.gz"
    path.parent.mkdir(exist_ok=True)
    with (
        gzip.open(SAMPLE / name, "rt", encoding="utf-8") as f,
        gzip.open(path, "wt", encoding="utf-8") as out,
    ):
        for _, line in zip(range(limit), f, strict=False):
            record = json.loads(line)
            out.write(json.dumps(record | {"id": f"{source}:{record['id']}"}) + "\n")
    return path


def _sample_text(doc_id: str) -> str:
    with gzip.open(SAMPLE / "code_python_stdlib.jsonl.gz", "rt", encoding="utf-8") as f:
        return next(r["text"] for r in map(json.loads, f) if f"code:{r['id']}" == doc_id)


def write_recipe(tmp_path: Path) -> Path:
    sources = [
        ("wiki", "wiki_wikitext2.jsonl.gz", 300),
        ("books", "books_tinyshakespeare.jsonl.gz", 150),
        ("code", "code_python_stdlib.jsonl.gz", 40),
        ("books-again", "books_tinyshakespeare.jsonl.gz", 60),  # exact duplicates for exact_dedup
    ]
    recipe = {
        "name": "tiny",
        "output_dir": str(tmp_path / "unused"),
        "workers": 1,
        "sources": [{"name": n, "path": str(small_source(tmp_path, n, f, k))} for n, f, k in sources],
        "steps": [
            {"step": "normalize"},
            {"step": "encoding"},
            {"step": "exact_dedup"},
            {"step": "tokenize", "vocab_size": 512, "val_fraction": 0.1},
        ],
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_a_tiny_ablation_runs_end_to_end_and_never_trains_on_its_eval_set(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path)
    config = tmp_path / "train.yaml"
    config.write_text(
        json.dumps(tiny_config(Path("unset"), tmp_path / "unused", max_steps=8, **{"eval.every": 4}))
    )
    groups = {"normalize": ("normalize",), "encoding": ("encoding",), "dedup": ("exact_dedup",)}
    variants = ["raw", "+normalize", "full", "no-normalize", "no-encoding", "no-dedup"]
    steps = variant_steps(load_recipe(recipe), groups)
    assert list(steps) == variants
    assert [s["step"] for s in steps["+normalize"]] == ["normalize", "tokenize"]  # added in order
    assert [s["step"] for s in steps["no-normalize"]] == ["encoding", "exact_dedup", "tokenize"]
    root = tmp_path / "experiments"
    out = run_ablation(
        recipe, [], config=config, seeds=[0, 1], eval_bytes=3000, eval_doc_chars=500, groups=groups, root=root
    )
    directory = root / "ablate-tiny"
    eval_docs = read_eval(directory)
    assert set(eval_docs) == {"wiki", "books", "code", "docs"}  # one slice per kind present
    # docs are module docstrings, of other files than the code slice's
    assert all(d["text"] in _sample_text(d["id"]) and '"""' not in d["text"] for d in eval_docs["docs"])
    assert not {d["id"] for d in eval_docs["docs"]} & {d["id"] for d in eval_docs["code"]}
    eval_ids = {d["id"] for docs in eval_docs.values() for d in docs}
    # the slice is held out of every variant's corpus, both splits, and of the sources they read
    for variant in variants:
        corpus = Corpus(directory / "variants" / variant)
        ids = {i for s in [*corpus.train, *corpus.val] for i in s.index.column("id").to_pylist()}
        assert ids and not ids & eval_ids
        # the one tokenizer, trained on full
        assert (directory / "variants" / variant / "tokenizer.json").read_text() == (
            directory / "variants" / "full" / "tokenizer.json"
        ).read_text()
    for path in (directory / "sources").glob("*.jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            assert not {json.loads(line)["id"] for line in f} & eval_ids
    # every variant x seed trained with the same budget, evaluated in bits per byte on each set
    runs = out["runs"]
    # the sample has no mojibake: without encoding the shards are those of a variant with it
    assert out["same_shards"] == {
        "raw": "raw",
        "+normalize": "+normalize",
        "full": "full",
        "no-normalize": "no-normalize",
        "no-encoding": "full",
        "no-dedup": "+normalize",
    }
    trained = [v for v in variants if out["same_shards"][v] == v]
    assert sorted(r["id"] for r in runs) == sorted(f"{v}-s{s}" for v in trained for s in (0, 1))
    assert out["summary"]["no-encoding"] == out["summary"]["full"]
    assert set(out["verdicts"]["leaving out encoding"].values()) == {"same corpus"}
    assert len({r["tokens"] for r in runs}) == 1
    for r in runs:
        assert set(r["bpb"]) == {"wiki", "books", "code", "docs", "all"}
        assert all(0 < v < 20 and np.isfinite(v) for v in r["bpb"].values())
    assert set(out["verdicts"]) == {
        "every step",
        *(f"{how} {g}" for how in ("adding", "leaving out") for g in ("normalize", "encoding", "dedup")),
    }
    assert set(out["verdicts"]["adding dedup"]["all"].split()) <= {"helps", "hurts", "within", "noise"}
    assert out["summary"]["full"]["all"][1] >= 0
    assert (directory / "ablate.png").stat().st_size > 0
    table = (directory / "results.md").read_text()
    assert "| no-dedup |" in table and "±" in table
    # its variants were built from these sources: another eval set under the same name is refused
    with pytest.raises(ExperimentError, match="another recipe or eval set"):
        run_ablation(recipe, [], config=config, eval_bytes=2000, eval_doc_chars=500, groups=groups, root=root)
    # the check itself catches an eval document in a corpus: by its id, or by its text under another id
    full = directory / "variants" / "full"
    encoder = Encoder(full / "tokenizer.json")
    shard = Corpus(full).train[0]
    row = shard.index.slice(0, 1).to_pylist()[0]
    text = encoder.decode(shard.tokens[row["start"] + 1 : row["start"] + row["n_tokens"]])
    words = text.split()
    edited = " ".join(["Today"] + words[:40] + ["2026"] + words[40:])  # a near copy
    for leaked in (
        {"id": row["id"], "text": "not the text"},
        {"id": "another id", "text": text},
        {"id": "another id", "text": edited},
    ):
        with pytest.raises(ExperimentError, match="train split document .* is an eval document"):
            check_held_out(full, {"wiki": [leaked]}, encoder)
    check_held_out(full, {"wiki": [{"id": "another id", "text": " ".join(reversed(words))}]}, encoder)


def test_near_copies_share_most_of_the_smaller_texts_word_5grams() -> None:
    with gzip.open(SAMPLE / "web_dclm_quality_labeled.jsonl.gz", "rt", encoding="utf-8") as f:
        pages = [json.loads(line)["text"] for _, line in zip(range(40), f, strict=False)]
    near = NearCopies(pages[:10])
    first = pages[0].split()
    dated = "Posted on 3 May 2021. " + " ".join(first[:30] + ["(updated)"] + first[30:])
    held = "Related reading. " + pages[1] + "\n\nComments are closed."  # a page holding an eval text
    fragment = " ".join(pages[2].split()[:60])  # a short page held by one
    assert near.find([dated, held, fragment, *pages[10:]]) == [True, True, True] + [False] * 30


def test_bits_per_byte_in_batches_equals_one_window_at_a_time() -> None:
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=1, n_head=2, n_embd=16, context=8, vocab_size=50))
    stream = np.random.default_rng(0).integers(0, 50, 8 * 70 + 5)  # 70 full windows and a short one
    token_bytes = torch.from_numpy(np.random.default_rng(1).integers(0, 4, 50))
    nats, nbytes = 0.0, 0
    ids = torch.from_numpy(stream)
    for start in range(0, len(ids) - 1, 8):
        window = ids[start : start + 9]
        losses = model.token_losses(window[None, :-1], window[None, 1:])[0].double()
        weights = token_bytes[window[1:]]
        nats, nbytes = nats + float(losses[weights > 0].sum()), nbytes + int(weights.sum())
    batched = bits_per_byte(model, stream, token_bytes, 8)
    assert batched[1] == nbytes and batched[0] == pytest.approx(nats, rel=1e-6)
