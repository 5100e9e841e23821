"""Quality classifier and the `quality_score` step on the real sample: training from a recipe,
its card and held-out metrics, the keep rules through the real runner, and ROC-AUC itself."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.__main__ import main
from pipeline.config import RecipeError
from pipeline.document import table_to_docs
from pipeline.quality import (
    DEFAULT_MODEL,
    QualityModel,
    balanced_split,
    load_quality_recipe,
    roc_auc,
)
from pipeline.recipe import load_recipe
from pipeline.report import write_outputs
from pipeline.run import list_units, run, stage_dir
from pipeline.steps.quality_score import QualityScore
from tests.conftest import load_sample

POSITIVE = "wiki_wikitext2.jsonl.gz"
NEGATIVES = ("web_dolma_cc.jsonl.gz", "web_html_extracted.jsonl.gz")


def write_quality_recipe(tmp_path: Path, out: Path, **changes: object) -> Path:
    data = {
        "name": "test-quality",
        "output_dir": str(out),
        "seed": 3,
        "positive": [{"name": "wiki", "path": f"data/sample/{POSITIVE}"}],
        "negative": [{"name": f"web{i}", "path": f"data/sample/{n}"} for i, n in enumerate(NEGATIVES)],
        "classifier": {"epoch": 20},
        **changes,
    }
    path = tmp_path / f"quality-{out.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_roc_auc_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.random(40) < 0.4
        scores = rng.integers(0, 6, 40) / 5  # many ties
        pos, neg = scores[labels], scores[~labels]
        brute = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)])
        assert roc_auc(labels, scores) == pytest.approx(brute)
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.3, 0.8, 0.9]) == 0.0


def test_train_quality_writes_model_and_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "q"
    assert main(["train-quality", str(write_quality_recipe(tmp_path, out))]) == 0
    printed = capsys.readouterr().out
    assert "precision" in printed and "recall" in printed and "F1" in printed and "ROC-AUC" in printed

    card = json.loads((out / "card.json").read_text())
    n_neg = sum(len(load_sample(n)) for n in NEGATIVES)
    assert card["counts"]["negative_read"] == n_neg  # the smaller class, kept whole
    assert card["counts"]["positive_read"] == len(load_sample(POSITIVE))
    assert card["counts"]["per_class"] == n_neg
    assert card["counts"]["held_out_per_class"] == round(0.2 * n_neg)
    assert {s["name"]: s["documents"] for s in card["sources"]} == {"wiki": 122, "web0": 30, "web1": 62}
    assert card["settings"]["word_ngrams"] == 2 and card["settings"]["epoch"] == 20
    assert card["model"]["sha256"] == hashlib.sha256((out / "model.bin").read_bytes()).hexdigest()
    assert "| negative | web1 |" in (out / "card.md").read_text()

    # Score the held-out documents independently: positives must rank above negatives.
    split = balanced_split(122, n_neg, 0.2, seed=3)
    pos = [load_sample(POSITIVE)[i].text for i in split["positive"][1]]
    negs = [d.text for n in NEGATIVES for d in load_sample(n)]
    neg = [negs[i] for i in split["negative"][1]]
    scores = QualityModel.load(out / "model.bin").scores(pos + neg)
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    assert roc_auc(labels, scores) == pytest.approx(card["held_out"]["roc_auc"], abs=1e-4)
    assert card["held_out"]["roc_auc"] > 0.8
    assert np.median(scores[: len(pos)]) > np.median(scores[len(pos) :])


def test_training_is_reproducible_in_one_process(tmp_path: Path) -> None:
    """fastText leaves most of its input matrix uninitialised (see `zeroed_allocations`):
    without the fix, a second training after the heap held other data gives another model."""
    digests = []
    for k in range(3):
        junk = [bytearray(b"\x5a" * size) for size in (8 << 20, 2 << 20, 700_000, 300_000)]
        del junk
        out = tmp_path / f"q{k}"
        assert main(["train-quality", str(write_quality_recipe(tmp_path, out)), "classifier.epoch=5"]) == 0
        digests.append(hashlib.sha256((out / "model.bin").read_bytes()).hexdigest())
    assert len(set(digests)) == 1


def test_bad_recipe_names_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_quality_recipe(tmp_path, tmp_path / "q", classifier={"epoch": "many"})
    with pytest.raises(RecipeError, match=rf"{path}:\d+: classifier\.epoch: .*valid integer"):
        load_quality_recipe(path)
    assert main(["train-quality", str(path)]) == 2
    assert re.search(rf"{path}:\d+: classifier.epoch", capsys.readouterr().err)
    with pytest.raises(RecipeError, match=rf"{path}:\d+: negatives: unknown key"):
        load_quality_recipe(write_quality_recipe(tmp_path, tmp_path / "q", negatives=[]))
    missing = write_quality_recipe(tmp_path, tmp_path / "q", positive=[{"name": "x", "path": "nope/*.jsonl"}])
    with pytest.raises(RecipeError, match=rf"{missing}:\d+: positive\.0\.path: no input matches"):
        load_quality_recipe(missing)


def test_shipped_model_is_small_and_carded() -> None:
    card = json.loads(DEFAULT_MODEL.with_name("card.json").read_text())
    assert DEFAULT_MODEL.stat().st_size < 3 << 20
    assert card["model"]["sha256"] == hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()
    assert card["recipe"] == "recipes/quality.yaml"
    assert all("dclm" not in s["path"] for s in card["sources"])


# ---------------------------------------------------------------------------- the step, run for real


def run_step(
    tmp_path: Path, name: str, **params: object
) -> tuple[Path, dict, dict[str, dict], dict[str, dict]]:
    """Runs web pages through `quality_score` alone; returns the output dir, the manifest, and
    {id: meta} of kept documents and {id: removal detail} of removed ones."""
    out = tmp_path / name
    recipe = {
        "name": name,
        "output_dir": str(out),
        "workers": 2,
        "batch_size": 100,
        "sources": [{"name": "web", "path": "data/sample/web_dclm_quality_labeled.jsonl.gz"}],
        "steps": [{"step": "quality_score", **params}, {"step": "tokenize", "vocab_size": 300}],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    loaded = load_recipe(path)
    result = run(loaded)
    manifest = write_outputs(loaded, result, list_units(loaded))
    kept = {
        d.id: d.meta
        for p in sorted(stage_dir(out, 1).glob("*-?????.parquet"))
        for d in table_to_docs(pq.read_table(p))
    }
    removed = {}
    for p in sorted((out / "removed" / "quality_score").glob("*.parquet")):
        t = pq.read_table(p).to_pydict()
        removed |= {i: json.loads(d) for i, d in zip(t["id"], t["detail"], strict=True)}
    return out, manifest, kept, removed


def test_threshold_keeps_scores_above_it(tmp_path: Path) -> None:
    out, manifest, kept, removed = run_step(tmp_path, "threshold", keep="threshold", threshold=0.5)
    assert len(kept) + len(removed) == 499
    assert kept and removed
    assert all(m["quality_score"] >= 0.5 for m in kept.values())
    assert all(d["quality_score"] < 0.5 for d in removed.values())
    report = (out / "report.md").read_text()
    assert "## Quality scores (quality_score)" in report and "keep score >= 0.5" in report
    assert (out / "quality_score_scores.png").stat().st_size > 5_000


def test_top_fraction_keeps_the_best_half(tmp_path: Path) -> None:
    _, manifest, kept, removed = run_step(tmp_path, "top", keep="top_fraction", fraction=0.5)
    scores = {
        **{i: m["quality_score"] for i, m in kept.items()},
        **{i: d["quality_score"] for i, d in removed.items()},
    }
    assert len(scores) == 499
    cut = min(kept[i]["quality_score"] for i in kept)
    assert 250 <= len(kept) <= 250 + sum(s == cut for s in scores.values()) - 1  # ties at the cut all stay
    assert max(d["quality_score"] for d in removed.values()) < cut
    plan = manifest["plans"]["quality_score"]
    assert (plan["kept"], plan["removed"], plan["cut"]) == (len(kept), len(removed), cut)


def test_pareto_is_seeded_per_document(tmp_path: Path) -> None:
    _, _, kept_a, removed_a = run_step(tmp_path, "pareto-a", keep="pareto", seed=1)
    _, _, kept_b, _ = run_step(tmp_path, "pareto-b", keep="pareto", seed=1)
    _, _, kept_c, _ = run_step(tmp_path, "pareto-c", keep="pareto", seed=2)
    assert kept_a and removed_a
    assert set(kept_a) == set(kept_b)  # the same documents on a rerun
    assert set(kept_a) != set(kept_c)  # and another draw with another seed


def test_pareto_rule_is_gpt3s() -> None:
    """Keep when np.random.pareto(alpha) > 1 - score: a score of 1 always stays, a score of 0
    stays with probability 2 ** -alpha."""
    step = QualityScore(keep="pareto", alpha=2.0)
    ids = [f"doc{i}" for i in range(4000)]
    draws = [step._pareto_draw(i) for i in ids]
    for score, expected in ((1.0, 1.0), (0.0, 2**-2.0), (0.5, 1.5**-2.0)):
        kept = step._kept(pa.table({"score": [score] * len(ids), "draw": draws}), None)
        assert kept.mean() == pytest.approx(expected, abs=0.03)


def test_none_annotates_only(tmp_path: Path) -> None:
    _, _, kept, removed = run_step(tmp_path, "none")
    assert not removed and len(kept) == 499
    scores = [m["quality_score"] for m in kept.values()]
    assert all(0 <= s <= 1 for s in scores) and len(set(scores)) > 400


def test_bad_keep_rule_is_a_recipe_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "output_dir": str(tmp_path / "o"),
                "sources": [{"name": "web", "path": "data/sample/web_dolma_cc.jsonl.gz"}],
                "steps": [{"step": "quality_score", "keep": "best"}],
            }
        )
    )
    with pytest.raises(RecipeError, match=rf"{path}:\d+: steps\.0\.keep"):
        load_recipe(path)
