"""Mixing: each source's share of the output tokens, within a token budget.

A source that holds less than its share is repeated (up to `max_epochs`), a larger one is
subsampled. Every decision is a per-source rule on a hash of the document id, so reruns,
resumes and any cut into units keep the same documents:

* Per document (`summarize`): source, UTF-8 bytes and `mix_hash(id)`, plus each source's
  lowest-hash texts up to `sample_mb` (the cut that composes across batches, as tokenize's
  tokenizer sample does).
* Once (`plan`): each document's tokens. A BPE trained the way the sink will train the real
  one (the recipe's vocabulary size, on a byte-proportional miniature of the text the mix keeps:
  first guessed from the shares, then what that first allocation keeps), or the recipe's
  tokenizer file when it names one, counts the sampled documents; the others are estimated at
  their source's tokens per byte. Then per source: target = share x budget, at most max_epochs
  x its tokens; every document gets `copies` whole copies, and the lowest-hash ones one more,
  as many as bring the total nearest the target. The decision is two numbers per source
  (`copies`, `extra_below`), not a list of ids.
* Per document (`apply`): no copy -> removed (`mix_subsample`); more than one ->
  `meta["mix_copies"]`, which the tokenize sink honours. The sink writes the copies (ids
  `<id>#copy<k>`) rather than this step emitting them, so every step still accounts for each
  document exactly once, the text is encoded once, and all copies share the document's split:
  val keeps one copy (a repeat would only weight that document), the others are counted as
  `val_copies_dropped`.

Shuffling. Shards are written per input file, so each holds one source. The grist trainer
draws its windows in one seeded permutation over all shards, so every training batch sees the
mixture; a reader that walks shards in order would see one source at a time and must shuffle
itself. Inside a shard the sink writes copy k of every document in a batch before copy k + 1 of
any, so copies sit a batch apart rather than side by side in one window (a unit holding a
single document still writes its copies back to back).

Place the mix after dedup and filters: the shares are of what reaches it. Every source of the
recipe must have a share (0 drops it), checked when the recipe loads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash
from pydantic import Field, FilePath, PositiveFloat, PositiveInt

from pipeline.atomic import read_json, write_json
from pipeline.config import ParamError, UnitFloat
from pipeline.document import COPIES, Document, Removal
from pipeline.sampling import MB, keep_lowest_texts, lowest_within
from pipeline.shards import INDEX_SUFFIX, SPLITS
from pipeline.steps.base import GlobalStep, ParallelMap, Sink, Step, Summaries
from pipeline.tokenizer import Encoder, load_tokenizer, train_bpe

REASON = "mix_subsample"
PLAN_FILE = "mix.json"
TOLERANCE = 0.01  # |achieved - target share| the report accepts without an explanation
_HASH_MAX = (1 << 64) - 1

SUMMARY_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("hash", pa.uint64(), nullable=False),
        pa.field("n_bytes", pa.int64(), nullable=False),
        pa.field("text", pa.large_string()),  # only for documents in the source's sample
    ]
)


def mix_hash(doc_id: str, seed: int) -> int:
    """xxh3 of the id. Tokenize's val and sample hashes are xxh64, so which documents the mix
    keeps is independent of the val split and of the tokenizer's training sample."""
    return xxhash.xxh3_64_intdigest(doc_id.encode("utf-8"), seed=seed)


def take(hashes: np.ndarray, tokens: np.ndarray, target: float) -> tuple[int, int]:
    """(copies, extra_below): every document `copies` times, plus once more each one whose hash
    is below `extra_below`, so that the tokens add up to `target` as nearly as whole documents
    allow (within half a document, on the estimate)."""
    total = float(tokens.sum())
    copies = int(target // total)
    rest = target - copies * total
    chosen = lowest_within(hashes, tokens, rest)  # reaches `rest`, with the document that crosses it
    if chosen.size and 2 * tokens[chosen].sum() - tokens[chosen[-1]] > 2 * rest:
        chosen = chosen[:-1]  # nearer without that last document
    return copies, (min(int(hashes[chosen[-1]]) + 1, _HASH_MAX) if chosen.size else 0)


def doc_tokens(
    hashes: np.ndarray, sizes: np.ndarray, per_byte: float, sample_hashes: np.ndarray, counted: np.ndarray
) -> np.ndarray:
    """Estimated tokens of each document of a source, its separator included: counted for the
    sampled ones, which are its lowest-hash documents and so the first a partial copy takes,
    and at the sample's tokens per byte for the others."""
    tokens = sizes * per_byte + 1
    order = np.argsort(hashes, kind="stable")
    tokens[order[np.searchsorted(hashes, sample_hashes, sorter=order)]] = counted + 1
    return tokens


def copies_per_doc(hashes: np.ndarray, rule: tuple[int, int]) -> np.ndarray:
    copies, extra_below = rule
    return copies + (hashes < np.uint64(extra_below)).astype(np.int64)


def _per_source_rows(table: pa.Table) -> dict[str, np.ndarray]:
    """Row indices of each source in the table."""
    encoded = pc.dictionary_encode(table["source"]).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return {s: np.flatnonzero(codes == i) for i, s in enumerate(encoded.dictionary.to_pylist())}


class Mix(GlobalStep):
    """Parameters:

    shares: source name -> share of the output tokens; they sum to 1, every source of the recipe
      has one (0 drops the source).
    budget_tokens: total output tokens, train and val. Unset: the largest budget at which every
      share is met without repeating any source more than max_epochs times.
    max_epochs: the most times a source's documents are used (a fraction is allowed).
    sample_mb: text per source (10^6 bytes) sampled to estimate its tokens per byte.
    seed: of `mix_hash`, which picks the documents of a partial copy.
    vocab_size, tokenizer: default to the `tokenize` step's, so the estimate uses the tokenizer
      the sink will train or load.
    """

    name = "mix"
    once = True  # copies are a document's count: two mixes would multiply them silently

    def __init__(
        self,
        *,
        shares: Annotated[dict[str, UnitFloat], Field(min_length=1)],
        budget_tokens: PositiveInt | None = None,
        max_epochs: PositiveFloat = 4,
        sample_mb: PositiveFloat = 4,
        seed: int = 0,
        vocab_size: Annotated[int, Field(ge=257)] | None = None,
        tokenizer: FilePath | None = None,
    ) -> None:
        super().__init__()
        if not math.isclose(sum(shares.values()), 1, abs_tol=1e-6):
            raise ParamError("shares", f"must sum to 1, they sum to {sum(shares.values()):.6g}")
        self.shares = dict(shares)
        self.sample_bytes = int(sample_mb * MB)
        self._rules: dict[str, tuple[int, int]] = {}

    def bind(self, sources: list[str], steps: Sequence[Step]) -> None:
        """The shares must name exactly the recipe's sources: a typo or a forgotten source is
        caught when the recipe loads, not after every step before the mix has run. Tokens are
        counted with the sink's tokenizer settings unless `vocab_size` or `tokenizer` is given."""
        unknown = sorted(set(self.shares) - set(sources))
        if unknown:
            raise ParamError("shares", f"unknown source(s) {unknown}; the recipe's sources are {sources}")
        missing = [s for s in sources if s not in self.shares]
        if missing:
            raise ParamError(
                "shares", f"no share for source(s) {missing}; give every source one (0 drops it)"
            )
        sink = next((s for s in steps if isinstance(s, Sink)), None)
        if self.vocab_size is None and self.tokenizer is None:
            self.vocab_size = getattr(sink, "vocab_size", None)
            self.tokenizer = getattr(sink, "tokenizer", None)
        if self.vocab_size is None and self.tokenizer is None:
            raise ParamError("vocab_size", "no tokenize step to take it from: give vocab_size or tokenizer")

    # ------------------------------------------------------------------ summarize / plan

    def summarize(self, docs: list[Document], unit: str) -> pa.Table:
        table = pa.table(
            {
                "source": [d.source for d in docs],
                "hash": pa.array([mix_hash(d.id, self.seed) for d in docs], pa.uint64()),
                "n_bytes": pa.array([len(d.text.encode("utf-8")) for d in docs], pa.int64()),
                "text": pa.array([d.text for d in docs], pa.large_string()),
            },
            schema=SUMMARY_SCHEMA,
        )
        return self.compact_summary(table)

    def compact_summary(self, table: pa.Table) -> pa.Table:
        """Keep each source's lowest-hash texts within `sample_mb` among those offered."""
        return keep_lowest_texts(
            table, table["hash"].to_numpy(), self.sample_bytes, _per_source_rows(table).values()
        )

    def plan(self, summaries: Summaries, state_dir: Path, pmap: ParallelMap) -> dict[str, Any]:
        hashes: dict[str, list[np.ndarray]] = {}
        sizes: dict[str, list[np.ndarray]] = {}
        sample = SUMMARY_SCHEMA.empty_table()
        for table in summaries:
            for source, rows in _per_source_rows(table).items():
                hashes.setdefault(source, []).append(table["hash"].to_numpy()[rows])
                sizes.setdefault(source, []).append(table["n_bytes"].to_numpy()[rows])
            sample = self._sample_rows(pa.concat_tables([sample, table.filter(pc.is_valid(table["text"]))]))
        unnamed = sorted(set(hashes) - set(self.shares))
        if unnamed:
            raise ValueError(f"mix: documents of source(s) {unnamed} have no share")
        if not any(self.shares[s] > 0 for s in hashes):
            raise ValueError("mix: no source with a positive share has any document left")
        h = {s: np.concatenate(v) for s, v in hashes.items()}
        b = {s: np.concatenate(v) for s, v in sizes.items()}

        # The BPE that counts tokens trains on a miniature of the text the mix keeps, which the
        # sink's tokenizer will train on: first guessed from the shares (as if the budget were the
        # whole corpus), then what the first allocation keeps.
        corpus_bytes = sum(float(v.sum()) for v in b.values())
        in_training = self._miniature(sample, {s: self.shares[s] * corpus_bytes for s in h})
        sampled = _per_source_rows(sample)
        sample_hashes, sample_sizes = sample["hash"].to_numpy(), sample["n_bytes"].to_numpy()
        for rounds in (1, 2):
            counted = self._count_tokens(sample, in_training)
            per_byte = {s: counted[r].sum() / sample_sizes[r].sum() for s, r in sampled.items()}
            tokens = {
                s: doc_tokens(h[s], b[s], per_byte[s], sample_hashes[sampled[s]], counted[sampled[s]])
                for s in h
            }
            budget, targets, how = self._allocate({s: float(t.sum()) for s, t in tokens.items()})
            rules = {s: take(h[s], tokens[s], targets[s]) for s in h}
            if self.tokenizer or rounds == 2:
                break
            kept_bytes = {s: float(b[s][copies_per_doc(h[s], rules[s]) > 0].sum()) for s in h}
            in_training = self._miniature(sample, kept_bytes)

        sources: dict[str, Any] = {}
        for s, share in self.shares.items():
            docs_out = copies_per_doc(h[s], rules[s]) if s in h else np.zeros(0, np.int64)
            available = float(tokens[s].sum()) if s in h else 0.0
            planned = float((docs_out * tokens[s]).sum()) if s in h else 0.0
            sources[s] = {
                "share": share,
                "docs": int(docs_out.size),
                "bytes": int(b[s].sum()) if s in h else 0,
                "tokens_per_byte": round(per_byte.get(s, 0.0), 5),
                "available_tokens": round(available),
                "target_tokens": round(share * budget),
                "planned_tokens": round(planned),
                "epochs": round(planned / available, 4) if available else 0.0,
                "capped": share * budget > targets[s] + 0.5,
                "docs_out": int(docs_out.sum()),
                "removed": int((docs_out == 0).sum()),
                "copies": rules[s][0] if s in h else 0,
                "extra_below": rules[s][1] if s in h else 0,
            }
        decision = {
            "budget_tokens": round(budget),
            "budget": how,
            "max_epochs": self.max_epochs,
            "planned_tokens": round(sum(v["planned_tokens"] for v in sources.values())),
            "estimate": {
                "tokenizer": self.tokenizer or f"BPE trained with vocab_size {self.vocab_size}",
                "rounds": rounds,
                "sample_bytes": int(pc.sum(sample["n_bytes"]).as_py() or 0),
                "training_bytes": int(sample["n_bytes"].to_numpy()[in_training].sum()),
            },
            "sources": sources,
        }
        write_json(Path(state_dir) / PLAN_FILE, decision)
        return decision

    def _sample_rows(self, table: pa.Table) -> pa.Table:
        compacted = self.compact_summary(table)
        return compacted.filter(pc.is_valid(compacted["text"]))

    def _allocate(self, available: dict[str, float]) -> tuple[float, dict[str, float], str]:
        """The budget, each source's target tokens (its share, at most max_epochs of its
        tokens) and where the budget came from."""
        caps = {s: self.max_epochs * available.get(s, 0.0) for s in self.shares}
        if self.budget_tokens is not None:
            budget: float = self.budget_tokens
            how = "given"
        else:
            limits = {s: caps[s] / share for s, share in self.shares.items() if share > 0 and caps[s] > 0}
            binding = min(limits, key=lambda s: limits[s])
            budget, how = limits[binding], f"the largest the max_epochs caps allow, set by {binding}"
        return budget, {s: min(share * budget, caps[s]) for s, share in self.shares.items()}, how

    def _miniature(self, sample: pa.Table, kept_bytes: dict[str, float]) -> np.ndarray:
        """Sample rows whose text is in the same proportions as the text the mix keeps, taken in
        the order the mix keeps documents (for a source the sample covers, exactly those)."""
        sizes, hashes = sample["n_bytes"].to_numpy(), sample["hash"].to_numpy()
        groups = {s: rows for s, rows in _per_source_rows(sample).items() if kept_bytes.get(s)}
        scale = min([1.0, *(sizes[rows].sum() / kept_bytes[s] for s, rows in groups.items())])
        chosen = np.zeros(len(sample), dtype=bool)
        for s, rows in groups.items():
            chosen[rows[lowest_within(hashes[rows], sizes[rows], scale * kept_bytes[s])]] = True
        return chosen

    def _count_tokens(self, sample: pa.Table, in_training: np.ndarray) -> np.ndarray:
        """Tokens of each sampled text, with the recipe's tokenizer file or a BPE trained on
        the sampled texts `in_training`."""
        texts = sample["text"].to_pylist()
        if self.tokenizer:
            tokenizer = load_tokenizer(self.tokenizer)
        else:
            tokenizer = train_bpe([texts[i] for i in np.flatnonzero(in_training)], self.vocab_size)
        return np.array([len(ids) for ids in Encoder(tokenizer).encode_batch(texts)], dtype=np.float64)

    # ------------------------------------------------------------------ per worker

    def load(self, state_dir: Path) -> None:
        sources = read_json(Path(state_dir) / PLAN_FILE)["sources"]
        self._rules = {s: (p["copies"], p["extra_below"]) for s, p in sources.items()}

    def apply(self, docs: list[Document], unit: str) -> tuple[list[Document], list[Removal]]:
        kept, removed = [], []
        for doc in docs:
            copies, extra_below = self._rules[doc.source]
            n = copies + (mix_hash(doc.id, self.seed) < extra_below)
            if n == 0:
                removed.append(Removal(doc, self.step_name, REASON))
                continue
            if n > 1:
                doc.meta[COPIES] = n
            kept.append(doc)
        return kept, removed

    # ------------------------------------------------------------------ after the sink

    def outcome(self, state_dir: Path, out_dir: Path) -> dict[str, Any]:
        """Target against achieved per source, counted exactly from the shard indexes. The
        achieved share is of all tokens written, as the budget is; the train share differs by
        which documents the val split happened to take (and val keeping one copy of each)."""
        decision = read_json(Path(state_dir) / PLAN_FILE)
        counts = {split: _source_counts(Path(out_dir) / "shards" / split) for split in SPLITS}
        totals = {split: sum(t for _, t in c.values()) or 1 for split, c in counts.items()}
        capped = [s for s, p in decision["sources"].items() if p["capped"]]
        rows = {}
        for s, p in decision["sources"].items():
            (train_docs, train_tokens), (val_docs, val_tokens) = (counts[x].get(s, (0, 0)) for x in SPLITS)
            achieved = (train_tokens + val_tokens) / (totals["train"] + totals["val"])
            diff = achieved - p["share"]
            rows[s] = {
                "target_share": p["share"],
                "achieved_share": round(achieved, 5),
                "difference": round(diff, 5),
                "train_share": round(train_tokens / totals["train"], 5),
                "epochs": p["epochs"],
                "train": {"docs": train_docs, "tokens": train_tokens},
                "val": {"docs": val_docs, "tokens": val_tokens},
                "note": _note(p, diff, capped, decision["max_epochs"], train_tokens + val_tokens),
            }
        return {
            "budget_tokens": decision["budget_tokens"],
            "budget": decision["budget"],
            "max_epochs": decision["max_epochs"],
            "tokens_per_byte_from": decision["estimate"]["tokenizer"],
            "sources": rows,
        }

    def report(self, state_dir: Path, out_dir: Path) -> list[str]:
        if not (Path(state_dir) / PLAN_FILE).exists():
            return []
        o = self.outcome(state_dir, out_dir)
        lines = [
            f"## Mix ({self.step_name})",
            "",
            f"Budget {o['budget_tokens']:,} tokens ({o['budget']}), at most {o['max_epochs']:g} epochs per "
            f"source; tokens per byte estimated with: {o['tokens_per_byte_from']}. Achieved shares are of "
            "all tokens in the shard indexes (train and val, as the budget); val keeps one copy of a "
            "repeated document.",
            "Shards hold one source each: the grist trainer samples windows across all shards, so "
            "every batch sees the mixture; a reader walking shards in order must shuffle itself.",
            "",
            "| source | target | achieved | diff | train share | epochs | train docs | train tokens "
            "| val docs | val tokens | note |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for s, r in o["sources"].items():
            lines.append(
                f"| {s} | {r['target_share']:.1%} | {r['achieved_share']:.1%} | {r['difference']:+.1%} | "
                f"{r['train_share']:.1%} | {r['epochs']:.2f} | {r['train']['docs']:,} | "
                f"{r['train']['tokens']:,} | {r['val']['docs']:,} | {r['val']['tokens']:,} | {r['note']} |"
            )
        return [*lines, ""]


def _source_counts(split_dir: Path) -> dict[str, tuple[int, int]]:
    """source -> (documents, tokens) over a split's shard indexes, copies included."""
    counts: dict[str, tuple[int, int]] = {}
    for path in sorted(split_dir.glob(f"*{INDEX_SUFFIX}")):
        index = pq.read_table(path, columns=["source", "n_tokens"])
        for r in index.group_by("source").aggregate([("n_tokens", "count"), ("n_tokens", "sum")]).to_pylist():
            docs, tokens = counts.get(r["source"], (0, 0))
            counts[r["source"]] = (docs + r["n_tokens_count"], tokens + r["n_tokens_sum"])
    return counts


def _note(p: dict[str, Any], diff: float, capped: list[str], max_epochs: float, written: int) -> str:
    """Why a source missed its share by more than TOLERANCE, or that a cap bound it."""
    if p["share"] > 0 and p["docs"] == 0:
        return "no document of this source reached the mix"
    if p["capped"]:
        return (
            f"capped at max_epochs={max_epochs:g}: {p['available_tokens']:,} tokens available, "
            f"{p['target_tokens']:,} wanted"
        )
    if abs(diff) <= TOLERANCE:
        return ""
    if capped and diff > 0:
        return f"above target because {', '.join(capped)} fell short of theirs"
    return (
        f"planned {p['planned_tokens']:,} tokens, wrote {written:,}: the token estimate missed "
        "(or val left out copies of repeated documents)"
    )
