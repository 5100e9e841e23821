"""Work units smaller than files: a large uncompressed JSONL file cut into byte ranges at line
boundaries, a Parquet file into row groups, each part reading exactly its share of the records
with the whole file's line and row numbers; inputs that cannot be cut stay whole and the plan
says so."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.readers import BadRecord
from pipeline.recipe import load_recipe
from pipeline.run import run
from pipeline.units import list_units, read_unit, unsplittable
from tests.conftest import ROOT

SAMPLE = ROOT / "data" / "sample" / "web_dclm_quality_labeled.jsonl.gz"


def _records(unit_reads: list[list[object]]) -> list[tuple[object, ...]]:
    return [
        (r.path, r.line, r.reason) if isinstance(r, BadRecord) else (r.id, r.position, r.text)
        for read in unit_reads
        for r in read
    ]


def _recipe(tmp: Path, path: Path, fmt: str, unit_mb: float, extra: list[str] | None = None):
    recipe = tmp / "recipe.yaml"
    recipe.write_text(
        json.dumps(
            {
                "output_dir": str(tmp / "out"),
                "sources": [{"name": "web", "path": str(path), "format": fmt}],
                "steps": [{"step": "tokenize", "vocab_size": 512}],
            }
        )
    )
    return load_recipe(recipe, [f"unit_mb={unit_mb}", *(extra or [])])


@pytest.fixture
def big_jsonl(tmp_path: Path) -> Path:
    """Real web pages as uncompressed JSONL (ids dropped, so ids derive from line numbers), with
    a blank line, a malformed line and a BOM-less start: what a cut must not disturb."""
    lines = gzip.decompress(SAMPLE.read_bytes()).decode().splitlines()
    out = []
    for i, line in enumerate(lines):
        record = json.loads(line)
        record.pop("id", None)
        out.append(json.dumps(record))
        if i == 40:
            out.append("")
        if i == 90:
            out.append('{"text": "cut off')
    path = tmp_path / "web.jsonl"
    path.write_text("\n".join(out) + "\n")
    return path


def test_jsonl_parts_read_exactly_the_whole_file(tmp_path: Path, big_jsonl: Path) -> None:
    size = big_jsonl.stat().st_size
    whole = _recipe(tmp_path, big_jsonl, "jsonl", unit_mb=size / 1e6 + 1)
    parts = _recipe(tmp_path, big_jsonl, "jsonl", unit_mb=size / 7e6)
    [one] = list_units(whole)
    units = list_units(parts)
    assert one.span is None
    assert len(units) == 7
    spans = [u.span for u in units]
    assert spans[0].start == 0 and spans[-1].end == size
    assert all(a.end == b.start for a, b in zip(spans, spans[1:], strict=False))
    data = big_jsonl.read_bytes()
    assert all(data[s.start - 1 : s.start] == b"\n" for s in spans[1:])  # cut after a newline
    assert [u.id for u in units] == sorted(u.id for u in units)
    expected = _records([list(read_unit(whole, one))])
    got = _records([list(read_unit(parts, u)) for u in units])
    assert got == expected
    assert (str(big_jsonl), 93, "malformed_json") in got  # line numbers are the whole file's
    assert unsplittable(parts) == []


def test_parquet_parts_are_runs_of_row_groups(tmp_path: Path, big_jsonl: Path) -> None:
    rows = [json.loads(line) for line in gzip.decompress(SAMPLE.read_bytes()).decode().splitlines()[:300]]
    path = tmp_path / "web.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": r["text"]} for r in rows]), path, row_group_size=25)
    size = path.stat().st_size
    whole = _recipe(tmp_path, path, "parquet", unit_mb=size / 1e6 + 1)
    parts = _recipe(tmp_path, path, "parquet", unit_mb=size / 4e6)
    [one] = list_units(whole)
    units = list_units(parts)
    assert 3 <= len(units) <= 5
    assert [u.span.first for u in units][0] == 0
    expected = _records([list(read_unit(whole, one))])
    assert _records([list(read_unit(parts, u)) for u in units]) == expected
    assert [p for _, p, _ in expected] == list(range(len(rows)))  # rows numbered across the file

    single = tmp_path / "single.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": r["text"]} for r in rows]), single)
    one_group = _recipe(tmp_path, single, "parquet", unit_mb=single.stat().st_size / 4e6)
    assert len(list_units(one_group)) == 1
    assert [why for _, _, why in unsplittable(one_group)] == ["a single row group"]


def test_compressed_input_stays_one_unit_and_the_plan_says_how_to_fix_it(tmp_path: Path) -> None:
    unit_mb = SAMPLE.stat().st_size / 3e6
    recipe = _recipe(tmp_path, SAMPLE, "jsonl", unit_mb=unit_mb)
    assert len(list_units(recipe)) == 1
    [(path, size, why)] = unsplittable(recipe)
    assert path == str(SAMPLE) and size == SAMPLE.stat().st_size and why.startswith("compressed")
    cmd = [sys.executable, "-m", "pipeline", "plan", str(tmp_path / "recipe.yaml"), f"unit_mb={unit_mb}"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert f"one unit: {SAMPLE}" in said and "cannot be cut into parts (compressed" in said
    assert f"split -C {unit_mb:g}MB" in said


def test_a_run_over_parts_keeps_and_removes_what_the_whole_file_run_does(
    tmp_path: Path, big_jsonl: Path
) -> None:
    size = big_jsonl.stat().st_size
    steps = ["steps=[{step: gopher_quality}, {step: exact_dedup}, {step: tokenize, vocab_size: 512}]"]
    whole = _recipe(tmp_path, big_jsonl, "jsonl", size / 1e6 + 1, [f"output_dir={tmp_path / 'w'}", *steps])
    parts = _recipe(tmp_path, big_jsonl, "jsonl", size / 5e6, [f"output_dir={tmp_path / 'p'}", *steps])
    a, b = run(whole), run(parts)
    assert len(b.sink_results) == 5 and len(a.sink_results) == 1

    def outcome(out: Path) -> tuple[list[tuple[str, str]], list[dict[str, object]]]:
        removed = sorted(
            (row["id"], row["reason"])
            for f in (out / "removed").rglob("*.parquet")
            for row in pq.read_table(f, columns=["id", "reason"]).to_pylist()
        )
        quarantined = [json.loads(line) for f in (out / "quarantine").glob("*.jsonl") for line in f.open()]
        for q in quarantined:
            del q["unit"]  # the part's name: what differs, and all that may
        return removed, sorted(quarantined, key=lambda q: q["line"])

    assert outcome(b.out) == outcome(a.out)
    assert sum(r["docs_out"] for r in b.stage_results[-1]) == sum(r["docs_out"] for r in a.stage_results[-1])
