"""Batches for training and evaluation, read from a grist corpus through pipeline.shards.

A corpus directory is what `make corpus` writes: `shards/train/*.bin`, `shards/val/*.bin` (each
with its `.idx.parquet`) and `tokenizer.json`. It is verified with the same code as
`pipeline verify`, and tokens are memory-mapped, never loaded whole.

Training windows are `context + 1` tokens (inputs and the targets shifted by one) starting every
`context` tokens, so each epoch predicts every token once; with `bos_aligned` they start at
document starts instead (and every `context` tokens inside a longer document). The order is a
seeded permutation per epoch, and the whole data position is one integer, the number of windows
consumed so far: a checkpoint stores it and a resumed run continues from the very next window.
A step takes the next `batch_seqs` windows whatever the number of processes, and each process
reads its own contiguous part of them, so the global batch is the same on 1 or N processes.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from pipeline.shards import ShardError, read_shard, verify_dir
from pipeline.tokenizer import SEPARATOR, byte_to_unicode


class CorpusError(Exception):
    """The corpus is missing, broken, or does not fit the model; the message says which and why."""


class Corpus:
    """A verified corpus directory: train and val shards plus the tokenizer that made them."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        shards_dir = self.root / "shards"
        if not shards_dir.is_dir():
            raise CorpusError(
                f"{self.root}: no corpus here (expected shards/train, shards/val and tokenizer.json); "
                "build one with `make corpus` or `python -m pipeline run RECIPE output_dir=...`"
            )
        try:
            report = verify_dir(shards_dir)
        except ShardError as e:
            raise CorpusError(f"{self.root}: the shards do not verify: {e}") from None
        self.vocab_size, self.sep_id = report.vocab_size, report.sep_id
        self.train = [read_shard(p) for p in sorted((shards_dir / "train").glob("*.bin"))]
        self.val = [read_shard(p) for p in sorted((shards_dir / "val").glob("*.bin"))]
        if not self.train or not self.val:
            missing = "train" if not self.train else "val"
            raise CorpusError(f"{self.root}: no {missing} shards (a corpus needs both splits)")
        tokenizer_path = self.root / "tokenizer.json"
        if not tokenizer_path.is_file():
            raise CorpusError(f"{tokenizer_path}: not found; the trainer needs the corpus' tokenizer")
        self.tokenizer_json = tokenizer_path.read_text(encoding="utf-8")
        tokenizer = Tokenizer.from_str(self.tokenizer_json)
        if tokenizer.get_vocab_size() != self.vocab_size:
            raise CorpusError(
                f"{tokenizer_path}: tokenizer.json has {tokenizer.get_vocab_size()} tokens, the shards a "
                f"vocabulary of {self.vocab_size}: they come from different corpus builds"
            )
        if tokenizer.token_to_id(SEPARATOR) != self.sep_id:
            raise CorpusError(
                f"{tokenizer_path}: the separator {SEPARATOR!r} is id {tokenizer.token_to_id(SEPARATOR)} "
                f"in tokenizer.json but {self.sep_id} in the shards"
            )
        self.tokenizer = tokenizer

    @property
    def train_tokens(self) -> int:
        return sum(s.n_tokens for s in self.train)

    @property
    def val_tokens(self) -> int:
        return sum(s.n_tokens for s in self.val)

    @cached_property
    def fingerprint(self) -> dict[str, str]:
        """What a checkpoint must agree with: the tokenizer and the exact token content of every
        shard (their header checksums, which `verify_dir` has just checked against the bytes)."""
        shards = [
            (f"{split}/{s.path.name}", s.n_tokens, s.tokens_checksum, s.index_checksum)
            for split, group in (("train", self.train), ("val", self.val))
            for s in group
        ]
        return {
            "tokenizer": hashlib.sha256(self.tokenizer_json.encode()).hexdigest()[:16],
            "shards": hashlib.sha256(json.dumps(shards).encode()).hexdigest()[:16],
        }

    def token_bytes(self) -> torch.Tensor:
        """UTF-8 bytes each token id stands for (0 for special tokens), for bits per byte. In a
        byte-level BPE every character of a token's string is one byte."""
        table = set(byte_to_unicode().values())
        special = {i for i, t in self.tokenizer.get_added_tokens_decoder().items() if t.special}
        out = torch.zeros(self.vocab_size, dtype=torch.int64)
        for token, i in self.tokenizer.get_vocab().items():
            if i in special:
                continue
            if not set(token) <= table:
                raise CorpusError(
                    f"{self.root}: token {token!r} is not byte-level BPE; bits per byte needs one"
                )
            out[i] = len(token)
        return out

    def unigram_entropy(self) -> float:
        """Entropy (nats per token) of the train split's token frequencies: the loss of the best
        model that ignores context, which a trained model must beat by a wide margin."""
        counts = np.zeros(self.vocab_size, dtype=np.int64)
        for shard in self.train:
            for lo in range(0, shard.n_tokens, 1 << 24):
                counts += np.bincount(shard.tokens[lo : lo + (1 << 24)], minlength=self.vocab_size)
        p = counts[counts > 0] / counts.sum()
        return float(-(p * np.log(p)).sum())


def _window_starts(n_tokens: int, context: int, doc_starts: np.ndarray | None) -> np.ndarray:
    """Starts of the windows of context + 1 tokens that fit in a shard of n_tokens."""
    if doc_starts is None:
        starts = np.arange(0, n_tokens, context, dtype=np.int64)
    else:  # each document from its start, every `context` tokens until its end
        ends = np.append(doc_starts[1:], n_tokens)
        counts = np.maximum(1, -(-(ends - doc_starts) // context))
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        starts = np.repeat(doc_starts, counts) + offsets * context
    return starts[starts + context + 1 <= n_tokens]


class _Windows:
    """Windows addressed by a global offset into the shards laid end to end."""

    def __init__(self, shards: list, context: int, starts: np.ndarray) -> None:
        self.shards = shards
        self.context = context
        self.ends = np.cumsum([s.n_tokens for s in shards])
        self.starts = starts

    def read(self, offsets: np.ndarray) -> torch.Tensor:
        """(len(offsets), context + 1) int64 tokens."""
        out = np.empty((len(offsets), self.context + 1), dtype=np.int64)
        which = np.searchsorted(self.ends, offsets, side="right")
        for row, (offset, k) in enumerate(zip(offsets.tolist(), which.tolist(), strict=True)):
            local = offset - (self.ends[k] - self.shards[k].n_tokens)
            out[row] = self.shards[k].tokens[local : local + self.context + 1]
        return torch.from_numpy(out)


def _global_starts(shards: list, context: int, bos_aligned: bool) -> np.ndarray:
    bases = np.cumsum([0] + [s.n_tokens for s in shards[:-1]])
    parts = [
        base + _window_starts(s.n_tokens, context, s.index["start"].to_numpy() if bos_aligned else None)
        for base, s in zip(bases.tolist(), shards, strict=True)
    ]
    return np.concatenate(parts).astype(np.int64)


class TrainWindows(_Windows):
    """The training stream: epoch after epoch of shuffled windows, position-addressed.
    `max_tokens` trains on a fixed seeded sample of the windows (a smaller data set, which
    is how the default run shows overfitting within minutes)."""

    def __init__(
        self, shards: list, context: int, bos_aligned: bool, seed: int, max_tokens: int | None = None
    ) -> None:
        starts = _global_starts(shards, context, bos_aligned)
        if not len(starts):
            raise CorpusError(f"the train split has no window of {context + 1} tokens (context {context})")
        if max_tokens is not None and max_tokens < len(starts) * context:
            # A fixed seeded sample of windows from all over the split, so it keeps the mixture.
            keep = np.random.default_rng([seed, 1 << 20]).choice(
                len(starts), -(-max_tokens // context), False
            )
            starts = starts[np.sort(keep)]
        super().__init__(shards, context, starts)
        self.seed = seed
        self._epoch, self._order = -1, self.starts

    def __len__(self) -> int:
        return len(self.starts)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = self.starts[np.random.default_rng([self.seed, epoch]).permutation(len(self.starts))]
        return self._order

    def start_of(self, position: int) -> int:
        """The global offset where the window at this position of the stream starts."""
        return int(self._epoch_order(position // len(self))[position % len(self)])

    def batch(self, position: int, count: int) -> torch.Tensor:
        """Windows position .. position + count - 1 of the stream (they may span two epochs)."""
        offsets = np.fromiter((self.start_of(p) for p in range(position, position + count)), np.int64, count)
        return self.read(offsets)


@dataclass(frozen=True)
class ValSet:
    """The fixed validation set: windows of context + 1 tokens, and for every target token the
    source of the document it belongs to (an index into `sources`), so evaluation can report the
    loss of each source of the mixture as well as the total."""

    windows: torch.Tensor  # (n, context + 1) int64
    source_of_target: torch.Tensor  # (n, context) int64
    sources: list[str]


def val_set(shards: list, context: int, max_tokens: int) -> ValSet:
    """Non-overlapping windows over the val split, evenly spaced through it when it holds more
    than max_tokens targets (so every source is represented)."""
    windows = _Windows(shards, context, _global_starts(shards, context, bos_aligned=False))
    if not len(windows.starts):
        raise CorpusError(f"the val split has no window of {context + 1} tokens (context {context})")
    wanted = min(len(windows.starts), math.ceil(max_tokens / context))
    pick = windows.starts[np.linspace(0, len(windows.starts) - 1, wanted).round().astype(np.int64)]
    indexes = [s.index.select(["source", "start"]) for s in shards]
    sources = sorted({name for index in indexes for name in index["source"].to_pylist()})
    # Each token's source, laid end to end like the windows address them.
    token_source = np.concatenate(
        [
            np.repeat(
                np.searchsorted(sources, index["source"].to_numpy(zero_copy_only=False)),
                np.diff(np.append(index["start"].to_numpy(), shard.n_tokens)),
            )
            for shard, index in zip(shards, indexes, strict=True)
        ]
    )
    targets = pick[:, None] + 1 + np.arange(context)[None, :]
    return ValSet(windows.read(pick), torch.from_numpy(token_source[targets].astype(np.int64)), sources)
