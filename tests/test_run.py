"""End-to-end runs on the shipped sample: every document accounted for, outputs verified,
and a run killed with SIGKILL again and again ends with exactly an uninterrupted run's output."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.recipe import load_recipe
from pipeline.report import write_outputs
from pipeline.run import RunError, list_units, run
from pipeline.shards import verify_dir
from tests.conftest import ROOT
from tests.crashes import crash_at_each

SMALL_RECIPE = {
    "name": "test",
    "workers": 2,
    "batch_size": 200,
    "sources": [
        {"name": "web-dclm", "path": "data/sample/web_dclm_quality_labeled.jsonl.gz", "format": "jsonl"},
        {"name": "web-html", "path": "data/sample/web_html_extracted.jsonl.gz", "format": "jsonl"},
        {"name": "books", "path": "data/sample/books_*.jsonl.gz", "format": "jsonl"},
        {"name": "wiki", "path": "data/sample/wiki_mediawiki_dump_sample.jsonl.gz", "format": "jsonl"},
        {"name": "udhr", "path": "data/sample/multilingual_udhr.jsonl.gz", "format": "jsonl"},
    ],
    "steps": [
        {"step": "normalize"},
        {"step": "language"},
        {"step": "gopher_repetition"},
        {"step": "gopher_quality"},
        {"step": "c4"},
        {"step": "fineweb"},
        {"step": "exact_dedup"},
        {"step": "tokenize", "vocab_size": 1024, "val_fraction": 0.05},
    ],
}


def write_recipe(tmp_path: Path, out: Path, **changes: object) -> Path:
    data = {**SMALL_RECIPE, "output_dir": str(out), **changes}
    path = tmp_path / f"recipe-{out.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def input_ids(recipe_path: Path) -> list[tuple[str, str]]:
    recipe = load_recipe(recipe_path)
    ids = []
    for src in recipe.sources:
        for p in sorted(ROOT.glob(src.path)):
            with gzip.open(p, "rt", encoding="utf-8") as f:
                ids += [(src.name, json.loads(line)["id"]) for line in f]
    return ids


def output_ids(out: Path) -> tuple[list[str], list[str]]:
    kept = []
    for split in ("train", "val"):
        for idx in sorted((out / "shards" / split).glob("*.idx.parquet")):
            kept += pq.read_table(idx, columns=["id"])["id"].to_pylist()
    removed = []
    for p in sorted((out / "removed").glob("*/*.parquet")):
        removed += pq.read_table(p, columns=["id"])["id"].to_pylist()
    return kept, removed


def test_run_accounts_for_every_document(tmp_path: Path) -> None:
    out = tmp_path / "out"
    path = write_recipe(tmp_path, out)
    recipe = load_recipe(path)
    result = run(recipe)
    manifest = write_outputs(recipe, result, list_units(recipe))
    kept, removed = output_ids(out)
    inputs = [i for _, i in input_ids(path)]
    # every input document is either in a shard or in removed/, exactly once
    assert sorted(kept + removed) == sorted(inputs)
    assert len(set(kept)) == len(kept)
    rows = {r["step"]: r for r in manifest["steps"]}
    assert rows["read"]["docs_out"] == len(inputs)
    assert rows["language"]["removed"].get("lang_fr", 0) > 0
    assert rows["exact_dedup"]["docs_out"] == len(kept)
    report = verify_dir(out / "shards")
    assert report.totals.docs == len(kept)  # verify counts exactly the documents the index lists
    per_source = manifest["sources"]  # every source's documents: kept, or removed by a named step
    assert sum(src["read"] for src in per_source.values()) == len(inputs)
    assert all(src["read"] - src["kept"] == sum(src["removed"].values()) for src in per_source.values())
    assert per_source["books"]["kept"] > 0 and "| books |" in (out / "report.md").read_text()
    table = [line.split(" | ") for line in (out / "report.md").read_text().splitlines()]
    report_rows = {r[0].lstrip("| "): r for r in table if len(r) == 6 and r[1][:1].isdigit()}
    for step, row in rows.items():  # the report, the manifest and removed/ tell the same story
        docs_in, docs_out, removed_count = (int(x.replace(",", "")) for x in report_rows[step][1:4])
        assert (docs_in, docs_out) == (row["docs_in"], row["docs_out"])
        assert removed_count == docs_in - docs_out == sum(row["removed"].values())
        if step != "read":
            records = [pq.read_table(p) for p in (out / "removed" / step).glob("*.parquet")]
            assert sum(t.num_rows for t in records) == removed_count, step
    assert (out / "funnel.png").stat().st_size > 10_000
    assert (out / "tokenizer.json").exists()


def _snapshot(out: Path) -> dict[str, object]:
    """Everything a run produces that must not depend on interruptions."""
    snap: dict[str, object] = {}
    for p in sorted((out / "shards").rglob("*")):
        if p.is_file() and p.suffix != ".json":
            snap[str(p.relative_to(out))] = p.read_bytes()
    snap["tokenizer"] = (out / "tokenizer.json").read_bytes()
    for p in sorted((out / "removed").rglob("*.parquet")):
        snap[str(p.relative_to(out))] = sorted(tuple(r.values()) for r in pq.read_table(p).to_pylist())
    snap["leftovers"] = [p.name for p in out.rglob(".tmp-*")]
    return snap


# Every stage of a recipe holding every kind of step, killed after committed units, half way
# through a unit's commit, inside each corpus-wide step's plan, while writing shards and during
# finalize; then finished. Each point must be reached (the run resumes from the previous kill).
FULL_STEPS = [
    {"step": "normalize"},
    {"step": "encoding"},
    *SMALL_RECIPE["steps"][1:-2],
    {"step": "code_quality"},
    {"step": "junk_score"},
    {"step": "exact_dedup"},
    {"step": "minhash_dedup"},
    {"step": "decontaminate"},
    {"step": "quality_score"},
    {"step": "mix", "shares": {"web-dclm": 0.4, "web-html": 0.1, "books": 0.4, "wiki": 0.1, "udhr": 0}},
    SMALL_RECIPE["steps"][-1],
]
CRASH_POINTS = [
    "stage0/unit@2",
    "stage0/unit-partly-committed",
    "plan/junk_score",
    "stage1/unit",
    "plan/exact_dedup",
    "stage2/unit-partly-committed@2",
    "plan/minhash_dedup",
    "stage3/unit@3",
    "plan/decontaminate",
    "plan/quality_score",
    "plan/mix",
    "stage6/unit",
    "plan/tokenize",
    "sink/unit@2",
    "finalize",
]


def test_killed_runs_resume_to_identical_output(tmp_path: Path) -> None:
    clean_out, killed_out = tmp_path / "clean", tmp_path / "killed"
    clean = write_recipe(tmp_path, clean_out, steps=FULL_STEPS)
    killed = write_recipe(tmp_path, killed_out, steps=FULL_STEPS)
    cmd = [sys.executable, "-m", "pipeline", "run"]
    subprocess.run([*cmd, str(clean)], cwd=ROOT, check=True, capture_output=True)
    crash_at_each([*cmd, str(killed)], CRASH_POINTS)
    resumed = subprocess.run([*cmd, str(killed)], cwd=ROOT, check=True, capture_output=True, text=True)
    assert f"resuming {killed_out}: stage 0 " in resumed.stdout  # says from where
    a, b = _snapshot(clean_out), _snapshot(killed_out)
    assert b["leftovers"] == []
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], f"{key} differs after the kills"


@pytest.mark.parametrize("change", ["steps.1.threshold=0.9"])
def test_changed_recipe_refuses_to_resume(tmp_path: Path, change: str) -> None:
    out = tmp_path / "out"
    path = write_recipe(
        tmp_path,
        out,
        sources=SMALL_RECIPE["sources"][:1],
        steps=[{"step": "normalize"}, {"step": "language"}],
    )
    base = [sys.executable, "-m", "pipeline", "run", str(path), "workers=1"]
    subprocess.run(base, cwd=ROOT, check=True, capture_output=True)
    proc = subprocess.run([*base, change], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "different recipe" in proc.stderr
    proc = subprocess.run([*base, change, "--restart"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_run_never_touches_files_grist_did_not_write(tmp_path: Path) -> None:
    small = {"sources": SMALL_RECIPE["sources"][3:4], "steps": [{"step": "normalize"}], "workers": 1}
    foreign = tmp_path / "repo"
    foreign.mkdir()
    (foreign / "README.md").write_text("mine")
    with pytest.raises(
        RunError, match=r"repo is not empty and was not written by grist \(it holds README.md\)"
    ):
        run(load_recipe(write_recipe(tmp_path, foreign, **small)), restart=True)
    assert [p.name for p in foreign.iterdir()] == ["README.md"]

    out = tmp_path / "out"
    recipe = load_recipe(write_recipe(tmp_path, out, **small))
    write_outputs(recipe, run(recipe), list_units(recipe))
    (out / "notes.txt").write_text("the user's, written after the run")
    (out / "shards" / "train" / "stray.bin").write_bytes(b"grist's folder: restart may delete it")
    run(recipe)  # resuming a finished run is allowed, the user's file stays
    written = {p.name for p in out.iterdir()}
    assert {"notes.txt", "report.md", "funnel.png", "shards", "work", ".grist-output"} <= written
    restarted = run(recipe, restart=True)
    after = {".grist-output", ".lock", "run.json", "work", "shards", "tokenizer.json", "notes.txt"}
    assert {p.name for p in out.iterdir()} == after  # no report yet: write_outputs writes it
    assert not (out / "shards" / "train" / "stray.bin").exists() and (out / "notes.txt").exists()
    assert restarted.sink_stats["shards"] >= 1


def test_duplicate_ids_in_two_files_stop_the_run_after_reading(tmp_path: Path) -> None:
    with gzip.open(ROOT / "data" / "sample" / "web_dolma_cc.jsonl.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("\n".join(lines[:20]) + "\n")
    reused = lines[20:30] + lines[7:8]  # its last line repeats a.jsonl's line 8
    (tmp_path / "in" / "b.jsonl").write_text("\n".join(reused) + "\n")
    source = {"name": "web", "path": str(tmp_path / "in" / "*.jsonl"), "format": "jsonl"}
    out = tmp_path / "out"
    recipe = load_recipe(write_recipe(tmp_path, out, sources=[source], steps=[{"step": "exact_dedup"}]))
    dup = json.loads(lines[7])["id"]
    expected = f"document id {dup!r} is not unique: {tmp_path / 'in' / 'a.jsonl'} line 8 and "
    with pytest.raises(RunError, match=re.escape(expected + f"{tmp_path / 'in' / 'b.jsonl'} line 11")):
        run(recipe)
    assert not (out / "work" / "plan-exact_dedup").exists()  # stopped before any corpus-wide step
    (tmp_path / "in" / "b.jsonl").write_text("\n".join(lines[20:30]) + "\n")  # the user fixes the input
    result = run(recipe)  # the rerun reads both files again
    assert sum(r["read"]["docs"] for r in result.stage_results[0]) == 30


PLUGIN = """
from pipeline.document import Document


def breaks_on_the_word_gutenberg(doc: Document) -> bool:
    if "Gutenberg" in doc.text:
        raise ValueError("cannot handle Gutenberg")
    return True
"""


def test_a_step_that_raises_quarantines_the_document_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "fragile_filters.py").write_text(PLUGIN)
    books = {"name": "books", "path": "data/sample/books_gutenberg.jsonl.gz", "format": "jsonl"}
    steps = [{"step": "normalize"}, {"step": "fragile_filters:breaks_on_the_word_gutenberg"}]
    out = tmp_path / "out"
    path = write_recipe(tmp_path, out, sources=[books], steps=steps, workers=1, batch_size=50)
    with gzip.open(ROOT / books["path"], "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    raising = sum("Gutenberg" in t for t in texts)
    assert 0 < raising < len(texts)
    with pytest.raises(RunError, match="breaks_on_the_word_gutenberg"):  # over the 5 % budget
        run(load_recipe(path))
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "plan", str(path), "error_budget.max_fraction=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "ValueError" in proc.stdout
    recipe = load_recipe(path, ["error_budget.max_fraction=1", f"output_dir={tmp_path / 'out2'}"])
    result = run(recipe)
    counts = result.stage_results[0][0]["steps"]["breaks_on_the_word_gutenberg"]
    assert counts["removed"] == {"step_error": raising} and counts["docs_out"] == len(texts) - raising
    quarantined = (tmp_path / "out2" / "quarantine" / "books-00000.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in quarantined]
    assert len(records) == raising and {r["reason"] for r in records} == {"step_error"}
    assert all(
        "'breaks_on_the_word_gutenberg' raised ValueError: cannot handle Gutenberg" in r["detail"]
        for r in records
    )
    assert all(texts[r["line"] - 1].count("Gutenberg") for r in records)  # the line it was read from


def test_a_corpus_emptied_by_a_step_names_the_step_and_its_settings(tmp_path: Path) -> None:
    steps = [{"step": "language"}, {"step": "normalize", "min_chars": 10_000_000}]
    path = write_recipe(tmp_path, tmp_path / "out", sources=SMALL_RECIPE["sources"][:1], steps=steps)
    expected = "the corpus is empty after step 'normalize' (steps.1): it removed all "
    with pytest.raises(RunError, match=re.escape(expected) + r"[\d,]+ documents .*with min_chars=10000000"):
        run(load_recipe(path))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB filesystem (tmpfs), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_disk_full_and_read_only_stop_with_one_line_and_resume(tmp_path: Path, small_disk: Path) -> None:
    steps = [{"step": "normalize"}, {"step": "exact_dedup"}, SMALL_RECIPE["steps"][-1]]
    cmd = [sys.executable, "-m", "pipeline", "run"]
    clean = write_recipe(tmp_path, tmp_path / "clean", steps=steps)
    subprocess.run([*cmd, str(clean)], cwd=ROOT, check=True, capture_output=True)
    out = small_disk / "out"
    path = write_recipe(tmp_path, out, steps=steps)
    proc = subprocess.run([*cmd, str(path)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "No space left on device. Everything committed before it is kept" in proc.stderr
    subprocess.run(["mount", "-o", "remount,size=200m", str(small_disk)], check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    proc = subprocess.run([*cmd, str(path)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "Read-only file system" in proc.stderr
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    subprocess.run([*cmd, str(path)], cwd=ROOT, check=True, capture_output=True)  # resumes
    a, b = _snapshot(tmp_path / "clean"), _snapshot(out)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
