"""The mix step on the shipped sample: shares met within 1 % absolute (or explained when a cap
binds), documents chosen by id alone (across partitions, reruns and kills), copies of a
document never split between train and val, and recipe mistakes named at load time."""

from __future__ import annotations

import copy
import json
import random
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.config import RecipeError
from pipeline.document import COPIES, Document
from pipeline.driver import GlobalResult, run_global
from pipeline.executor.local import LocalExecutor
from pipeline.recipe import load_recipe
from pipeline.report import write_outputs
from pipeline.run import list_units, run
from pipeline.shards import verify_dir
from pipeline.steps.mix import PLAN_FILE, Mix
from tests.conftest import ROOT, load_sample
from tests.crashes import crash_at_each
from tests.test_run import _snapshot

SHARES = {"web-dclm": 0.55, "web-html": 0.15, "wiki": 0.2, "udhr": 0.1}
SOURCES = [
    {"name": "web-dclm", "path": "data/sample/web_dclm_quality_labeled.jsonl.gz"},
    {"name": "web-html", "path": "data/sample/web_html_extracted.jsonl.gz"},
    {"name": "wiki", "path": "data/sample/wiki_wikitext2.jsonl.gz"},
    {"name": "udhr", "path": "data/sample/multilingual_udhr.jsonl.gz"},
]
MIX_RECIPE: dict[str, Any] = {
    "name": "mixtest",
    "workers": 2,
    "batch_size": 100,
    "sources": SOURCES,
    # No budget: the largest the caps allow, so web-dclm is used max_epochs times and the others
    # are subsampled to their shares.
    "steps": [
        {"step": "normalize"},
        {"step": "mix", "max_epochs": 2, "shares": SHARES},
        {"step": "tokenize", "vocab_size": 1024, "val_fraction": 0.05},
    ],
}
COPY_ID = re.compile(r"^(.*)#copy(\d+)$")


def write_recipe(tmp_path: Path, out: Path, **changes: Any) -> Path:
    data = copy.deepcopy(MIX_RECIPE) | {"output_dir": str(out)}
    data["steps"][1].update(changes.pop("mix", {}))
    data.update(changes)
    path = tmp_path / f"recipe-{out.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def build(path: Path) -> dict[str, Any]:
    recipe = load_recipe(path)
    return write_outputs(recipe, run(recipe), list_units(recipe))


def index_rows(out: Path, split: str) -> list[dict[str, Any]]:
    """Every shard index row of a split, shard by shard in order."""
    return [
        {"shard": p.name, **row}
        for p in sorted((out / "shards" / split).glob("*.idx.parquet"))
        for row in pq.read_table(p, columns=["id", "source", "n_tokens"]).to_pylist()
    ]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("mix")
    return tmp / "out", build(write_recipe(tmp, tmp / "out"))


def test_shares_met_within_one_percent(mixed: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = mixed
    plan, outcome = manifest["plans"]["mix"], manifest["mix"]
    assert plan["budget"] == "the largest the max_epochs caps allow, set by web-dclm"
    assert plan["sources"]["web-dclm"]["epochs"] == pytest.approx(2, abs=0.01)
    for source, share in SHARES.items():
        row = outcome["sources"][source]
        assert abs(row["achieved_share"] - share) <= 0.01, (source, row)
        assert row["note"] == ""
        if source != "web-dclm":
            assert plan["sources"][source]["epochs"] < 1 and plan["sources"][source]["removed"] > 0
    # achieved is counted from the shard indexes
    rows = index_rows(out, "train") + index_rows(out, "val")
    web = sum(r["n_tokens"] for r in rows if r["source"] == "web-dclm")
    assert outcome["sources"]["web-dclm"]["achieved_share"] == pytest.approx(
        web / sum(r["n_tokens"] for r in rows), abs=1e-5
    )
    assert "## Mix" in (out / "report.md").read_text()
    funnel = {r["step"]: r for r in manifest["steps"]}
    assert funnel["mix"]["removed"] == {"mix_subsample": sum(p["removed"] for p in plan["sources"].values())}


def test_copies_stay_in_one_split_and_val_keeps_one(mixed: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = mixed
    verify_dir(out / "shards")  # ids are unique across all shards: train and val are disjoint
    train, val = index_rows(out, "train"), index_rows(out, "val")
    copies: dict[str, list[int]] = defaultdict(list)
    for r in train:
        m = COPY_ID.match(r["id"])
        if m:
            copies[m[1]].append(int(m[2]))
    train_ids = {r["id"] for r in train}
    assert copies and all(doc in train_ids for doc in copies)  # a copy's original is in train too
    assert all(sorted(ks) == list(range(2, len(ks) + 2)) for ks in copies.values())
    assert not any(COPY_ID.match(r["id"]) for r in val)  # val keeps the first copy only ...
    dropped = manifest["shards"]["val_copies_dropped"]
    assert dropped > 0  # ... of the repeated documents that fell in it
    # everything the plan asked for was written, but val's extra copies, which are counted
    planned = sum(p["docs_out"] for p in manifest["plans"]["mix"]["sources"].values())
    assert len(train) + len(val) + dropped == planned
    # copies sit a batch apart in a shard, not side by side
    position = {r["id"]: i for i, r in enumerate(train)}
    gaps = sorted(position[f"{doc}#copy2"] - position[doc] for doc in copies)
    assert gaps[0] > 1 and gaps[len(gaps) // 2] > 20


def test_each_mixed_source_has_val_documents(mixed: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = mixed
    val_sources = {r["source"] for r in index_rows(out, "val")}
    for source in SHARES:
        if manifest["plans"]["mix"]["sources"][source]["docs_out"] >= 30:
            assert manifest["mix"]["sources"][source]["val"]["docs"] > 0 and source in val_sources


def test_capped_source_is_explained(tmp_path: Path) -> None:
    """A budget web-dclm cannot fill within max_epochs: it falls short, the others go over."""
    out = tmp_path / "out"
    manifest = build(
        write_recipe(
            tmp_path,
            out,
            sources=[SOURCES[0], SOURCES[3]],
            mix={"shares": {"web-dclm": 0.8, "udhr": 0.2}, "budget_tokens": 1_000_000, "max_epochs": 1.2},
        )
    )
    plan, outcome = manifest["plans"]["mix"]["sources"], manifest["mix"]["sources"]
    assert plan["web-dclm"]["capped"] and plan["web-dclm"]["epochs"] == pytest.approx(1.2, abs=0.01)
    assert outcome["web-dclm"]["difference"] < -0.01
    assert outcome["web-dclm"]["note"].startswith("capped at max_epochs=1.2: ")
    assert outcome["udhr"]["difference"] > 0.01
    assert outcome["udhr"]["note"] == "above target because web-dclm fell short of theirs"
    assert "capped at max_epochs=1.2" in (out / "report.md").read_text()


def test_killed_runs_resume_to_identical_output(tmp_path: Path, mixed: tuple[Path, dict[str, Any]]) -> None:
    """Kill the run at the mix's plan, half way through committing its apply, and while writing
    the copies into shards, then finish it: the same documents, copies, splits and shard bytes
    as the uninterrupted run."""
    clean_out, _ = mixed
    killed_out = tmp_path / "killed"
    path = write_recipe(tmp_path, killed_out, workers=1)  # workers do not change the output
    cmd = [sys.executable, "-m", "pipeline", "run", str(path)]
    crash_at_each(cmd, ["plan/mix", "stage1/unit-partly-committed@2", "sink/unit@3"])
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    a, b = _snapshot(clean_out), _snapshot(killed_out)
    assert b["leftovers"] == [] and a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], f"{key} differs after the kills"
    decision = json.loads((killed_out / "work" / "plan-mix" / PLAN_FILE).read_text())
    assert decision == json.loads((clean_out / "work" / "plan-mix" / PLAN_FILE).read_text())


# ---------------------------------------------------------------------------- the step alone


def real_docs() -> list[Document]:
    web = load_sample("web_dclm_quality_labeled.jsonl.gz", limit=150)
    plays = load_sample("books_tinyshakespeare.jsonl.gz", limit=80)
    return [Document(d.id, "web", d.text) for d in web] + [Document(d.id, "plays", d.text) for d in plays]


def plan_for(step: Mix, units: list[list[Document]], batch: int, root: Path) -> GlobalResult:
    """The step run as the runner runs it, its summaries compacted after every batch as for a
    huge unit."""
    batches = {
        f"u{n}": [docs[i : i + batch] for i in range(0, len(docs), batch)] for n, docs in enumerate(units)
    }
    return run_global(step, batches, root, LocalExecutor(1).map, compact_bytes=0)


def test_plan_depends_on_ids_only_and_apply_follows_it(tmp_path: Path) -> None:
    docs = real_docs()
    params = {"shares": {"web": 0.9, "plays": 0.1}, "max_epochs": 3, "sample_mb": 0.1, "vocab_size": 512}
    copies = [Document(d.id, d.source, d.text) for d in docs]
    result = plan_for(Mix(**params), [copies[:150], copies[150:]], 40, tmp_path / "a")
    by_source = result.stats
    shuffled = random.Random(1).sample(docs, len(docs))
    by_chance = plan_for(Mix(**params), [shuffled[:90], shuffled[90:100], shuffled[100:]], 23, tmp_path / "b")
    assert by_source == by_chance.stats
    assert by_source["estimate"]["sample_bytes"] < sum(len(d.text.encode()) for d in docs) / 2  # compacted
    binding = by_source["budget"].rpartition(" ")[2]
    assert by_source["sources"][binding]["epochs"] == pytest.approx(3, abs=0.01)
    kept = [d for unit in result.kept.values() for d in unit]
    removed = [r for unit in result.removed.values() for r in unit]
    assert {r.reason for r in removed} == {"mix_subsample"}
    for source, p in by_source["sources"].items():
        assert sum(d.meta.get(COPIES, 1) for d in kept if d.source == source) == p["docs_out"]
        assert sum(r.doc.source == source for r in removed) == p["removed"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"shares": {**SHARES, "wikii": 0.2, "wiki": 0}}, "steps.1.shares: unknown source(s) ['wikii']"),
        (
            {"shares": {k: v for k, v in SHARES.items() if k != "udhr"} | {"wiki": 0.3}},
            "no share for source(s) ['udhr']",
        ),
        ({"shares": {**SHARES, "wiki": 0.1}}, "steps.1.shares: must sum to 1"),
        ({"max_epochs": 0}, "steps.1.max_epochs: Input should be greater than 0"),
    ],
)
def test_recipe_mistakes_are_named_at_load(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    with pytest.raises(RecipeError, match=re.escape(expected)):
        load_recipe(write_recipe(tmp_path, tmp_path / "out", mix=change))


def test_one_mix_per_recipe(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, tmp_path / "out")
    data = yaml.safe_load(path.read_text())
    data["steps"].insert(2, data["steps"][1])
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match=re.escape("steps.2.step: only one mix step per recipe")):
        load_recipe(path)
