"""Text to shingle hashes: normalized words, word n-grams, one 32-bit hash per n-gram.

Normalization (datatrove's, so near-duplicate rates compare): case folded, NFD with the
non-spacing marks (accents) dropped, decimal digits folded to `0`, and every character that is
not a letter, number or mark is a word separator (punctuation, symbols, `_`, whitespace).

Two implementations that must agree bit for bit, and a test holds them to it on real text:

* `reference_*`: plain Python, one character and one word at a time. Slow, obviously right,
  and what the datasketch comparison feeds to `datasketch.MinHash`.
* `shingle_batch`: the hot path. It works on the UTF-8 bytes of a whole batch at once with
  numpy: a 256-entry table lower-cases ASCII, folds ASCII digits and turns ASCII separators
  into word breaks; each word's hash is a polynomial over its bytes computed for all words at
  once from one prefix sum (the base is odd, hence invertible modulo 2^64); n-gram hashes are
  the same polynomial one level up, over word hashes. Only words holding non-ASCII bytes go
  through the Python reference, once per distinct word (a per-process cache), because Unicode
  case folding, decomposition and separators need the Unicode database. That is exact because
  ASCII separators are also Unicode separators, and case folding and NFD never look across them.

Documents with fewer than `n` words get one shingle made of all their words, so short texts
still deduplicate; documents without a word get no shingle (and no signature).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

MASK64 = (1 << 64) - 1
WORD_BASE = 0x9E3779B97F4A7C15  # odd: invertible modulo 2^64, so prefix sums can be divided out
NGRAM_BASE = 0xD6E8FEB86659FD93  # odd, unrelated to WORD_BASE
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


def shingle_hash(shingle: tuple[str, ...]) -> int:
    """32-bit hash of one shingle (its words): the high half of `combine`, whose low bits mix
    poorly. This is the `hashfunc` under which grist's signatures equal datasketch's."""
    return combine([word_hash(w) for w in shingle]) >> 32


def reference_shingles(text: str, n: int) -> list[tuple[str, ...]]:
    """Word n-grams of the normalized text (all words as one shingle when there are fewer)."""
    words = reference_words(text)
    if not words:
        return []
    if len(words) < n:
        return [tuple(words)]
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def reference_shingle_set(text: str, n: int) -> set[int]:
    return {shingle_hash(s) for s in reference_shingles(text, n)}


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
CHUNK_BYTES = 1 << 22  # bytes hashed per prefix sum: bounds the power tables and temporaries


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


def _words_of_chunk(data: np.ndarray, doc_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Word hashes and each word's document (index into `doc_starts`) for one chunk of bytes.

    `doc_starts` are the byte offsets of the chunk's documents (the first is 0)."""
    mapped = CHAR_TABLE[data]
    is_word = mapped != 0
    n = len(data)
    before = np.zeros(n, dtype=bool)
    before[1:] = is_word[:-1]
    before[doc_starts[doc_starts < n]] = False  # a word never runs across two documents
    after = np.zeros(n, dtype=bool)
    after[:-1] = is_word[1:]
    ends_of_docs = np.append(doc_starts[1:], n)
    after[ends_of_docs[ends_of_docs > 0] - 1] = False
    starts = np.flatnonzero(is_word & ~before)
    ends = np.flatnonzero(is_word & ~after) + 1
    hashes = hash_spans(mapped, starts, ends)
    doc = np.searchsorted(doc_starts, starts, side="right") - 1
    high = np.zeros(n + 1, np.int32)
    np.cumsum(data >= 0x80, out=high[1:])
    special = np.flatnonzero(high[ends] != high[starts])
    if len(special) == 0:
        return hashes, doc
    # Stretches with non-ASCII bytes are redone exactly; each may yield 0, 1 or more words.
    raw = data.tobytes()
    spans = zip(starts[special].tolist(), ends[special].tolist(), strict=True)
    subs = UNICODE_WORDS.hashes([raw[s:e] for s, e in spans])
    counts = np.ones(len(starts), np.int64)
    counts[special] = [len(s) for s in subs]
    first = np.cumsum(counts) - counts
    out = np.empty(int(counts.sum()), _U64)
    plain = np.ones(len(starts), dtype=bool)
    plain[special] = False
    out[first[plain]] = hashes[plain]
    sub_counts = counts[special]
    if sub_counts.sum():
        pos = np.repeat(first[special] - np.cumsum(sub_counts) + sub_counts, sub_counts)
        pos += np.arange(len(pos))
        out[pos] = np.concatenate(subs)
    return out, np.repeat(doc, counts)


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


def _word_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Word hashes of all texts, and each word's text index (non-decreasing)."""
    arr = pa.array(texts, pa.large_string())
    _, offs_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offs_buf, np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    hashes, docs = [], []
    i = 0
    while i < len(texts):  # chunks of whole documents (a document larger than a chunk goes alone)
        j = int(np.searchsorted(offsets, offsets[i] + CHUNK_BYTES, side="right")) - 1
        j = max(j, i + 1)
        lo, hi = int(offsets[i]), int(offsets[j])
        if hi > lo:
            h, d = _words_of_chunk(data[lo:hi], offsets[i:j] - lo)
            hashes.append(h)
            docs.append(d + i)
        i = j
    if not hashes:
        return np.empty(0, _U64), np.empty(0, np.int64)
    return np.concatenate(hashes), np.concatenate(docs)


def shingle_batch(texts: list[str], n: int) -> ShingleSets:
    """The distinct 32-bit shingle hashes of every text, equal to `reference_shingle_set`."""
    words, doc = _word_hashes(texts)
    n_docs = len(texts)
    per_doc = np.bincount(doc, minlength=n_docs) if len(doc) else np.zeros(n_docs, np.int64)
    m = len(words)
    with np.errstate(over="ignore"):
        if m >= n:
            gram = words[: m - n + 1].copy()
            for i in range(1, n):
                gram *= _U64(NGRAM_BASE)
                gram += words[i : m - n + 1 + i]
            valid = doc[: m - n + 1] == doc[n - 1 :]
            gram, gram_doc = gram[valid], doc[: m - n + 1][valid]
        else:
            gram, gram_doc = np.empty(0, _U64), np.empty(0, np.int64)
        short = np.flatnonzero((per_doc > 0) & (per_doc < n))
        if len(short):  # fewer words than n: the whole text is one shingle
            word_start = np.cumsum(per_doc) - per_doc
            extra = [combine(words[word_start[d] : word_start[d] + per_doc[d]].tolist()) for d in short]
            gram = np.concatenate([gram, np.array(extra, _U64)])
            gram_doc = np.concatenate([gram_doc, short])
    keys = (gram_doc.astype(_U64) << _U64(32)) | (gram >> _U64(32))
    keys.sort()  # then drop repeats: faster than np.unique, which hashes before sorting
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    key_doc = (keys >> _U64(32)).astype(np.int64)
    offsets = np.searchsorted(key_doc, np.arange(n_docs + 1)).astype(np.int64)
    return ShingleSets((keys & _U64(0xFFFFFFFF)).astype(np.uint32), offsets)
