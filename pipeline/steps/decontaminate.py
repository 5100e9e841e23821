"""Benchmark decontamination: drop or cut corpus text that holds evaluation benchmark items.

Matching follows GPT-3 (Brown et al. 2020, appendix C) as NeMo Curator and lm-evaluation-harness
implement it: word n-grams of normalized text (`pipeline.decontam.ngrams`) looked up in a hashed
pack of benchmark n-grams (`pipeline.decontam.pack`; the shipped one covers MMLU, HellaSwag,
GSM8K, HumanEval, ARC, PIQA, WinoGrande, LAMBADA, BoolQ and TriviaQA, see
`pipeline/assets/benchmarks/README.md`). Where grist departs from them, and why:

* numbers and choice labels (the letters a-e) are not words: a GSM8K problem with other
  numbers, and an item whose choices a page letters "A. ... B. ...", are the same words;
* `n` is 6, not 13 (GPT-3 went down to 8 for benchmarks of short items; datatrove uses 12):
  pages show items in parts, a 10-word question alone, and one word changed in 13 hides every
  13-gram. The verdict does not rest on one gram but on how much of the item the shared grams
  cover, so a short gram is a lead, not a leak;
* the pack stores items as segments (the quoted passage, the question, each choice, the
  answer), so that a page holding the question alone, or the question and its correct answer
  only, holds the item, and a page holding only the passage an item quotes (a BoolQ Wikipedia
  paragraph, a book an MMLU item cites) does not.

`n` must be the pack's: it is hashed. A shared gram is a lead, not a verdict: a document holds
an item only when the grams it shares with it, aligned as in the item, cover at least
`min_words` (10) of its own words, with holes of at most `max_gap` words between them (what a
few changed words hide; `pipeline.decontam.evidence`). A 4-7 word phrase of an item, or the
passage an item quotes, shares grams with the item without holding it. Why 10 and not GPT-3's
8: the 8-9 word stretches clean Wikipedia shared with items were names and titles ("The
Diagnostic and Statistical Manual of Mental Disorders", "Harry Potter and the Goblet of Fire").
A page showing fewer than `min_words` words of an item in a row (a 5-word TriviaQA question, a
BoolQ question without its passage) cannot be told from a phrase: it is not found, and the bench
counts such insertions apart. The exception is a short question and its answer on an "Answer:"
line (a 6-word PIQA goal, its 10-word solution): both show in one alignment, and together they
hold the item.

Why a global step: GPT-3 ignores n-grams found in more than `max_doc_frequency` corpus
documents (a 13-gram in hundreds of pages is a quotation, a license line or boilerplate the
benchmark copied, not a leak). That count is over the corpus being built, which a per-document
filter cannot see, and a frequency table precomputed on some other corpus would be wrong for
this one. So `summarize` records each document's pack hits (rare: a few rows per batch),
`plan` counts documents per n-gram, judges the hits that count per document and item, and
totals the items held per benchmark, and `apply` re-reads only the documents holding an item,
finds where they match and removes text. Clean documents cost one hashing pass and are never
touched again.

Two modes, which differ only in what they remove:

* ``span`` (GPT-3, the default): every match of an item the document holds is cut out with
  `span_margin` characters on each side; the pieces left shorter than `min_piece_chars` are
  dropped; a document cut in more than `max_splits` places, or with no piece left, is removed.
  Overlapping cuts merge into one, so a whole leaked passage is one cut, not one per n-gram.
  The surviving pieces stay one document (ids must stay stable through the pipeline),
  separated by a blank line.
* ``document`` (datatrove): a document holding any item is removed.

Removals have reason ``benchmark_overlap``. Documents holding items, kept or removed, get
``meta["decontam"] = {benchmark: [item ids]}``, and the corpus report lists per benchmark the
documents and the items leaked.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash
from pydantic import Field, FilePath, NonNegativeInt, PositiveFloat, PositiveInt

from pipeline.atomic import read_json, write_json
from pipeline.config import ParamError, Strict
from pipeline.decontam.evidence import judge
from pipeline.decontam.ngrams import char_offsets, ngrams, within, words
from pipeline.decontam.pack import DEFAULT_PACK, GramPlan, Item, Pack, build_pack, key
from pipeline.document import Document, Removal
from pipeline.shuffle import partition_count, partition_dirs, read_partition, table_bytes, write_partitions
from pipeline.steps.base import GlobalStep, ParallelMap, Summaries

REASON = "benchmark_overlap"
SUMMARY_SCHEMA = pa.schema(
    [pa.field("id", pa.string()), pa.field("key", pa.uint64()), pa.field("at", pa.int64())]
)
HELD_SCHEMA = SUMMARY_SCHEMA.append(pa.field("item", pa.int32()))
REPORT_ITEMS = 20  # leaked item ids listed per benchmark in the report
# A document partition while it is judged: the evidence table, its numpy columns and judge's
# sorted copies. 10x the evidence's Arrow size is an estimate from the arrays judge builds (about
# ten of the evidence's length), not a measurement: evidence is small on real corpora.
JUDGE_MEMORY_FACTOR = 10


class Hits(NamedTuple):
    """Grams of a batch of documents found in the pack, one row per occurrence."""

    doc: np.ndarray  # index of the document in the batch
    key: np.ndarray
    at: np.ndarray  # index of the gram's first word in its document
    start: np.ndarray  # UTF-8 byte span of the gram in its document
    end: np.ndarray


class BenchmarkFile(Strict):
    """A user benchmark: JSON Lines (optionally gzipped) whose `fields` (strings or lists of
    strings) are the segments of each item, the first one its question (a list: one segment
    per string, e.g. the choices). `name` defaults to the file name, item ids to the line number
    unless `id_field` names one."""

    path: FilePath
    fields: list[str] = Field(min_length=1)
    name: str | None = None
    id_field: str | None = None


def read_benchmark_file(spec: BenchmarkFile) -> list[Item]:
    """The items of a user benchmark file (see `BenchmarkFile`)."""
    path = Path(spec.path)
    name = spec.name or path.name.split(".")[0]
    opener = gzip.open if path.suffix == ".gz" else open
    items = []
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            row = json.loads(line)
            parts: list[str] = []
            for field in spec.fields:
                value = row.get(field, "")
                parts.extend(str(v) for v in (value if isinstance(value, list) else [value]))
            item_id = str(row[spec.id_field]) if spec.id_field else str(i)
            items.append(Item(name, item_id, tuple(parts)))
    return items


def _cut(text: str, spans: list[tuple[int, int]], margin: int) -> list[tuple[int, int]]:
    """The merged character ranges removed around each matched span."""
    cuts: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        s, e = max(0, s - margin), min(len(text), e + margin)
        if cuts and s <= cuts[-1][1]:
            cuts[-1] = (cuts[-1][0], max(cuts[-1][1], e))
        else:
            cuts.append((s, e))
    return cuts


def split_evidence(task: tuple[str, str, int, str]) -> None:
    """Shuffle, map side: a unit's pack hits by n-gram and, with the document's id hash, by
    document."""
    path, name, parts, work = task
    table = pq.read_table(path)
    write_partitions(table, table["key"].to_numpy(), parts, Path(work) / "by_key", name)
    doc_hash = np.fromiter(
        (xxhash.xxh3_64_intdigest(i.encode()) for i in table["id"].to_pylist()), np.uint64, len(table)
    )
    write_partitions(table, doc_hash, parts, Path(work) / "by_doc", name)


def count_documents(task: tuple[str, int]) -> dict[str, Any]:
    """One n-gram partition: the grams in more than `max_doc_frequency` documents (GPT-3's rule:
    such a gram is a quotation or boilerplate, not a leak) and the distinct grams matched."""
    part_dir, max_doc_frequency = task
    t = read_partition(part_dir)
    pairs = pa.table({"key": t["key"], "id": t["id"]}).group_by(["key", "id"]).aggregate([])
    per_key = pairs.group_by("key").aggregate([("id", "count")])
    common = per_key.filter(pc.greater(per_key["id_count"], max_doc_frequency))["key"].to_numpy()
    return {"common": common.astype(np.uint64), "ngrams": per_key.num_rows}


def judge_partition(task: tuple[str, Decontaminate, np.ndarray]) -> dict[str, Any]:
    """One document partition: the items its documents hold (`pipeline.decontam.evidence`),
    counting only the grams that are not too common."""
    part_dir, step, common = task
    table = read_partition(part_dir)
    ids, doc = np.unique(table["id"].to_numpy(zero_copy_only=False).astype(str), return_inverse=True)
    keys, at = table["key"].to_numpy(), table["at"].to_numpy()
    counts = ~np.isin(keys, common)
    pack = step.loaded_pack
    m = judge(doc[counts], keys[counts], at[counts], pack, max_gap=step.max_gap, min_words=step.min_words)
    held = pa.table(
        [ids[m.doc[m.held]], m.key[m.held], m.at[m.held], m.item[m.held].astype(np.int32)],
        schema=HELD_SCHEMA,
    )
    pairs = np.unique(np.stack([m.doc[m.held], m.item[m.held]]), axis=1)  # (document, item) held
    bench = pack.item_bench[pairs[1]]
    benchmarks = {
        pack.benchmarks[b]: {
            "documents": len(np.unique(pairs[0][bench == b])),
            "items": set(np.unique(pairs[1][bench == b]).tolist()),
        }
        for b in np.unique(bench).tolist()
    }
    holding = np.unique(m.doc[m.held])
    return {
        "held": held,
        "benchmarks": benchmarks,
        "holding": len(holding),
        "partial": len(np.setdiff1d(np.unique(m.doc), holding)),
    }


class Decontaminate(GlobalStep):
    """See the module docstring. `pack`: "default" (the shipped pack), a path to a pack built
    by `bench/build_benchmark_pack.py`, or None (only `extra_files`). `extra_files`: user
    benchmarks, each ``{path, fields, name?, id_field?}`` (see `BenchmarkFile`)."""

    name = "decontaminate"

    def __init__(
        self,
        *,
        pack: Literal["default"] | FilePath | None = "default",
        extra_files: list[BenchmarkFile] | None = None,
        n: Annotated[int, Field(ge=2, le=32)] = 6,
        min_words: PositiveInt = 10,
        max_gap: NonNegativeInt = 30,
        mode: Literal["span", "document"] = "span",
        span_margin: NonNegativeInt = 200,
        min_piece_chars: NonNegativeInt = 200,
        max_splits: NonNegativeInt = 10,
        max_doc_frequency: PositiveInt = 10,
        memory_budget_mb: PositiveFloat = 1024,
    ) -> None:
        super().__init__()
        if min_words < n:
            raise ParamError("min_words", f"must be at least n ({n}), got {min_words}")
        if pack is None and not extra_files:
            raise ParamError("pack", "no benchmarks: pack is None and there are no extra_files")
        self.pack_path = None if pack is None else DEFAULT_PACK if pack == "default" else Path(pack)
        self.extra_files = [BenchmarkFile.model_validate(spec) for spec in extra_files or []]
        self._pack: Pack | None = None
        self._held: dict[str, tuple[set[tuple[int, int]], np.ndarray]] = {}  # (key, at) grams, items

    @property
    def loaded_pack(self) -> Pack:
        """The benchmarks, loaded on first use (building a step must stay cheap)."""
        if self._pack is None:
            pack = None
            if self.pack_path is not None:
                pack = Pack.load(self.pack_path)
                if pack.n != self.n:
                    raise ValueError(
                        f"decontaminate: pack {self.pack_path} holds {pack.n}-grams, the recipe "
                        f"asks for n={self.n}: rebuild it with bench/build_benchmark_pack.py --n {self.n}"
                    )
            for spec in self.extra_files:
                extra = build_pack(read_benchmark_file(spec), GramPlan(n=self.n))
                pack = extra if pack is None else pack.merge(extra)
            assert pack is not None  # __init__ requires a pack or extra files
            self._pack = pack
        return self._pack

    def _matches(self, docs: list[Document]) -> Hits:
        """Every gram of `docs` found in the pack."""
        w = words([d.text for d in docs])
        first_word = np.searchsorted(w.doc, np.arange(len(docs)))
        k = key(ngrams(w, range(self.n, self.n + 1))[self.n])
        first = np.flatnonzero(self.loaded_pack.contains(k))
        first = first[within(w, first, self.n)]
        d = w.doc[first]
        return Hits(d, k[first], first - first_word[d], w.start[first], w.end[first + self.n - 1])

    def summarize(self, docs: list[Document], unit: str) -> pa.Table:
        hits = self._matches(docs)
        ids = [docs[i].id for i in hits.doc.tolist()]
        return pa.table([pa.array(ids, pa.string()), hits.key, hits.at], schema=SUMMARY_SCHEMA)

    def __getstate__(self) -> dict[str, Any]:
        """What a plan task receives: the settings, not the loaded pack (it loads its own)."""
        return {**self.__dict__, "_pack": None, "_held": {}}

    def plan(self, summaries: Summaries, state_dir: Path, pmap: ParallelMap) -> dict[str, Any]:
        """A shuffle through the executor, partitions sized to `memory_budget_mb`: the evidence is
        split by n-gram (to count the documents each gram is in) and by document (to judge each
        document's grams against the items); what is held is small and kept whole."""
        state_dir = Path(state_dir)
        work = state_dir / "shuffle"
        shutil.rmtree(work, ignore_errors=True)  # of a plan killed half way: redone whole
        size = sum(table_bytes(p) for _, p in summaries.files)
        parts = partition_count(size, int(self.memory_budget_mb * (1 << 20)), JUDGE_MEMORY_FACTOR)
        tasks = [(str(p), f"u{i:06d}", parts, str(work)) for i, (_, p) in enumerate(summaries.files)]
        list(pmap(split_evidence, tasks, "decontaminate: split evidence"))
        by_key = [(str(d), self.max_doc_frequency) for d in partition_dirs(work / "by_key")]
        counted = list(pmap(count_documents, by_key, "decontaminate: documents per n-gram"))
        common = np.concatenate([c["common"] for c in counted]) if counted else np.zeros(0, np.uint64)
        by_doc = [(str(d), self, common) for d in partition_dirs(work / "by_doc")]
        judged = list(pmap(judge_partition, by_doc, "decontaminate: judge documents"))
        held = [j["held"] for j in judged if j["held"].num_rows]
        pq.write_table(
            pa.concat_tables(held) if held else HELD_SCHEMA.empty_table(), state_dir / "held.parquet"
        )
        shutil.rmtree(work, ignore_errors=True)
        per_bench: dict[str, dict[str, Any]] = {}
        for j in judged:
            for name, b in j["benchmarks"].items():
                into = per_bench.setdefault(name, {"documents": 0, "items": set()})
                into["documents"] += b["documents"]
                into["items"] |= b["items"]
        pack = self.loaded_pack
        stats = {
            "documents_matched": sum(j["holding"] for j in judged),
            "documents_partial": sum(j["partial"] for j in judged),
            "ngrams_matched": sum(c["ngrams"] for c in counted),
            "ngrams_too_common": len(common),
            "benchmarks": {
                name: {
                    "documents": b["documents"],
                    "items": len(b["items"]),
                    "item_ids": [str(pack.item_ids[i]) for i in sorted(b["items"])[:REPORT_ITEMS]],
                }
                for name, b in sorted(per_bench.items(), key=lambda kv: pack.benchmarks.index(kv[0]))
            },
            "partitions": parts,
        }
        write_json(state_dir / "decontam.json", stats)
        return stats

    def load(self, state_dir: Path) -> None:
        t = pq.read_table(Path(state_dir) / "held.parquet").sort_by("id")
        ids = t["id"].to_pylist()
        grams = list(zip(t["key"].to_pylist(), t["at"].to_pylist(), strict=True))
        items = t["item"].to_numpy()
        bounds = [i for i in range(1, len(ids)) if ids[i] != ids[i - 1]]
        starts, ends = [0, *bounds], [*bounds, len(ids)]
        self._held = {
            ids[s]: (set(grams[s:e]), np.unique(items[s:e]))
            for s, e in zip(starts, ends, strict=True)
            if e > s
        }

    def _held_hits(self, hits: Hits, j: int, doc_id: str) -> np.ndarray:
        """The rows of `hits` in batch document `j` by which the document holds its items: the
        grams on the alignments judged, not other occurrences of the same grams."""
        rows = np.flatnonzero(hits.doc == j)
        held = self._held[doc_id][0]
        keep = [(k, a) in held for k, a in zip(hits.key[rows].tolist(), hits.at[rows].tolist(), strict=True)]
        return rows[np.array(keep, bool)]

    def apply(self, docs: list[Document], unit: str) -> tuple[list[Document], list[Removal]]:
        flagged = [i for i, d in enumerate(docs) if d.id in self._held]
        if not flagged:
            return docs, []
        hits = self._matches([docs[i] for i in flagged])
        dropped: set[int] = set()
        removed = []
        for j, i in enumerate(flagged):
            d = docs[i]
            sel = self._held_hits(hits, j, d.id)
            if len(sel) == 0:  # the text changed since summarize: nothing held left
                continue
            d.meta["decontam"] = self._leaked(self._held[d.id][1])
            if self.mode == "span":
                text = self._cut_text(d.text, hits.start[sel], hits.end[sel])
                if text:
                    d.text = text
                    continue
            dropped.add(i)
            removed.append(Removal(d, self.step_name, REASON))
        return [d for i, d in enumerate(docs) if i not in dropped], removed

    def held_ngrams(self, doc: Document) -> list[str]:
        """The text of the distinct grams by which `doc` holds its items (after `load`), for
        showing why a document was flagged."""
        if doc.id not in self._held:
            return []
        hits = self._matches([doc])
        sel = self._held_hits(hits, 0, doc.id)
        data = doc.text.encode("utf-8")
        spans = zip(hits.start[sel].tolist(), hits.end[sel].tolist(), strict=True)
        return list(dict.fromkeys(data[s:e].decode("utf-8", errors="replace") for s, e in spans))

    def _leaked(self, items: np.ndarray) -> dict[str, list[str]]:
        """{benchmark: item ids} of `items` (sorted item numbers)."""
        pack = self.loaded_pack
        out: dict[str, list[str]] = {}
        for it in items.tolist():
            out.setdefault(pack.benchmarks[pack.item_bench[it]], []).append(str(pack.item_ids[it]))
        return out

    def _cut_text(self, text: str, start: np.ndarray, end: np.ndarray) -> str | None:
        """The text with the matches cut out, or None when the document must go."""
        offsets = char_offsets(text, np.concatenate([start, end]))
        spans = list(zip(offsets[: len(start)].tolist(), offsets[len(start) :].tolist(), strict=True))
        cuts = _cut(text, spans, self.span_margin)
        if len(cuts) > self.max_splits:
            return None
        bounds = [0, *(x for c in cuts for x in c), len(text)]
        pieces = [text[bounds[k] : bounds[k + 1]].strip() for k in range(0, len(bounds), 2)]
        pieces = [p for p in pieces if len(p) >= self.min_piece_chars]
        return "\n\n".join(pieces) or None

    def report(self, state_dir: Path, out_dir: Path) -> list[str]:
        path = Path(state_dir) / "decontam.json"
        if not path.exists():
            return []
        stats = read_json(path)
        lines = [
            f"### {self.step_name}",
            "",
            f"{stats['documents_matched']} documents hold a benchmark item ({self.mode} mode, "
            f"{self.n}-grams covering {self.min_words} words or more); {stats['documents_partial']} more "
            "share n-grams with an item without holding it (a quoted passage, a common phrase) and "
            f"were left alone; {stats['ngrams_too_common']} n-grams found in more than "
            f"{self.max_doc_frequency} documents were ignored.",
            "",
        ]
        if not stats["benchmarks"]:
            return lines
        lines += [
            "| benchmark | documents matched | items leaked | leaked items (first ids) |",
            "|---|---:|---:|---|",
        ]
        for name, b in sorted(stats["benchmarks"].items()):
            more = ", ..." if b["items"] > len(b["item_ids"]) else ""
            lines.append(f"| {name} | {b['documents']} | {b['items']} | {', '.join(b['item_ids'])}{more} |")
        return lines + [""]
