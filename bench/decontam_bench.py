"""Decontamination accuracy and speed on real text: `python -m bench.decontam_bench`.

Benchmark items (all of ../shared/data/benchmarks, read as `bench.build_benchmark_pack` reads
them) are planted into real documents (data/sample), one item per host document, and the
`decontaminate` step runs end to end (summarize, plan, load, apply) against the shipped pack:

* verbatim: the item as is; found = its benchmark and item id land in the host's
  ``meta["decontam"]``;
* format only: the item behind a "Question: " prefix, case changed, whitespace and
  punctuation disturbed (see `edit`);
* lightly edited: all of that and `WORDS_CHANGED` words replaced by other words, at once;
* fragments: 4-7 consecutive words of an item inside an ordinary sentence; must NOT be flagged;
* clean: the shared raw texts (web, wiki, books, code, UDHR; data/sample when ../shared is
  absent) as they are; the share of documents removed (document mode) or cut (span mode), and
  for each such document the n-grams by which it holds an item.

Speed: CPU time (`time.process_time`, best of `--repeat`) of `summarize`, the pass every
document pays, on the clean texts, in MB of UTF-8 per second on one core.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.floors import finish, floor
from pipeline.atomic import read_json
from pipeline.decontam.pack import Item
from pipeline.document import Document, Removal
from pipeline.driver import run_global
from pipeline.steps.decontaminate import Decontaminate
from pipeline.text.words import reference_words

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SAMPLE = ROOT / "data" / "sample"
HOSTS = ("web_dclm_quality_labeled", "wiki_wikitext2", "books_gutenberg", "web_dolma_cc")
WORDS_CHANGED = 2
BATCH = 256


def read_docs(folder: Path, names: tuple[str, ...] | None = None) -> list[Document]:
    docs = []
    for path in sorted(folder.glob("*.jsonl.gz")):
        if names and path.name.split(".")[0] not in names:
            continue
        with gzip.open(path, "rt", encoding="utf-8") as f:
            docs += [Document(r["id"], path.name, r["text"]) for r in map(json.loads, f)]
    return docs


def run_step(step: Decontaminate, docs: list[Document], state: Path) -> tuple[list[Document], list[Removal]]:
    """The step as the runner drives it, on one unit: summaries, the plan, then apply."""
    result = run_global(step, {"u0": [docs[i : i + BATCH] for i in range(0, len(docs), BATCH)]}, state)
    return result.kept["u0"], result.removed["u0"]


def plant(host: str, text: str, rng: random.Random) -> str:
    """`text` inserted as its own paragraph at a line break near the middle of `host`."""
    breaks = [m.end() for m in re.finditer(r"\n", host)] or [len(host)]
    at = breaks[rng.randrange(len(breaks))]
    return f"{host[:at]}\n{text}\n{host[at:]}"


def edit(text: str, rng: random.Random, vocab: list[str], words_changed: int = WORDS_CHANGED) -> str:
    """A lightly edited copy: "Question: " prefix, the case of the whole item or of some
    words changed, whitespace redone, punctuation dropped or added, and `words_changed`
    words replaced by other real words."""
    words = text.split()
    for i in rng.sample(range(len(words)), min(words_changed, len(words))):
        words[i] = rng.choice(vocab)
    case = rng.choice(["lower", "upper", "title", "some"])
    out = []
    for w in words:
        if case == "some" and rng.random() < 0.2:
            w = w.swapcase()
        if rng.random() < 0.1:
            w = w.strip(".,;:!?\"'")
        elif rng.random() < 0.05:
            w += ","
        out.append(w)
    joined = "".join(w + rng.choice([" ", " ", " ", "  ", "\n", "\t"]) for w in out)
    joined = {"lower": joined.lower(), "upper": joined.upper(), "title": joined.title()}.get(case, joined)
    return "Question: " + joined.strip()


def fragment(text: str, rng: random.Random) -> str:
    """4-7 consecutive normalized words of `text` (words as the matcher counts them: "U.S."
    is two) inside an ordinary sentence."""
    words = reference_words(text)
    k = rng.randint(4, min(7, len(words)))
    at = rng.randrange(len(words) - k + 1)
    return f"As the report notes, {' '.join(words[at : at + k])} was mentioned only in passing."


def variant_text(variant: str, text: str, rng: random.Random, vocab: list[str]) -> str:
    if variant == "verbatim":
        return text
    if variant == "format only":
        return edit(text, rng, vocab, words_changed=0)
    if variant == "edited":
        return edit(text, rng, vocab)
    return fragment(text, rng)


def planted_recall(
    items: list[Item], hosts: list[Document], variant: str, rng: random.Random, state: Path, mode: str
) -> dict[str, tuple[int, int]]:
    """Per benchmark: (host documents whose planted item was found, items planted)."""
    vocab = [w for d in hosts[:50] for w in d.text.split() if w.isalpha()]
    docs = []
    for i, it in enumerate(items):
        host = hosts[i % len(hosts)]
        body = variant_text(variant, it.text, rng, vocab)
        docs.append(Document(f"{host.id}#{i}", host.source, plant(host.text, body, rng)))
    kept, removed = run_step(Decontaminate(mode=mode), docs, state)  # type: ignore[arg-type]
    out_docs = {d.id: d for d in kept} | {r.doc.id: r.doc for r in removed}
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for it, d in zip(items, docs, strict=True):
        leaked = out_docs[d.id].meta.get("decontam", {})
        hit = it.id in leaked.get(it.benchmark, []) if variant != "fragment" else bool(leaked)
        found[it.benchmark][0] += hit
        found[it.benchmark][1] += 1
    return {b: (f, n) for b, (f, n) in found.items()}


def main() -> None:
    from bench.build_benchmark_pack import read_items

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-benchmark", type=int, default=300, help="items planted per benchmark")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mode", choices=["span", "document"], default="span")
    args = ap.parse_args()
    rng = random.Random(0)

    step = Decontaminate(mode=args.mode)
    min_words = step.min_words
    by_bench: dict[str, list[Item]] = defaultdict(list)
    for it in read_items(SHARED / "benchmarks"):
        by_bench[it.benchmark].append(it)
    items = []
    for its in by_bench.values():
        items += rng.sample(its, min(args.per_benchmark, len(its)))
    matchable = [it for it in items if len(it.text.split()) >= min_words]
    hosts = [d for d in read_docs(SAMPLE, HOSTS) if len(d.text) > 1000]
    print(f"{len(items)} items sampled, {len(matchable)} with >= {min_words} words; {len(hosts)} hosts")

    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("verbatim", "format only", "edited", "fragment"):
            pool = items if variant == "fragment" else matchable
            res = planted_recall(pool, hosts, variant, rng, Path(tmp) / variant, args.mode)
            f, n = sum(v[0] for v in res.values()), sum(v[1] for v in res.values())
            what = "flagged" if variant == "fragment" else "found"
            bounds = {
                "verbatim": {"at_least": 0.99},
                "edited": {"at_least": 0.90},
                "fragment": {"at_most": 0.001},
            }
            verdict = floor(f"{args.mode} {variant}", f / n, **bounds[variant]) if variant in bounds else ""
            print(f"\n{variant}: {what} {f}/{n} = {100 * f / n:.1f} %  {verdict}")
            print("  " + ", ".join(f"{b} {100 * a / c:.0f}%" for b, (a, c) in sorted(res.items())))

        clean = read_docs(SHARED / "raw") if (SHARED / "raw").is_dir() else read_docs(SAMPLE)
        original = {d.id: d.text for d in clean}  # span mode cuts the text it flags
        clean_step = Decontaminate(mode=args.mode)
        kept, removed = run_step(clean_step, clean, Path(tmp) / "clean")
        cut = [d for d in kept if "decontam" in d.meta]
        partial = read_json(Path(tmp) / "clean" / "plan" / "decontam.json")["documents_partial"]
        print(
            f"\nclean: {len(removed)}/{len(clean)} documents removed "
            f"({100 * len(removed) / len(clean):.3f} %) "
            f"{floor(f'{args.mode} clean removed', len(removed) / len(clean), at_most=0.001)}, "
            f"{len(cut)} cut; "
            f"{partial} more share "
            "n-grams with an item without holding it"
        )
        for what, d in ([("removed", r.doc) for r in removed] + [("cut", d) for d in cut])[:20]:
            print(f"  {what} {d.source} {d.id} {d.meta['decontam']}")
            for gram in clean_step.held_ngrams(Document(d.id, d.source, original[d.id]))[:5]:
                print(f"    {' '.join(gram.split())!r}")

    mb = sum(len(d.text.encode()) for d in clean) / 1e6
    step.summarize(clean[:8], "warmup")
    best = float("inf")
    for _ in range(args.repeat):
        t0 = time.process_time()
        for i in range(0, len(clean), BATCH):
            step.summarize(clean[i : i + BATCH], "u0")
        best = min(best, time.process_time() - t0)
    print(
        f"\nspeed: summarize {mb:.1f} MB in {best:.2f} s CPU = {mb / best:.1f} MB/s per core (full pack)  "
        f"{floor('decontaminate MB/s per core', mb / best, at_least=20)}"
    )
    finish()


if __name__ == "__main__":
    main()
