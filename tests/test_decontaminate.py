"""The `decontaminate` step on real text: real benchmark items planted into real documents.

`tests/data/benchmark_items.jsonl` holds 44 real items (4 per benchmark, drawn at random by
seed from ../shared/data/benchmarks; each line names its source file and license), as the
pack builder turns them into text. The shipped pack is hashed, so planting needs the text."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pydantic
import pytest

from bench.decontam_bench import edit, fragment, plant, run_step
from pipeline.decontam.ngrams import char_offsets, words
from pipeline.decontam.pack import DEFAULT_PACK, Item, Pack, build_pack
from pipeline.document import Document
from pipeline.steps.base import build_step
from pipeline.steps.decontaminate import Decontaminate
from pipeline.text.words import reference_words, word_hash
from tests.conftest import ROOT, SAMPLE, load_sample


def matchable_text(text: str) -> list[str]:
    """The words an item is matched on (normalized, numbers dropped), as text."""
    return [w for w in reference_words(text) if w.strip("0")]


ITEMS = [
    Item(r["benchmark"], r["id"], r["text"])
    for r in map(json.loads, (ROOT / "tests" / "data" / "benchmark_items.jsonl").open(encoding="utf-8"))
]
MATCHABLE = [it for it in ITEMS if len(matchable_text(it.text)) >= 8]  # shorter items cannot be found
LONG = [it for it in MATCHABLE if len(matchable_text(it.text)) >= 120]  # a passage and its question
HOSTS = ("web_dclm_quality_labeled.jsonl.gz", "wiki_wikitext2.jsonl.gz", "books_gutenberg.jsonl.gz")


@pytest.fixture(scope="module")
def hosts() -> list[Document]:
    return [d for name in HOSTS for d in load_sample(name, limit=60) if len(d.text) > 2000]


@pytest.fixture(scope="module")
def step() -> Decontaminate:
    s = Decontaminate()
    s.loaded_pack  # noqa: B018  (load once for the module)
    return s


def planted(items: list[Item], hosts: list[Document], make) -> list[Document]:  # noqa: ANN001
    rng = random.Random(3)
    return [
        Document(f"{h.id}#{i}", h.source, plant(h.text, make(it, rng), rng))
        for i, (it, h) in enumerate(zip(items, (hosts * len(items))[: len(items)], strict=True))
    ]


def leaked(out: dict[str, Document], items: list[Item], docs: list[Document]) -> list[bool]:
    """Whether each planted item is named in its host's `meta["decontam"]`."""
    return [
        it.id in out[d.id].meta.get("decontam", {}).get(it.benchmark, [])
        for it, d in zip(items, docs, strict=True)
    ]


def fresh(step: Decontaminate, **params) -> Decontaminate:  # noqa: ANN003
    """A step with other parameters sharing the loaded pack (loading it is the slow part)."""
    s = Decontaminate(**params)
    s._pack = step.loaded_pack
    return s


def outcome(step: Decontaminate, docs: list[Document], tmp_path: Path) -> dict[str, Document]:
    kept, removed = run_step(step, docs, tmp_path)
    return {d.id: d for d in kept} | {r.doc.id: r.doc for r in removed}


def test_words_are_the_reference_normalization_without_numbers() -> None:
    docs = load_sample("multilingual_udhr.jsonl.gz", limit=20) + load_sample(
        "web_html_extracted.jsonl.gz", 20
    )
    w = words([d.text for d in docs])
    for i, d in enumerate(docs):
        expected = [word_hash(x) for x in matchable_text(d.text)]
        assert w.hashes[w.doc == i].tolist() == expected
    # byte spans, turned into character offsets, cover each word's text
    text = docs[0].text
    sel = np.flatnonzero(w.doc == 0)[:200]
    starts, ends = char_offsets(text, w.start[sel]), char_offsets(text, w.end[sel])
    for s, e, h in zip(starts.tolist(), ends.tolist(), w.hashes[sel].tolist(), strict=True):
        assert h in {word_hash(x) for x in reference_words(text[s:e])}


def test_shipped_pack_is_small_and_documented() -> None:
    assert DEFAULT_PACK.stat().st_size < 5_000_000
    readme = (DEFAULT_PACK.parent / "README.md").read_text(encoding="utf-8")
    pack = Pack.load(DEFAULT_PACK)
    assert pack.settings == (13, 6, 40)
    for bench, (items, grams) in pack.counts().items():
        assert items > 0 and grams > 0
        assert f"`{bench}`" in readme


@pytest.mark.parametrize("mode", ["span", "document"])
def test_verbatim_items_are_found(
    step: Decontaminate, hosts: list[Document], tmp_path: Path, mode: str
) -> None:
    docs = planted(MATCHABLE, hosts, lambda it, rng: it.text)
    out = outcome(fresh(step, mode=mode), docs, tmp_path)
    hits = leaked(out, MATCHABLE, docs)
    assert all(hits), [it for it, h in zip(MATCHABLE, hits, strict=True) if not h]
    if mode == "span":  # kept documents no longer hold the item's words
        for it, d in zip(MATCHABLE, docs, strict=True):
            text = " ".join(reference_words(out[d.id].text))
            assert " ".join(reference_words(it.text)) not in text


def test_lightly_edited_items_are_found(step: Decontaminate, hosts: list[Document], tmp_path: Path) -> None:
    vocab = [w for d in hosts[:5] for w in d.text.split() if w.isalpha()]
    docs = planted(MATCHABLE, hosts, lambda it, rng: edit(it.text, rng, vocab))
    out = outcome(fresh(step), docs, tmp_path)
    hits = leaked(out, MATCHABLE, docs)
    assert sum(hits) >= 0.9 * len(hits) - 1  # ~40 items: one below 90 % is noise, the bench has 3,000


def test_other_numbers_are_the_same_leak(step: Decontaminate, hosts: list[Document], tmp_path: Path) -> None:
    """Numbers are wildcards: a GSM8K problem with every number changed is still found."""
    items = [it for it in MATCHABLE if it.benchmark == "gsm8k"]
    docs = planted(
        items, hosts, lambda it, rng: re.sub(r"\d+", lambda m: str(rng.randrange(10_000)), it.text)
    )
    assert all(leaked(outcome(fresh(step), docs, tmp_path), items, docs))


@pytest.mark.parametrize("mode", ["span", "document"])
def test_fragments_and_clean_text_are_left_alone(
    step: Decontaminate, hosts: list[Document], tmp_path: Path, mode: str
) -> None:
    docs = planted(ITEMS, hosts, lambda it, rng: fragment(it.text, rng))
    out = outcome(fresh(step, mode=mode), docs, tmp_path / "fragments")
    assert not [d for d in out.values() if "decontam" in d.meta]
    # The whole sample: books, Wikipedia, web, code. It holds a Wikipedia article that shares
    # "adults between the ages of 18 and 49" with an MMLU question about ages 18 and 70, once
    # taken for a leak because numbers were words.
    clean = [d for path in sorted(SAMPLE.glob("*.jsonl.gz")) for d in load_sample(path.name)]
    kept, removed = run_step(fresh(step, mode=mode), clean, tmp_path / "clean")
    assert not removed and not [d.id for d in kept if "decontam" in d.meta]


def test_pieces_of_an_item_count_where_they_align(
    step: Decontaminate, hosts: list[Document], tmp_path: Path
) -> None:
    """A short item's first 15 words with the 8th changed keep no 8 words in a row, but their
    two 7-word halves still line up as in the item; the same halves apart are two phrases."""
    items = [it for it in MATCHABLE if 15 <= len(matchable_text(it.text)) < 40]
    host = hosts[1].text
    docs = []
    for i, it in enumerate(items):
        ws = matchable_text(it.text)
        before, after = " ".join(ws[:7]), " ".join(ws[8:15])
        docs.append(Document(f"edited#{i}", "t", f"{host[:2000]}\n{before} zebra {after}\n{host[2000:4000]}"))
        docs.append(Document(f"apart#{i}", "t", f"{host[:2000]}\n{before}.\n{host[2000:4000]}\n{after}."))
    out = outcome(fresh(step, mode="document"), docs, tmp_path)
    assert len(items) >= 10
    assert leaked(out, [it for it in items for _ in "ab"], docs) == [True, False] * len(items)


@pytest.mark.parametrize("lenient", [False, True])
def test_a_shared_part_of_an_item_is_not_the_item(
    step: Decontaminate, hosts: list[Document], tmp_path: Path, lenient: bool
) -> None:
    """What made clean books and articles look contaminated: they shared a part of an item (a
    passage the item quotes, one famous sentence in it) but not the rest of the item. Without
    the rules (`lenient`) both count."""
    host = hosts[0].text
    medium = [it for it in MATCHABLE if 40 <= len(matchable_text(it.text)) <= 60]
    cases = []
    for it in LONG:  # the first 60 %: a passage without its question (more than max_gap words)
        ws = matchable_text(it.text)
        cases.append((it, " ".join(ws[: len(ws) * 3 // 5])))
    for it in medium:  # the one 13-gram of its pack grams nearest its middle
        ws = matchable_text(it.text)
        at = min(build_pack([it]).pos.tolist(), key=lambda p: abs(p - (len(ws) - 13) / 2))
        cases.append((it, " ".join(ws[at : at + 13])))
    docs = [
        Document(f"part#{i}", "t", host[:3000] + "\n" + text + "\n" + host[3000:6000])
        for i, (_, text) in enumerate(cases)
    ]
    params = {"max_gap": 1000, "min_grams": 1} if lenient else {}
    out = outcome(fresh(step, mode="document", **params), docs, tmp_path)
    assert len(LONG) >= 3 and len(medium) >= 3
    assert leaked(out, [it for it, _ in cases], docs) == [lenient] * len(cases)


def test_low_information_grams_are_not_in_the_pack() -> None:
    """Patterns maths, LaTeX and code repeat everywhere identify no item."""
    pack = build_pack(
        [
            Item("b", "factors", "(x - 2)(x + 2)(x - 1)(x + 1) (x+1)^4 (x-1)(x+1)^3 (x-1)^3(x+1)"),
            Item("b", "latex", r"\frac{x^{2}}{2!} + \frac{x^{4}}{4!} - \frac{x^{6}}{6!} + \frac{x^{8}}{8!}"),
            Item("b", "truth", "True, True True, False False, True False, False True, True False"),
            Item("b", "text", "The motion of atoms and molecules in a substance is thermal energy."),
        ]
    )
    assert set(pack.item.tolist()) == {3}


def test_too_common_ngrams_do_not_count(step: Decontaminate, hosts: list[Document], tmp_path: Path) -> None:
    item = next(it for it in MATCHABLE if it.benchmark == "gsm8k")

    def docs(k: int) -> list[Document]:  # fresh copies: apply rewrites the documents it cuts
        return [
            Document(f"{h.id}#{i}", h.source, plant(h.text, item.text, random.Random(i)))
            for i, h in enumerate(hosts[:k])
        ]

    assert len(hosts) > 12
    out = outcome(fresh(step, max_doc_frequency=12), docs(12), tmp_path / "few")
    assert all("decontam" in d.meta for d in out.values())
    out = outcome(fresh(step, max_doc_frequency=12), docs(13), tmp_path / "many")
    assert not any("decontam" in d.meta for d in out.values())


def test_span_mode_cuts_merges_and_drops(step: Decontaminate, hosts: list[Document], tmp_path: Path) -> None:
    items = [it for it in MATCHABLE if len(it.text) > 300][:12]
    host = hosts[0].text
    para = host[:1500]
    one = Document("one", "t", para + "\n" + items[0].text + "\n" + para)
    many = Document("many", "t", "\n".join(para[:250] + "\n" + it.text for it in items))
    tiny = Document("tiny", "t", "Intro.\n" + items[1].text + "\nOutro.")
    before = len(one.text)
    kept, removed = run_step(fresh(step), [one, many, tiny], tmp_path)
    assert [d.id for d in kept] == ["one"] and {r.doc.id for r in removed} == {"many", "tiny"}
    assert {r.reason for r in removed} == {"benchmark_overlap"}
    cut = kept[0].text
    assert cut.count("\n\n") == 1 and len(cut) < before - len(items[0].text) - 300  # the match ± 200
    lenient = fresh(step, max_splits=20, min_piece_chars=10)
    kept, removed = run_step(lenient, [many], tmp_path / "lenient")
    assert [d.id for d in kept] == ["many"] and len(kept[0].meta["decontam"]) >= 2


def test_extra_files_report_and_recipe(step: Decontaminate, hosts: list[Document], tmp_path: Path) -> None:
    bench_file = tmp_path / "mine.jsonl"
    rows = [{"uid": f"q{i}", "q": it.text, "opts": ["yes", "no"]} for i, it in enumerate(MATCHABLE)]
    bench_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = {"path": str(bench_file), "fields": ["q", "opts"], "id_field": "uid", "name": "mine"}
    mine = Decontaminate(pack=None, extra_files=[spec], mode="document")
    docs = planted(MATCHABLE[:5], hosts, lambda it, rng: it.text)
    kept, removed = run_step(mine, docs + hosts[5:20], tmp_path / "state")
    assert {r.doc.id for r in removed} == {d.id for d in docs}
    assert [r.doc.meta["decontam"] for r in removed] == [{"mine": [f"q{i}"]} for i in range(5)]
    lines = mine.report(tmp_path / "state" / "plan", tmp_path)
    assert any(line.startswith("| mine |") for line in lines)
    with pytest.raises(pydantic.ValidationError, match="extra_files.0.fields"):
        build_step("decontaminate", {"extra_files": [{"path": str(bench_file)}]}, "d")  # no fields
    assert (
        build_step("decontaminate", {"mode": "document", "extra_files": [spec]}, "d").extra_files[0].name
        == "mine"
    )


def test_build_pack_short_items_and_merge() -> None:
    items = [
        Item("b", "long", " ".join(f"w{a}{b}" for a in "abcdef" for b in "abcdefghij")),  # 60 words
        Item("b", "short", "one two three four five six seven eight nine"),
    ]
    items.append(Item("b", "tiny", "only five little words here"))
    pack = build_pack(items)
    short = pack.item_short(pack.item)
    assert set(pack.item[~short].tolist()) == {0} and set(pack.item[short].tolist()) == {1}
    assert sorted(pack.pos[short].tolist()) == [0, 1, 2, 3]  # every 6-gram of a short item, with its place
    merged = Pack.load(DEFAULT_PACK).merge(pack)
    assert merged.benchmarks[-1] == "b" and len(merged.hashes) == len(Pack.load(DEFAULT_PACK).hashes) + len(
        pack.hashes
    )
    with pytest.raises(ValueError):
        merged.merge(build_pack(items, short_item_words=30))
