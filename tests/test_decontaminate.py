"""The `decontaminate` step on real text: real benchmark items planted into real documents.

`tests/data/benchmark_items.jsonl` holds 46 real items: 4 per benchmark drawn at random by seed
from ../shared/data/benchmarks, and two MMLU items chosen for what they quote (a passage, a
quotation in quotation marks). Each line names its source file and license and gives the item
both as the first pack joined it (`text`) and as its parts (`question`, `choices`, `answer`,
`solution`, `passage`, as `bench.build_benchmark_pack.read_parts` reads them). The shipped pack
is hashed, so planting needs the text."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path

import numpy as np
import pydantic
import pytest

from bench.build_benchmark_pack import Parts
from bench.decontam_bench import FORMS, Case, edit, edit_words, fragment, plant, run_step, words_of
from pipeline.decontam.ngrams import char_offsets, matchable, words
from pipeline.decontam.pack import DEFAULT_PACK, GramPlan, Item, Pack, build_pack, quoted_spans
from pipeline.document import Document
from pipeline.driver import run_global
from pipeline.executor.local import LocalExecutor
from pipeline.steps.base import build_step
from pipeline.steps.decontaminate import Decontaminate
from pipeline.text.words import reference_words, word_hash
from tests.conftest import ROOT, SAMPLE, load_sample

MIN_WORDS = 10  # the step's default


def matchable_text(text: str) -> list[str]:
    """The words an item is matched on (normalized, numbers and choice labels dropped)."""
    return matchable(reference_words(text))


ROWS = [
    json.loads(line) for line in (ROOT / "tests" / "data" / "benchmark_items.jsonl").open(encoding="utf-8")
]
PARTS = [
    (
        r["benchmark"],
        Parts(r["id"], r["question"], tuple(r["choices"]), r["answer"], r["solution"], r["passage"]),
    )
    for r in ROWS
]
ITEMS = [Item(r["benchmark"], r["id"], r["text"]) for r in ROWS]
MATCHABLE = [it for it in ITEMS if len(matchable_text(it.text)) >= MIN_WORDS]  # shorter: a phrase
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


def test_words_are_the_reference_normalization_without_numbers_and_labels() -> None:
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


def test_choice_labels_are_not_words() -> None:
    """A lettered rendering is the same words as the choices run together."""
    lettered = "Question: Which is a mineral?\nA. quartz glass\n(B) wood pulp\nC)\nsteel wool\n\nAnswer: (A)"
    plain = "Question: Which is mineral? quartz glass wood pulp steel wool Answer:"
    assert matchable_text(lettered) == matchable_text(plain)
    assert words([lettered]).hashes.tolist() == [word_hash(x) for x in matchable_text(plain)]


def test_shipped_pack_is_small_and_documented() -> None:
    assert DEFAULT_PACK.stat().st_size < 4_500_000
    readme = (DEFAULT_PACK.parent / "README.md").read_text(encoding="utf-8")
    pack = Pack.load(DEFAULT_PACK)
    assert pack.n == Decontaminate().n == GramPlan().n
    for bench, (items, grams) in pack.counts().items():
        assert items > 0 and grams > 0
        assert f"`{bench}`" in readme
    assert int(pack.quoted.sum()) > 0 and int((pack.item_own > 0).sum()) > 1000  # BoolQ, MMLU passages


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


def form_cases(variant: str) -> list[Case]:
    """Every item in every form that applies to it (`bench.decontam_bench.FORMS`), rendered as
    the bench renders them, verbatim or lightly edited."""
    rng = random.Random(5)
    vocab = ["river", "table", "became", "quickly", "orange", "seven", "windows"]
    cases = []
    for form, make in FORMS.items():
        for bench, p in PARTS:
            pieces = make(bench, p, rng)
            if not pieces:
                continue
            text = "".join(t for t, _ in pieces).strip()
            ws = words_of(pieces)
            changed: set[int] = set()
            if variant == "edited":
                text, changed = edit_words([w for w, _ in ws], rng, vocab)
            cases.append(Case(bench, p.id, form, variant, text, ws, changed))
    return cases


def found_cases(step: Decontaminate, cases: list[Case], hosts: list[Document], tmp_path: Path) -> list[bool]:
    """One run per form: an item planted in more than `max_doc_frequency` hosts is common text."""
    rng = random.Random(7)
    hits = {}
    for form in dict.fromkeys(c.form for c in cases):
        group = [c for c in cases if c.form == form]
        docs = [
            Document(f"{i}", "t", plant(hosts[i % len(hosts)].text[:3000], c.text, rng))
            for i, c in enumerate(group)
        ]
        out = outcome(step, docs, tmp_path / re.sub(r"\W", "_", form))
        for c, d in zip(group, docs, strict=True):
            hits[id(c)] = c.id in out[d.id].meta.get("decontam", {}).get(c.bench, [])
    return [hits[id(c)] for c in cases]


@pytest.mark.parametrize("mode", ["span", "document"])
def test_every_form_is_found(step: Decontaminate, hosts: list[Document], tmp_path: Path, mode: str) -> None:
    """The question alone, with its correct answer, with its choices lettered or not, after
    its passage, a code prompt with its solution, half an item: found wherever the insertion
    holds `min_words` of the item's words in a row. Shorter insertions (a 5-word TriviaQA
    question, a BoolQ question alone) are phrases, and none of them is flagged; the ones found
    are a question and its answer on an "Answer:" line, each part under `min_words` in a row
    but not together (HellaSwag 2194's 9-word context and 6-word ending)."""
    cases = form_cases("verbatim")
    hits = found_cases(fresh(step, mode=mode), cases, hosts, tmp_path)
    by_category: dict[str, list[tuple[Case, bool]]] = {}
    for c, h in zip(cases, hits, strict=True):
        by_category.setdefault(c.category(MIN_WORDS, step.n), []).append((c, h))
    missed = [(c.form, c.bench, c.id) for c, h in by_category["counted"] if not h]
    assert not missed
    assert {c.form for c, _ in by_category["counted"]} == set(FORMS)
    assert len(by_category["counted"]) >= 150
    found_short = [c for c, h in by_category["too short"] if h]
    assert all(c.form == "question + answer" and c.own >= MIN_WORDS for c in found_short)
    assert not [c.text for c, h in by_category["passage only"] if h]  # BoolQ's Wikipedia paragraphs
    assert {(c.bench, c.form) for c, _ in by_category["too short"]} >= {
        ("triviaqa", "question"),
        ("boolq", "question"),
    }


def test_edited_forms_are_found(step: Decontaminate, hosts: list[Document], tmp_path: Path) -> None:
    cases = [c for c in form_cases("edited") if c.form != "half"]
    hits = found_cases(fresh(step), cases, hosts, tmp_path)
    counted = [h for c, h in zip(cases, hits, strict=True) if c.category(MIN_WORDS, step.n) == "counted"]
    assert len(counted) >= 100 and sum(counted) >= 0.95 * len(counted) - 1  # the bench has 5,000


def test_a_question_and_its_answer_join_where_the_choices_are_skipped(
    step: Decontaminate, hosts: list[Document], tmp_path: Path
) -> None:
    """HellaSwag 2194's context (9 words) followed by its correct ending, the fourth (6 words):
    the pack joins the question to the correct answer although the item's first ending follows
    it. On an "Answer:" line the ending shares no gram with the question's end, and neither part
    holds `min_words` alone: the ending's grams also stand where it follows the question, so the
    two add up on one alignment."""
    bench, p = next((b, p) for b, p in PARTS if (b, p.id) == ("hellaswag", "2194"))
    assert p.answer == 3 and len(matchable_text(p.question)) < MIN_WORDS
    assert len(matchable_text(p.choices[p.answer])) < MIN_WORDS
    texts = [
        f"{p.question} {p.choices[p.answer]}",
        f"{p.question} {p.choices[1]}",  # a wrong ending: the question alone is a phrase
        f"{p.question}\nAnswer: {p.choices[p.answer]}",
        f"{p.question}\nAnswer: {p.choices[2]}",
    ]
    docs = [
        Document(f"d{i}", "t", f"{hosts[0].text[:2000]}\n{t}\n{hosts[0].text[2000:4000]}")
        for i, t in enumerate(texts)
    ]
    item = Item(bench, p.id, "")
    assert leaked(outcome(fresh(step), docs, tmp_path), [item] * 4, docs) == [True, False, True, False]


def test_lightly_edited_items_are_found(step: Decontaminate, hosts: list[Document], tmp_path: Path) -> None:
    vocab = [w for d in hosts[:5] for w in d.text.split() if w.isalpha()]
    docs = planted(MATCHABLE, hosts, lambda it, rng: edit(it.text, rng, vocab))
    out = outcome(fresh(step), docs, tmp_path)
    hits = leaked(out, MATCHABLE, docs)
    assert sum(hits) >= 0.9 * len(hits) - 1  # ~40 items: one below 90 % is noise, the bench has 10,000


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
    """A question's first 15 words with the 8th changed keep no 10 words in a row, but their
    two 7-word halves still line up as in the item; the same halves apart are two phrases."""
    items = [
        (b, p)
        for b, p in PARTS
        if 15 <= len(matchable_text(p.question)) < 40 and not p.passage and not quoted_spans(p.question)
    ]
    host = hosts[1].text
    docs = []
    for i, (_, p) in enumerate(items):
        ws = matchable_text(p.question)
        before, after = " ".join(ws[:7]), " ".join(ws[8:15])
        docs.append(Document(f"edited#{i}", "t", f"{host[:2000]}\n{before} zebra {after}\n{host[2000:4000]}"))
        docs.append(Document(f"apart#{i}", "t", f"{host[:2000]}\n{before}.\n{host[2000:4000]}\n{after}."))
    out = outcome(fresh(step, mode="document"), docs, tmp_path)
    assert len(items) >= 10
    pairs = [Item(b, p.id, "") for b, p in items for _ in "ab"]
    assert leaked(out, pairs, docs) == [True, False] * len(items)


@pytest.mark.parametrize("lenient", [False, True])
def test_a_passage_or_quotation_is_not_the_item(
    step: Decontaminate, hosts: list[Document], tmp_path: Path, lenient: bool
) -> None:
    """What made clean books and articles look contaminated: they hold what an item quotes (a
    BoolQ item's Wikipedia paragraph, Gibbon for an MMLU item, the Declaration of Independence
    inside an MMLU question) but not the item's own words. Followed by the question, the
    passage is the item. `lenient`: a pack that takes quoted words for the item's own."""
    host = hosts[0].text
    quoting = [(b, p) for b, p in PARTS if p.passage]
    cases = [(b, p.id, p.passage, False) for b, p in quoting]
    cases += [(b, p.id, f"{p.passage}\nQuestion: {p.question}", True) for b, p in quoting]
    b, p = next((b, p) for b, p in PARTS if '"we hold these truths' in p.question)
    quote = re.search(r'"[^"]+"', p.question)
    assert quote
    cases += [(b, p.id, f"As Jefferson wrote, {quote.group()}.", False), (b, p.id, p.question, True)]
    docs = [
        Document(f"part#{i}", "t", host[:3000] + "\n" + text + "\n" + host[3000:6000])
        for i, (_, _, text, _) in enumerate(cases)
    ]
    s = fresh(step, mode="document")
    if lenient:
        pack = step.loaded_pack
        s._pack = dataclasses.replace(
            pack, quoted=np.zeros_like(pack.quoted), item_own=np.zeros_like(pack.item_own)
        )
    out = outcome(s, docs, tmp_path)
    assert len(quoting) >= 5
    expected = [held or lenient for *_, held in cases]
    assert leaked(out, [Item(b, i, "") for b, i, _, _ in cases], docs) == expected


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


def test_a_benchmarks_boilerplate_is_not_in_the_pack() -> None:
    """MMLU heads 895 items with the same instructions; what tells them apart is the rest."""
    head = "For which of these two scenarios does the main character do something clearly morally wrong?"
    tails = [
        f"Scenario {i} | I {verb} my neighbour's {thing} last night"
        for i, (verb, thing) in enumerate(
            (v, t)
            for v in ("painted", "borrowed", "hid", "washed")
            for t in ("car", "dog", "fence", "bicycle", "garden")
        )
    ]
    pack = build_pack([Item("b", str(i), head + " " + t) for i, t in enumerate(tails)])
    head_words = len(matchable_text(head))
    assert len(tails) >= 16 and pack.pos.min() > head_words - pack.n  # nothing wholly in the head
    assert set(pack.item.tolist()) == set(range(len(tails)))


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


def test_partitioned_plan_decides_as_one_partition(
    step: Decontaminate, hosts: list[Document], tmp_path: Path
) -> None:
    """Past its memory budget the plan shuffles the evidence by n-gram (documents per gram) and
    by document (the judging) through the executor: the same documents hold the same items, and
    a gram past `max_doc_frequency` stops counting across partitions as it does in one."""
    rng = random.Random(3)
    common = next(it for it in MATCHABLE if it.benchmark == "gsm8k")
    texts = [
        plant(hosts[i % len(hosts)].text[:3000], c.text, rng) for i, c in enumerate(form_cases("verbatim"))
    ]
    texts += [plant(h.text[:3000], common.text, random.Random(i)) for i, h in enumerate(hosts[:13])]
    units = {f"u{k}": [[Document(f"{k}-{i}", "t", t) for i, t in enumerate(texts[k::4])]] for k in range(4)}

    def decide(budget_mb: float, state: Path) -> tuple[dict[str, object], dict[str, object]]:
        s = fresh(step, max_doc_frequency=12, memory_budget_mb=budget_mb)
        copies = {u: [[dataclasses.replace(d, meta={}) for d in b[0]]] for u, b in units.items()}
        r = run_global(s, copies, state, LocalExecutor(2).map)
        docs = [d for u in r.kept for d in r.kept[u]] + [x.doc for u in r.removed for x in r.removed[u]]
        return r.stats, {d.id: (d.meta.get("decontam"), d.text) for d in docs}

    whole_stats, whole = decide(1024, tmp_path / "one")
    parts_stats, parts = decide(0.1, tmp_path / "parts")
    assert whole_stats["partitions"] == 1 and parts_stats["partitions"] >= 4
    assert parts == whole
    assert {k: v for k, v in parts_stats.items() if k != "partitions"} == {
        k: v for k, v in whole_stats.items() if k != "partitions"
    }
    assert whole_stats["documents_matched"] >= 150 and whole_stats["ngrams_too_common"] > 0
    assert not any(
        whole[f"{k}-{i}"][0]
        for k in range(4)
        for i in range(len(texts[k::4]))
        if common.text in texts[4 * i + k]
    )


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


def test_the_correct_answer_is_dense_and_also_stands_after_the_question() -> None:
    """A short correct answer keeps every gram where it follows the question; when other choices
    come between them, its grams at its place in the item stay every 6th, and every one also
    stands where a page showing the question and that answer alone puts it."""
    question = "how should you fold a towel"  # 5 words ("a" is a choice label)
    answer = " ".join(f"s{a}" for a in "abcdefghijklmn")  # 14 words
    wrong = "put it in the dryer for an hour"  # 8 words
    first = build_pack([Item("b", "x", (question, answer, wrong), answer=1)])
    assert set(range(19)) <= set(first.pos.tolist())  # every gram starting in question or answer
    second = build_pack([Item("b", "y", (question, wrong, answer), answer=2)])
    assert sorted(p for p in second.pos.tolist() if p > 13) == [19, 21]  # answer at 13: 13, 19, end
    after_question = {
        (p, k) for p, k in zip(first.pos.tolist(), first.hashes.tolist(), strict=True) if p <= 13
    }
    assert len(after_question) == 14
    assert after_question <= set(zip(second.pos.tolist(), second.hashes.tolist(), strict=True))


def test_build_pack_segments_save_and_merge(tmp_path: Path) -> None:
    words20 = " ".join(f"q{a}{b}" for a in "ab" for b in "abcdefghij")  # a 20-word question
    long = " ".join(f"w{a}{b}" for a in "abcdef" for b in "abcdefghij")  # a 60-word solution
    items = [
        Item("b", "qa", (words20, "choice one goes here", "choice two goes there", long), answer=2),
        Item("b", "tiny", "only five little words here"),
        Item("b", "boolq", ("is this the question of the item",), source=long.replace("w", "p")),
    ]
    pack = build_pack(items)
    pos = sorted(pack.pos[pack.item == 0].tolist())
    assert pos[:15] == list(range(15))  # every gram of a short question...
    assert {28, 34, 40, 46, 52, 58} <= set(pos) and 29 not in pos  # ...every 6th of the solution
    assert 82 in pos  # ...and the one ending the item
    assert pack.quoted[pack.item == 0].sum() == 0 and 1 not in pack.item.tolist()
    assert pack.item_own.tolist() == [0, 0, 60] and pack.item_first.tolist() == [20, 5, 67]
    assert pack.quoted[(pack.item == 2) & (pack.pos.astype(int) + 6 <= 60)].all()
    pack.save(tmp_path / "p.npz")
    again = Pack.load(tmp_path / "p.npz")
    for field in ("hashes", "item", "pos", "quoted", "item_words", "item_own", "item_first", "item_ids"):
        assert np.array_equal(getattr(again, field), getattr(pack, field)), field
    merged = Pack.load(DEFAULT_PACK).merge(pack)
    assert merged.benchmarks[-1] == "b" and len(merged.hashes) == len(Pack.load(DEFAULT_PACK).hashes) + len(
        pack.hashes
    )
    with pytest.raises(ValueError):
        merged.merge(build_pack(items, GramPlan(n=5)))
    said = 'He said "one two three four five six seven eight nine ten" and left the house at once'
    assert build_pack([Item("b", "cites", said, quotes=True)]).quoted.any()
    assert not build_pack([Item("b", "dialogue", said)]).quoted.any()
    np.savez(tmp_path / "old.npz", grams=np.array([13, 6, 40]))
    with pytest.raises(ValueError, match="older format"):
        Pack.load(tmp_path / "old.npz")
