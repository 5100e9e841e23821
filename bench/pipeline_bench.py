"""`make bench`: grist's pipeline on >= 100 MB of real text, with the raw limits beside it.

Prints docs/s and MB/s per step (CPU time per core, from the run's own counters) and per phase
(wall clock on N workers), end to end, peak RSS, and in the same run: reading the input alone,
and `tokenizers`' plain encode_batch on the same text as the tokenize stage. Writes
bench/results/pipeline.json. Floors (issue #2) are checked and printed, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.corpus import OUT as CORPUS_DIR
from bench.corpus import build
from bench.filter_eval.evaluate import document_steps
from bench.floors import finish, floor
from pipeline.readers import BadRecord, read_source
from pipeline.recipe import Recipe
from pipeline.report import write_outputs
from pipeline.run import run, stage_dir
from pipeline.units import list_units

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FILTERS = ["language", "gopher_quality", "gopher_repetition", "c4", "fineweb"]
# The default recipe's filter chain (issue #11): content-fit rules, the encoding checks and the
# junk scorer, a corpus-wide step whose plan and apply pass are timed with it.
DEFAULT_CHAIN = [name for name, _ in document_steps(ROOT / "recipes" / "default.yaml")[0]]


def recipe(out: Path, steps: list[str], workers: int, tokenizer: str | None = None) -> Recipe:
    """The bench corpus through `steps`, then tokenize (training a BPE unless `tokenizer` names one)."""
    sink = {"step": "tokenize", "vocab_size": 8192, "train_sample_mb": 32, "val_fraction": 0.01}
    return Recipe(
        name="bench",
        output_dir=str(out),
        workers=workers,
        sources=[{"name": "bench", "path": str(CORPUS_DIR / "part-*.jsonl.gz"), "format": "jsonl"}],
        steps=[{"step": s} for s in steps] + [sink | ({"tokenizer": tokenizer} if tokenizer else {})],
        base_dir=str(ROOT),
    )


def peak_rss_mb() -> dict[str, float]:
    """ru_maxrss is in KiB on Linux; children = the largest worker process so far."""
    return {
        "main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "largest_worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def measure_read(paths: list[Path]) -> dict[str, float]:
    t0 = time.perf_counter()
    docs = nbytes = 0
    for p in paths:
        for item in read_source(p, source="bench", format="jsonl"):
            if not isinstance(item, BadRecord):
                docs += 1
                nbytes += len(item.text.encode())
    dt = time.perf_counter() - t0
    return {"docs": docs, "mb": nbytes / 1e6, "seconds": dt, "mb_s_one_core": nbytes / 1e6 / dt}


def step_rates(result: Any) -> list[dict[str, Any]]:
    rows = []
    for stage in result.stage_results:
        merged: dict[str, dict[str, float]] = {}
        for unit in stage:
            for step, c in unit["steps"].items():
                m = merged.setdefault(step, {"docs_in": 0, "chars_in": 0, "seconds": 0.0})
                for k in m:
                    m[k] += c[k]
        for step, m in merged.items():
            s = max(m["seconds"], 1e-9)
            rows.append(
                {
                    "step": step,
                    "docs_s_per_core": m["docs_in"] / s,
                    "mchars_s_per_core": m["chars_in"] / s / 1e6,
                }
            )
    return rows


def final_texts(out: Path, last_stage: int) -> list[str]:
    texts: list[str] = []
    for p in sorted(stage_dir(out, last_stage).glob("*.parquet")):
        if not p.name.endswith(".summary.parquet"):
            texts += pq.read_table(p, columns=["text"])["text"].to_pylist()
    return texts


def measure_hf_encode(tokenizer_json: Path, texts: list[str]) -> dict[str, float]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    nbytes = sum(len(t.encode()) for t in texts)
    t0 = time.perf_counter()
    n_tokens = 0
    for i in range(0, len(texts), 1000):
        n_tokens += sum(len(e.ids) for e in tok.encode_batch(texts[i : i + 1000], add_special_tokens=False))
    dt = time.perf_counter() - t0
    return {"mb": nbytes / 1e6, "tokens": n_tokens, "seconds": dt, "mb_s": nbytes / 1e6 / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--min-mb", type=float, default=100)
    args = ap.parse_args()
    paths = build(args.min_mb)
    work = ROOT / "bench" / "data" / "runs"
    shutil.rmtree(work, ignore_errors=True)
    res: dict[str, Any] = {"workers": args.workers}

    res["read_only"] = read = measure_read(paths)
    mb = read["mb"]
    print(f"input: {read['docs']:,} docs, {mb:.1f} MB of text in {len(paths)} files")
    print(f"read alone (1 core): {read['mb_s_one_core']:.1f} MB/s")

    filt = run(recipe(work / "filters", FILTERS, args.workers))
    s0 = filt.phase_seconds["stage0"]
    res["filters"] = {"seconds": s0, "mb_s": mb / s0, "docs_s": read["docs"] / s0, "steps": step_rates(filt)}
    print(
        f"filters {'+'.join(FILTERS)} incl. read+write, {args.workers} workers: {mb / s0:.2f} MB/s "
        f"({read['docs'] / s0:,.0f} docs/s)   {floor('filters MB/s, 2 workers', mb / s0, at_least=5)}"
    )

    chain = run(recipe(work / "chain", DEFAULT_CHAIN, args.workers))
    chain_s = sum(chain.phase_seconds[p] for p in ("stage0", "plan junk_score", "stage1"))
    res["default_chain"] = {"steps": DEFAULT_CHAIN, "seconds": chain_s, "mb_s": mb / chain_s}
    print(
        f"default recipe's filter chain ({' > '.join(DEFAULT_CHAIN)}) incl. read+write, {args.workers} "
        f"workers: {mb / chain_s:.2f} MB/s, against {mb / s0:.2f} for the chain above   "
        f"{floor('default filter chain MB/s, 2 workers', mb / chain_s, at_least=5)}"
    )

    full_steps = ["normalize", *FILTERS, "exact_dedup"]
    full_recipe = recipe(work / "full", full_steps, args.workers)
    t0 = time.perf_counter()
    full = run(full_recipe)
    wall = time.perf_counter() - t0
    manifest = write_outputs(full_recipe, full, list_units(full_recipe))
    texts = final_texts(work / "full", len(full.stage_results) - 1)
    final_mb = sum(len(t.encode()) for t in texts) / 1e6
    tok_s = full.phase_seconds["write shards"]
    hf = measure_hf_encode(work / "full" / "tokenizer.json", texts)
    res["full"] = {
        "seconds": wall,
        "mb_s": mb / wall,
        "phases": full.phase_seconds,
        "steps": step_rates(full),
        "final_mb": final_mb,
        "tokenize_mb_s": final_mb / tok_s,
        "hf_encode": hf,
        "shards": manifest["shards"],
    }
    res["peak_rss_mb"] = peak_rss_mb()

    print(
        f"\nend to end ({' > '.join(full_steps)} > tokenize), {args.workers} workers: "
        f"{wall:.1f} s, {mb / wall:.2f} MB/s, {read['docs'] / wall:,.0f} docs/s"
    )
    for phase, sec in full.phase_seconds.items():
        print(f"  {phase:<28} {sec:7.2f} s")
    print("\nper step (CPU time, one core):")
    for r in res["full"]["steps"]:
        print(
            f"  {r['step']:<20} {r['mchars_s_per_core']:7.2f} M chars/s  {r['docs_s_per_core']:9,.0f} docs/s"
        )
    print(
        f"\ntokenize (write shards, {args.workers} workers): {final_mb / tok_s:.2f} MB/s; "
        f"plain HF encode_batch: {hf['mb_s']:.2f} MB/s -> {final_mb / tok_s / hf['mb_s']:.2f}x   "
        f"{floor('tokenize stage / HF encode_batch', final_mb / tok_s / hf['mb_s'], at_least=3)}"
    )
    rss = res["peak_rss_mb"]
    print(
        f"peak RSS: main {rss['main']:.0f} MB, largest worker {rss['largest_worker']:.0f} MB   "
        f"{floor('peak RSS MB', max(rss.values()), at_most=2048)}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(res, indent=2))
    print(f"wrote {RESULTS / 'pipeline.json'}")
    finish()


if __name__ == "__main__":
    main()
