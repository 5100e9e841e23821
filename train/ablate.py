"""Ablations: what each group of pipeline steps is worth, in bits per byte of held-out text.

`python -m train ablate RECIPE [key=value ...] [--config TRAIN_CONFIG] [--seeds 0,1,2]` builds
corpus variants of one recipe and trains the same small model on each, through the experiment
runner (train/experiment.py: kept, resumable). Everything lands in `out/experiments/ablate-<name>/`:

    sources/<source>.jsonl.gz   the recipe's inputs minus the evaluation documents
    eval/<set>.jsonl            the fixed evaluation set, one file per set (EVAL_SETS)
    variants/<variant>/         each variant's corpus (a pipeline output directory)
    runs/ results.json results.md ablate.png

Variants: `raw` (tokenize only); `+<group>` for each group of steps (GROUPS) in the order the
recipe runs them, each holding that group and all earlier ones (steps of no group, such as
normalize, are in every variant but raw), so the groups are added one at a time up to `full` (the
whole recipe); and `no-<group>`, the full recipe without one group. A variant's tokenizer would
change the loss per token by itself, so `full` trains the one tokenizer and every other variant
loads it (`tokenize: {tokenizer: ...}`); losses are also reported in bits per byte, which does
not depend on the tokenizer at all.

The evaluation set is taken out before any variant is built: per evaluation set (`EVAL_SETS`:
books, wiki articles, web pages people labelled good, code, technical documentation (module
docstrings), and the junk set, web pages people labelled low quality; by source name and the
documents' labels), the first `doc_chars` characters of the texts of lowest id hash, up to
`eval_bytes` per set. Those documents, and every input document that is an exact or near copy of
an eval text (`NearCopies`: half the smaller text's word 5-grams shared), are dropped from the
sources the variants read; each variant's shards, both splits, are checked again, decoded, for
ids and exact or near copies.

Every run trains the same config for the same number of steps (the same token budget) with each
seed; a seed fixes both the initial weights and the data order, so the seed spread holds both
kinds of run-to-run noise. The final model (last.pt) is evaluated on every eval set. Each
comparison (`comparisons`: raw against full, each group added in order, each group left out)
says the group helps when the variant with it has the lower mean bits per byte by more than the
two variants' seed spreads together (their min-max ranges do not overlap), hurts when it has the
higher by as much, and is within noise otherwise.
"""

from __future__ import annotations

import ast
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
from pipeline.minhash.shingles import shingle_batch
from pipeline.readers.common import BadRecord
from pipeline.recipe import Recipe, build_steps, load_recipe
from pipeline.run import run as run_pipeline
from pipeline.sampling import lowest_within
from pipeline.tokenizer import SEPARATOR, Encoder
from pipeline.units import list_units, read_unit
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
# The evaluation sets: (name, source-name prefix, the text a document gives the set, or None when
# it gives none). "web" is the pages people labelled good (DCLM's annotations), "web-low" those
# they labelled low quality, the junk set: a filter that helps should lower the first's loss more
# than the second's. "docs" is technical documentation: the module docstrings of standard-library
# source files (the shipped sample has no manuals or READMEs; a recipe with such a source can
# point a set at it here).
EVAL_SETS: tuple[tuple[str, str, Callable[[Document], str | None]], ...] = (
    ("books", "books", lambda doc: doc.text),
    ("wiki", "wiki", lambda doc: None if doc.meta.get("redirect") else doc.text),
    ("web", "web", lambda doc: doc.text if doc.meta.get("quality_label") == 1 else None),
    ("code", "code", lambda doc: doc.text),
    ("docs", "code", lambda doc: _module_docstring(doc.text)),
    ("web-low", "web", lambda doc: doc.text if doc.meta.get("quality_label") == 0 else None),
)
EVAL_KINDS = tuple(name for name, _, _ in EVAL_SETS)
EVAL_BYTES = 40_000  # of text per kind: enough for a stable loss, little next to any variant's corpus
# Each eval text is the start of its document, cut here: one 200 kB book or wiki article would
# otherwise fill a kind's budget alone, and a loss measured on one document is one topic's.
EVAL_DOC_CHARS = 4_000
NEAR_NGRAM, NEAR_SHARE = 5, 0.5  # a near copy of an eval text: half of the smaller's 5-grams shared
EVAL_BATCH = 32  # windows scored in one forward pass
SPLIT = "split.json"  # written once the eval set and the sources are: they are kept
ALL = "all"  # the column of every eval set together (total nats / total bytes)


MIN_DOCSTRING = 400  # characters: a module docstring shorter than this is a line, not documentation


def _module_docstring(source: str) -> str | None:
    """The module docstring of Python source, when it is at least MIN_DOCSTRING characters."""
    try:
        text = ast.get_docstring(ast.parse(source))
    except (SyntaxError, ValueError):
        return None
    return text if text and len(text) >= MIN_DOCSTRING else None


def eval_text(name: str, source: str, doc: Document) -> str | None:
    """The text `doc`, of recipe source `source`, gives the eval set `name`, or None."""
    prefix, text_of = next((p, t) for n, p, t in EVAL_SETS if n == name)
    return text_of(doc) if source.startswith(prefix) else None


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
    chosen: dict[str, list[tuple[str, str]]] = {}  # kind: [(id, eval text)]
    taken_ids: set[str] = set()  # a document gives one set its text (code or its docstring)
    for kind in EVAL_KINDS:
        pool = [
            (d.id, text[:doc_chars])
            for s, ds in docs.items()
            for d in ds
            if d.id not in taken_ids and (text := eval_text(kind, s, d))
        ]
        hashes = np.array([_id_hash(i) for i, _ in pool], dtype=np.uint64)
        sizes = np.array([len(t.encode()) for _, t in pool], dtype=np.int64)
        if pool:
            chosen[kind] = [pool[i] for i in lowest_within(hashes, sizes, eval_bytes)]
            taken_ids |= {i for i, _ in chosen[kind]}
    for kind, taken in chosen.items():
        with atomic_path(directory / "eval" / f"{kind}.jsonl") as tmp:
            tmp.write_text(
                "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in taken), encoding="utf-8"
            )
    all_docs = [d for ds in docs.values() for d in ds]
    held_out = {_text_hash(d.text) for d in all_docs if d.id in taken_ids}
    near = NearCopies([t for ds in chosen.values() for _, t in ds])
    copies = near.find([d.text for d in all_docs])
    held_out |= {_text_hash(d.text) for d, copy in zip(all_docs, copies, strict=True) if copy}
    specs = []
    for src in recipe.sources:
        path = directory / "sources" / f"{src.name}.jsonl.gz"
        kept = [d for d in docs[src.name] if _text_hash(d.text) not in held_out]
        with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as f:
            for d in kept:
                f.write(json.dumps({"id": d.id, "text": d.text, "meta": d.meta}) + "\n")
        specs.append({"name": src.name, "path": str(path), "format": "jsonl"})
    return specs


class NearCopies:
    """Finds texts that are near copies of any of a fixed set of texts: those that share at least
    NEAR_SHARE of the smaller text's distinct word 5-grams (`pipeline.minhash.shingles`, the
    normalization MinHash dedup uses) with one of them. Containment of the smaller text, not
    Jaccard: an eval text is the start of its document, and a longer page that holds it (or a
    short page held by it) is a copy for this purpose. Exact, no sampling: the set is small."""

    def __init__(self, texts: list[str]) -> None:
        sets = shingle_batch(texts, NEAR_NGRAM)
        self.sizes = sets.counts()
        owner = np.repeat(np.arange(len(texts)), self.sizes)
        order = np.argsort(sets.hashes, kind="stable")
        self.hashes, self.owner = sets.hashes[order], owner[order]

    def find(self, texts: list[str], batch: int = 512) -> list[bool]:
        """Per text: whether it is a near copy of one of the set."""
        out: list[bool] = []
        for i in range(0, len(texts), batch):
            part = shingle_batch(texts[i : i + batch], NEAR_NGRAM)
            sizes = part.counts()
            doc = np.repeat(np.arange(len(sizes)), sizes)
            lo = np.searchsorted(self.hashes, part.hashes, "left")
            n = np.searchsorted(self.hashes, part.hashes, "right") - lo  # set texts holding it
            first = np.repeat(np.cumsum(n) - n, n)
            owner = self.owner[np.repeat(lo, n) + np.arange(int(n.sum())) - first]
            pairs, shared = np.unique(np.repeat(doc, n) * len(self.sizes) + owner, return_counts=True)
            text, of = np.divmod(pairs, len(self.sizes))
            hit = np.zeros(len(sizes), bool)
            hit[text[shared >= NEAR_SHARE * np.minimum(sizes[text], self.sizes[of])]] = True
            out += hit.tolist()
        return out


def read_eval(directory: Path) -> dict[str, list[dict[str, str]]]:
    """{kind: [{id, text}, ...]} of the eval set written by `split_sources`."""
    out = {}
    for kind in EVAL_KINDS:
        path = directory / "eval" / f"{kind}.jsonl"
        if path.exists():
            out[kind] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return out


def variant_steps(recipe: Recipe, groups: dict[str, tuple[str, ...]]) -> dict[str, list[dict[str, Any]]]:
    """{variant: its steps}: raw (the sink alone); +<group> for each group with a step in the
    recipe, in the order its first step comes, holding that group and every earlier one (and the
    steps of no group, such as normalize, which every variant but raw keeps), up to the groups
    but the last two (all groups but the last is no-<last group>, all of them is full); full;
    and no-<group>, the full recipe without that group. Steps are matched by kind (`c4`, and
    `c4#2` a second time)."""
    *body, sink = recipe.steps

    def group_of(step: dict[str, Any]) -> str | None:
        kind = step["step"].rpartition(":")[2]
        return next((g for g, kinds in groups.items() if kind in kinds), None)

    present = list(dict.fromkeys(g for g in map(group_of, body) if g is not None))  # recipe order
    variants = {"raw": [sink]}
    for k, group in enumerate(present[:-2]):  # the next-to-last would be no-<last group> again
        added = set(present[: k + 1])
        variants[f"+{group}"] = [s for s in body if group_of(s) in added or group_of(s) is None] + [sink]
    variants["full"] = [*body, sink]
    for group in present:
        variants[f"no-{group}"] = [s for s in body if group_of(s) != group] + [sink]
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


def same_corpus(variants: dict[str, Path]) -> dict[str, str]:
    """{variant: the first variant with byte-identical shards (itself if none)}: a step that
    removed nothing (decontamination of a clean sample) leaves a corpus another variant already
    has, and training it again would only spend time on the same numbers."""
    first: dict[str, str] = {}
    out = {}
    for name, path in variants.items():
        h = hashlib.sha256()
        for f in sorted((path / "shards").rglob("*")):
            if f.is_file():
                h.update(str(f.relative_to(path)).encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
        out[name] = first.setdefault(h.hexdigest(), name)
    return out


def check_held_out(corpus_dir: Path, eval_docs: dict[str, list[dict[str, str]]], encoder: Encoder) -> None:
    """Raise if an eval document is in the corpus, in either split: by its id, or by its text
    under another id, exactly or nearly (`NearCopies`: a page that differs by a date, or that
    holds the eval text, which is the start of its own document)."""
    ids = {d["id"] for ds in eval_docs.values() for d in ds}
    near = NearCopies([d["text"] for ds in eval_docs.values() for d in ds])
    corpus = Corpus(corpus_dir)
    for split, shards in (("train", corpus.train), ("val", corpus.val)):
        for shard in shards:
            index = shard.index.to_pydict()
            rows = list(zip(index["id"], index["start"], index["n_tokens"], strict=True))
            texts = [encoder.decode(shard.tokens[start + 1 : start + n]) for _, start, n in rows]
            for (doc_id, _, _), copy in zip(rows, near.find(texts), strict=True):
                if doc_id in ids or copy:
                    raise ExperimentError(
                        f"{corpus_dir}: {split} split document {doc_id} is an eval document "
                        "(id, or exact or near copy of its text)"
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
    starts = list(range(0, len(ids) - 1, context))
    full = [st for st in starts if st + context + 1 <= len(ids)]
    for group in [full[i : i + EVAL_BATCH] for i in range(0, len(full), EVAL_BATCH)] + [
        [st]
        for st in starts[len(full) :]  # the last, shorter window alone
    ]:
        windows = torch.stack([ids[st : st + context + 1] for st in group])
        losses = model.token_losses(windows[:, :-1], windows[:, 1:]).double()
        weights = token_bytes[windows[:, 1:]]
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


def comparisons(variants: Sequence[str]) -> dict[str, tuple[str, str]]:
    """{what is judged: (variant without it, variant with it)}: every step (raw, full); each group
    added in recipe order (the previous +<group> or raw, its +<group> or full); each group left
    out (no-<group>, full)."""
    groups = [v[3:] for v in variants if v.startswith("no-")]  # in recipe order, as the +<group>
    steps = ["raw", *(v for v in variants if v.startswith("+")), *[f"no-{g}" for g in groups[-1:]], "full"]
    steps = steps if len(groups) > 1 else ["raw", "full"]
    out = {"every step": ("raw", "full")}
    for group, before, after in zip(groups, steps[:-1], steps[1:], strict=True):
        out[f"adding {group}"] = (before, after)
    out |= {f"leaving out {v[3:]}": (v, "full") for v in variants if v.startswith("no-")}
    return out


def verdicts(
    summary: dict[str, dict[str, list[float]]], sets: list[str], same_as: dict[str, str] | None = None
) -> dict[str, dict[str, str]]:
    """{comparison: {eval set: helps | hurts | within noise | same corpus}} for each of
    `comparisons`: the step or group helps when the variant with it has the lower mean bits per
    byte by more than the two variants' seed spreads together (their min-max ranges do not
    overlap); "same corpus" when both variants have the same shards (`same_corpus`)."""
    same_as = same_as or {v: v for v in summary}
    out = {}
    for judged, (without, with_) in comparisons(list(summary)).items():
        out[judged] = {}
        if same_as[without] == same_as[with_]:
            out[judged] = dict.fromkeys(sets, "same corpus")
            continue
        for s in sets:
            delta = summary[without][s][0] - summary[with_][s][0]  # > 0: lower with it: it helps
            noise = summary[without][s][1] + summary[with_][s][1]
            out[judged][s] = "helps" if delta > noise else "hurts" if delta < -noise else "within noise"
    return out


def run_ablation(
    recipe_path: Path,
    overrides: list[str],
    *,
    config: Path,
    train_overrides: Sequence[str] = (),
    seeds: Sequence[int] = (0, 1, 2),
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
    directory = root / name
    if restart:  # the eval set, the variants and the runs all go
        _clear(directory)
    write_json(directory / MARKER, {"name": name, "ablate": str(recipe_path)})  # ours, for --restart
    split = {"fingerprint": recipe.fingerprint(), "eval_bytes": eval_bytes, "doc_chars": eval_doc_chars}
    split |= {"sets": list(EVAL_KINDS), "near_copy": [NEAR_NGRAM, NEAR_SHARE]}  # how the eval set is made
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
        f"in no variant (ids, exact and near copies checked)"
    )
    same_as = same_corpus(variants)
    for v, first in same_as.items():
        if v != first:
            print(f"ablate: variant {v} has the same shards as {first}: trained once, reported for both")
    runs = [
        Run(f"{v}-s{seed}", (f"corpus={path}", f"seed={seed}"), {"variant": v, "seed": str(seed)})
        for v, path in variants.items()
        if same_as[v] == v
        for seed in seeds
    ]
    exp = Experiment(name, config, tuple(train_overrides), runs, root, parallel)
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
    summary = summarize(results, [same_as[v] for v in variants], sets)
    summary = {v: summary[same_as[v]] for v in variants}
    verdict = verdicts(summary, sets, same_as)
    lines = _table(summary, sets, seeds) + ["", *(_verdict_line(g, v) for g, v in verdict.items())]
    seconds = {"variants": built - t0, "total": time.perf_counter() - t0}
    lines.append(f"\nVariants built in {seconds['variants']:.0f} s, everything in {seconds['total']:.0f} s.")
    write_report(
        exp,
        results,
        columns={f"bpb {s}": (lambda r, s=s: f"{r['bpb'][s]:.4f}") for s in sets},
        extra={"eval": {k: [d["id"] for d in v] for k, v in eval_docs.items()}, "summary": summary}
        | {"verdicts": verdict, "seeds": list(seeds), "seconds": seconds, "same_shards": same_as},
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
