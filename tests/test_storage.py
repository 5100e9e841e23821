"""Inputs on object storage: a recipe whose sources are s3:// globs, read from a real
S3-compatible server (moto, started by the test), builds the corpus the same files give from
local disk, large uncompressed files cut into byte-range units read with ranged GETs."""

from __future__ import annotations

import gzip
import json
import shutil
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
