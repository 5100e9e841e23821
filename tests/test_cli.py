"""The command line as a user meets it: the default recipe, plan, verify, and bad input."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT, SAMPLE
from tests.corpus_digest import corpus_digest

# The default corpus's content (shards, removed/, quarantine/, tokenizer.json), pinned so that a
# refactor shows it changed nothing. A deliberate change of the output updates it, and says why.
DEFAULT_CORPUS_DIGEST = "3833c1942fd426dd8b40f2f103f88f05e67f54b7512d38d884bda2fe439dc8fc"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True)


def test_default_recipe_builds_and_verifies(tmp_path: Path) -> None:
    out = tmp_path / "default"
    proc = cli("run", "recipes/default.yaml", f"output_dir={out}")
    assert proc.returncode == 0, proc.stderr
    assert "fineweb" in proc.stdout and "train:" in proc.stdout
    for name in ("report.md", "funnel.png", "manifest.json", "tokenizer.json", "shards/index.json"):
        assert (out / name).exists(), name
    report = (out / "report.md").read_text()
    assert "## Near-duplicates (minhash_dedup)" in report and (out / "minhash_dedup_clusters.png").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["plans"]["minhash_dedup"]["duplicates"] > 0  # Project Gutenberg footers at least
    assert manifest["inputs"] and all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    assert manifest["versions"]["tokenizers"]
    assert corpus_digest(out) == DEFAULT_CORPUS_DIGEST
    proc = cli("verify", str(out))
    assert proc.returncode == 0 and "train" in proc.stdout and "OK" in proc.stdout
    assert "val near-duplicates of train: 0 of" in proc.stdout
    assert "val documents with benchmark n-grams: 0 of" in proc.stdout
    shard = sorted((out / "shards" / "train").glob("*.bin"))[0]
    index = shard.with_name(shard.name.replace(".bin", ".idx.parquet"))
    hidden = [p.rename(out / p.name) for p in (shard, index)]  # a whole shard gone
    proc = cli("verify", str(out))
    assert proc.returncode == 1 and f"missing: train/{shard.name}" in proc.stderr
    for moved, back in zip(hidden, (shard, index), strict=True):
        moved.rename(back)
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF
    shard.write_bytes(bytes(data))
    proc = cli("verify", str(out))
    assert proc.returncode == 1 and shard.name in proc.stderr and "checksum" in proc.stderr


def test_plan_counts_inputs_and_estimates_each_step() -> None:
    proc = cli("plan", "recipes/default.yaml")
    assert proc.returncode == 0, proc.stderr
    # the sample has 1,726 records, one with an empty text field
    assert "1,725 documents (1 bad)" in proc.stdout
    for step in ("normalize", "language", "gopher_quality", "fineweb", "exact_dedup", "tokenize"):
        assert step in proc.stdout
    assert "disk (estimated)" in proc.stdout and "memory (estimated)" in proc.stdout


def _corrupt_copy(tmp_path: Path) -> Path:
    """Real records with three bad lines among them: malformed JSON, no text, invalid UTF-8."""
    with gzip.open(SAMPLE / "web_dolma_cc.jsonl.gz", "rb") as f:
        lines = f.read().splitlines()
    lines[3] = lines[3][:40]
    lines[7] = json.dumps({"id": "no-text"}).encode()
    lines[11] = lines[11][:50] + b"\xff\xfe" + lines[11][50:]
    path = tmp_path / "web.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _recipe(tmp_path: Path, inp: Path, budget: float) -> Path:
    recipe = {
        "output_dir": str(tmp_path / f"out-{budget}"),
        "workers": 1,
        "error_budget": {"max_fraction": budget},
        "sources": [{"name": "web", "path": str(inp), "format": "jsonl"}],
        "steps": [{"step": "normalize"}, {"step": "tokenize", "vocab_size": 300}],
    }
    path = tmp_path / f"recipe-{budget}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_bad_input_is_quarantined_with_file_line_and_reason(tmp_path: Path) -> None:
    inp = _corrupt_copy(tmp_path)
    proc = cli("run", str(_recipe(tmp_path, inp, 0.2)))
    assert proc.returncode == 0, proc.stderr
    records = [
        json.loads(line)
        for p in (tmp_path / "out-0.2" / "quarantine").glob("*.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert sorted((r["line"], r["reason"]) for r in records) == [
        (4, "malformed_json"),
        (8, "missing_field"),
        (12, "invalid_utf8"),
    ]
    assert all(r["path"] == str(inp) for r in records)
    manifest = json.loads((tmp_path / "out-0.2" / "manifest.json").read_text())
    read = manifest["steps"][0]
    assert read["docs_in"] == 30 and read["docs_out"] == 27 and sum(read["removed"].values()) == 3


def test_error_budget_stops_the_run(tmp_path: Path) -> None:
    proc = cli("run", str(_recipe(tmp_path, _corrupt_copy(tmp_path), 0.05)))
    assert proc.returncode == 1
    assert "3 of 30 input records were bad" in proc.stderr and "quarantine" in proc.stderr


def test_the_grist_command_routes_to_both_packages_and_is_not_shadowed(tmp_path: Path) -> None:
    """`grist` is a console script beside the venv's python. From a directory holding its own
    train.py (which `python -m train` would run instead of grist's trainer) it still runs grist."""
    grist = Path(sys.executable).parent / "grist"
    assert grist.is_file(), "the grist console script is not installed (pyproject [project.scripts])"
    (tmp_path / "train.py").write_text("print('a user script, not grist')\n")
    listed = subprocess.run([str(grist), "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert listed.returncode == 0 and "corpus" in listed.stdout and "ablate" in listed.stdout
    helped = subprocess.run([str(grist), "train", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert helped.returncode == 0 and "--resume" in helped.stdout
    assert "a user script" not in helped.stdout
    shadowed = subprocess.run(
        [sys.executable, "-m", "train", "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert "a user script, not grist" in shadowed.stdout  # what the console script avoids
    plan = subprocess.run(
        [str(grist), "plan", "recipes/default.yaml"], cwd=ROOT, capture_output=True, text=True
    )
    assert plan.returncode == 0 and "inputs:" in plan.stdout, plan.stderr
    wrong = subprocess.run([str(grist), "bake"], cwd=ROOT, capture_output=True, text=True)
    assert wrong.returncode == 2 and "unknown command 'bake'" in wrong.stderr


def test_options_may_come_before_between_or_after_the_overrides() -> None:
    """argparse alone ends the positionals at the first option: `plan R --sample-docs 5 k=v` and
    `train C --resume=auto k=v` used to refuse the override after the option."""
    plan = cli("plan", "recipes/default.yaml", "--sample-docs", "5", "workers=1")
    assert plan.returncode == 0 and "1 workers" in plan.stdout, plan.stderr
    train = subprocess.run(
        [
            sys.executable,
            "-m",
            "train",
            "recipes/train_default.yaml",
            "--resume=auto",
            "corpus=/no/such/corpus",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert train.returncode == 2 and "/no/such/corpus" in train.stderr  # the override was read
    assert "unrecognized arguments" not in train.stderr
