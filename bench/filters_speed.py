"""One-core throughput of the heuristic filters on the real sample text.

Measures MB/s (UTF-8 bytes of input text per second) for each filter alone over every
document, and for the four chained in FineWeb's order (Gopher repetition, Gopher quality,
C4, FineWeb), where a document dropped by one filter is not seen by the next, as in a
recipe. Documents go through in batches, the way the runner calls `Step.apply`; the
statistics cache starts empty for every timed run.

Run: .venv/bin/python -m bench.filters_speed [--repeat 3] [--batch 1000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections import Counter
from pathlib import Path

from pipeline.document import Document
from pipeline.steps.base import Filter
from pipeline.steps.c4 import C4Filter
from pipeline.steps.fineweb import FineWebFilter
from pipeline.steps.gopher_quality import GopherQualityFilter
from pipeline.steps.gopher_repetition import GopherRepetitionFilter
from pipeline.text.stats import clear_cache

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def load_records() -> list[dict]:
    records = []
    for path in sorted(SAMPLE.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            records += [json.loads(line) for line in f]
    return records


def run_chain(chain: list[Filter], records: list[dict], batch: int) -> tuple[float, Counter]:
    """Seconds to push all records through the chain, and the removal reasons."""
    docs = [Document(r["id"], r.get("source", ""), r["text"]) for r in records]  # fresh: C4 rewrites
    reasons: Counter = Counter()
    clear_cache()
    start = time.perf_counter()
    for i in range(0, len(docs), batch):
        kept = docs[i : i + batch]
        for step in chain:
            kept, removed = step.apply(kept, "bench")
            reasons.update(f"{r.step}:{r.reason}" for r in removed)
    return time.perf_counter() - start, reasons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    parser.add_argument("--batch", type=int, default=1000, help="documents per apply() call")
    args = parser.parse_args()

    records = load_records()
    mb = sum(len(r["text"].encode("utf-8")) for r in records) / 1e6
    print(f"{len(records)} documents, {mb:.1f} MB from {SAMPLE}")
    filters = {
        "gopher_repetition": GopherRepetitionFilter,
        "gopher_quality": GopherQualityFilter,
        "c4": C4Filter,
        "fineweb": FineWebFilter,
    }
    runs = {name: [cls()] for name, cls in filters.items()}
    runs["all four (chained)"] = [cls() for cls in filters.values()]
    for name, chain in runs.items():
        best, reasons = min(
            (run_chain(chain, records, args.batch) for _ in range(args.repeat)), key=lambda r: r[0]
        )
        kept = len(records) - sum(reasons.values())
        print(f"{name:20s} {mb / best:7.1f} MB/s  ({best:.2f} s, {kept} of {len(records)} kept)")
    print("removal reasons of the chain:")
    for reason, count in reasons.most_common():
        print(f"  {count:5d}  {reason}")


if __name__ == "__main__":
    main()
