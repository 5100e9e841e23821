"""normalize, language and exact_dedup on real documents."""

from __future__ import annotations

import random
import re
from pathlib import Path

from pipeline.document import Document
from pipeline.driver import run_global
from pipeline.executor.local import LocalExecutor
from pipeline.steps.encoding import EncodingFilter
from pipeline.steps.exact_dedup import ExactDedup, text_key
from pipeline.steps.language import MIN_LANGUAGE_CHARS, LanguageFilter, language_text
from pipeline.steps.normalize import Normalize
from tests.conftest import load_sample


def test_normalize_canonicalises_real_text() -> None:
    doc = load_sample("books_gutenberg.jsonl.gz", 3)[2]
    messy = doc.text.replace("\n", "  \r\n").replace("e\u0301", "é") + "\n\n\n\n\x07end"
    decomposed = "Cafe\u0301 " + messy
    step = Normalize()
    kept, removed = step.apply([Document("a", "s", decomposed)], "u")
    text = kept[0].text
    assert text.startswith("Café ") and "\r" not in text and "\x07" not in text
    assert "\n\n\n" not in text and " \n" not in text
    assert text.endswith("end")


def test_normalize_length_limits_and_mojibake() -> None:
    docs = load_sample("web_dolma_cc.jsonl.gz", 4)
    step = Normalize(min_chars=500, max_chars=1500)
    kept, removed = step.apply(docs, "u")
    for d in kept:
        assert 500 <= len(d.text) <= 1500
    assert {r.reason for r in removed} <= {"too_short", "too_long"} and removed
    fixed = Normalize(fix_mojibake=True).apply(
        [Document("m", "s", "The cafÃ© serves crÃ¨me brÃ»lÃ©e.")], "u"
    )[0]
    assert fixed[0].text == "The café serves crème brûlée."


def test_language_filter_on_udhr() -> None:
    docs = load_sample("multilingual_udhr.jsonl.gz")
    step = LanguageFilter(languages=["en"], threshold=0.65)
    kept, removed = step.apply(docs, "u")
    assert [d.meta["language"] for d in kept] == ["en"]
    by_id = {r.doc.id: r.reason for r in removed}
    french = [d for d in docs if d.meta.get("iso639_3") == "fra" or d.meta.get("bcp47") == "fr"]
    assert french and all(by_id[d.id] == "lang_fr" for d in french)
    assert all(r.reason.startswith("lang_") for r in removed)
    multi = LanguageFilter(languages=["en", "fr", "de"]).apply(docs, "u")[0]
    assert {d.meta["language"] for d in multi} == {"en", "fr", "de"}


def test_language_text_drops_exactly_the_tokens_that_carry_no_language() -> None:
    docs = load_sample("web_dclm_quality_labeled.jsonl.gz", 200) + load_sample(
        "code_python_stdlib.jsonl.gz", 20
    )
    mark = re.compile(r"[\d@_/\\<>{}\[\]=|#*~^$]")
    for d in docs:
        expected = re.sub(r"\S+", lambda m: " " if mark.search(m.group()) else m.group(), d.text)
        words = expected.replace(" ", "")
        assert language_text(d.text) == (expected if len(words) >= MIN_LANGUAGE_CHARS else d.text), d.id


def test_language_filter_reads_a_low_scoring_document_passage_by_passage() -> None:
    """An English paragraph followed by lists of words from many languages (as a changelog's
    lists of names and packages): the whole text scores low English, its passages are English
    or no language at all, so it stays; the lists alone, or a German paragraph with them, go."""
    udhr = load_sample("multilingual_udhr.jsonl.gz")
    books = load_sample("books_gutenberg.jsonl.gz", 40)
    english = next(d.text for d in books if d.meta.get("language") == "en" and len(d.text) > 1500)[:600]
    german = next(d.text for d in udhr if d.meta.get("iso639_3") == "deu")[:600]
    words = [w for d in udhr[:60] for w in d.text.split() if w.isalpha() and w.isascii()]
    rng = random.Random(0)
    lists = "\n\n".join("\n".join(" ".join(rng.sample(words, 4)) for _ in range(8)) for _ in range(3))
    docs = [Document(name, "s", f"{head}\n\n{lists}") for name, head in [("en", english), ("de", german)]]
    docs.append(Document("lists", "s", lists))
    kept, removed = LanguageFilter().apply([Document(d.id, "s", d.text) for d in docs], "u")
    assert [d.id for d in kept] == ["en"] and kept[0].meta["language_score"] < 0.65
    assert {r.doc.id: r.reason for r in removed}["de"] == "lang_de"
    _, removed = LanguageFilter(min_passage_share=None).apply(docs[:1], "u")
    assert [r.reason for r in removed] == ["lang_low_score"]


def test_exact_dedup_keeps_smallest_id_across_units(tmp_path: Path) -> None:
    books = load_sample("books_gutenberg.jsonl.gz", 40)
    unit_a = books[:20]
    # a whitespace-variant copy and an exact copy, in another unit, under other ids
    twin = Document("zzz-copy", "other", books[5].text.replace("\n", " \n  "))
    early = Document("000-copy", "other", books[7].text)
    unit_b = books[20:] + [twin, early]
    result = run_global(ExactDedup(), {"a": [unit_a], "b": [unit_b]}, tmp_path, LocalExecutor(1).map)
    (kept_a, removed_a), (kept_b, removed_b) = ((result.kept[u], result.removed[u]) for u in "ab")
    removed = {r.doc.id: r.duplicate_of for r in removed_a + removed_b}
    assert removed["zzz-copy"] == books[5].id
    assert removed[books[7].id] == "000-copy"  # the smaller id wins wherever it sits
    assert all(r.reason == "exact_duplicate" for r in removed_a + removed_b)
    assert len(kept_a) + len(kept_b) + len(removed) == len(unit_a) + len(unit_b)


def test_exact_dedup_partitioned_plan_decides_as_one_partition(tmp_path: Path) -> None:
    """Past its memory budget the plan shuffles the hashes into partitions through the executor;
    the decisions are those of one partition, and of a plain dict over the whole corpus."""
    pages = load_sample("web_dclm_quality_labeled.jsonl.gz") + load_sample("books_gutenberg.jsonl.gz")
    units: dict[str, list[list[Document]]] = {}
    for u in range(8):  # 8 units; every 3rd page copied into another unit under a new id
        docs = [Document(f"{u}-{i:05d}-{d.id}", "s", d.text) for i, d in enumerate(pages[u::8])]
        docs += [Document(f"{u}-copy-{d.id}", "s", d.text) for d in pages[(u + 1) % 8 :: 24]]
        units[f"unit-{u}"] = [docs]
    whole = run_global(ExactDedup(), units, tmp_path / "one", LocalExecutor(2).map)
    split = run_global(ExactDedup(memory_budget_mb=0.05), units, tmp_path / "parts", LocalExecutor(2).map)
    assert whole.stats["partitions"] == 1 and split.stats["partitions"] >= 4
    decided = {u: sorted((r.doc.id, r.duplicate_of) for r in split.removed[u]) for u in units}
    assert decided == {u: sorted((r.doc.id, r.duplicate_of) for r in whole.removed[u]) for u in units}
    smallest: dict[int, str] = {}
    for docs in units.values():
        for d in docs[0]:
            key = text_key(d.text, False)
            smallest[key] = min(smallest.get(key, d.id), d.id)
    expected = sorted(
        (d.id, smallest[text_key(d.text, False)])
        for docs in units.values()
        for d in docs[0]
        if smallest[text_key(d.text, False)] != d.id
    )
    assert sorted(x for v in decided.values() for x in v) == expected
    assert len(expected) > 100


def test_encoding_filter_catches_garbled_text_and_keeps_real_text() -> None:
    real = load_sample("wiki_wikitext2.jsonl.gz", 40) + load_sample("multilingual_udhr.jsonl.gz", 40)
    kept, removed = EncodingFilter().apply(real, "u")
    assert not removed  # 79 languages' real text, accents and all scripts, is not garbled
    text = real[0].text.replace("'", "\u2019").replace(" - ", " \u2013 ") + " Café, naïve, résumé."
    garbled = [
        Document("cp1252", "s", text.encode("utf-8").decode("cp1252", errors="replace")),
        Document("zalgo", "s", "".join(c + "\u0301\u0302\u0303" if c.isalpha() else c for c in text)),
        Document("homoglyph", "s", text.replace("a", "\u0430").replace("o", "\u043e")),
    ]
    _, removed = EncodingFilter().apply(garbled, "u")
    assert [r.reason for r in removed] == ["mojibake", "stacked_marks", "mixed_scripts"]
