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
  breaks; each word's hash is a polynomial over its bytes computed for all words at once from
  one prefix sum (the base is odd, hence invertible modulo 2^64). Only stretches between ASCII
  breaks that hold non-ASCII bytes go through the reference, once per distinct stretch (a
  per-process cache), because Unicode case folding, decomposition and separators need the
  Unicode database. That is exact because ASCII separators are also Unicode separators, and
  case folding and NFD never look across them. Such a stretch may yield several words; they
  all get the stretch's byte span, which is exact enough for cutting text around a match.

A word sequence hashes as the same polynomial one level up, over word hashes (`combine`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

MASK64 = (1 << 64) - 1
WORD_BASE = 0x9E3779B97F4A7C15  # odd: invertible modulo 2^64, so prefix sums can be divided out
NGRAM_BASE = 0xD6E8FEB86659FD93  # odd, unrelated to WORD_BASE
CHUNK_BYTES = 1 << 22  # bytes hashed per prefix sum: bounds the power tables and temporaries
_U64 = np.uint64

_FMIX64 = (33, 0xFF51AFD7ED558CCD, 33, 0xC4CEB9FE1A85EC53, 33)


def fmix64(h: int) -> int:
    """MurmurHash3's 64-bit finalizer: spreads a polynomial hash over all 64 bits."""
    s1, m1, s2, m2, s3 = _FMIX64
    h ^= h >> s1
    h = (h * m1) & MASK64
    h ^= h >> s2
    h = (h * m2) & MASK64
    return h ^ (h >> s3)


def fmix64_array(h: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2, s3 = (_U64(v) for v in _FMIX64)
    h = h ^ (h >> s1)
    h *= m1
    h ^= h >> s2
    h *= m2
    return h ^ (h >> s3)


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
    """64-bit hash of one normalized word: Horner's polynomial over its UTF-8 bytes, mixed."""
    h = 0
    for byte in word.encode("utf-8"):
        h = (h * WORD_BASE + byte) & MASK64
    return fmix64(h)


def combine(word_hashes: list[int] | tuple[int, ...]) -> int:
    """64-bit hash of a word sequence: the same polynomial over word hashes."""
    h = 0
    for w in word_hashes:
        h = (h * NGRAM_BASE + w) & MASK64
    return h


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


class _Powers:
    """WORD_BASE^k and WORD_BASE^-k modulo 2^64 for k < size, grown on demand."""

    def __init__(self) -> None:
        self.size = 0
        self.up = np.empty(0, _U64)
        self.down = np.empty(0, _U64)

    def ensure(self, size: int) -> None:
        if size <= self.size:
            return
        size = max(size, 1 << 20)
        inv = pow(WORD_BASE, -1, 1 << 64)
        with np.errstate(over="ignore"):
            self.up = np.cumprod(np.full(size, WORD_BASE, _U64))
            self.down = np.cumprod(np.full(size, inv, _U64))
        self.up = np.concatenate([np.ones(1, _U64), self.up[:-1]])
        self.down = np.concatenate([np.ones(1, _U64), self.down[:-1]])
        self.size = size


_POWERS = _Powers()


def hash_spans(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """`word_hash` of every byte span [starts[i], ends[i]) of `data`, all from one prefix sum:
    sum(c_k B^(e-1-k)) = (P[e] - P[s]) * B^(e-1) with P the prefix sums of c_k * B^-k."""
    n = len(data)
    _POWERS.ensure(n + 1)
    prefix = np.zeros(n + 1, _U64)
    with np.errstate(over="ignore"):
        np.cumsum(data.astype(_U64) * _POWERS.down[:n], out=prefix[1:])
        return fmix64_array((prefix[ends] - prefix[starts]) * _POWERS.up[ends - 1])


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
