"""Runs a recipe's per-document steps over one split of the evaluation set and prints, per kind,
how much was removed and why. Floors: every junk kind >= 95 % removed, every clean kind (all
English) <= 10 % removed. Writes bench/results/filter_eval_<split>.json.

The steps are the recipe's filter chain (everything before its first corpus-wide step other than
a scorer: normalize, language, the heuristic filters, code_quality and junk_score in the default
recipe), built by `build_steps` and applied as the runner applies them, all kinds together as
one source.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.filter_eval.build import build, ensure_built, read_split
from bench.filter_eval.common import CLEAN_KINDS, JUNK_KINDS, OUT, ROOT, SPLITS
from bench.floors import finish, floor
from pipeline.atomic import write_json
from pipeline.document import Document
from pipeline.driver import run_global
from pipeline.recipe import build_steps, load_recipe
from pipeline.run import apply_guarded
from pipeline.scoring import ScoreStep
from pipeline.steps.base import DocumentStep, Step

RESULTS = ROOT / "bench" / "results"
JUNK_FLOOR, CLEAN_CEILING = 95.0, 10.0  # % removed
UNIT = "filter-eval"


def document_steps(
    recipe_path: Path, overrides: list[str] | None = None
) -> tuple[list[tuple[str, Step]], int]:
    """The recipe's filter chain as the runner builds it, and its batch size: its steps up to its
    first corpus-wide step that is not a scorer (the dedup steps need a corpus, not a mix of
    kinds), the scorers (`junk_score`, `quality_score`) included."""
    recipe = load_recipe(recipe_path, overrides or [])
    steps = []
    for name, step in build_steps(recipe):
        if not isinstance(step, DocumentStep | ScoreStep):
            break
        steps.append((name, step))
    return steps, recipe.batch_size


def run_chain(
    steps: list[tuple[str, Step]], records: list[dict], batch_size: int
) -> tuple[dict[str, str], dict]:
    """id -> "step:reason" for every removed document, and seconds per step. Document steps run
    batch by batch through the runner's `apply_guarded`; a scorer runs through the driver's
    `run_global` on everything that reached it."""
    docs = [Document(r["id"], UNIT, r["text"]) for r in records]
    removed: dict[str, str] = {}
    seconds: Counter = Counter()
    for name, step in steps:
        t0 = time.perf_counter()
        batches = [docs[i : i + batch_size] for i in range(0, len(docs), batch_size)]
        if isinstance(step, ScoreStep):
            with tempfile.TemporaryDirectory() as tmp:
                result = run_global(step, {UNIT: batches}, Path(tmp))
            docs, dropped = result.kept[UNIT], result.removed[UNIT]
        else:
            docs, dropped = [], []
            for batch in batches:
                kept, out, failed = apply_guarded(step, name, batch, UNIT)
                docs += kept
                dropped += [*out, *failed]
        seconds[name] += time.perf_counter() - t0
        removed.update({r.doc.id: f"{r.step}:{r.reason}" for r in dropped})
    return removed, dict(seconds)


def tally(records: list[dict], removed: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per kind: documents, removed, % removed, reasons, removing steps, and the same per source."""
    out: dict[str, dict[str, Any]] = {}
    for kind in (*CLEAN_KINDS, *JUNK_KINDS):
        mine = [r for r in records if r["kind"] == kind]
        if not mine:
            continue
        reasons = Counter(removed[r["id"]] for r in mine if r["id"] in removed)
        sources: dict[str, Counter] = defaultdict(Counter)
        for r in mine:
            sources[r["source"]]["docs"] += 1
            sources[r["source"]]["removed"] += r["id"] in removed
        n_removed = sum(reasons.values())
        out[kind] = {
            "label": mine[0]["label"],
            "docs": len(mine),
            "removed": n_removed,
            "removed_pct": round(100 * n_removed / len(mine), 2),
            "reasons": dict(reasons.most_common()),
            "steps": dict(Counter(reason.split(":")[0] for reason in reasons.elements()).most_common()),
            "sources": {s: dict(c) for s, c in sorted(sources.items())},
        }
    return out


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.0f}%"


def print_table(split: str, kinds: dict[str, dict[str, Any]], by_source: bool) -> dict[str, str]:
    """The table, each row with its floor verdict; returns kind -> verdict."""
    verdicts = {}
    head = f"{'kind':15s} {'label':5s} {'docs':>5s} {'removed':>8s}  {'floor':23s}"
    print(f"{head} top reasons (share of the kind)")
    for kind in (*CLEAN_KINDS, *JUNK_KINDS):
        if kind not in kinds:  # a source missing on this machine must not pass unseen
            verdicts[kind] = floor(f"filter_eval {split} {kind}: no documents", float("nan"), at_least=0)
            print(f"{kind:15s} {'':5s} {0:5d} {'':8s}  {verdicts[kind]:23s} no documents on this machine")
            continue
        k = kinds[kind]
        pct = k["removed_pct"]
        if k["label"] == "junk":
            verdict = floor(f"filter_eval {split} {kind} removed %", pct, at_least=JUNK_FLOOR)
        else:
            verdict = floor(f"filter_eval {split} {kind} removed %", pct, at_most=CLEAN_CEILING)
        verdicts[kind] = verdict
        top = ", ".join(f"{reason} {_share(n, k['docs'])}" for reason, n in list(k["reasons"].items())[:3])
        print(f"{kind:15s} {k['label']:5s} {k['docs']:5d} {pct:7.1f}%  {verdict:23s} {top}")
        if k["label"] == "clean" and k["steps"]:
            steps = ", ".join(f"{s} {_share(n, k['docs'])}" for s, n in k["steps"].items())
            print(f"{'':15s} {'':5s} {'':5s} {'':8s}  {'':23s} removed by: {steps}")
        if by_source:
            for source, c in k["sources"].items():
                print(f"  {source:30s} {c['docs']:5d} {_share(c.get('removed', 0), c['docs']):>7s}")
    return verdicts


def print_misclassified(records: list[dict], removed: dict[str, str], n: int) -> dict[str, list[dict]]:
    """Up to n documents per kind that went the wrong way (clean removed, junk kept), sources in turn."""
    wrong: dict[str, list[dict]] = {}
    for kind in (*CLEAN_KINDS, *JUNK_KINDS):
        by_source: dict[str, list[dict]] = defaultdict(list)
        for r in sorted(records, key=lambda r: r["id"]):
            if r["kind"] == kind and (r["id"] in removed) == (r["label"] == "clean"):
                by_source[r["source"]].append(r)
        queues, picked = [by_source[s] for s in sorted(by_source)], []
        while len(picked) < n and any(queues):
            picked += [q.pop(0) for q in queues if q][: n - len(picked)]
        if picked:
            wrong[kind] = [
                {
                    "id": r["id"],
                    "verdict": removed.get(r["id"], "kept"),
                    "origin": r["origin"],
                    "start": r["text"][:200],
                }
                for r in picked
            ]
    print(f"\nwent the wrong way ({n} per kind at most; clean: removed by step:reason, junk: kept):")
    for kind, rows in wrong.items():
        print(f"-- {kind}")
        for w in rows:
            start = w["start"].replace("\n", " ⏎ ")
            print(f"  {w['id']}  {w['verdict']}  [{w['origin']}]\n      {start}")
    return wrong


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=SPLITS, default="dev", help="tune on dev; report test")
    ap.add_argument("--recipe", type=Path, default=Path("recipes/default.yaml"))
    ap.add_argument(
        "--misclassified", type=int, default=0, metavar="N", help="list N wrong-way documents per kind"
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, as on `pipeline run` (steps.6.char_duplicates_ratio=0.1)",
    )
    ap.add_argument("--by-source", action="store_true", help="also print each kind's sources")
    ap.add_argument("--rebuild", action="store_true", help="build the evaluation set again first")
    args = ap.parse_args()

    manifest = build() if args.rebuild else ensure_built()
    records = read_split(args.split)
    steps, batch_size = document_steps(args.recipe, args.set)
    mb = sum(len(r["text"].encode()) for r in records) / 1e6
    t0 = time.perf_counter()
    removed, step_seconds = run_chain(steps, records, batch_size)
    seconds = time.perf_counter() - t0
    print(f"filter chain of {args.recipe}: {', '.join(n for n, _ in steps)}")
    print(
        f"split {args.split}: {len(records)} documents, {mb:.1f} MB, all kinds as one source; "
        f"{seconds:.1f} s on one core ({mb / seconds:.1f} MB/s)\n"
    )
    kinds = tally(records, removed)
    verdicts = print_table(args.split, kinds, args.by_source)
    wrong = print_misclassified(records, removed, args.misclassified) if args.misclassified else {}
    data_file = f"{args.split}.jsonl.gz"
    write_json(
        RESULTS / f"filter_eval_{args.split}.json",
        {
            "split": args.split,
            "recipe": str(args.recipe),
            "overrides": args.set,
            "steps": [n for n, _ in steps],
            "data": {
                "file": str((OUT / data_file).relative_to(ROOT)),
                "sha256": manifest["files"][data_file],
                "builder": manifest["builder"],
            },
            "documents": len(records),
            "mb": round(mb, 2),
            "seconds": round(seconds, 2),
            "step_seconds": {k: round(v, 2) for k, v in step_seconds.items()},
            "floors": {"junk_removed_pct_at_least": JUNK_FLOOR, "clean_removed_pct_at_most": CLEAN_CEILING},
            "kinds": {k: {**kinds.get(k, {"docs": 0}), "verdict": v} for k, v in verdicts.items()},
            "misclassified": wrong,
        },
    )
    finish()


if __name__ == "__main__":
    main()
