"""Runs a recipe: splits its steps into stages, runs each stage's work units through an
executor, commits every unit atomically and resumes from what was committed.

Stage layout. Per-document steps are fused into one pass per work unit. A global step cuts
the pipeline: the pass before it also writes the step's per-unit summary, the step plans once
over all summaries, and the pass after it starts with the step's `apply` (the phases are
`pipeline.driver`'s). The sink (the recipe's last step, `tokenize` by default) is the last
global step, followed by one pass that writes its output.

    stage 0: read -> doc steps... -> summarize(G1)     plan(G1)
    stage 1: apply(G1) -> doc steps... -> summarize(sink)   plan(sink)
    sink:    write per unit (shards)                   finalize

Exactly-once. A unit's outputs (documents, removals, quarantine, summary) are written to
temporary names, renamed into place, and only then is the unit's marker written. A unit
without a marker is redone from scratch, overwriting whatever an earlier attempt left, so a
run killed at any moment and started again ends with exactly an uninterrupted run's output.
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from pipeline.atomic import atomic_path, crash_point, read_json, write_json
from pipeline.config import RecipeError
from pipeline.counters import Counters, merge_step_counters, sum_reasons, tally
from pipeline.document import (
    EXCERPT_CHARS,
    Document,
    Removal,
    docs_to_table,
    removals_to_table,
    table_to_docs,
)
from pipeline.driver import UnitSummary, plan_once
from pipeline.executor import Executor, make_executor
from pipeline.readers import BadRecord
from pipeline.recipe import Recipe, build_steps
from pipeline.steps.base import DocumentStep, GlobalStep, Sink, Step, Summaries
from pipeline.storage import as_path, is_url
from pipeline.units import Unit, list_units, read_unit

PUBLISHED_RECORD = ".published.json"  # pipeline.mirror's record, in a staging directory


class RunError(Exception):
    """A run stopped for a reason the user must act on (error budget, changed recipe)."""


@dataclass
class Stage:
    index: int
    apply: str | None = None  # global step whose decision this pass applies first
    doc_steps: list[str] = field(default_factory=list)
    summarize: str | None = None  # global step (or the sink) this pass summarises for


class Pipeline:
    """The recipe's steps built and arranged in stages. Built once per process."""

    def __init__(self, recipe: Recipe) -> None:
        self.steps: dict[str, Step] = dict(build_steps(recipe))
        self.sink_name = next(reversed(self.steps))  # the loader puts the sink last
        self.stages = self._stages()
        self._loaded: set[str] = set()

    @property
    def sink(self) -> Sink:
        sink = self.steps[self.sink_name]
        assert isinstance(sink, Sink)
        return sink

    def _stages(self) -> list[Stage]:
        stages = [Stage(0)]
        for name, step in self.steps.items():
            if isinstance(step, GlobalStep):
                stages[-1].summarize = name
                if not isinstance(step, Sink):
                    stages.append(Stage(len(stages), apply=name))
            elif isinstance(step, DocumentStep):
                stages[-1].doc_steps.append(name)
            else:
                raise TypeError(f"step {name!r} is neither a DocumentStep nor a GlobalStep")
        return stages

    def load_global(self, name: str, out: Path) -> GlobalStep:
        """The step with its plan's decision loaded (once per process)."""
        step = self.steps[name]
        assert isinstance(step, GlobalStep)
        if name not in self._loaded:
            step.load(plan_dir(out, name))
            self._loaded.add(name)
        return step


# ---------------------------------------------------------------------------- layout


def work_dir(out: Path) -> Path:
    return out / "work"


def stage_dir(out: Path, stage: int) -> Path:
    return work_dir(out) / f"stage{stage}"


def plan_dir(out: Path, step: str) -> Path:
    return work_dir(out) / f"plan-{step.replace('#', '_')}"


def removed_path(out: Path, step: str, unit: str) -> Path:
    return out / "removed" / step.replace("#", "_") / f"{unit}.parquet"


def ids_path(out: Path, unit: str) -> Path:
    return stage_dir(out, 0) / f"{unit}.ids.parquet"


def quarantine_path(out: Path, unit: str, stage: int = 0) -> Path:
    """Bad input records and the documents a step failed on, per unit and stage."""
    return out / "quarantine" / (f"{unit}.jsonl" if stage == 0 else f"{unit}.stage{stage}.jsonl")


# ---------------------------------------------------------------------------- one unit

_PIPELINES: dict[tuple[str, str], Pipeline] = {}


def get_pipeline(recipe: Recipe, run_id: str = "") -> Pipeline:
    """The recipe's pipeline, built once per process and run. A step loads its plan once, so a
    pipeline must not serve two runs: Ray's worker processes outlive a run, and a second run of
    the same recipe (after `--restart`, or into another directory) must load its own plans."""
    key = (recipe.fingerprint(), run_id)
    if key not in _PIPELINES:
        _PIPELINES[key] = Pipeline(recipe)
    return _PIPELINES[key]


def _read_input(
    recipe: Recipe,
    unit: Unit,
    bad: list[BadRecord],
    read_stats: dict[str, int],
    ids: list[tuple[str, int | None]],
) -> Iterator[Document]:
    for item in read_unit(recipe, unit):
        if isinstance(item, BadRecord):
            bad.append(item)
            read_stats["bad"] += 1
        else:
            read_stats["docs"] += 1
            read_stats["chars"] += len(item.text)
            ids.append((item.id, item.position))
            yield item


def _read_stage_output(out: Path, stage: int, unit: str, batch_size: int) -> Iterator[list[Document]]:
    pf = pq.ParquetFile(stage_dir(out, stage) / f"{unit}.parquet")
    for batch in pf.iter_batches(batch_size=batch_size):
        yield table_to_docs(pa.Table.from_batches([batch]))


def _batched(docs: Iterator[Document], size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for d in docs:
        batch.append(d)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


STEP_ERROR = "step_error"  # the reason a document that made a step raise is quarantined with


def apply_guarded(
    step: Step, name: str, docs: list[Document], unit: str
) -> tuple[list[Document], list[Removal], list[Removal]]:
    """(kept, removed, failed): the step applied to a batch, and if it raises, to one document at
    a time, so that one bad document (a plugin's bug, an input no rule foresaw) is set aside
    with the exception instead of stopping the run. A step is retried only on the documents
    of the batch that failed, so it must tolerate seeing a document again (every built-in does:
    their changes are idempotent)."""
    try:
        kept, removed = step.apply(docs, unit)
        return kept, removed, []
    except Exception as e:
        if len(docs) == 1:
            detail = {"error": f"{type(e).__name__}: {e}"[:500]}
            return [], [], [Removal(docs[0], name, STEP_ERROR, detail=detail)]
    kept, removed, failed = [], [], []
    for doc in docs:
        k, r, f = apply_guarded(step, name, [doc], unit)
        kept += k
        removed += r
        failed += f
    return kept, removed, failed


def _quarantine_record(unit: Unit, record: BadRecord | Removal) -> dict[str, Any]:
    if isinstance(record, BadRecord):
        return {
            "unit": unit.id,
            "path": record.path,
            "line": record.line,
            "field": record.field,
            "reason": record.reason,
            "detail": record.detail,
            "excerpt": record.excerpt,
        }
    doc = record.doc
    return {
        "unit": unit.id,
        "path": unit.path,
        "line": doc.position,
        "field": None,
        "reason": record.reason,
        "detail": f"step {record.step!r} raised {(record.detail or {}).get('error')} on document {doc.id!r}",
        "excerpt": doc.text[:EXCERPT_CHARS],
        "id": doc.id,
        "step": record.step,
    }


def run_stage_unit(args: tuple[Recipe, str, int, Unit, str]) -> dict[str, Any]:
    """One pass of one unit through one stage. Idempotent; commits atomically."""
    recipe, out_str, stage_index, unit, run_id = args
    out = Path(out_str)
    pipe = get_pipeline(recipe, run_id)
    stage = pipe.stages[stage_index]
    sdir = stage_dir(out, stage_index)
    marker = sdir / f"{unit.id}.done.json"
    if marker.exists():
        return read_json(marker)
    t0 = time.perf_counter()
    counters = Counters()
    bad: list[BadRecord] = []
    read_stats = {"docs": 0, "bad": 0, "chars": 0}
    removals: dict[str, list[Removal]] = {}
    failures: list[Removal] = []
    read_ids: list[tuple[str, int | None]] = []  # stage 0: (id, position) of every document read
    if stage_index == 0:
        batches = _batched(_read_input(recipe, unit, bad, read_stats, read_ids), recipe.batch_size)
    else:
        batches = _read_stage_output(out, stage_index - 1, unit.id, recipe.batch_size)
    chain: list[tuple[str, Step]] = []
    if stage.apply:
        chain.append((stage.apply, pipe.load_global(stage.apply, out)))
    chain += [(name, pipe.steps[name]) for name in stage.doc_steps]
    summary = UnitSummary(pipe.steps[stage.summarize], unit.id) if stage.summarize else None  # type: ignore[arg-type]
    docs_out = 0
    final = sdir / f"{unit.id}.parquet"
    with atomic_path(final) as tmp:
        writer = pq.ParquetWriter(tmp, docs_to_table([]).schema, compression="zstd")
        try:
            for batch in batches:
                for name, step in chain:
                    n_in, chars_in = len(batch), sum(len(d.text) for d in batch)
                    t_step = time.perf_counter()
                    kept, removed, failed = apply_guarded(step, name, batch, unit.id)
                    seconds = time.perf_counter() - t_step
                    counters.record(name, n_in, chars_in, kept, removed + failed, seconds)
                    if removed:
                        removals.setdefault(name, []).extend(removed)
                    failures += failed
                    batch = kept
                if summary is not None:
                    summary.add(batch)
                if batch:
                    writer.write_table(docs_to_table(batch))
                    docs_out += len(batch)
        finally:
            writer.close()
    crash_point(f"stage{stage_index}/unit-partly-committed")
    for name, recs in removals.items():
        with atomic_path(removed_path(out, name, unit.id)) as tmp:
            pq.write_table(removals_to_table(recs), tmp, compression="zstd")
    if bad or failures:
        path = quarantine_path(out, unit.id, stage_index)
        with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
            for record in [*bad, *failures]:
                f.write(json.dumps(_quarantine_record(unit, record), ensure_ascii=False) + "\n")
    if summary is not None:
        summary.write(sdir / f"{unit.id}.summary.parquet")
    if stage_index == 0:
        ids = pa.table({"id": [i for i, _ in read_ids], "position": [p for _, p in read_ids]})
        with atomic_path(ids_path(out, unit.id)) as tmp:
            pq.write_table(ids, tmp)
    result = {
        "unit": unit.id,
        "stage": stage_index,
        "docs_out": docs_out,
        "steps": counters.data,
        "read": read_stats if stage_index == 0 else None,
        "bad": tally(b.reason for b in bad),
        "failed": tally(r.step for r in failures),
        "seconds": time.perf_counter() - t0,
    }
    write_json(marker, result)
    crash_point(f"stage{stage_index}/unit")
    return result


def run_sink_unit(args: tuple[Recipe, str, int, Unit, str]) -> dict[str, Any]:
    recipe, out_str, last_stage, unit, run_id = args
    out = Path(out_str)
    marker = work_dir(out) / "sink" / f"{unit.id}.done.json"
    if marker.exists():
        return read_json(marker)
    pipe = get_pipeline(recipe, run_id)
    sink = pipe.load_global(pipe.sink_name, out)
    assert isinstance(sink, Sink)
    t0 = time.perf_counter()
    stats = sink.write_unit(_read_stage_output(out, last_stage, unit.id, recipe.batch_size), unit.id, out)
    result = {"unit": unit.id, "stats": stats, "seconds": time.perf_counter() - t0}
    write_json(marker, result)
    crash_point("sink/unit")
    return result


# ---------------------------------------------------------------------------- the run


def _summaries(out: Path, stage: int, units: list[Unit]) -> Summaries:
    paths = [(u.id, stage_dir(out, stage) / f"{u.id}.summary.parquet") for u in units]
    return Summaries([(u, p) for u, p in paths if p.exists()])


def _lock_output(out: Path) -> IO[str]:
    """One run per output directory at a time; the lock dies with the process, even on SIGKILL."""
    out.mkdir(parents=True, exist_ok=True)
    handle = (out / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunError(f"another run is writing to {out}") from None
    return handle


def _remove_stale_temporaries(out: Path) -> int:
    """Temporary files of a killed run: never renamed into place, so never part of the output."""
    stale = list(out.rglob(".tmp-*"))
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


OUTPUT_MARKER = ".grist-output"  # at the root of every directory grist writes a corpus into
GRIST_ENTRIES = (
    "work",
    "shards",
    "removed",
    "quarantine",
    "report.md",
    "manifest.json",
    "funnel.png",
    "tokenizer.json",
    "run.json",
)
_FIGURE_LINK = re.compile(r"\]\(([^()/\\]+\.png)\)")


def _refuse_foreign(out: Path) -> None:
    """A run writes only into an empty directory or one that holds grist's marker, so neither
    a run nor `--restart` ever touches files grist did not write (`output_dir=.` in a repo)."""
    if not out.is_dir() or (out / OUTPUT_MARKER).exists():
        return
    foreign = sorted(p.name for p in out.iterdir() if p.name not in (".lock", PUBLISHED_RECORD))
    if foreign:
        listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RunError(
            f"output_dir {out} is not empty and was not written by grist (it holds {listed}): "
            "give an empty or new directory"
        )


def _discard_previous_run(out: Path) -> None:
    """What `--restart` deletes: grist's own entries, and the figures its report links to."""
    report = out / "report.md"
    figures = _FIGURE_LINK.findall(report.read_text(encoding="utf-8")) if report.is_file() else []
    for name in (*GRIST_ENTRIES, *figures):
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _check_fingerprint(recipe: Recipe, out: Path, restart: bool) -> None:
    run_file = out / "run.json"
    if restart:
        _discard_previous_run(out)
    if run_file.exists():
        previous = read_json(run_file)["fingerprint"]
        if previous != recipe.fingerprint():
            raise RecipeError(
                f"{out} holds a run of a different recipe (fingerprint {previous}, now "
                f"{recipe.fingerprint()}): use another output_dir, or --restart to discard it"
            )
    write_json(out / OUTPUT_MARKER, {"written_by": "grist", "holds": "a corpus run: --restart deletes it"})
    write_json(run_file, {"fingerprint": recipe.fingerprint(), "recipe": recipe.model_dump()})


def _check_not_empty(recipe: Recipe, stage_results: list[list[dict[str, Any]]]) -> None:
    """Stop as soon as no document is left, naming the step that removed the last ones and the
    settings it ran with, instead of failing later where a step finds nothing to work on."""
    results = stage_results[-1]
    if sum(r["docs_out"] for r in results):
        return
    if len(stage_results) == 1 and not sum(r["read"]["docs"] for r in results):
        raise RunError("no document was read from the inputs (see quarantine/ for bad records)")
    steps = merge_step_counters(results)
    name, counts = next((n, c) for n, c in steps.items() if c["docs_in"] and not c["docs_out"])
    index, (_, _, params) = next((i, e) for i, e in enumerate(recipe.entries()) if e[1] == name)
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(counts["removed"].items(), key=lambda kv: -kv[1])[:4])
    settings = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "its defaults"
    raise RunError(
        f"the corpus is empty after step {name!r} (steps.{index}): it removed all {counts['docs_in']:,} "
        f"documents that reached it ({reasons}) with {settings}. Loosen its settings or remove it; "
        "removed/ holds every removed document with its reason"
    )


def _check_unique_ids(recipe: Recipe, out: Path, units: list[Unit]) -> None:
    """Ids must be unique across the corpus: dedup keeps a duplicate by id, the val split hashes
    ids, the shards are indexed by them. Two records with one id stop the run after reading,
    naming both inputs and where in them, before any corpus-wide step; the two units' reads are
    undone so that a rerun reads the corrected inputs."""
    hashes, owner, row = [], [], []
    for k, u in enumerate(units):
        ids = pq.read_table(ids_path(out, u.id), columns=["id"])["id"].to_pylist()
        hashes.append(np.fromiter((xxhash.xxh3_64_intdigest(i.encode()) for i in ids), np.uint64, len(ids)))
        owner.append(np.full(len(ids), k, np.int32))
        row.append(np.arange(len(ids), dtype=np.int64))
    if not hashes:
        return
    h, who, where = np.concatenate(hashes), np.concatenate(owner), np.concatenate(row)
    order = np.argsort(h, kind="stable")
    same = np.flatnonzero(h[order][1:] == h[order][:-1])
    for i in same:
        a, b = order[i], order[i + 1]
        first, second = (_id_at(recipe, out, units[who[j]], int(where[j])) for j in (a, b))
        if first[0] != second[0]:
            continue  # two ids that share a 64-bit hash
        for j in (a, b):
            (stage_dir(out, 0) / f"{units[who[j]].id}.done.json").unlink(missing_ok=True)
        raise RunError(
            f"document id {first[0]!r} is not unique: {first[1]} and {second[1]}. Ids must be unique "
            "across the corpus: fix the input, or point the source's id_field at a unique field"
        )


POSITION_NAMES = {"jsonl": "line", "parquet": "row", "hf": "row"}  # else "record"


def _id_at(recipe: Recipe, out: Path, unit: Unit, row: int) -> tuple[str, str]:
    """(id, `path line N`) of the row-th document a unit read, its place named as its format does."""
    t = pq.read_table(ids_path(out, unit.id)).slice(row, 1).to_pylist()[0]
    if t["position"] is None:
        return t["id"], unit.path
    what = POSITION_NAMES.get(recipe.sources[unit.source].format, "record")
    return t["id"], f"{unit.path} {what} {t['position']}"


def _check_error_budget(recipe: Recipe, out: Path, stage_results: list[list[dict[str, Any]]]) -> None:
    """Bad input records and documents a step failed on, against the records read."""
    read = stage_results[0]
    docs = sum(r["read"]["docs"] for r in read)
    every = [r for results in stage_results for r in results]
    bad = sum(r["read"]["bad"] for r in read) + sum(sum(r["failed"].values()) for r in every)
    if bad and bad > recipe.error_budget.max_fraction * (docs + bad):
        reasons = sum_reasons(read, "bad")
        for step, n in sum_reasons(every, "failed").items():
            reasons[f"{STEP_ERROR} in {step}"] = n
        top = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:5])
        raise RunError(
            f"{bad} of {docs + bad} input records were bad ({top}), over the error budget "
            f"error_budget.max_fraction={recipe.error_budget.max_fraction}; see {out / 'quarantine'}"
        )


@dataclass
class RunResult:
    out: Path
    stage_results: list[list[dict[str, Any]]]
    plan_stats: dict[str, dict[str, Any]]
    sink_results: list[dict[str, Any]]
    sink_stats: dict[str, Any]
    seconds: float
    phase_seconds: dict[str, float]  # wall time of each stage, plan and the shard-writing pass
    # Publishes what was written since (the report, after `write_outputs`) when output_dir is a URL.
    publish: Callable[[], object] = field(default=lambda: None)


def run(recipe: Recipe, *, restart: bool = False, executor: Executor | None = None) -> RunResult:
    """Run the recipe into its output_dir: a local directory, or a URL whose working files are
    staged locally and published after every phase (`pipeline.mirror`)."""
    t0 = time.perf_counter()
    mirror = None
    if recipe.output_dir.startswith("file://"):  # a local directory, named as a URL
        recipe = recipe.model_copy(update={"output_dir": str(as_path(recipe.output_dir))})
    if is_url(recipe.output_dir):
        from pipeline.mirror import Mirror, default_staging

        staging = Path(recipe.staging_dir or default_staging(recipe.output_dir))
        mirror = Mirror(recipe.output_dir, staging)
        recipe = recipe.model_copy(update={"output_dir": str(staging)})
    out = Path(recipe.output_dir)
    _refuse_foreign(out)
    lock = _lock_output(out)
    try:
        if mirror is None:
            return _run_locked(recipe, out, restart, executor, t0, lambda: None)
        mirror.track_remote() if restart else mirror.pull()  # refuses a location grist did not write
        try:
            result = _run_locked(recipe, out, restart, executor, t0, mirror.push)
        finally:
            mirror.push()  # everything committed, also when the run stopped half way
        result.publish = mirror.push
        return result
    finally:
        lock.close()


def _resume_point(out: Path, pipe: Pipeline, units: list[Unit]) -> str | None:
    """Where a run starts again: the units each pass has committed and the plans done; None when
    nothing is committed yet."""
    parts = []
    for stage in pipe.stages:
        done = len(list(stage_dir(out, stage.index).glob("*.done.json")))
        if done:
            parts.append(f"stage {stage.index} {done}/{len(units)} units")
        if stage.summarize and (plan_dir(out, stage.summarize) / "done.json").exists():
            parts.append(f"plan {stage.summarize} done")
    sink = len(list((work_dir(out) / "sink").glob("*.done.json")))
    if sink:
        parts.append(f"{pipe.sink.write_label} {sink}/{len(units)} units")
    return f"resuming {out}: " + ", ".join(parts) if parts else None


def _run_locked(
    recipe: Recipe,
    out: Path,
    restart: bool,
    executor: Executor | None,
    t0: float,
    publish: Callable[[], object],
) -> RunResult:
    _check_fingerprint(recipe, out, restart)
    _remove_stale_temporaries(out)
    executor = executor or make_executor(recipe.executor, recipe.n_workers, recipe.ray_address)
    _PIPELINES.clear()  # a step's loaded plan must never outlive the run that made it
    run_id = uuid.uuid4().hex
    pipe = get_pipeline(recipe, run_id)
    units = list_units(recipe)
    if (point := _resume_point(out, pipe, units)) is not None:
        print(point, flush=True)
    stage_results: list[list[dict[str, Any]]] = []
    plan_stats: dict[str, dict[str, Any]] = {}
    phase_seconds: dict[str, float] = {}
    for stage in pipe.stages:
        t_phase = time.perf_counter()
        tasks = [(recipe, str(out), stage.index, u, run_id) for u in units]
        desc = f"stage {stage.index}: " + " > ".join(
            ([f"apply {stage.apply}"] if stage.apply else ["read"]) + stage.doc_steps
        )
        results = sorted(executor.map(run_stage_unit, tasks, desc), key=lambda r: r["unit"])
        stage_results.append(results)
        _check_error_budget(recipe, out, stage_results)
        _check_not_empty(recipe, stage_results)
        if stage.index == 0:
            _check_unique_ids(recipe, out, units)
        phase_seconds[f"stage{stage.index}"] = time.perf_counter() - t_phase
        publish()
        if stage.summarize:
            t_phase = time.perf_counter()
            step = pipe.steps[stage.summarize]
            assert isinstance(step, GlobalStep)
            summaries = _summaries(out, stage.index, units)
            plan_stats[stage.summarize] = plan_once(
                step, summaries, plan_dir(out, stage.summarize), executor.map
            )
            phase_seconds[f"plan {stage.summarize}"] = time.perf_counter() - t_phase
            publish()
    t_phase = time.perf_counter()
    last = len(pipe.stages) - 1
    sink_tasks = [(recipe, str(out), last, u, run_id) for u in units]
    label = f"{pipe.sink_name}: {pipe.sink.write_label}"
    sink_results = sorted(executor.map(run_sink_unit, sink_tasks, label), key=lambda r: r["unit"])
    final_marker = work_dir(out) / "sink" / "finalized.json"
    if not final_marker.exists():
        pipe.load_global(pipe.sink_name, out)
        write_json(final_marker, pipe.sink.finalize(out) or {})
    sink_stats = read_json(final_marker)
    phase_seconds[pipe.sink.write_label] = time.perf_counter() - t_phase
    _remove_stale_temporaries(out)  # of attempts lost with their worker or node and redone elsewhere
    return RunResult(
        out, stage_results, plan_stats, sink_results, sink_stats, time.perf_counter() - t0, phase_seconds
    )
