"""`pipeline plan`: what a run will read, keep, write and need, before anything runs.

Inputs are counted exactly (reading is the cheapest pass). Keep rates come from running the
per-document steps on a sample of each input; global steps (dedup) decide on the whole corpus,
so the plan says so instead of guessing. Disk and memory are estimates, labelled as such.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from pipeline.document import Document, docs_to_table
from pipeline.readers import BadRecord
from pipeline.recipe import Recipe
from pipeline.report import console
from pipeline.run import Pipeline, apply_guarded
from pipeline.steps.base import DocumentStep
from pipeline.steps.tokenize import Tokenize
from pipeline.storage import as_path
from pipeline.units import input_files, list_units, read_unit, unsplittable

CHARS_PER_TOKEN_GUESS = 4.0  # byte-level BPE on English prose; the manifest records the real figure
PYTHON_BYTES_PER_CHAR = 6.0  # str + Arrow buffers + per-step copies of a batch in flight


@dataclass
class PlanReport:
    units: int
    input_bytes: int
    docs: int
    bad: int
    chars: int
    workers: int
    stages: list[dict[str, Any]] = field(default_factory=list)
    disk_bytes: dict[str, int] = field(default_factory=dict)
    memory_bytes: dict[str, int] = field(default_factory=dict)
    unsplittable: list[tuple[str, int, str]] = field(default_factory=list)
    unit_mb: float = 0.0


def estimate(recipe: Recipe, sample_docs: int = 200) -> PlanReport:
    pipe = Pipeline(recipe)
    units = list_units(recipe)
    docs = bad = chars = 0
    max_doc_chars = 0
    sample: list[Document] = []
    for u in units:
        taken = 0
        for item in read_unit(recipe, u):
            if isinstance(item, BadRecord):
                bad += 1
                continue
            docs += 1
            chars += len(item.text)
            max_doc_chars = max(max_doc_chars, len(item.text))
            if taken < sample_docs:
                sample.append(item)
                taken += 1
    report = PlanReport(
        len(units),
        sum(as_path(p).stat().st_size for p in input_files(units)),
        docs,
        bad,
        chars,
        recipe.n_workers,
        unsplittable=unsplittable(recipe),
        unit_mb=recipe.unit_mb,
    )
    sample_chars = sum(len(d.text) for d in sample) or 1
    docs_rate = chars_rate = 1.0
    batch = sample
    for name, step in pipe.steps.items():
        if isinstance(step, DocumentStep):
            before_docs, before_chars = len(batch) or 1, sum(len(d.text) for d in batch) or 1
            copies = [Document(d.id, d.source, d.text, dict(d.meta)) for d in batch]
            batch, _, failed = apply_guarded(step, name, copies, "sample")
            docs_rate *= len(batch) / before_docs
            chars_rate *= sum(len(d.text) for d in batch) / before_chars
            note = f"sampled {before_docs} docs"
            if failed:
                first = failed[0].detail or {}
                note += f"; raised on {len(failed)} ({first.get('error')}): a run quarantines such documents"
        else:
            note = "decided on the whole corpus: upper bound"
        report.stages.append(
            {"step": name, "docs": round(docs * docs_rate), "chars": round(chars * chars_rate), "note": note}
        )
    buf = io.BytesIO()
    pq.write_table(docs_to_table(sample), buf, compression="zstd")
    parquet_ratio = buf.tell() / sample_chars
    final_chars = chars * chars_rate
    tokens = final_chars / CHARS_PER_TOKEN_GUESS
    sink = pipe.sink
    vocab_size = sink.vocab_size if isinstance(sink, Tokenize) else 65536
    sample_bytes = sink.sample_bytes if isinstance(sink, Tokenize) else final_chars
    itemsize = 2 if vocab_size <= 65536 else 4
    n_passes = len(pipe.stages)
    report.disk_bytes = {
        "intermediate parquet (all stages)": round(chars * parquet_ratio * n_passes),
        "shards": round(tokens * itemsize),
        "removed records (excerpts)": round(docs * 400 * (1 - docs_rate)),
    }
    batch_chars = min(recipe.batch_size * (chars / max(docs, 1)), max(max_doc_chars, 1) * recipe.batch_size)
    report.memory_bytes = {
        "per worker (one batch in flight)": round(batch_chars * PYTHON_BYTES_PER_CHAR + 64e6),
        "all workers": round(recipe.n_workers * (batch_chars * PYTHON_BYTES_PER_CHAR + 64e6)),
        "tokenizer training sample": round(min(final_chars, sample_bytes) * 10),
    }
    return report


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000:
            return f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def print_plan(report: PlanReport) -> None:
    from rich.table import Table

    out = console()
    out.print(
        f"inputs: {report.units} units, {_human(report.input_bytes)} on disk, {report.docs:,} documents "
        f"({report.bad:,} bad), {_human(report.chars)} of text (counted); {report.workers} workers"
    )
    for path, size, why in report.unsplittable:
        out.print(
            f"[yellow]one unit:[/] {path} ({_human(size)}, over unit_mb={report.unit_mb:g}) cannot be cut "
            f"into parts ({why}), so one worker reads it while the others wait. To spread it, split "
            f"it into files of about unit_mb (JSONL: `zcat f.jsonl.gz | split -C {report.unit_mb:g}MB -d "
            "--additional-suffix=.jsonl - f-`), store it uncompressed, or as Parquet with several row "
            "groups"
        )
    table = Table(title="estimated survivors per step")
    for col in ("step", "documents", "text", "how"):
        table.add_column(col, justify="left" if col in ("step", "how") else "right")
    for s in report.stages:
        table.add_row(s["step"], f"{s['docs']:,}", _human(s["chars"]), s["note"])
    out.print(table)
    for title, data in (("disk (estimated)", report.disk_bytes), ("memory (estimated)", report.memory_bytes)):
        out.print(title + ": " + "; ".join(f"{k} {_human(v)}" for k, v in data.items()))
