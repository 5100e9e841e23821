"""The tokenize sink: trains (or loads) the tokenizer, splits train/val, writes verified shards.

Every decision is a function of document ids, never of where a document sits, so the output
is the same however the corpus is cut into units, batches and workers:

* Tokenizer training text: the documents with the lowest `sample_hash(id)` until
  `train_sample_mb` (10^6 bytes) of text. Each summarized batch sends its own lowest-hash
  documents up to that budget, which provably contains the global selection (a document in the
  global selection has less than the budget of lower-hash text before it anywhere, so also
  within its batch), and `plan` keeps the global lowest. The price of that exactness: a batch
  holding less than the budget sends all its text, so the summaries are up to one copy of the
  corpus text (read back one unit at a time, never held at once).
* Validation split: a document is in val iff `val_hash(id) < hash_cut`, with an independent hash
  so the tokenizer sample is not biased towards val documents. `hash_cut / 2**64` is the
  fraction of the id space in val: `val_fraction` directly, or for `val_tokens` the smallest cut
  whose documents hold that many tokens, estimated from their byte counts and the bytes per
  token the new tokenizer achieves on the sample (its own training text, so the estimate is a
  little optimistic: val ends slightly over budget, by up to ~10 % plus its last document).

* Copies: a document whose `meta["mix_copies"]` is n (set by the mix step) is written n times,
  copy k > 1 as `<id>#copy<k>`. Copies follow the document's split, so none leaks across; val
  keeps the first only (a repeat would just weight that document) and counts the others as
  `val_copies_dropped`. Within a batch every document's copy k comes before any copy k + 1, so
  repeats sit a batch apart, not in one training window (their order thus depends on the
  recipe's batch_size; which documents and splits never do).

State written by `plan` under its state dir: tokenizer.json, val.json (the val rule) and
encoder.json (whether the fast encoder matched HF on the sample, so every worker encodes the
same way). Output: `shards/{train,val}/<unit>.bin` + `.idx.parquet`, a unit with no document in
a split writes no shard for it; `finalize` verifies them all and writes `shards/index.json` and
a copy of the tokenizer next to the shards.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field, FilePath, NonNegativeInt, PositiveFloat, PositiveInt

from pipeline.atomic import atomic_path, crash_point, read_json, write_json
from pipeline.config import UnitFloat
from pipeline.document import Document, copies_of, copy_id
from pipeline.sampling import MB, keep_lowest_texts, lowest_within
from pipeline.shards import SPLITS, ShardWriter, remove_shard, verify_dir, write_index
from pipeline.steps.base import ParallelMap, Sink, Summaries
from pipeline.tokenizer import SEPARATOR, Encoder, load_tokenizer, save_tokenizer, train_bpe

TOKENIZER_FILE = "tokenizer.json"
VAL_FILE = "val.json"
ENCODER_FILE = "encoder.json"
CHECK_BYTES = 4 * MB  # sample text compared id for id between HF and the fast encoder in `plan`
_SAMPLE_SALT = 0x9E3779B97F4A7C15  # derives the sampling hash seed from the val hash seed
_HASH_SPACE = 1 << 64

SUMMARY_SCHEMA = pa.schema(
    [
        pa.field("val_hash", pa.uint64(), nullable=False),
        pa.field("sample_hash", pa.uint64(), nullable=False),
        pa.field("n_bytes", pa.int64(), nullable=False),
        pa.field("text", pa.large_string()),  # only for documents in the batch's training sample
    ]
)


def val_hash(doc_id: str, seed: int) -> int:
    """xxh64 of the id: a document is in val iff this is below the planned cut."""
    return xxhash.xxh64_intdigest(doc_id.encode("utf-8"), seed=seed)


def sample_hash(doc_id: str, seed: int) -> int:
    """Another xxh64 of the id, independent of `val_hash`: orders documents for the training sample."""
    return xxhash.xxh64_intdigest(doc_id.encode("utf-8"), seed=seed ^ _SAMPLE_SALT)


def _lowest_rows(summary: pa.Table, budget: int) -> pa.Table:
    """The summary rows `lowest_within` selects, in sample-hash order."""
    return summary.take(
        lowest_within(summary["sample_hash"].to_numpy(), summary["n_bytes"].to_numpy(), budget)
    )


class Tokenize(Sink):
    """Parameters: `vocab_size` of the BPE to train (ignored when `tokenizer` names an existing
    tokenizer.json), `train_sample_mb` of text to train it on, the val split as `val_fraction`
    of documents or, when set, `val_tokens` (an approximate token budget), and the hash `seed`."""

    name = "tokenize"
    write_label = "write shards"

    def __init__(
        self,
        *,
        vocab_size: Annotated[int, Field(ge=257, le=2**32 - 1)] = 8192,
        tokenizer: FilePath | None = None,
        train_sample_mb: PositiveFloat = 64,
        val_fraction: Annotated[UnitFloat, Field(lt=1)] = 0.01,
        val_tokens: PositiveInt | None = None,
        seed: Annotated[NonNegativeInt, Field(lt=_HASH_SPACE)] = 0,
    ) -> None:
        super().__init__()
        self.sample_bytes = int(train_sample_mb * MB)
        self._encoder: Encoder | None = None
        self._sep_id = 0
        self._hash_cut = 0

    # ------------------------------------------------------------------ summarize / plan

    def summarize(self, docs: list[Document], unit: str) -> pa.Table:
        n_bytes = np.array([len(d.text.encode("utf-8")) for d in docs], dtype=np.int64)
        sample = np.array([sample_hash(d.id, self.seed) for d in docs], dtype=np.uint64)
        texts: list[str | None] = [None] * len(docs)
        for i in lowest_within(sample, n_bytes, self.sample_bytes).tolist():
            texts[i] = docs[i].text
        return pa.table(
            {
                "val_hash": pa.array([val_hash(d.id, self.seed) for d in docs], pa.uint64()),
                "sample_hash": sample,
                "n_bytes": n_bytes,
                "text": pa.array(texts, pa.large_string()),
            },
            schema=SUMMARY_SCHEMA,
        )

    def compact_summary(self, table: pa.Table) -> pa.Table:
        """Each batch offered its own lowest-hash texts; keep only the unit's, within the budget."""
        return keep_lowest_texts(table, table["sample_hash"].to_numpy(), self.sample_bytes)

    def plan(self, summaries: Summaries, state_dir: Path, pmap: ParallelMap) -> dict[str, Any]:
        state_dir = Path(state_dir)
        val_hashes, doc_bytes = [], []
        sample = SUMMARY_SCHEMA.empty_table()
        for table in summaries:
            val_hashes.append(table["val_hash"].to_numpy())
            doc_bytes.append(table["n_bytes"].to_numpy())
            candidates = pa.concat_tables([sample, table.filter(pc.is_valid(table["text"]))])
            sample = _lowest_rows(candidates, self.sample_bytes)  # bounded whatever the number of units
        texts = sample["text"].to_pylist()
        if not texts:
            raise ValueError("tokenize: the corpus is empty, nothing to train a tokenizer on or to shard")

        tokenizer = load_tokenizer(self.tokenizer) if self.tokenizer else train_bpe(texts, self.vocab_size)
        if tokenizer.token_to_id(SEPARATOR) is None:
            raise ValueError(f"tokenize: tokenizer {self.tokenizer} has no {SEPARATOR!r} token")
        save_tokenizer(tokenizer, state_dir / TOKENIZER_FILE)

        check = _lowest_rows(sample, CHECK_BYTES)
        check_texts = check["text"].to_pylist()
        encoder = Encoder(tokenizer, check_texts=check_texts)
        check_tokens = sum(len(ids) for ids in encoder.encode_batch(check_texts))
        bytes_per_token = pc.sum(check["n_bytes"]).as_py() / max(check_tokens, 1)
        encoder_state = {"fast": encoder.fast, "fallback_reason": encoder.fallback_reason}
        write_json(state_dir / ENCODER_FILE, encoder_state)

        hashes = np.concatenate(val_hashes)
        est_tokens = np.concatenate(doc_bytes) / bytes_per_token + 1  # + the separator
        hash_cut = self._hash_cut_for(hashes, est_tokens)
        in_val = hashes < np.uint64(hash_cut)
        val = {
            "rule": "a document is in val iff xxh64(utf-8 id, seed) < hash_cut",
            "seed": self.seed,
            "hash_cut": hash_cut,
            "threshold": hash_cut / _HASH_SPACE,
            "val_fraction": None if self.val_tokens else self.val_fraction,
            "val_tokens": self.val_tokens,
        }
        write_json(state_dir / VAL_FILE, val)
        return {
            "vocab_size": tokenizer.get_vocab_size(),
            "trained": not self.tokenizer,
            "sample_docs": len(texts),
            "sample_bytes": pc.sum(sample["n_bytes"]).as_py(),
            "bytes_per_token": round(bytes_per_token, 4),
            "fast_encoder": encoder.fast,
            "docs": int(hashes.size),
            "val_threshold": val["threshold"],
            "val_docs_expected": int(in_val.sum()),
            "val_tokens_expected": int(est_tokens[in_val].sum()),
        }

    def _hash_cut_for(self, hashes: np.ndarray, est_tokens: np.ndarray) -> int:
        """The val cut: from val_fraction, or the smallest cut reaching val_tokens."""
        if self.val_tokens is None:
            return min(int(self.val_fraction * _HASH_SPACE), _HASH_SPACE - 1)
        total = float(est_tokens.sum())
        if self.val_tokens > total / 2:
            raise ValueError(
                f"tokenize: val_tokens={self.val_tokens:,} is more than half of the corpus "
                f"(about {total:,.0f} tokens): lower it or use val_fraction"
            )
        order = np.argsort(hashes, kind="stable")
        k = int(np.searchsorted(np.cumsum(est_tokens[order]), self.val_tokens, side="left"))
        return min(int(hashes[order[k]]) + 1, _HASH_SPACE - 1)  # stays a uint64

    # ------------------------------------------------------------------ per worker

    def load(self, state_dir: Path) -> None:
        super().load(state_dir)
        state_dir = Path(state_dir)
        fast = read_json(state_dir / ENCODER_FILE)["fast"]
        self._encoder = Encoder(state_dir / TOKENIZER_FILE, fast=fast)
        self._sep_id = self._encoder.tokenizer.token_to_id(SEPARATOR)
        self._hash_cut = read_json(state_dir / VAL_FILE)["hash_cut"]

    def write_unit(self, batches: Iterable[list[Document]], unit_id: str, out_dir: Path) -> dict[str, Any]:
        """Encode the unit batch by batch into one shard per non-empty split (memory stays flat
        however big the unit); a re-run overwrites it with identical bytes (and removes a shard
        its split no longer has)."""
        if self._encoder is None:
            raise RuntimeError("tokenize: load(state_dir) must run before write_unit")
        if "/" in unit_id or unit_id.startswith("."):
            raise ValueError(f"tokenize: unit id {unit_id!r} is not a plain file name")
        paths = {split: Path(out_dir) / "shards" / split / unit_id for split in SPLITS}
        writers: dict[str, ShardWriter] = {}
        n_bytes = dict.fromkeys(SPLITS, 0)
        copies = {"docs": 0, "tokens": 0}  # copies beyond each document's first
        val_copies_dropped = 0
        try:
            for docs in batches:
                rows = []  # (document, its token ids, split, copies to write, UTF-8 bytes)
                for doc, ids in zip(docs, self._encoder.encode_batch([d.text for d in docs]), strict=True):
                    split = "val" if val_hash(doc.id, self.seed) < self._hash_cut else "train"
                    n = copies_of(doc)
                    if split == "val":
                        val_copies_dropped += n - 1
                        n = 1
                    rows.append((doc, ids, split, n, len(doc.text.encode("utf-8"))))
                for k in range(1, max((row[3] for row in rows), default=0) + 1):
                    for doc, ids, split, n, size in rows:
                        if k > n:
                            continue
                        if split not in writers:
                            writers[split] = ShardWriter(paths[split], self._encoder.vocab_size, self._sep_id)
                        writers[split].add(copy_id(doc.id, k), doc.source, ids, size)
                        n_bytes[split] += size
                        if k > 1:
                            copies["docs"] += 1
                            copies["tokens"] += len(ids) + 1  # + its separator
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise
        stats: dict[str, Any] = {}
        for split in SPLITS:
            if split in writers:
                shard = writers[split].close()
                stats[split] = {"docs": shard.n_docs, "tokens": shard.n_tokens, "bytes": n_bytes[split]}
            else:
                remove_shard(paths[split])
                stats[split] = {"docs": 0, "tokens": 0, "bytes": 0}
        return {**stats, "copies": copies, "val_copies_dropped": val_copies_dropped}

    def finalize(self, out_dir: Path) -> dict[str, Any]:
        """Verify every shard, then publish the tokenizer and shards/index.json beside them."""
        if self.state_dir is None:
            raise RuntimeError("tokenize: plan() or load(state_dir) must run before finalize")
        out_dir = Path(out_dir)
        report = verify_dir(out_dir / "shards", indexed=False)  # the index is written from it, below
        tokenizer_vocab = load_tokenizer(self.state_dir / TOKENIZER_FILE).get_vocab_size()
        if report.vocab_size != tokenizer_vocab:
            raise ValueError(
                f"tokenize: shards in {out_dir / 'shards'} have vocab_size {report.vocab_size}, "
                f"the tokenizer has {tokenizer_vocab}: stale shards from another run?"
            )
        with atomic_path(out_dir / TOKENIZER_FILE) as tmp:
            shutil.copyfile(self.state_dir / TOKENIZER_FILE, tmp)
        crash_point("finalize")  # the tokenizer published, the index not yet
        write_index(
            report,
            tokenizer=f"../{TOKENIZER_FILE}",
            separator=SEPARATOR,
            val_rule=read_json(self.state_dir / VAL_FILE),
        )
        return {
            "shards": len(report.shards),
            "vocab_size": report.vocab_size,
            **{split: vars(counts) for split, counts in report.splits.items()},
        }
