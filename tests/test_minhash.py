"""minhash_dedup: exact shingling, datasketch-equal signatures, clustering in and out of core,
accuracy on planted near-duplicates of real documents, the keep rule, incremental runs."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from bench.minhash_bench import evaluate, plant, run_step, true_jaccard
from pipeline.document import Document
from pipeline.minhash import clustering, shingles
from pipeline.minhash.config import NONE
from pipeline.minhash.shingles import reference_shingle_set, reference_shingles, shingle_batch, shingle_hash
from pipeline.minhash.signatures import permutations, signatures
from pipeline.minhash.verify import jaccard
from pipeline.recipe import load_recipe
from pipeline.steps.minhash_dedup import MinHashDedup
from tests.conftest import ROOT, load_sample

EDGE_CASES = [
    "",
    "   ... !!! ",
    "one two",
    "Ça va? ÇA VA! Ǆemal naïve café — “quoted” text_with_underscores 2024 ٣٤",
    "ΣΟΦΟΣ σοφος straße STRASSE ﬁne İstanbul",
    "数据 去重 是 预训练 语料 的 关键 步骤",
    "e\u0301 a\u0300\u0301 x\u0301y",
]


@pytest.fixture(scope="module")
def mixed_docs() -> list[Document]:
    docs = []
    for name, n in [
        ("web_dclm_quality_labeled.jsonl.gz", 40),
        ("web_html_extracted.jsonl.gz", 15),
        ("multilingual_udhr.jsonl.gz", 25),
        ("books_gutenberg.jsonl.gz", 20),
        ("code_python_stdlib.jsonl.gz", 5),
        ("wiki_mediawiki_dump_sample.jsonl.gz", 10),
    ]:
        docs += load_sample(name, limit=n)
    return docs


def test_vectorised_shingles_equal_the_reference(
    mixed_docs: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [d.text for d in mixed_docs] + EDGE_CASES
    sets = shingle_batch(texts, 5)
    for i, text in enumerate(texts):
        got = sets.hashes[sets.offsets[i] : sets.offsets[i + 1]].tolist()
        assert got == sorted(reference_shingle_set(text, 5)), text[:80]
    monkeypatch.setattr(shingles, "CHUNK_BYTES", 3000)  # many chunks, and documents larger than one
    small = shingle_batch(texts, 5)
    assert np.array_equal(small.hashes, sets.hashes) and np.array_equal(small.offsets, sets.offsets)


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
def test_signatures_equal_datasketch(mixed_docs: list[Document], scheme: str) -> None:
    """Same seed, permutations, scheme and hash function (grist's shingle hash, given to
    datasketch as `hashfunc`) and the same shingles (the plain-Python reference)."""
    docs = mixed_docs[::3]
    texts = [d.text for d in docs] + ["", "short text"]
    sigs = signatures(shingle_batch(texts, 5), 112, 7, scheme)  # type: ignore[arg-type]
    for text, sig in zip(texts, sigs, strict=True):
        m = MinHash(num_perm=112, seed=7, hashfunc=shingle_hash, scheme=scheme)
        m.update_batch(reference_shingles(text, 5))
        assert np.array_equal(m.hashvalues.astype(np.uint64), sig.astype(np.uint64))


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
def test_permutations_are_datasketchs(scheme: str) -> None:
    a, b = permutations(200, 42, scheme)  # type: ignore[arg-type]
    ref = MinHash(num_perm=200, seed=42, scheme=scheme).permutations
    assert np.array_equal(a.ravel(), np.asarray(ref[0]).astype(a.dtype))
    assert np.array_equal(b.ravel(), np.asarray(ref[1]).astype(b.dtype))


def test_threshold_takes_datasketch_optimal_bands() -> None:
    step = MinHashDedup(threshold=0.8)
    assert (step.config.bands, step.config.rows) == _optimal_param(0.8, 112, 0.5, 0.5)
    assert step.config.jaccard_threshold == 0.8
    default = MinHashDedup()  # chosen for recall; verification keeps precision
    assert (default.config.bands, default.config.rows, default.config.jaccard_threshold) == (20, 5, 0.7)
    fineweb = MinHashDedup(bands=14, rows=8)  # no threshold: the s-curve's midpoint is the cut
    assert fineweb.config.jaccard_threshold == pytest.approx((1 / 14) ** (1 / 8))
    recipe = load_recipe(ROOT / "recipes" / "default.yaml")
    entry = next(s for s in recipe.steps if s["step"] == "minhash_dedup")
    assert (entry["bands"], entry["rows"], entry["threshold"]) == (20, 5, 0.7)  # the recipe says it too
    with pytest.raises(ValueError):
        MinHashDedup(bands=20, rows=8)


def test_jaccard_matches_python_sets() -> None:
    rng = np.random.default_rng(0)
    sets = [np.unique(rng.integers(0, 300, rng.integers(0, 120))).astype(np.uint32) for _ in range(60)]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sets])])
    left, right = rng.integers(0, 60, 500), rng.integers(0, 60, 500)
    got = jaccard(offsets, np.concatenate(sets), left, right)
    for g, a, b in zip(got, left, right, strict=True):
        sa, sb = set(sets[a].tolist()), set(sets[b].tolist())
        assert g == pytest.approx(len(sa & sb) / len(sa | sb) if sa | sb else 0.0)


def _components_reference(n: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    touched = {v for p in pairs for v in p}
    return np.array([find(v) if v in touched else int(NONE) for v in range(n)], dtype=np.uint32)


@pytest.mark.parametrize("budget", [1 << 30, 32_000])
def test_union_find_in_memory_and_out_of_core(tmp_path: Path, budget: int) -> None:
    """A tiny budget forces shards, spilled runs and several sweeps; a long chain of edited
    copies (0-1-2-...-399) is the slowest case for label propagation."""
    rng = np.random.default_rng(1)
    n = 3000
    pairs = {(i, i + 1) for i in range(400)}
    pairs |= {tuple(sorted(rng.choice(n, 2, replace=False).tolist())) for _ in range(1500)}
    pairs_list = sorted(pairs)
    packed = np.array([(a << 32) | b for a, b in pairs_list], dtype=np.uint64)
    files = []
    for k, chunk in enumerate(np.array_split(rng.permutation(packed), 3)):
        np.save(tmp_path / f"p{k}.npy", chunk)
        files.append(tmp_path / f"p{k}.npy")
    stats = clustering.components(files, n, budget, tmp_path / "work", tmp_path / "labels.npy")
    assert (stats["shards"] > 1) == (budget < 1 << 20)
    assert np.array_equal(np.load(tmp_path / "labels.npy"), _components_reference(n, pairs_list))


@pytest.fixture(scope="module")
def planted() -> tuple[list[Document], dict[str, str], list[tuple[str, str, str]]]:
    docs = []
    for name in (
        "web_dclm_quality_labeled.jsonl.gz",
        "books_gutenberg.jsonl.gz",
        "wiki_wikitext2.jsonl.gz",
        "web_dolma_cc.jsonl.gz",
        "books_tinyshakespeare.jsonl.gz",
    ):
        docs += load_sample(name)
    return plant(docs, 300, seed=3)


def test_accuracy_on_planted_near_duplicates(planted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs, family, pairs = planted
    step = MinHashDedup()
    units = {f"u{i}": docs[i::3] for i in range(3)}
    kept, removed, stats = run_step(step, units, tmp_path)
    assert len(kept) + len(removed) == len(docs)
    r = evaluate(docs, family, pairs, removed, step.config.jaccard_threshold)
    assert r["recall_by_jaccard"]["0.8-0.9"]["pairs"] > 30
    assert r["recall_jaccard_ge_0.8"] >= 0.95, r
    assert r["precision"] >= 0.99, r
    assert stats["pairs_verified"] < stats["candidate_pairs"]  # verification dropped LSH false positives
    for rem in removed:
        assert rem.reason == "near_duplicate" and rem.duplicate_of in family
        assert set(rem.detail) == {"cluster", "similarity"}


def test_out_of_core_plan_decides_like_in_memory(planted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs = planted[0][:1200]
    units = {f"u{i}": docs[i::4] for i in range(4)}
    big = MinHashDedup()
    _, removed_big, stats_big = run_step(big, units, tmp_path / "big")
    small = MinHashDedup()
    small.config = dataclasses.replace(small.config, memory_budget=20_000)
    _, removed_small, stats_small = run_step(small, units, tmp_path / "small")
    assert stats_big["key_partitions"] == 1 and stats_big["union_find"]["shards"] == 1
    assert stats_small["key_partitions"] > 1 and stats_small["pair_groups"] > 1
    assert stats_small["cluster_groups"] > 1
    assert stats_small["union_find"]["shards"] > 1
    summary = {(r.doc.id, r.duplicate_of, r.detail["cluster"]) for r in removed_big}
    assert summary == {(r.doc.id, r.duplicate_of, r.detail["cluster"]) for r in removed_small}


def _variants(base: Document, n: int, seed: int) -> list[Document]:
    rng = random.Random(seed)
    words = base.text.split()
    out = []
    for k in range(n):
        w = list(words)
        w[rng.randrange(len(w))] = "changed"
        out.append(Document(f"{base.id}-{k}", base.source, " ".join(w), {}))
    return out


def test_keep_rule(tmp_path: Path) -> None:
    base = load_sample("web_dclm_quality_labeled.jsonl.gz", limit=30)
    base = max(base, key=lambda d: len(d.text))
    a, b, c, d = _variants(base, 4, seed=0)
    c.text += " extra words at the end"  # the longest
    a.meta["quality_score"], b.meta["quality_score"] = 0.2, 0.9
    docs = [a, b, c, d]

    def kept_id(**params: object) -> str:
        kept, removed, _ = run_step(MinHashDedup(**params), {"u": list(docs)}, tmp_path)  # type: ignore[arg-type]
        assert len(kept) == 1 and {r.duplicate_of for r in removed} == {kept[0].id}
        assert len({r.detail["cluster"] for r in removed}) == 1
        return kept[0].id

    assert kept_id() == b.id  # highest quality score
    assert kept_id(keep="longest") == c.id
    assert kept_id(keep="id") == min(x.id for x in docs)
    for x in docs:
        x.meta.pop("quality_score", None)
    assert kept_id() == c.id  # no score anywhere: longest
    for x in docs:
        x.text = a.text
    assert kept_id(keep="longest") == a.id  # equally long: smallest id


def test_a_chained_cluster_keeps_what_is_unlike_the_kept_document(tmp_path: Path) -> None:
    """Three overlapping windows of one real page: A~B and B~C are near-duplicates, A and C
    are not (5-gram Jaccard about 0.6). A wins the cluster, so B goes as A's copy; C is linked
    to A only through B, which is removed, so C must stay. Keeping one document per union-find
    cluster removed C as "a duplicate of" A."""
    page = next(
        d for d in load_sample("web_dclm_quality_labeled.jsonl.gz", limit=60) if d.id.endswith("0046")
    )
    words = page.text.split()
    a, b, c = (
        Document(
            f"chain-{name}", page.source, " ".join(words[k * 120 : k * 120 + 1000]), {"quality_score": q}
        )
        for k, (name, q) in enumerate([("a", 0.9), ("b", 0.5), ("c", 0.1)])
    )
    truth = true_jaccard({d.id: d.text for d in (a, b, c)}, [(a.id, b.id), (b.id, c.id), (a.id, c.id)])
    step = MinHashDedup()
    cut = step.config.jaccard_threshold
    assert truth[0] >= cut + 0.05 and truth[1] >= cut + 0.05 and truth[2] <= cut - 0.05, truth
    kept, removed, stats = run_step(step, {"u": [c, b, a]}, tmp_path)
    assert stats["clusters"] == 1 and stats["documents_in_clusters"] == 3  # B~C verified: one chain
    assert [(r.doc.id, r.duplicate_of) for r in removed] == [(b.id, a.id)]
    assert sorted(d.id for d in kept) == [a.id, c.id]
    assert removed[0].detail["similarity"] == pytest.approx(truth[0], abs=0.02)
    assert stats["kept_beyond_first"] == 1


def test_incremental_against_a_saved_index(tmp_path: Path) -> None:
    web = load_sample("web_dclm_quality_labeled.jsonl.gz", limit=200)
    long = [d for d in web if len(d.text.split()) > 150]
    first_corpus = long[:40]
    copies = [
        Document(f"new-{d.id}", d.source, d.text + " a new closing line", {}) for d in first_corpus[:10]
    ]
    fresh = long[40:60]
    first = MinHashDedup(save_index=True)
    kept1, removed1, stats1 = run_step(first, {"a": first_corpus}, tmp_path / "run1")
    index = stats1["index_saved"]
    assert stats1["index_saved_documents"] == len(kept1)

    second = MinHashDedup(index=index, save_index=True)
    kept2, removed2, stats2 = run_step(second, {"b": copies + fresh}, tmp_path / "run2")
    assert {r.doc.id for r in removed2} == {c.id for c in copies}
    assert {r.duplicate_of for r in removed2} <= {d.id for d in kept1}
    assert {d.id for d in kept2} == {d.id for d in fresh}
    assert stats2["index_saved_documents"] == len(kept1) + len(fresh)

    # The index accumulated: a third corpus repeating run 2's new documents loses them all.
    third = MinHashDedup(index=stats2["index_saved"])
    _, removed3, _ = run_step(
        third, {"c": [Document(f"again-{d.id}", "x", d.text, {}) for d in fresh]}, tmp_path / "r3"
    )
    assert len(removed3) == len(fresh)
    with pytest.raises(ValueError, match="built with"):
        run_step(MinHashDedup(index=index, ngram=3), {"b": fresh}, tmp_path / "run4")


def test_default_recipe_runs_exact_before_near_dedup() -> None:
    recipe = load_recipe(ROOT / "recipes" / "default.yaml")
    kinds = [s["step"] for s in recipe.steps]
    assert kinds.index("exact_dedup") < kinds.index("minhash_dedup")
