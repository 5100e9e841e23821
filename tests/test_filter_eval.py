"""bench/filter_eval: the junk generators are deterministic and make what they claim, and the
dev/test split never shares an origin or a group. Small inputs only: no full build."""

from __future__ import annotations

import unicodedata
from collections import Counter

import ftfy
import pytest

from bench.filter_eval import build, junk, shared_sources, split
from bench.filter_eval.common import Item, rng, words
from pipeline.steps.gopher_repetition import KEYWORD_WINDOW, NOT_KEYWORDS
from pipeline.text.stats import keyword_stats, text_stats


@pytest.fixture(scope="module")
def pool() -> junk.Pool:
    books = [
        r for r in shared_sources.read_raw("books_gutenberg.jsonl.gz") if r["meta"].get("part") == "body"
    ]
    english = [(r["id"], r["text"]) for r in books if r["meta"]["language"] == "en"][::40]
    return junk.Pool("dev", english)


def unmarked(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def samples(kind: str, pool: junk.Pool, n: int = 40, split_name: str = "dev") -> list[tuple[str, str, str]]:
    return [junk.GENERATORS[kind](rng(split_name, kind, str(i)), pool) for i in range(n)]


@pytest.mark.parametrize("kind", sorted(junk.GENERATORS))
def test_generators_are_deterministic_and_vary(kind, pool):
    first, again = samples(kind, pool, 12), samples(kind, pool, 12)
    assert first == again
    assert len({text for text, _, _ in first}) >= 10  # seeds give different documents
    assert samples(kind, pool, 12, "test") != first  # and the test split its own
    assert all(text.strip() for text, _, _ in first)


def test_word_salad_is_real_words_out_of_order(pool):
    vocab = {w.lower() for w in pool.vocab}
    texts = {text for _, text in pool.docs}
    for text, variant, fed in samples("word_salad", pool, 60):
        ws = [w.lower() for w in words(text)]
        assert len(ws) >= 5 and set(ws) <= vocab, variant
        assert text not in texts
        assert text.rstrip()[-1] in ".?!" and next(c for c in text if c.isalpha()).isupper()
        if variant != "bag":  # shuffled: the same words as the document it was made from
            source = dict(pool.docs)[fed]
            assert Counter(ws) <= Counter(w.lower() for w in words(source))


def test_mojibake_differs_and_reverses(pool):
    text = junk.smarten(pool.docs[0][1][:3000])
    assert sum(ord(c) > 127 for c in text) > 20  # typographic quotes and dashes to damage
    for codec, times in [("cp1252", 1), ("cp1252", 2), ("latin-1", 1)]:
        broken = junk.mis_decode(text, codec, times)
        assert broken != text and "\u00e2" in broken
        assert junk.undo_mis_decode(broken, codec, times) == text
    assert ftfy.fix_text(junk.mis_decode(text, "cp1252")) == ftfy.fix_text(text)
    for broken, variant, fed in samples("mojibake", pool, 40):
        source = dict(pool.docs)[fed]
        assert broken not in source
        if variant == "zalgo":  # the marks taken off, the text is the source's
            assert source.startswith(unmarked(broken))
        elif variant != "homoglyph":
            non_ascii = sum(ord(c) > 127 for c in broken)
            assert non_ascii >= len(broken.split()) / 12, variant  # damage all through, not one spot


def test_repeated_lines_repeat(pool):
    for text, variant, _ in samples("repeated_lines", pool, 40):
        lines = [line for line in text.splitlines() if line.strip()]
        counts = Counter(lines)
        repeated = sum(c for c in counts.values() if c > 1)
        assert repeated >= 0.6 * len(lines), variant


def test_keyword_spam_is_what_the_keyword_rule_reads_as_stuffing(pool):
    """Generated spam has the few repeated keywords and poor vocabulary the rule looks for; the
    book chunks it was made beside have neither."""
    spam = [text for text, _, _ in samples("keyword_spam", pool, 60)]
    share, diversity = keyword_stats(text_stats(spam), NOT_KEYWORDS, KEYWORD_WINDOW)
    assert ((share > 0.2) & (diversity < 0.62)).mean() >= 0.9
    share, diversity = keyword_stats(
        text_stats([text for _, text in pool.docs]), NOT_KEYWORDS, KEYWORD_WINDOW
    )
    assert share.max() < 0.1 and diversity.min() > 0.7


def test_very_short_is_under_ten_words(pool):
    for text, variant, _ in samples("very_short", pool, 60):
        assert 1 <= len(text.split()) < 10, (variant, text)


def test_binary_and_numeric_are_not_text(pool):
    for text, _, _ in samples("binary", pool, 20):
        assert sum(c.isascii() and (c.isalnum() or c == " ") for c in text) < 0.6 * len(text)
    for text, _, _ in samples("numeric", pool, 20):
        assert sum(c.isdigit() for c in text) > 0.3 * len(text)


def test_near_duplicate_licences_are_dropped_once():
    body = "Permission is hereby granted, free of charge, to any person obtaining a copy. " * 5
    items = [
        Item("licences", f"Copyright (c) {year} Someone {year}\n\n{body}", f"f{year}", "x", f"g{year}")
        for year in (2001, 2002)
    ]
    assert len(split.dedup(items)) == 1


def test_split_never_shares_an_origin_or_a_group(monkeypatch):
    """The shared-data kinds through the real assignment, and the junk made from each side."""
    items = [it for source in shared_sources.prose_sources() for it in source() if it is not None]
    items = split.dedup(items + list(shared_sources.non_english()))
    side = split.assign(items)
    monkeypatch.setattr(build, "JUNK_PER_KIND", 8)
    chosen = {name: split.select(items, side, name) for name in ("dev", "test")}
    for name in chosen:
        assert {side[it.group] for it in chosen[name]} == {name}
        chosen[name] += build.generated(name, chosen[name])
    dev, test = chosen["dev"], chosen["test"]
    assert not {it.origin for it in dev} & {it.origin for it in test}
    assert not {it.group for it in dev} & {it.group for it in test}
    for name, mine in chosen.items():
        own = {it.origin for it in mine if "<-" not in it.origin}
        fed = [it.origin.split(" <- ")[1] for it in mine if " <- " in it.origin]
        assert fed and set(fed) <= own, name  # junk is made from its own split's text
    # every kind of the shared data is in both splits
    for kind in ("books", "encyclopedic", "web", "code", "non_english"):
        assert all(any(it.kind == kind for it in mine) for mine in chosen.values()), kind


def test_evaluation_runs_the_recipes_filter_chain_as_the_runner_does():
    from bench.filter_eval import evaluate

    steps, batch_size = evaluate.document_steps(evaluate.ROOT / "recipes" / "default.yaml")
    names = [n for n, _ in steps]
    assert names == [
        "normalize",
        "encoding",
        "language",
        "gopher_repetition",
        "gopher_quality",
        "c4",
        "fineweb",
        "code_quality",
        "junk_score",  # a scorer is part of the filter chain; dedup is not
    ]
    line = "The committee met on Tuesday and agreed to publish the report next month."
    records = [
        {"id": "a", "kind": "repeated_lines", "label": "junk", "source": "s", "text": "\n".join([line] * 40)},
        {"id": "b", "kind": "very_short", "label": "junk", "source": "s", "text": "Page not found"},
    ]
    removed, seconds = evaluate.run_chain(steps, records, batch_size)
    assert removed["a"].startswith("gopher_repetition:") and "b" in removed
    kinds = evaluate.tally(records, removed)
    assert kinds["repeated_lines"]["removed_pct"] == 100 and set(seconds) == set(names)
