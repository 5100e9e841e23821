"""Inputs on object storage: a recipe whose sources are s3:// globs, read from a real
S3-compatible server (moto, started by the test), builds the corpus the same files give from
local disk, large uncompressed files cut into byte-range units read with ranged GETs."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from pipeline.readers import expand_paths
from pipeline.recipe import load_recipe
from pipeline.report import write_outputs
from pipeline.run import run
from pipeline.units import list_units
from tests.conftest import ROOT
from tests.corpus_digest import corpus_digest
from tests.s3 import s3_server

BUCKET = "grist-test"
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with s3_server(BUCKET) as endpoint:
        yield endpoint


def _inputs(folder: Path) -> Path:
    """Books and wiki as shipped (gzip), and web pages as one uncompressed JSONL file."""
    folder.mkdir(parents=True)
    for name in ("books_tinyshakespeare.jsonl.gz", "wiki_mediawiki_dump_sample.jsonl.gz"):
        shutil.copy(SAMPLE / name, folder / name)
    web = gzip.decompress((SAMPLE / "web_dclm_quality_labeled.jsonl.gz").read_bytes())
    (folder / "web.jsonl").write_bytes(web)
    return folder


def _recipe(tmp: Path, inputs: str, out: str) -> Path:
    path = tmp / f"recipe-{abs(hash(inputs))}.yaml"
    path.write_text(
        json.dumps(
            {
                "output_dir": out,
                "unit_mb": 0.3,  # the web file (about 1.2 MB) becomes parts read by byte range
                "sources": [
                    {"name": "books", "path": f"{inputs}/*.jsonl.gz", "format": "jsonl"},
                    {"name": "web", "path": f"{inputs}/web.jsonl", "format": "jsonl"},
                ],
                "steps": [
                    {"step": "normalize"},
                    {"step": "gopher_quality"},
                    {"step": "exact_dedup"},
                    {"step": "tokenize", "vocab_size": 512},
                ],
            }
        )
    )
    return path


def test_sources_on_s3_give_the_corpus_local_files_give(s3: str, tmp_path: Path) -> None:
    local = _inputs(tmp_path / "in")
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.put(f"{local}/", f"{BUCKET}/in/", recursive=True)
    remote = f"s3://{BUCKET}/in"
    assert [p.name for p in expand_paths(f"{remote}/*.jsonl.gz", "jsonl")] == sorted(
        p.name for p in local.glob("*.jsonl.gz")
    )
    from_s3 = load_recipe(_recipe(tmp_path, remote, str(tmp_path / "from-s3")))
    from_disk = load_recipe(_recipe(tmp_path, str(local), str(tmp_path / "from-disk")))
    units = list_units(from_s3)
    assert [u.id for u in units] == [u.id for u in list_units(from_disk)]
    assert sum(u.span is not None for u in units) >= 3  # the web file, cut into byte ranges
    assert units[0].path.startswith("s3://")
    a, b = run(from_s3), run(from_disk)
    assert corpus_digest(a.out) == corpus_digest(b.out)
    assert sum(r["docs_out"] for r in a.stage_results[-1]) > 0
    manifest = write_outputs(from_s3, a, units)  # remote inputs named by size and ETag, not re-read
    web = next(i for i in manifest["inputs"] if i["path"] == f"{remote}/web.jsonl")
    assert web["bytes"] == (local / "web.jsonl").stat().st_size and web["etag"]


def _run_cli(recipe: Path, *overrides: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GRIST_CRASH"} | (
        {"GRIST_CRASH": crash} if crash else {}
    )
    cmd = [sys.executable, "-m", "pipeline", "run", str(recipe), "workers=1", *overrides]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)


def test_output_on_s3_is_published_by_phase_and_resumes_from_the_store(s3: str, tmp_path: Path) -> None:
    local = _inputs(tmp_path / "in")
    recipe = _recipe(tmp_path, str(local), str(tmp_path / "reference"))
    reference = run(load_recipe(recipe))
    url = f"s3://{BUCKET}/out"
    fs = fsspec.filesystem("s3", skip_instance_cache=True)

    # Killed after its first unit of stage 1: stage 0 and the exact-dedup plan were published.
    to_store = [f"output_dir={url}", f"staging_dir={tmp_path / 'staging-a'}"]
    killed = _run_cli(recipe, *to_store, crash="stage1/unit")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    published = {p[len(f"{BUCKET}/out/") :] for p in fs.find(f"{BUCKET}/out")}
    assert "work/stage0/books-00000.done.json" in published
    assert "work/plan-exact_dedup/done.json" in published
    assert not any(p.startswith("work/stage1/") and p.endswith(".done.json") for p in published)

    # Another machine (an empty staging directory) resumes from the store: stage 0 is not run
    # again (a crash point in it is never reached) and the corpus equals an uninterrupted run's.
    resumed = _run_cli(
        recipe, f"output_dir={url}", f"staging_dir={tmp_path / 'staging-b'}", crash="stage0/unit"
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    fetched = tmp_path / "fetched"
    fs.get(f"{BUCKET}/out/", f"{fetched}/", recursive=True)
    assert corpus_digest(fetched) == corpus_digest(reference.out)
    assert {"manifest.json", "report.md", "funnel.png", ".grist-output"} <= {
        p.name for p in fetched.iterdir()
    }
    assert not [p for p in fs.find(f"{BUCKET}/out") if "/.tmp-" in p or p.endswith(".lock")]

    # --restart from a third, empty staging directory deletes what the store held first.
    fs.pipe(f"{BUCKET}/out/work/stage9/old.done.json", b"{}")
    restarted = _run_cli(recipe, f"output_dir={url}", f"staging_dir={tmp_path / 'staging-c'}", "--restart")
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    again = tmp_path / "again"
    fs.get(f"{BUCKET}/out/", f"{again}/", recursive=True)
    assert corpus_digest(again) == corpus_digest(reference.out)
    assert not fs.exists(f"{BUCKET}/out/work/stage9/old.done.json")


def test_file_urls_are_local_paths(tmp_path: Path) -> None:
    local = _inputs(tmp_path / "in")
    assert expand_paths(f"file://{local}/*.jsonl.gz", "jsonl") == sorted(local.glob("*.jsonl.gz"))
    a = run(load_recipe(_recipe(tmp_path, f"file://{local}", f"file://{tmp_path / 'out-url'}")))
    b = run(load_recipe(_recipe(tmp_path, str(local), str(tmp_path / "out-path"))))
    assert a.out == tmp_path / "out-url" and corpus_digest(a.out) == corpus_digest(b.out)


def test_a_foreign_prefix_is_refused(s3: str, tmp_path: Path) -> None:
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.pipe(f"{BUCKET}/theirs/data.csv", b"a,b\n")
    recipe = _recipe(tmp_path, str(_inputs(tmp_path / "in")), f"s3://{BUCKET}/theirs")
    done = _run_cli(recipe, f"staging_dir={tmp_path / 'staging'}", "--restart")
    assert done.returncode == 1 and "was not written by grist" in done.stderr
    assert fs.cat(f"{BUCKET}/theirs/data.csv") == b"a,b\n"
