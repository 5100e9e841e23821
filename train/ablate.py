"""Ablations: what each group of pipeline steps is worth, in bits per byte of held-out text.

`python -m train ablate RECIPE [key=value ...] [--config TRAIN_CONFIG] [--seeds 0,1]` builds
corpus variants of one recipe and trains the same small model on each, through the experiment
runner (train/experiment.py: kept, resumable). Everything lands in `out/experiments/ablate-<name>/`:

    sources/<source>.jsonl.gz   the recipe's inputs minus the evaluation documents
    eval/<set>.jsonl            the fixed evaluation set, one file per set (EVAL_SETS)
    variants/<variant>/         each variant's corpus (a pipeline output directory)
    runs/ results.json results.md ablate.png

Variants: `raw` (tokenize only), `full` (the whole recipe) and `no-<group>` for each group of
steps (GROUPS) present in the recipe, left out of the full recipe. A variant's tokenizer would
change the loss per token by itself, so `full` trains the one tokenizer and every other variant
loads it (`tokenize: {tokenizer: ...}`); losses are also reported in bits per byte, which does
not depend on the tokenizer at all.

The evaluation set is taken out before any variant is built: per evaluation set (`EVAL_SETS`:
books, wiki articles, web pages people labelled good, code, and web pages people labelled low
quality, by source name and the documents' labels), the first `doc_chars` characters of the
input documents of lowest id hash, up to `eval_bytes` of text, as read. Those documents, and
every input document with exactly their text, are dropped from the sources the variants read,
and each variant's shards are checked for their ids and, decoded, for the eval texts. Near
duplicates (a page that differs by a date) are not checked.

Every run trains the same config for the same number of steps (the same token budget) with each
seed; the final model (last.pt) is evaluated on every eval set. A group helps when leaving it out
raises the mean bits per byte by more than the two variants' seed spreads together (their
min-max ranges do not overlap), hurts when it lowers it by as much, and is within noise otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.atomic import atomic_path, read_json, write_json
from pipeline.document import Document
from pipeline.readers.common import BadRecord
from pipeline.recipe import Recipe, build_steps, load_recipe
from pipeline.run import list_units, read_unit
from pipeline.run import run as run_pipeline
from pipeline.sampling import lowest_within
from pipeline.tokenizer import SEPARATOR, Encoder
from train.checkpoint import LAST, load_checkpoint
from train.config import config_from_dict
from train.data import Corpus
from train.experiment import (
    MARKER,
    ROOT,
    Experiment,
    ExperimentError,
    Run,
    _clear,
    run_experiment,
    write_report,
)
from train.model import GPT
from train.plots import plot_ablation

# Steps left out together: one variant per group keeps the default ablation small.
GROUPS: dict[str, tuple[str, ...]] = {
    "heuristics": (
        "encoding",
        "language",
        "gopher_repetition",
        "gopher_quality",
        "c4",
        "fineweb",
        "code_quality",
    ),
    "junk_score": ("junk_score",),
    "dedup": ("exact_dedup", "minhash_dedup"),
    "decontaminate": ("decontaminate",),
}
# The evaluation sets: (name, source-name prefix, the documents of those sources it takes). "web" is
# the pages people labelled good (DCLM's annotations), "web-low" those they labelled low quality:
# a filter that helps should lower the first's loss more than the second's. The shipped sample has
# no technical documentation; a recipe that has it names a source for it here.
EVAL_SETS: tuple[tuple[str, str, Callable[[dict[str, Any]], bool]], ...] = (
    ("books", "books", lambda meta: True),
    ("wiki", "wiki", lambda meta: not meta.get("redirect")),
    ("web", "web", lambda meta: meta.get("quality_label") == 1),
    ("code", "code", lambda meta: True),
    ("web-low", "web", lambda meta: meta.get("quality_label") == 0),
)
EVAL_KINDS = tuple(name for name, _, _ in EVAL_SETS)
EVAL_BYTES = 40_000  # of text per kind: enough for a stable loss, little next to any variant's corpus
# Each eval text is the start of its document, cut here: one 200 kB book or wiki article would
# otherwise fill a kind's budget alone, and a loss measured on one document is one topic's.
EVAL_DOC_CHARS = 4_000
PREFIX = 100  # characters: the key an eval text is looked up by in a variant's decoded documents
SPLIT = "split.json"  # written once the eval set and the sources are: they are kept
ALL = "all"  # the column of every eval set together (total nats / total bytes)


def in_eval_set(name: str, source: str, doc: Document) -> bool:
    """Whether `doc`, of recipe source `source`, is a candidate for the eval set `name`."""
    prefix, takes = next((p, t) for n, p, t in EVAL_SETS if n == name)
    return source.startswith(prefix) and takes(doc.meta)


def _id_hash(doc_id: str) -> int:
    """A hash of its own, unrelated to the tokenize step's val split and tokenizer sample
    (`val_hash`, `sample_hash`), so the eval slice is no particular part of either."""
    return int.from_bytes(hashlib.sha256(doc_id.encode()).digest()[:8], "big")


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def split_sources(recipe: Recipe, directory: Path, eval_bytes: int, doc_chars: int) -> list[dict[str, Any]]:
    """Write the eval set (each document's first `doc_chars` characters, up to `eval_bytes` per
    kind) to `directory/eval/<kind>.jsonl` and the recipe's inputs without those documents (whole) to
    `directory/sources/<source>.jsonl.gz` (id, text and meta, which the jsonl reader reads back as
    they were); return the source specs the variants read. Records the readers reject are left
    out of both. Deterministic: the same inputs give the same files."""
    docs: dict[str, list[Document]] = defaultdict(list)
    for unit in list_units(recipe):
        source = recipe.sources[unit.source].name
        docs[source].extend(d for d in read_unit(recipe, unit) if not isinstance(d, BadRecord))
    chosen: dict[str, list[Document]] = {}
    for kind in EVAL_KINDS:
        pool = [d for s, ds in docs.items() for d in ds if in_eval_set(kind, s, d)]
        hashes = np.array([_id_hash(d.id) for d in pool], dtype=np.uint64)
        sizes = np.array([len(d.text[:doc_chars].encode()) for d in pool], dtype=np.int64)
        if pool:
            chosen[kind] = [pool[i] for i in lowest_within(hashes, sizes, eval_bytes)]
    held_out = {_text_hash(d.text) for ds in chosen.values() for d in ds}
    for kind, taken in chosen.items():
        with atomic_path(directory / "eval" / f"{kind}.jsonl") as tmp:
            tmp.write_text(
                "".join(json.dumps({"id": d.id, "text": d.text[:doc_chars]}) + "\n" for d in taken),
                encoding="utf-8",
            )
    specs = []
    for src in recipe.sources:
        path = directory / "sources" / f"{src.name}.jsonl.gz"
        kept = [d for d in docs[src.name] if _text_hash(d.text) not in held_out]
        with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as f:
            for d in kept:
                f.write(json.dumps({"id": d.id, "text": d.text, "meta": d.meta}) + "\n")
        specs.append({"name": src.name, "path": str(path), "format": "jsonl"})
    return specs


def read_eval(directory: Path) -> dict[str, list[dict[str, str]]]:
    """{kind: [{id, text}, ...]} of the eval set written by `split_sources`."""
    out = {}
    for kind in EVAL_KINDS:
        path = directory / "eval" / f"{kind}.jsonl"
        if path.exists():
            out[kind] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return out


def variant_steps(recipe: Recipe, groups: dict[str, tuple[str, ...]]) -> dict[str, list[dict[str, Any]]]:
    """{variant: its steps}: raw (the sink alone), full, and no-<group> for each group with a
    step in the recipe. Steps are matched by kind (`c4`, and `c4#2` a second time)."""
    *body, sink = recipe.steps
    variants = {"raw": [sink], "full": [*body, sink]}
    for group, kinds in groups.items():
        kept = [s for s in body if s["step"].rpartition(":")[2] not in kinds]
        if len(kept) < len(body):
            variants[f"no-{group}"] = [*kept, sink]
    return variants


def build_variants(
    recipe: Recipe, directory: Path, sources: list[dict[str, Any]], groups: dict[str, tuple[str, ...]]
) -> dict[str, Path]:
    """Run the pipeline once per variant (full first: it trains the tokenizer the others load);
    a variant whose shards are already published is kept. Returns {variant: corpus dir}."""
    out = {}
    tokenizer: Path | None = None
    ordered = variant_steps(recipe, groups)
    for name in sorted(ordered, key=lambda n: n != "full"):  # full first, the rest in order
        steps = ordered[name]
        if tokenizer is not None:
            steps = [*steps[:-1], {**steps[-1], "tokenizer": str(tokenizer)}]
        data = recipe.model_dump() | {"sources": sources, "steps": steps}
        data["output_dir"] = str(directory / "variants" / name)
        variant = Recipe.model_validate(data)
        build_steps(variant)  # a step that does not build fails here, before any work
        path = Path(variant.output_dir)
        done = (path / "shards" / "index.json").exists() and read_json(path / "run.json")[
            "fingerprint"
        ] == variant.fingerprint()
        if not done:
            t0 = time.perf_counter()
            print(f"ablate: building variant {name} ({len(steps)} steps) in {path}")
            run_pipeline(variant)
            print(f"ablate: variant {name} built in {time.perf_counter() - t0:.0f} s")
        out[name] = path
        if name == "full":
            tokenizer = path / "tokenizer.json"
    return {n: out[n] for n in ordered}  # raw, full, then the groups in their order


def check_held_out(corpus_dir: Path, eval_docs: dict[str, list[dict[str, str]]], encoder: Encoder) -> None:
    """Raise if an eval document is in the corpus, in either split: by its id, or by its text
    under another id (a document whose decoded text starts with an eval text, which is the start
    of its own document). Near duplicates are not looked for."""
    ids = {d["id"] for ds in eval_docs.values() for d in ds}
    starts = {d["text"][:PREFIX]: d["text"] for ds in eval_docs.values() for d in ds}
    corpus = Corpus(corpus_dir)
    for split, shards in (("train", corpus.train), ("val", corpus.val)):
        for shard in shards:
            index = shard.index.to_pydict()
            for doc_id, start, n in zip(index["id"], index["start"], index["n_tokens"], strict=True):
                text = "" if doc_id in ids else encoder.decode(shard.tokens[start + 1 : start + n])
                if doc_id in ids or (text[:PREFIX] in starts and text.startswith(starts[text[:PREFIX]])):
                    raise ExperimentError(
                        f"{corpus_dir}: {split} split document {doc_id} is an eval document (id or text)"
                    )


@torch.no_grad()
def bits_per_byte(
    model: GPT, stream: np.ndarray, token_bytes: torch.Tensor, context: int
) -> tuple[float, int]:
    """(total nats, total bytes) of `stream` (the eval documents, each after a separator, as
    the shards lay them out): every token after the first is predicted once, from at most
    `context` tokens of its own window (windows do not overlap, as in training). Separators
    count no bytes and no nats."""
    model.eval()
    ids = torch.from_numpy(stream.astype(np.int64))
    nats, nbytes = 0.0, 0
    for start in range(0, len(ids) - 1, context):
        window = ids[start : start + context + 1]
        losses = model.token_losses(window[None, :-1], window[None, 1:])[0].double()
        weights = token_bytes[window[1:]]
        nats += float(losses[weights > 0].sum())
        nbytes += int(weights.sum())
    return nats, nbytes


def evaluate_run(
    run_dir: Path, streams: dict[str, np.ndarray], token_bytes: torch.Tensor
) -> dict[str, float]:
    """{eval kind: bits per byte, and ALL} of the run's final model (last.pt)."""
    state = load_checkpoint(run_dir / LAST)
    cfg = config_from_dict(state["config"], str(run_dir / LAST))
    model = GPT(cfg.model.model_copy(update={"vocab_size": state["vocab_size"]}))
    model.load_state_dict(state["model"])
    totals = {k: bits_per_byte(model, s, token_bytes, cfg.model.context) for k, s in streams.items()}
    out = {k: nats / math.log(2) / b for k, (nats, b) in totals.items()}
    all_nats, all_bytes = (sum(v) for v in zip(*totals.values(), strict=True))
    return out | {ALL: all_nats / math.log(2) / all_bytes}


def summarize(
    per_run: list[dict[str, Any]], variants: list[str], sets: list[str]
) -> dict[str, dict[str, list[float]]]:
    """{variant: {eval set: [mean, spread]}} where spread is half the seeds' min-max range (so
    mean ± spread covers every seed)."""
    out: dict[str, dict[str, list[float]]] = {}
    for v in variants:
        rows = [r["bpb"] for r in per_run if r["variant"] == v]
        out[v] = {}
        for s in sets:
            vals = [r[s] for r in rows]
            out[v][s] = [float(np.mean(vals)), (max(vals) - min(vals)) / 2]
    return out


def verdicts(summary: dict[str, dict[str, list[float]]], sets: list[str]) -> dict[str, dict[str, str]]:
    """{group: {eval set: helps | hurts | within noise}} from each no-<group> variant against full,
    and for the whole recipe ("every step") from raw against full."""
    full = summary["full"]
    out = {}
    for variant, row in summary.items():
        if variant == "full" or not (variant == "raw" or variant.startswith("no-")):
            continue
        group = "every step" if variant == "raw" else variant[3:]
        out[group] = {}
        for s in sets:
            delta = row[s][0] - full[s][0]  # > 0: worse without the group, so the group helps
            noise = row[s][1] + full[s][1]
            out[group][s] = "helps" if delta > noise else "hurts" if delta < -noise else "within noise"
    return out


def run_ablation(
    recipe_path: Path,
    overrides: list[str],
    *,
    config: Path,
    train_overrides: Sequence[str] = (),
    seeds: Sequence[int] = (0, 1),
    name: str | None = None,
    eval_bytes: int = EVAL_BYTES,
    eval_doc_chars: int = EVAL_DOC_CHARS,
    groups: dict[str, tuple[str, ...]] = GROUPS,
    root: Path = ROOT,
    parallel: int = 0,
    restart: bool = False,
) -> dict[str, Any]:
    """Build the eval set and the variants, train every variant with every seed, evaluate, and
    write results.json, results.md and ablate.png. Returns what results.json holds."""
    t0 = time.perf_counter()
    recipe = load_recipe(recipe_path, overrides)
    name = name or f"ablate-{recipe.name}"
    runs = [
        Run(
            f"{v}-s{seed}",
            (f"corpus={root / name / 'variants' / v}", f"seed={seed}"),
            {"variant": v, "seed": str(seed)},
        )
        for v in variant_steps(recipe, groups)
        for seed in seeds
    ]
    exp = Experiment(name, config, tuple(train_overrides), runs, root, parallel)
    directory = exp.dir
    if restart:  # the eval set, the variants and the runs all go
        _clear(directory)
    write_json(directory / MARKER, {"name": name, "ablate": str(recipe_path)})  # ours, for --restart
    split = {"fingerprint": recipe.fingerprint(), "eval_bytes": eval_bytes, "doc_chars": eval_doc_chars}
    if (directory / SPLIT).exists():  # kept from an interrupted ablation, if of the same recipe
        if read_json(directory / SPLIT)["split"] != split:
            raise ExperimentError(
                f"{directory} holds an ablation of another recipe or eval set: its variants were built "
                "from other sources; pass --restart to discard it, or choose another --name"
            )
        sources = read_json(directory / SPLIT)["sources"]
    else:
        sources = split_sources(recipe, directory, eval_bytes, eval_doc_chars)
        write_json(directory / SPLIT, {"split": split, "sources": sources})
    variants = build_variants(recipe, directory, sources, groups)
    built = time.perf_counter()
    eval_docs = read_eval(directory)
    encoder = Encoder(variants["full"] / "tokenizer.json")
    for path in variants.values():
        check_held_out(path, eval_docs, encoder)
    print(
        f"ablate: eval set {', '.join(f'{k} {len(v)} docs' for k, v in eval_docs.items())}: "
        f"in no variant (ids and texts checked; near duplicates not checked)"
    )
    results = run_experiment(exp)
    sep = encoder.tokenizer.token_to_id(SEPARATOR)
    streams = {
        kind: np.concatenate(
            [np.concatenate([[sep], t]) for t in encoder.encode_batch([d["text"] for d in docs])]
        )
        for kind, docs in eval_docs.items()
    }
    token_bytes = Corpus(variants["full"]).token_bytes()
    for run, result in zip(runs, results, strict=True):
        result["variant"], result["bpb"] = (
            run.params["variant"],
            evaluate_run(exp.run_dir(run), streams, token_bytes),
        )
    sets = [*eval_docs, ALL]
    summary = summarize(results, list(variants), sets)
    verdict = verdicts(summary, sets)
    lines = _table(summary, sets, seeds) + ["", *(_verdict_line(g, v) for g, v in verdict.items())]
    seconds = {"variants": built - t0, "total": time.perf_counter() - t0}
    lines.append(f"\nVariants built in {seconds['variants']:.0f} s, everything in {seconds['total']:.0f} s.")
    write_report(
        exp,
        results,
        columns={f"bpb {s}": (lambda r, s=s: f"{r['bpb'][s]:.4f}") for s in sets},
        extra={"eval": {k: [d["id"] for d in v] for k, v in eval_docs.items()}, "summary": summary}
        | {"verdicts": verdict, "seeds": list(seeds), "seconds": seconds},
        notes=lines,
    )
    plot_ablation(summary, sets, directory / "ablate.png", title=f"ablation of {recipe_path}")
    print("\n".join(lines))
    print(f"results: {directory}/ (results.md, results.json, ablate.png, curves.png)")
    return read_json(directory / "results.json")


def _table(summary: dict[str, dict[str, list[float]]], sets: list[str], seeds: Sequence[int]) -> list[str]:
    return [
        f"Bits per byte on the fixed eval sets, mean ± half the min-max range over seeds {list(seeds)}:",
        "",
        "| variant | " + " | ".join(sets) + " |",
        "|---|" + "---|" * len(sets),
        *(
            f"| {v} | " + " | ".join(f"{row[s][0]:.4f} ± {row[s][1]:.4f}" for s in sets) + " |"
            for v, row in summary.items()
        ),
    ]


def _verdict_line(group: str, by_set: dict[str, str]) -> str:
    parts = defaultdict(list)
    for s, v in by_set.items():
        parts[v].append(s)
    return f"- {group}: " + "; ".join(f"{v} on {', '.join(sets)}" for v, sets in parts.items())
