"""`make bench` (scale-out, issue #13): one big file across workers, and Ray's overhead.

1. `split`: one 200 MB uncompressed JSONL file (the bench corpus' real text, decompressed into
   a single file) through the default recipe's filter chain on 1 worker and on 2. Before work
   units could be parts of files, the whole file was one unit and the second worker idled;
   now it is cut into `unit_mb` parts. Timed: the chain's phases (the first pass, the junk
   scorer's plan and its apply pass), wall clock. Floor: 2 workers >= 1.7x faster than 1.
2. `ray`: the default recipe (every step, tokenize included, its BPE trained in the run) on the
   >= 100 MB bench corpus, once on the local executor and once on a Ray instance started on
   this machine with the same 2 CPUs, side by side. Floor: Ray's wall time within 15 % of the
   local executor's. Both outputs are compared shard by shard: they must be identical.

3. `memory`: exact_dedup's plan on synthetic summaries (N documents in 20 units, ids of 36
   characters as real ones run, 20 % exact copies), in a fresh process per memory budget so its
   peak RSS is its own: the driver's and the largest plan task's peak, the partitions, the
   summaries' bytes per document on disk, and from those the figures per billion documents.
   (minhash_dedup's plan is measured the same way by bench.minhash_bench's `clustering`.)

Results: bench/results/scale.json. Runs alone: any other load on the 2 cores skews the ratios.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from bench.corpus import OUT as CORPUS_DIR
from bench.corpus import build
from bench.floors import finish, floor
from bench.pipeline_bench import DEFAULT_CHAIN, recipe, step_rates
from pipeline.recipe import Recipe
from pipeline.run import run
from pipeline.units import list_units

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "data" / "scale"
CHAIN_PHASES = ("stage0", "plan junk_score", "stage1")


def single_file(mb: float) -> Path:
    """The bench corpus decompressed into one JSONL file of at least `mb` MB (built once)."""
    path = WORK / f"single-{mb:g}mb.jsonl"
    if path.exists():
        return path
    parts = build(100)
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    written, lap = 0, 0
    with tmp.open("wb") as out:
        while written < mb * 1e6:
            for p in parts:
                with gzip.open(p) as lines:
                    for line in lines:
                        record = json.loads(line)
                        record["id"] = f"{record['id']}#{lap}"  # a lap past 100 MB keeps ids unique
                        data = (json.dumps(record, ensure_ascii=False) + "\n").encode()
                        out.write(data)
                        written += len(data)
                if written >= mb * 1e6:
                    break
            lap += 1
    tmp.rename(path)
    return path


def chain_seconds(path: Path, workers: int, tokenizer: str | None) -> tuple[float, int, Recipe]:
    r = recipe(WORK / f"chain-{workers}", DEFAULT_CHAIN, workers, tokenizer)
    r = r.model_copy(update={"sources": [r.sources[0].model_copy(update={"path": str(path)})]})
    shutil.rmtree(r.output_dir, ignore_errors=True)
    result = run(r)
    return sum(result.phase_seconds[p] for p in CHAIN_PHASES), len(list_units(r)), r


def bench_split(mb: float) -> dict[str, Any]:
    path = single_file(mb)
    size = path.stat().st_size / 1e6
    one, units, r = chain_seconds(path, 1, None)
    tokenizer = str(Path(r.output_dir) / "tokenizer.json")  # the 2-worker run loads it: no BPE training
    two, _, _ = chain_seconds(path, 2, tokenizer)
    speedup = one / two
    print(
        f"one {size:.0f} MB JSONL file, {units} work units of <= {r.unit_mb:g} MB, default filter chain: "
        f"1 worker {one:.1f} s ({size / one:.2f} MB/s), 2 workers {two:.1f} s ({size / two:.2f} MB/s): "
        f"{speedup:.2f}x  {floor('one file, 2 workers vs 1', speedup, at_least=1.7)}"
    )
    return {"file_mb": size, "units": units, "seconds_1": one, "seconds_2": two, "speedup": speedup}


def bench_ray(workers: int) -> dict[str, Any]:
    import ray

    from tests.corpus_digest import corpus_digest

    data = yaml.safe_load((ROOT / "recipes" / "default.yaml").read_text())
    data["sources"] = [{"name": "bench", "path": str(CORPUS_DIR / "part-*.jsonl.gz"), "format": "jsonl"}]
    mb = json.loads((CORPUS_DIR / "done.json").read_text())["mb"]
    walls, digests = {}, {}
    for executor in ("local", "ray"):
        out = WORK / f"default-{executor}"
        shutil.rmtree(out, ignore_errors=True)
        r = Recipe(
            **data | {"output_dir": str(out), "workers": workers, "executor": executor}, base_dir=str(ROOT)
        )
        if executor == "ray":  # started outside the timing, as a cluster would be
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        t0 = time.perf_counter()
        result = run(r)
        walls[executor] = time.perf_counter() - t0
        if executor == "local":  # per-core speed of every step, for docs/scaling.md
            steps, phases = step_rates(result), result.phase_seconds
        digests[executor] = corpus_digest(out)
        print(f"default recipe, {mb:.0f} MB, {executor} executor, {workers} workers: {walls[executor]:.1f} s")
    ray.shutdown()
    ratio = walls["ray"] / walls["local"]
    same = digests["ray"] == digests["local"]
    print(
        f"Ray / local wall time: {ratio:.3f}  {floor('Ray wall time / local', ratio, at_most=1.15)}; "
        f"outputs identical: {same}  {floor('Ray output equals local (1 = yes)', float(same), at_least=1)}"
    )
    print("default recipe, per step (CPU time of its apply, one core; plans: wall time of the phase):")
    for s in steps:
        rate = f"{s['mchars_s_per_core']:8.2f} M chars/s  {s['docs_s_per_core']:10,.0f} docs/s"
        print(f"  {s['step']:<20} {rate}")
    for phase, sec in phases.items():
        print(f"  {phase:<28} {sec:7.2f} s")
    return {"mb": mb, "seconds": walls, "ratio": ratio, "identical": same, "steps": steps, "phases": phases}


def synthetic_summaries(n_docs: int, n_units: int, out: Path) -> list[tuple[str, Path]]:
    """exact_dedup summaries: random 64-bit hashes, 20 % of them copies of earlier ones."""
    files = [(f"u{u:03d}", out / f"u{u:03d}.parquet") for u in range(n_units)]
    if (out / f"done-{n_docs}.json").exists():
        return files
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, n_docs, dtype=np.uint64)
    copies = np.flatnonzero(rng.random(n_docs) < 0.2)
    hashes[copies] = hashes[rng.integers(0, n_docs, len(copies))]
    per = n_docs // n_units
    for u, (_, path) in enumerate(files):
        rows = range(u * per, (u + 1) * per)
        ids = pa.array([f"web-crawl/{i:08x}-{i * 7919 % 65536:04x}-4a1f-8c2e" for i in rows])
        pq.write_table(pa.table({"hash": pa.array(hashes[u * per : (u + 1) * per]), "id": ids}), path)
    (out / f"done-{n_docs}.json").write_text("{}")
    return files


def dedup_child(n_docs: int, budget_mb: float, workers: int) -> dict[str, Any]:
    """In its own process: exact_dedup's plan over the synthetic summaries at one budget."""
    from bench.minhash_bench import measured_plan
    from pipeline.executor import make_executor
    from pipeline.steps.base import Summaries
    from pipeline.steps.exact_dedup import ExactDedup

    files = synthetic_summaries(n_docs, 20, WORK / "summaries")
    step, pmap = ExactDedup(memory_budget_mb=budget_mb), make_executor("local", workers).map
    stats, measured = measured_plan(
        lambda state: step.plan(Summaries(files), state, pmap), WORK / f"dedup-state-{budget_mb:g}"
    )
    return {**measured, "summary_bytes_per_doc": sum(p.stat().st_size for _, p in files) / n_docs, **stats}


def bench_memory(n_docs: int, workers: int) -> dict[str, Any]:
    synthetic_summaries(n_docs, 20, WORK / "summaries")  # generated outside the measured processes
    res = {}
    for budget in (1024, 64):
        cmd = [sys.executable, "-m", "bench.scale_bench", "--dedup-child", str(budget)]
        cmd += ["--docs", str(n_docs), "--workers", str(workers)]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        r = res[budget] = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"exact_dedup plan, {n_docs:,} synthetic documents, budget {budget} MB: {r['partitions']} "
            f"partitions, {r['seconds']:.1f} s, peak RSS driver {r['rss_main_mb']:.0f} MB, largest task "
            f"{r['rss_largest_worker_mb']:.0f} MB; summaries {r['summary_bytes_per_doc']:.1f} B/document "
            f"on disk ({r['summary_bytes_per_doc']:.0f} GB per billion)"
        )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sections", default="split,ray,memory", help="comma-separated: split, ray, memory")
    ap.add_argument("--docs", type=int, default=4_000_000, help="synthetic documents of `memory`")
    ap.add_argument("--dedup-child", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--mb", type=float, default=200, help="size of the single file of `split`")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if args.dedup_child:
        print(json.dumps(dedup_child(args.docs, args.dedup_child, args.workers)))
        return
    sections = args.sections.split(",")
    res: dict[str, Any] = {}
    if "split" in sections:
        res["split"] = bench_split(args.mb)
    if "ray" in sections:
        build(100)
        res["ray"] = bench_ray(args.workers)
    if "memory" in sections:
        res["memory"] = bench_memory(args.docs, args.workers)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {RESULTS / 'scale.json'}")
    finish()


if __name__ == "__main__":
    main()
