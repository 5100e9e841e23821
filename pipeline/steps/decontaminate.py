"""Benchmark decontamination: drop or cut corpus text that overlaps evaluation benchmarks.

Matching is GPT-3's (Brown et al. 2020, appendix C) as NeMo Curator and lm-evaluation-harness
implement it: word 13-grams of normalized text (`pipeline.decontam.ngrams`) looked up in a
hashed pack of benchmark n-grams (`pipeline.decontam.pack`; the shipped one covers MMLU,
HellaSwag, GSM8K, HumanEval, ARC, PIQA, WinoGrande, LAMBADA, BoolQ and TriviaQA, see
`pipeline/assets/benchmarks/README.md`). Items of fewer than `short_item_words` (40) words
are matched on `short_n`-grams (8) instead, as GPT-3 did for benchmarks of short items, so that
a short question with a word changed is still caught; items under `short_n` words are not
matched at all (an ordinary phrase). `n` and `short_n` must be the pack's: it is hashed.

Why a global step: GPT-3 ignores n-grams found in more than `max_doc_frequency` corpus
documents (a 13-gram in hundreds of pages is a quotation, a license line or boilerplate the
benchmark copied, not a leak). That count is over the corpus being built, which a per-document
filter cannot see, and a frequency table precomputed on some other corpus would be wrong for
this one. So `summarize` records each document's pack hits (rare: a few rows per batch),
`plan` counts documents per n-gram, keeps the hits that count and totals them per benchmark,
and `apply` re-reads only the documents with countable hits, finds where they match and
removes text. Clean documents cost one hashing pass and are never touched again.

Two modes:

* ``span`` (GPT-3, the default): every match is cut out with `span_margin` characters on each
  side; the pieces left shorter than `min_piece_chars` are dropped; a document cut in more than
  `max_splits` places, or with no piece left, is removed. Overlapping cuts merge into one, so a
  whole leaked passage is one cut, not one per n-gram. The surviving pieces stay one document
  (ids must stay stable through the pipeline), separated by a blank line.
* ``document`` (datatrove): any countable match removes the document.

Removals have reason ``benchmark_overlap``. Matched documents, kept or removed, get
``meta["decontam"] = {benchmark: [item ids]}``, and the corpus report lists per benchmark the
documents matched and the items leaked.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.atomic import read_json, write_json
from pipeline.decontam.ngrams import char_offsets, ngrams, within, words
from pipeline.decontam.pack import DEFAULT_PACK, Item, Pack, build_pack, key
from pipeline.document import Document, Removal
from pipeline.steps.base import GlobalStep, ParallelMap, Summaries

REASON = "benchmark_overlap"
SUMMARY_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("key", pa.uint64())])
EXTRA_FILE_KEYS = {"path", "fields", "name", "id_field"}
REPORT_ITEMS = 20  # leaked item ids listed per benchmark in the report


def read_benchmark_file(spec: dict[str, Any]) -> list[Item]:
    """Items of a user benchmark file: JSON Lines (optionally gzipped) whose `fields` (strings
    or lists of strings) are joined into the text to match. `name` defaults to the file name,
    item ids to the line number unless `id_field` names one."""
    path = Path(spec["path"])
    name = spec.get("name") or path.name.split(".")[0]
    opener = gzip.open if path.suffix == ".gz" else open
    items = []
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            row = json.loads(line)
            parts: list[str] = []
            for field in spec["fields"]:
                value = row.get(field, "")
                parts.extend(value if isinstance(value, list) else [value])
            item_id = str(row[spec["id_field"]]) if spec.get("id_field") else str(i)
            items.append(Item(name, item_id, " ".join(str(p) for p in parts)))
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


class Decontaminate(GlobalStep):
    """See the module docstring. `pack`: "default" (the shipped pack), a path to a pack built
    by `bench/build_benchmark_pack.py`, or None (only `extra_files`). `extra_files`: user
    benchmarks, each ``{path, fields, name?, id_field?}`` (see `read_benchmark_file`)."""

    name = "decontaminate"

    def __init__(
        self,
        *,
        pack: str | None = "default",
        extra_files: list[dict[str, Any]] | None = None,
        n: int = 13,
        short_n: int = 8,
        short_item_words: int = 40,
        mode: Literal["span", "document"] = "span",
        span_margin: int = 200,
        min_piece_chars: int = 200,
        max_splits: int = 10,
        max_doc_frequency: int = 10,
    ) -> None:
        super().__init__()
        if mode not in ("span", "document"):
            raise ValueError(f"decontaminate: mode must be 'span' or 'document', got {mode!r}")
        if not 2 <= short_n <= n:
            raise ValueError(f"decontaminate: need 2 <= short_n <= n, got {short_n}, {n}")
        if pack is None and not extra_files:
            raise ValueError("decontaminate: no benchmarks (pack is None and no extra_files)")
        self.pack_path = None if pack is None else DEFAULT_PACK if pack == "default" else Path(pack)
        self.extra_files = list(extra_files or [])
        for spec in self.extra_files:
            if set(spec) - EXTRA_FILE_KEYS or "path" not in spec or not spec.get("fields"):
                raise ValueError(f"decontaminate: extra_files entries need 'path' and 'fields', got {spec!r}")
        self.n = n
        self.short_n = short_n
        self.short_item_words = short_item_words
        self.mode = mode
        self.span_margin = span_margin
        self.min_piece_chars = min_piece_chars
        self.max_splits = max_splits
        self.max_doc_frequency = max_doc_frequency
        self._pack: Pack | None = None
        self._hits: dict[str, np.ndarray] = {}

    @property
    def pack(self) -> Pack:
        """The benchmarks, loaded on first use (building a step must stay cheap)."""
        if self._pack is None:
            pack = None
            if self.pack_path is not None:
                pack = Pack.load(self.pack_path)
                if (pack.n, pack.short_n) != (self.n, self.short_n):
                    raise ValueError(
                        f"decontaminate: pack {self.pack_path} holds {pack.n}-grams (short_n "
                        f"{pack.short_n}), the recipe asks for n={self.n}, short_n={self.short_n}: "
                        "rebuild it with bench/build_benchmark_pack.py"
                    )
            for spec in self.extra_files:
                extra = build_pack(read_benchmark_file(spec), self.n, self.short_n, self.short_item_words)
                pack = extra if pack is None else pack.merge(extra)
            assert pack is not None  # __init__ requires a pack or extra files
            self._pack = pack
        return self._pack

    def _matches(self, docs: list[Document]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every n-gram of `docs` found in the pack: (doc index, key, first byte, end byte)."""
        w = words([d.text for d in docs])
        lengths = (self.short_n, self.n) if self.pack.short.any() else (self.n,)
        docs_, keys, starts, ends = [], [], [], []
        for length, grams in ngrams(w, range(min(lengths), self.n + 1)).items():
            if length not in lengths:
                continue
            k = key(grams)
            first = np.flatnonzero(self.pack.contains(k, short=length < self.n))
            first = first[within(w, first, length)]
            docs_.append(w.doc[first])
            keys.append(k[first])
            starts.append(w.start[first])
            ends.append(w.end[first + length - 1])
        return tuple(np.concatenate(x) for x in (docs_, keys, starts, ends))  # type: ignore[return-value]

    def summarize(self, docs: list[Document], unit: str) -> pa.Table:
        doc, keys, _, _ = self._matches(docs)
        pairs = np.unique(np.stack([doc.astype(np.uint64), keys]), axis=1)  # once per document
        ids = [docs[i].id for i in pairs[0].astype(np.int64).tolist()]
        return pa.table({"id": pa.array(ids, pa.string()), "key": pa.array(pairs[1], pa.uint64())})

    def plan(self, summaries: Summaries, state_dir: Path, pmap: ParallelMap) -> dict[str, Any]:
        tables = list(summaries)
        table = pa.concat_tables(tables) if tables else SUMMARY_SCHEMA.empty_table()
        keys = table["key"].to_numpy()
        uniq, inverse, doc_freq = np.unique(keys, return_inverse=True, return_counts=True)
        counts = doc_freq[inverse] <= self.max_doc_frequency
        hits = table.filter(pa.array(counts))
        pq.write_table(hits, Path(state_dir) / "hits.parquet")

        pack = self.pack
        ids = hits["id"].to_pylist()
        which, items = pack.items_of(hits["key"].to_numpy())
        bench = pack.item_bench[items]
        per_bench: dict[str, dict[str, Any]] = {}
        for b, name in enumerate(pack.benchmarks):
            sel = bench == b
            if not sel.any():
                continue
            leaked = np.unique(items[sel])
            per_bench[name] = {
                "documents": len({ids[i] for i in which[sel].tolist()}),
                "items": len(leaked),
                "item_ids": [str(pack.item_ids[i]) for i in leaked[:REPORT_ITEMS]],
            }
        stats = {
            "documents_matched": len(set(ids)),
            "ngrams_matched": len(uniq),
            "ngrams_too_common": int((doc_freq > self.max_doc_frequency).sum()),
            "benchmarks": per_bench,
        }
        write_json(Path(state_dir) / "decontam.json", stats)
        return stats

    def load(self, state_dir: Path) -> None:
        t = pq.read_table(Path(state_dir) / "hits.parquet").sort_by("id")
        ids = t["id"].to_pylist()
        keys = t["key"].to_numpy()
        bounds = [i for i in range(1, len(ids)) if ids[i] != ids[i - 1]]
        starts, ends = [0, *bounds], [*bounds, len(ids)]
        self._hits = {ids[s]: np.sort(keys[s:e]) for s, e in zip(starts, ends, strict=True) if e > s}

    def apply(self, docs: list[Document], unit: str) -> tuple[list[Document], list[Removal]]:
        flagged = [i for i, d in enumerate(docs) if d.id in self._hits]
        if not flagged:
            return docs, []
        doc, keys, start, end = self._matches([docs[i] for i in flagged])
        dropped: set[int] = set()
        removed = []
        for j, i in enumerate(flagged):
            d = docs[i]
            allowed = self._hits[d.id]
            sel = np.flatnonzero(doc == j)
            sel = sel[np.isin(keys[sel], allowed)]
            if len(sel) == 0:  # the text changed since summarize: nothing countable left
                continue
            d.meta["decontam"] = self._leaked(keys[sel])
            if self.mode == "span":
                text = self._cut_text(d.text, start[sel], end[sel])
                if text:
                    d.text = text
                    continue
            dropped.add(i)
            removed.append(Removal(d, self.step_name, REASON))
        return [d for i, d in enumerate(docs) if i not in dropped], removed

    def _leaked(self, keys: np.ndarray) -> dict[str, list[str]]:
        """{benchmark: sorted item ids} of the items holding `keys`."""
        pack = self.pack
        _, items = pack.items_of(np.unique(keys))
        out: dict[str, list[str]] = {}
        for it in np.unique(items).tolist():
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
            f"{stats['documents_matched']} documents overlap a benchmark ({self.mode} mode, "
            f"{self.n}-grams, {self.short_n}-grams for short items); {stats['ngrams_too_common']} "
            "n-grams found in more than "
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
