"""The junk scorer on real text: documents of the shipped sample keep their place, the same
documents with their words shuffled (word salad made of real words) do not, and the training
command writes a model and a card that say so."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np

from pipeline.__main__ import main
from pipeline.document import Document
from pipeline.driver import run_global
from pipeline.ngram_lm import BigramLM, shuffled_words
from pipeline.steps.junk_score import JunkScore
from tests.conftest import load_sample


def held_out_prose() -> list[Document]:
    """Real documents the shipped model never saw: web pages and MediaWiki articles."""
    web = load_sample("web_dolma_cc.jsonl.gz")
    wiki = [d for d in load_sample("wiki_mediawiki_dump_sample.jsonl.gz") if len(d.text.split()) > 300]
    return web + wiki[:30]


def test_shuffled_words_score_far_below_the_text_they_come_from() -> None:
    docs = held_out_prose()
    rng = np.random.default_rng(0)
    step = JunkScore()
    real = step.score_texts([d.text for d in docs])
    salad = step.score_texts([shuffled_words(d.text, rng) for d in docs])
    judged = np.isfinite(real) & np.isfinite(salad)
    assert judged.sum() >= 30
    assert (salad[judged] < real[judged]).all()  # the same words, only the order differs
    assert np.mean(real[judged] >= step.threshold) >= 0.9 and np.mean(salad[judged] < step.threshold) >= 0.9


def test_the_step_removes_word_salad_and_keeps_short_documents_unjudged(tmp_path: Path) -> None:
    docs = held_out_prose()[:20]
    rng = np.random.default_rng(1)
    salad = [Document(f"salad-{d.id}", d.source, shuffled_words(d.text, rng)) for d in docs]
    short = Document("short", "web", "Too short to judge, and kept.")
    result = run_global(JunkScore(), {"u": [docs + salad + [short]]}, tmp_path)
    removed = {r.doc.id for r in result.removed["u"]}
    assert len({d.id for d in salad} - removed) <= 1  # salad goes
    assert len(removed & {d.id for d in docs}) <= 1  # its sources stay
    assert all(r.reason == "incoherent_text" and r.detail["junk_score"] < 0.2 for r in result.removed["u"])
    kept = {d.id: d for d in result.kept["u"]}
    assert kept["short"].meta["junk_score"] is None
    assert all(math.isfinite(d.meta["junk_score"]) for i, d in kept.items() if i != "short")
    assert result.stats["not_judged"] == 1


def test_train_junk_scorer_writes_a_model_and_its_card(tmp_path: Path) -> None:
    out = tmp_path / "junk"
    assert main(["train-junk-scorer", "recipes/junk_scorer.yaml", f"output_dir={out}"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["held_out"]["roc_auc_real_vs_shuffled"] > 0.95
    assert {s["name"] for s in card["sources"]} == {"books", "wiki", "code"}
    lm = BigramLM.load(out / "model.npz")
    shipped = BigramLM.load(Path("pipeline/assets/junk/model.npz"))  # the shipped one is this recipe's
    assert np.array_equal(lm.bigrams, shipped.bigrams) and np.array_equal(
        lm.bigram_count, shipped.bigram_count
    )
    text = random.Random(0).choice(held_out_prose()).text
    assert lm.order_gain([text])[0][0] == shipped.order_gain([text])[0][0]


def test_words_the_reference_never_saw_do_not_count_as_disorder() -> None:
    """A changelog's names, versions and addresses are words no reference has seen; pairs with
    them carry no evidence of order, so sprinkling them into real text leaves its score about
    where it was, while its shuffled words still fall below the threshold."""
    docs = held_out_prose()[:30]
    rng = random.Random(0)
    step = JunkScore()

    def sprinkled(text: str) -> str:
        out = []
        for word in text.split():
            out.append(word)
            if rng.random() < 0.2:
                out.append(f"v{rng.randint(0, 99)}.{rng.randint(0, 9)}-{rng.getrandbits(24):06x}")
        return " ".join(out)

    real = step.score_texts([d.text for d in docs])
    noisy = step.score_texts([sprinkled(d.text) for d in docs])
    judged = np.isfinite(real) & np.isfinite(noisy)
    assert judged.sum() >= 20
    assert np.median(np.abs(noisy[judged] - real[judged])) < 0.3
    assert np.mean(noisy[judged] >= step.threshold) >= 0.9
    salad = step.score_texts([shuffled_words(sprinkled(d.text), np.random.default_rng(2)) for d in docs])
    assert np.mean(salad[np.isfinite(salad)] < step.threshold) >= 0.9
