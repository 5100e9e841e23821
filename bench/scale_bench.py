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

Results: bench/results/scale.json. Runs alone: any other load on the 2 cores skews the ratios.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from bench.corpus import OUT as CORPUS_DIR
from bench.corpus import build
from bench.floors import finish, floor
from bench.pipeline_bench import DEFAULT_CHAIN, recipe
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
        run(r)
        walls[executor] = time.perf_counter() - t0
        digests[executor] = corpus_digest(out)
        print(f"default recipe, {mb:.0f} MB, {executor} executor, {workers} workers: {walls[executor]:.1f} s")
    ray.shutdown()
    ratio = walls["ray"] / walls["local"]
    same = digests["ray"] == digests["local"]
    print(
        f"Ray / local wall time: {ratio:.3f}  {floor('Ray wall time / local', ratio, at_most=1.15)}; "
        f"outputs identical: {same}  {floor('Ray output equals local (1 = yes)', float(same), at_least=1)}"
    )
    return {"mb": mb, "seconds": walls, "ratio": ratio, "identical": same}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sections", default="split,ray", help="comma-separated: split, ray")
    ap.add_argument("--mb", type=float, default=200, help="size of the single file of `split`")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    sections = args.sections.split(",")
    res: dict[str, Any] = {}
    if "split" in sections:
        res["split"] = bench_split(args.mb)
    if "ray" in sections:
        build(100)
        res["ray"] = bench_ray(args.workers)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {RESULTS / 'scale.json'}")
    finish()


if __name__ == "__main__":
    main()
