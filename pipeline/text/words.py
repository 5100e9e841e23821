"""Normalized words and their 64-bit hashes, the common ground of near-duplicate detection
(`pipeline.minhash`) and benchmark decontamination (`pipeline.decontam`).

Normalization (datatrove's, so near-duplicate rates compare): case folded, NFD with the
non-spacing marks (accents) dropped, decimal digits folded to `0`, and every character that is
not a letter, number or mark is a word separator (punctuation, symbols, `_`, whitespace). So
"Question: What's 2+2?" and "question what s 0 0" are the same words, and curly and straight
quotes agree.

Two implementations that must agree bit for bit, and tests hold them to it on real text:

* `reference_words` and `word_hash`: plain Python, one character and one word at a time.
  Slow, obviously right.
* `words`: the hot path. It works on the UTF-8 bytes of a whole batch at once with numpy: a
  256-entry table lower-cases ASCII, folds ASCII digits and turns ASCII separators into word
  breaks; each word's hash is `hashing`'s polynomial over its bytes, computed for all words at
  once from one prefix sum (`hashing.SpanHasher`). Only stretches between ASCII
  breaks that hold non-ASCII bytes go through the reference, once per distinct stretch (a
  per-process cache), because Unicode case folding, decomposition and separators need the
  Unicode database. That is exact because ASCII separators are also Unicode separators, and
  case folding and NFD never look across them. Such a stretch may yield several words; they
  all get the stretch's byte span, which is exact enough for cutting text around a match.

A word sequence hashes as the same polynomial one level up, over word hashes
(`hashing.combine`).

These hash values are persistent (MinHash signatures, the shipped decontamination pack): any
change to the normalisation or to `hashing` that moves them must rebuild both.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.text.hashing import SHARED_UNITS, hash_spans, hash_units

CHUNK_BYTES = SHARED_UNITS  # bytes hashed per prefix sum: the shared power tables cover a chunk
_U64 = np.uint64


# ----------------------------------------------------------------------------- reference


def reference_words(text: str) -> list[str]:
    """The normalized words of `text`, the definition every other path must reproduce."""
    out = []
    for ch in unicodedata.normalize("NFD", text.casefold()):
        cat = unicodedata.category(ch)
        if cat == "Mn":
            continue
        if cat[0] not in "LNM":
            out.append(" ")
        elif cat == "Nd":
            out.append("0")
        else:
            out.append(ch)
    return "".join(out).split()


def word_hash(word: str) -> int:
    """64-bit hash of one normalized word: the polynomial over its UTF-8 bytes, mixed."""
    return hash_units(word.encode("utf-8"))


# ----------------------------------------------------------------------------- vectorised


def _byte_table() -> np.ndarray:
    """ASCII letters lower-cased, ASCII digits to '0', other ASCII to 0 (a break); bytes of
    multi-byte characters kept, so words holding them can be recognised and redone exactly."""
    table = np.arange(256, dtype=np.uint8)
    for b in range(128):
        ch = chr(b)
        if "0" <= ch <= "9":
            table[b] = ord("0")
        elif ch.isascii() and ch.isalpha():
            table[b] = ord(ch.lower())
        else:
            table[b] = 0
    return table


CHAR_TABLE = _byte_table()


class _CharMap(dict[int, int | str | None]):
    """`str.translate` table built on first sight of each character: non-spacing marks
    deleted, decimal digits to '0', characters that are not letters, numbers or marks to a
    space. Hits are plain dict lookups in C; no table of all of Unicode is built up front."""

    def __missing__(self, cp: int) -> int | str | None:
        cat = unicodedata.category(chr(cp))
        value: int | str | None = (
            None if cat == "Mn" else "0" if cat == "Nd" else cp if cat[0] in "LNM" else " "
        )
        self[cp] = value
        return value


class _UnicodeWords:
    """`reference_words` for the stretches between ASCII breaks that hold non-ASCII bytes, one
    `translate` per stretch, and a cache: such stretches repeat a lot (curly quotes, accented
    names, whole words of other scripts)."""

    MAX_CACHE = 1 << 20

    def __init__(self) -> None:
        self.cache: dict[bytes, np.ndarray] = {}
        self.chars = _CharMap()

    def words(self, raw: str) -> list[str]:
        return unicodedata.normalize("NFD", raw.casefold()).translate(self.chars).split()

    def hashes(self, stretches: list[bytes]) -> list[np.ndarray]:
        """The word hashes of each stretch (0, 1 or more words)."""
        todo = list(dict.fromkeys(s for s in stretches if s not in self.cache))
        if todo:
            if len(self.cache) + len(todo) > self.MAX_CACHE:
                self.cache.clear()
            words = [self.words(s.decode("utf-8")) for s in todo]
            flat = [w.encode("utf-8") for ws in words for w in ws]
            lengths = np.fromiter((len(w) for w in flat), np.int64, len(flat))
            ends = np.cumsum(lengths)
            hashed = hash_spans(np.frombuffer(b"".join(flat), np.uint8), ends - lengths, ends)
            bounds = np.cumsum([0] + [len(ws) for ws in words])
            for i, s in enumerate(todo):
                self.cache[s] = hashed[bounds[i] : bounds[i + 1]]
        return [self.cache[s] for s in stretches]


UNICODE_WORDS = _UnicodeWords()


@dataclass(frozen=True)
class Words:
    """Every word of a batch of texts: hash, text index (non-decreasing) and UTF-8 byte span."""

    hashes: np.ndarray  # uint64
    doc: np.ndarray  # int64
    start: np.ndarray  # int64, byte offset in its own text
    end: np.ndarray  # int64

    def take(self, keep: np.ndarray) -> Words:
        """The words where `keep` (a mask or indices) says so."""
        return Words(self.hashes[keep], self.doc[keep], self.start[keep], self.end[keep])


def _chunk_words(data: np.ndarray, doc_starts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Word hashes, document index and byte spans (relative to `data`) of one chunk of whole
    documents; `doc_starts` are their byte offsets in `data` (the first is 0)."""
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


def words(texts: list[str], chunk_bytes: int = CHUNK_BYTES) -> Words:
    """The normalized words of every text, hashed (`word_hash`), with their byte spans.
    Texts are hashed `chunk_bytes` at a time (a text larger than that goes alone)."""
    arr = pa.array(texts, pa.large_string())
    _, offs_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offs_buf, np.int64)[: len(texts) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    parts: list[tuple[np.ndarray, ...]] = []
    i = 0
    while i < len(texts):
        j = max(int(np.searchsorted(offsets, offsets[i] + chunk_bytes, side="right")) - 1, i + 1)
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
