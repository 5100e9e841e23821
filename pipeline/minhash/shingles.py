"""Text to shingle hashes: normalized words, word n-grams, one 32-bit hash per n-gram.

Words and their hashes are `pipeline.text.words`'s (datatrove's normalization, so near-duplicate
rates compare). Two implementations that must agree bit for bit, and a test holds them to it
on real text:

* `reference_*`: plain Python, one word and one shingle at a time. Slow, obviously right, and
  what the datasketch comparison feeds to `datasketch.MinHash`.
* `shingle_batch`: the hot path. Word hashes of a whole batch at once (`text.words.words`), then
  n-gram hashes as the same polynomial one level up, over word hashes, for all positions with
  `n` vectorised multiply-adds.

Documents with fewer than `n` words get one shingle made of all their words, so short texts
still deduplicate; documents without a word get no shingle (and no signature).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.text.hashing import NGRAM_BASE, combine
from pipeline.text.words import CHUNK_BYTES, reference_words, word_hash, words

_U64 = np.uint64


# ----------------------------------------------------------------------------- reference


def shingle_hash(shingle: tuple[str, ...]) -> int:
    """32-bit hash of one shingle (its words): the high half of `combine`, whose low bits mix
    poorly. This is the `hashfunc` under which grist's signatures equal datasketch's."""
    return combine([word_hash(w) for w in shingle]) >> 32


def reference_shingles(text: str, n: int) -> list[tuple[str, ...]]:
    """Word n-grams of the normalized text (all words as one shingle when there are fewer)."""
    ws = reference_words(text)
    if not ws:
        return []
    if len(ws) < n:
        return [tuple(ws)]
    return [tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)]


def reference_shingle_set(text: str, n: int) -> set[int]:
    return {shingle_hash(s) for s in reference_shingles(text, n)}


# ----------------------------------------------------------------------------- vectorised


@dataclass(frozen=True)
class ShingleSets:
    """Each document's distinct shingle hashes, sorted: `hashes[offsets[i]:offsets[i+1]]`."""

    hashes: np.ndarray  # uint32
    offsets: np.ndarray  # int64, len = documents + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def to_arrow(self) -> pa.ListArray:
        return pa.LargeListArray.from_arrays(pa.array(self.offsets, pa.int64()), pa.array(self.hashes))


def shingle_batch(texts: list[str], n: int) -> ShingleSets:
    """The distinct 32-bit shingle hashes of every text, equal to `reference_shingle_set`."""
    w = words(texts, CHUNK_BYTES)  # the module's CHUNK_BYTES, read here so tests can shrink it
    hashes, doc = w.hashes, w.doc
    n_docs = len(texts)
    per_doc = np.bincount(doc, minlength=n_docs) if len(doc) else np.zeros(n_docs, np.int64)
    m = len(hashes)
    with np.errstate(over="ignore"):
        if m >= n:
            gram = hashes[: m - n + 1].copy()
            for i in range(1, n):
                gram *= _U64(NGRAM_BASE)
                gram += hashes[i : m - n + 1 + i]
            valid = doc[: m - n + 1] == doc[n - 1 :]
            gram, gram_doc = gram[valid], doc[: m - n + 1][valid]
        else:
            gram, gram_doc = np.empty(0, _U64), np.empty(0, np.int64)
        short = np.flatnonzero((per_doc > 0) & (per_doc < n))
        if len(short):  # fewer words than n: the whole text is one shingle
            word_start = np.cumsum(per_doc) - per_doc
            extra = [combine(hashes[word_start[d] : word_start[d] + per_doc[d]].tolist()) for d in short]
            gram = np.concatenate([gram, np.array(extra, _U64)])
            gram_doc = np.concatenate([gram_doc, short])
    keys = (gram_doc.astype(_U64) << _U64(32)) | (gram >> _U64(32))
    keys.sort()  # then drop repeats: faster than np.unique, which hashes before sorting
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    key_doc = (keys >> _U64(32)).astype(np.int64)
    offsets = np.searchsorted(key_doc, np.arange(n_docs + 1)).astype(np.int64)
    return ShingleSets((keys & _U64(0xFFFFFFFF)).astype(np.uint32), offsets)
