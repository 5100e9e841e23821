"""Normalized words and their n-gram hashes, with byte offsets, for a whole batch at once.

Normalization is minhash dedup's (`pipeline.minhash.shingles`, datatrove's): case folded, NFD
with accents dropped, decimal digits folded to `0`, and every character that is not a letter,
number or mark separates words. So "Question: What's 2+2?" and "question what s 0 0" are the
same words, curly and straight quotes agree, and a changed number does not hide a leaked
GSM8K problem. The pack and the corpus go through this same function, so they always agree.

The hot path reuses the shingler's pieces (its ASCII byte table, its prefix-sum word hash and
its cached exact Unicode path) but also keeps each word's byte span, which span removal needs.
A stretch between ASCII breaks that holds non-ASCII bytes may yield several words; they all get
the stretch's span, which is exact enough for cutting text ± `span_margin` characters.

N-gram hashes are the polynomial over word hashes of `combine`, computed for every position
with `n` vectorised multiply-adds; the shorter grams matched for short benchmark items (8
words) fall out of the same loop for free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.minhash.shingles import CHAR_TABLE, CHUNK_BYTES, NGRAM_BASE, UNICODE_WORDS, hash_spans

_U64 = np.uint64


@dataclass(frozen=True)
class Words:
    """Every word of a batch of texts: hash, text index (non-decreasing) and UTF-8 byte span."""

    hashes: np.ndarray  # uint64
    doc: np.ndarray  # int64
    start: np.ndarray  # int64, byte offset in its own text
    end: np.ndarray  # int64


def _chunk_words(data: np.ndarray, doc_starts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Word hashes, document index and byte spans (relative to `data`) of one chunk."""
    mapped = CHAR_TABLE[data]
    is_word = mapped != 0
    n = len(data)
    edge = np.zeros(n + 1, dtype=bool)  # a boundary between i-1 and i
    edge[1:-1] = is_word[1:] != is_word[:-1]
    edge[0] = edge[n] = True
    edge[doc_starts] = True  # a word never runs across two documents
    bounds = np.flatnonzero(edge)
    left, right = bounds[:-1], bounds[1:]
    keep = is_word[left]
    starts, ends = left[keep], right[keep]
    hashes = hash_spans(mapped, starts, ends)
    doc = np.searchsorted(doc_starts, starts, side="right") - 1
    high = np.zeros(n + 1, np.int32)
    np.cumsum(data >= 0x80, out=high[1:])
    special = np.flatnonzero(high[ends] != high[starts])
    if len(special) == 0:
        return hashes, doc, starts, ends
    # Stretches with non-ASCII bytes are redone exactly; each may yield 0, 1 or more words.
    raw = data.tobytes()
    subs = UNICODE_WORDS.hashes(
        [raw[s:e] for s, e in zip(starts[special].tolist(), ends[special].tolist(), strict=True)]
    )
    counts = np.ones(len(starts), np.int64)
    counts[special] = [len(s) for s in subs]
    out = np.empty(int(counts.sum()), _U64)
    first = np.cumsum(counts) - counts
    plain = np.ones(len(starts), dtype=bool)
    plain[special] = False
    out[first[plain]] = hashes[plain]
    sub_counts = counts[special]
    if sub_counts.sum():
        pos = np.repeat(first[special], sub_counts) + (
            np.arange(int(sub_counts.sum())) - np.repeat(np.cumsum(sub_counts) - sub_counts, sub_counts)
        )
        out[pos] = np.concatenate(subs)
    return out, np.repeat(doc, counts), np.repeat(starts, counts), np.repeat(ends, counts)


def words(texts: list[str]) -> Words:
    """The normalized words of every text, hashed, with their byte spans."""
    arr = pa.array(texts, pa.large_string())
    _, offs_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offs_buf, np.int64)[: len(texts) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    parts: list[tuple[np.ndarray, ...]] = []
    i = 0
    while i < len(texts):  # chunks of whole documents (a document larger than a chunk goes alone)
        j = max(int(np.searchsorted(offsets, offsets[i] + CHUNK_BYTES, side="right")) - 1, i + 1)
        lo, hi = int(offsets[i]), int(offsets[j])
        if hi > lo:
            h, d, s, e = _chunk_words(data[lo:hi], offsets[i:j] - lo)
            d = d + i
            base = offsets[d] - lo  # chunk-relative byte offsets to text-relative ones
            parts.append((h, d, s - base, e - base))
        i = j
    if not parts:
        empty = np.empty(0, np.int64)
        return Words(np.empty(0, _U64), empty, empty, empty)
    return Words(*(np.concatenate(col) for col in zip(*parts, strict=True)))


def word_hashes_of(tokens: tuple[str, ...]) -> np.ndarray:
    """The hashes `words` gives these already-normalized words."""
    return words([" ".join(tokens)]).hashes


def ngrams(w: Words, lengths: range) -> dict[int, np.ndarray]:
    """Hashes of the word n-grams of every length in `lengths` (ascending, step 1), by length:
    entry i of length k covers words i .. i+k-1, and is only meaningful when those words are
    in one text (`within`), a check callers make after the cheap pack lookup, on few grams."""
    if lengths.start <= 1:
        raise ValueError("n-gram lengths start at 2")
    out = {}
    gram = w.hashes
    with np.errstate(over="ignore"):
        for k in range(2, lengths.stop):
            gram = gram[:-1] * _U64(NGRAM_BASE) + w.hashes[k - 1 :]
            if k in lengths:
                out[k] = gram
    return out


def within(w: Words, first: np.ndarray, length: int | np.ndarray) -> np.ndarray:
    """Which n-grams (first word, length) lie within one text."""
    return w.doc[first] == w.doc[first + length - 1]


def char_offsets(text: str, byte_offsets: np.ndarray) -> np.ndarray:
    """Byte offsets into `text`'s UTF-8 encoding as character offsets."""
    data = np.frombuffer(text.encode("utf-8"), np.uint8)
    if len(data) == len(text):
        return byte_offsets
    lead = np.zeros(len(data) + 1, np.int64)
    np.cumsum((data & 0xC0) != 0x80, out=lead[1:])
    return lead[byte_offsets]
