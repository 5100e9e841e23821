"""The words decontamination matches on, and their n-gram hashes, for a whole batch at once.

Words are `pipeline.text.words`'s normalized words with their byte spans (span removal cuts text
around a match), less the numbers and the choice labels. Normalization folds every digit to `0`
so that a leaked GSM8K problem with other numbers is still found; but a folded number then matches any other
number, and "adults between the ages of 18 and 49" in a Wikipedia article matched an MMLU
question about "adults between the ages of 18 and 70": two of its eight words were numbers
that differ. So numbers are wildcards here, dropped from the word stream: they neither break a
gram nor count towards one, and an n-gram is always n words of text. The pack and the corpus
go through this same function, so they always agree.

Choice labels are dropped the same way: the single letters `a` to `e`. Eval prompts and quiz
pages letter the choices ("A. ...", "(B) ...", "C)" on a line of its own) and end with
"Answer: D"; with the labels in the word stream a lettered copy of an item shares no gram that
spans two choices with the item's own text, and each label shifts the copy's words against the
item's by one. Dropped, "A. thermal energy B. chemical energy" and "thermal energy chemical
energy" are the same words, and so is a copy numbered "1. ... 2. ...". The article "a" goes too,
from the pack and the corpus alike: a gram then spans one more word of text, no harm done.
GPT-3, NeMo Curator and datatrove keep every word; they match an item's text as the benchmark
file stores it, not as a page renders it.

N-gram hashes are the polynomial over word hashes of `text.hashing.combine`, computed for every
position with `n` vectorised multiply-adds; the shorter grams matched for short benchmark
items (6 words) fall out of the same loop for free.
"""

from __future__ import annotations

import numpy as np

from pipeline.text import words as normalized
from pipeline.text.hashing import NGRAM_BASE
from pipeline.text.words import Words, word_hash

_U64 = np.uint64
LABELS = tuple("abcde")  # choice labels, dropped like numbers
# Every number normalizes to a run of zeros; longer ones (rare) are kept as words.
DROPPED_HASHES = np.sort(
    np.array([word_hash("0" * k) for k in range(1, 65)] + [word_hash(x) for x in LABELS], _U64)
)
_LOW_BITS = _U64(0xFFFF)
_DROPPED_LOW = np.zeros(1 << 16, bool)  # a cache-sized first test, passed by 1 in 1,000 other words
_DROPPED_LOW[DROPPED_HASHES & _LOW_BITS] = True


def is_dropped(hashes: np.ndarray) -> np.ndarray:
    """Which word hashes are those of a number or of a choice label."""
    out = _DROPPED_LOW[hashes & _LOW_BITS]
    cand = np.flatnonzero(out)
    pos = np.minimum(np.searchsorted(DROPPED_HASHES, hashes[cand]), len(DROPPED_HASHES) - 1)
    out[cand] = DROPPED_HASHES[pos] == hashes[cand]
    return out


def matchable(normalized_words: list[str]) -> list[str]:
    """The reference of `words`: which normalized words are matched on."""
    return [w for w in normalized_words if w.strip("0") and w not in LABELS]


def words(texts: list[str]) -> Words:
    """The matchable words of every text: normalized, hashed, with byte spans, numbers and
    choice labels dropped."""
    w = normalized.words(texts)
    return w.take(~is_dropped(w.hashes))


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
