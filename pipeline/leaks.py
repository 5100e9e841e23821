"""Is the validation split leak-free? The audit `pipeline verify` runs on a built corpus.

A validation loss means something only if the model cannot have seen the validation text: no
validation document may be a near-duplicate of a training document, and neither split may hold
benchmark items. The pipeline is built so (MinHash dedup runs over the whole corpus before the
split, copies made by `mix` stay in one split, `decontaminate` cleans both), and this audit
checks the result from the shards themselves, decoded with the corpus' tokenizer:

* near-duplicates: MinHash signatures and LSH bands of every document with the corpus recipe's
  `minhash_dedup` settings (its defaults when the recipe has no such step); each val document
  sharing a band with a train document is a candidate, confirmed by the true Jaccard of the
  two shingle sets against the step's threshold.
* benchmarks: the recipe's `decontaminate` step (or the default pack) run over the val split in
  document mode: every val document it would remove is a leak.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from pipeline.atomic import read_json
from pipeline.document import Document
from pipeline.driver import run_global
from pipeline.minhash.shingles import ShingleSets, shingle_batch
from pipeline.minhash.signatures import band_keys, signatures
from pipeline.minhash.verify import jaccard
from pipeline.shards import read_shard
from pipeline.steps.base import build_step
from pipeline.steps.decontaminate import Decontaminate
from pipeline.steps.minhash_dedup import MinHashDedup

BATCH = 512  # documents decoded and hashed at once


@dataclass
class LeakReport:
    val_docs: int
    train_docs: int
    jaccard_threshold: float
    near_duplicates: list[tuple[str, str, float]] = field(default_factory=list)  # val id, train id, J
    contaminated: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # val id, what matched

    @property
    def clean(self) -> bool:
        return not self.near_duplicates and not self.contaminated

    def describe(self) -> str:
        lines = [
            f"val near-duplicates of train: {len(self.near_duplicates)} of {self.val_docs:,} val documents "
            f"(Jaccard >= {self.jaccard_threshold:.2f} against {self.train_docs:,} train documents)",
            f"val documents with benchmark n-grams: {len(self.contaminated)} of {self.val_docs:,}",
        ]
        lines += [f"  near-duplicate: {v} ~ {t} (J {j:.3f})" for v, t, j in self.near_duplicates[:10]]
        lines += [f"  contaminated: {v}: {what}" for v, what in self.contaminated[:10]]
        return "\n".join(lines)


def documents(corpus_dir: Path, split: str, tokenizer: Tokenizer) -> Iterator[list[Document]]:
    """The split's documents decoded from its shards, in batches (the separator left out)."""
    for path in sorted((corpus_dir / "shards" / split).glob("*.bin")):
        shard = read_shard(path)
        index = shard.index.select(["id", "source", "start", "n_tokens"]).to_pydict()
        rows = list(zip(index["id"], index["source"], index["start"], index["n_tokens"], strict=True))
        for lo in range(0, len(rows), BATCH):
            part = rows[lo : lo + BATCH]
            ids = [shard.tokens[start + 1 : start + n].tolist() for _, _, start, n in part]
            texts = tokenizer.decode_batch(ids, skip_special_tokens=False)
            yield [Document(i, source, text) for (i, source, _, _), text in zip(part, texts, strict=True)]


def _recipe_step(recipe: dict[str, Any], kind: str, **fixed: Any) -> Any:
    """The recipe's step of this kind (its first), else the step's defaults; `fixed` overrides."""
    entry = next((e for e in recipe.get("steps", []) if e.get("step") == kind), {})
    params = {k: v for k, v in entry.items() if k != "step"} | fixed
    return build_step(kind, params, kind)


class _Signed:
    """Shingle sets and LSH band keys of one split, concatenated over batches."""

    def __init__(self, dedup: MinHashDedup) -> None:
        self.cfg = dedup.config
        self.ids: list[str] = []
        self.sets: list[ShingleSets] = []
        self.keys: list[np.ndarray] = []

    def add(self, docs: list[Document]) -> None:
        sets = shingle_batch([d.text for d in docs], self.cfg.ngram)
        sigs = signatures(sets, self.cfg.num_perm, self.cfg.seed, self.cfg.scheme)
        keys = band_keys(sigs, self.cfg.bands, self.cfg.rows)
        keys[sets.counts() == 0] = 0  # a document without shingles is nobody's candidate
        self.ids += [d.id for d in docs]
        self.sets.append(sets)
        self.keys.append(keys)

    def merged(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(offsets, hashes, band keys) of every document of the split."""
        counts = np.concatenate([s.counts() for s in self.sets]) if self.sets else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        hashes = np.concatenate([s.hashes for s in self.sets]) if self.sets else np.zeros(0, np.uint32)
        keys = np.concatenate(self.keys) if self.keys else np.zeros((0, self.cfg.bands), np.uint64)
        return offsets, hashes, keys


def _near_duplicates(train: _Signed, val: _Signed, threshold: float) -> list[tuple[str, str, float]]:
    t_off, t_hash, t_keys = train.merged()
    v_off, v_hash, v_keys = val.merged()
    pairs = set()
    for band in range(t_keys.shape[1]):
        order = np.argsort(t_keys[:, band], kind="stable")
        sorted_keys = t_keys[order, band]
        lo = np.searchsorted(sorted_keys, v_keys[:, band], side="left")
        hi = np.searchsorted(sorted_keys, v_keys[:, band], side="right")
        for v in np.flatnonzero((hi > lo) & (v_keys[:, band] != 0)):
            pairs.update((int(v), int(t)) for t in order[lo[v] : hi[v]])
    if not pairs:
        return []
    v_idx, t_idx = np.array(sorted(pairs)).T
    # One offsets/values space holding both splits: val documents after train's.
    offsets = np.concatenate([t_off, t_off[-1] + v_off[1:]])
    values = np.concatenate([t_hash, v_hash])
    sims = jaccard(offsets, values, len(train.ids) + v_idx, t_idx)
    return [
        (val.ids[v], train.ids[t], float(j))
        for v, t, j in zip(v_idx.tolist(), t_idx.tolist(), sims.tolist(), strict=True)
        if j >= threshold
    ]


def _contaminated(step: Decontaminate, val_batches: list[list[Document]]) -> list[tuple[str, dict]]:
    """Val documents the decontamination step (built in document mode) would remove, run
    through its own summarize / plan / apply so the audit can never disagree with the step."""
    with tempfile.TemporaryDirectory() as tmp:
        result = run_global(step, {"val": val_batches}, Path(tmp))
    return [(r.doc.id, r.doc.meta.get("decontam", {})) for r in result.removed["val"]]


def audit(corpus_dir: str | Path) -> LeakReport:
    """Check a built corpus' val split against its train split and the benchmark pack."""
    corpus_dir = Path(corpus_dir)
    manifest = corpus_dir / "manifest.json"
    recipe = read_json(manifest).get("recipe", {}) if manifest.exists() else {}
    dedup = _recipe_step(recipe, "minhash_dedup")
    decontam = _recipe_step(recipe, "decontaminate", mode="document")
    tokenizer = Tokenizer.from_file(str(corpus_dir / "tokenizer.json"))
    train, val = _Signed(dedup), _Signed(dedup)
    for batch in documents(corpus_dir, "train", tokenizer):
        train.add(batch)
    val_batches = list(documents(corpus_dir, "val", tokenizer))
    for batch in val_batches:
        val.add(batch)
    threshold = dedup.config.jaccard_threshold
    return LeakReport(
        val_docs=len(val.ids),
        train_docs=len(train.ids),
        jaccard_threshold=threshold,
        near_duplicates=_near_duplicates(train, val, threshold),
        contaminated=_contaminated(decontam, val_batches),
    )
