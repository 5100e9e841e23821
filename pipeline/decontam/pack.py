"""The benchmark pack: n-gram hashes of every benchmark item, each tied to its item.

Which grams an item contributes (GPT-3's 13-gram rule, adapted so short items count too):

* every `STRIDE`-th `n`-gram of its normalized words, and its last one. Any run of
  `n + STRIDE - 1` words shared with a document still matches, and the pack is a quarter of
  the size, which matters because it ships in the repo;
* when it has fewer than `short_item_words` words, every `SHORT_STRIDE`-th `short_n`-gram
  and the last instead (GPT-3 went down to 8-grams for benchmarks of short items; any run of
  `n` words holds them). A 20-word question with two words changed rarely keeps 13 words
  intact, but usually keeps 9; and that is still more than the 4-7 word fragments ordinary
  prose shares with benchmark items;
* nothing when it has fewer than `short_n` words: a five-word TriviaQA question is an
  ordinary phrase.

Grams more than half numbers are left out: digits normalize to `0`, so "1 2 3 ... 13" would
match every calendar, page list and table of numbers in the corpus.

Stored as one `.npz`: the (key, item) rows sorted by key, keys as deltas (sorted 48-bit
values differ by ~2^29, which zlib packs into ~4 bytes where it cannot pack the values),
and each item's benchmark and id. No benchmark text is shipped, only hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline.decontam.ngrams import ngrams, within, word_hashes_of, words

DEFAULT_PACK = Path(__file__).resolve().parent.parent / "assets" / "benchmarks" / "pack.npz"
HASH_BITS = 48  # stored bits of a gram hash: ~1e-9 false matches per corpus gram
STRIDE = 4
SHORT_STRIDE = 2  # short items: any 9 shared words still match
PREFILTER_BITS = 22  # 4 MB of flags (~10 % set): most corpus grams are rejected by one lookup
NUMBERS = tuple("0" * k for k in range(1, 40))  # every number normalizes to one of these words


class Item(NamedTuple):
    benchmark: str
    id: str
    text: str


def key(grams: np.ndarray) -> np.ndarray:
    """The part of a 64-bit gram hash the pack stores and compares."""
    return grams >> np.uint64(64 - HASH_BITS)


@dataclass
class Pack:
    """Sorted gram keys with their item numbers; items by number: benchmark and id."""

    n: int
    short_n: int
    short_item_words: int
    hashes: np.ndarray  # uint64 holding HASH_BITS-bit keys, sorted; one row per (key, item)
    item: np.ndarray  # int32, row's item number
    short: np.ndarray  # bool, row is a short_n-gram (else an n-gram)
    item_bench: np.ndarray  # int16, item's benchmark (index into `benchmarks`)
    item_ids: np.ndarray  # str, item's id within its benchmark
    benchmarks: list[str]

    def __post_init__(self) -> None:
        self._tables: dict[bool, tuple[np.ndarray, np.ndarray]] = {}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            n=self.n,
            short_n=self.short_n,
            short_item_words=self.short_item_words,
            deltas=np.diff(self.hashes, prepend=np.uint64(0)),
            item=self.item,
            short=self.short,
            item_bench=self.item_bench,
            item_ids=self.item_ids,
            benchmarks=np.array(self.benchmarks),
        )

    @classmethod
    def load(cls, path: Path | str) -> Pack:
        with np.load(path) as z:
            return cls(
                int(z["n"]),
                int(z["short_n"]),
                int(z["short_item_words"]),
                np.cumsum(z["deltas"], dtype=np.uint64),
                z["item"],
                z["short"],
                z["item_bench"],
                z["item_ids"],
                [str(b) for b in z["benchmarks"]],
            )

    def merge(self, other: Pack) -> Pack:
        """Both packs' items (their n-gram settings must agree)."""
        if (self.n, self.short_n) != (other.n, other.short_n):
            raise ValueError(f"packs of other n-grams: {self.n}/{self.short_n} vs {other.n}/{other.short_n}")
        names = list(dict.fromkeys(self.benchmarks + other.benchmarks))
        remap = np.array([names.index(b) for b in other.benchmarks], np.int16)
        hashes = np.concatenate([self.hashes, other.hashes])
        item = np.concatenate([self.item, other.item + len(self.item_ids)]).astype(np.int32)
        order = np.lexsort((item, hashes))
        return Pack(
            self.n,
            self.short_n,
            max(self.short_item_words, other.short_item_words),
            hashes[order],
            item[order],
            np.concatenate([self.short, other.short])[order],
            np.concatenate([self.item_bench, remap[other.item_bench]]),
            np.concatenate([self.item_ids.astype(object), other.item_ids.astype(object)]).astype(str),
            names,
        )

    def counts(self) -> dict[str, tuple[int, int]]:
        """Per benchmark: (items, gram rows)."""
        items = np.bincount(self.item_bench, minlength=len(self.benchmarks))
        grams = np.bincount(self.item_bench[self.item], minlength=len(self.benchmarks))
        return {b: (int(items[i]), int(grams[i])) for i, b in enumerate(self.benchmarks)}

    def contains(self, keys: np.ndarray, short: bool) -> np.ndarray:
        """Which `keys` are pack n-grams (`short`: short_n-grams): a flag-table lookup on
        their top bits, then a binary search for the few that pass."""
        if short not in self._tables:
            flags = np.zeros(1 << PREFILTER_BITS, dtype=bool)
            table = np.unique(self.hashes[self.short == short])
            flags[table >> np.uint64(HASH_BITS - PREFILTER_BITS)] = True
            self._tables[short] = (flags, table)
        flags, table = self._tables[short]
        hit = flags[keys >> np.uint64(HASH_BITS - PREFILTER_BITS)]
        cand = np.flatnonzero(hit)
        if len(cand):
            pos = np.minimum(np.searchsorted(table, keys[cand]), len(table) - 1)
            hit[cand] = table[pos] == keys[cand]
        return hit

    def items_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(key index, item number) for every pack row matching one of `keys`."""
        lo = np.searchsorted(self.hashes, keys, side="left")
        hi = np.searchsorted(self.hashes, keys, side="right")
        counts = hi - lo
        which = np.repeat(np.arange(len(keys)), counts)
        rows = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        return which, self.item[rows]


def item_grams(
    texts: list[str], n: int, short_n: int, short_item_words: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gram key, text index, is a short_n-gram) of every text, as the module docstring says."""
    w = words(texts)
    count = np.bincount(w.doc, minlength=len(texts))
    item_start = np.cumsum(count) - count
    numeric = np.concatenate([[0], np.cumsum(np.isin(w.hashes, word_hashes_of(NUMBERS)))])
    keys, docs, short = [], [], []
    for length, grams in ngrams(w, range(short_n, n + 1)).items():
        if length not in (n, short_n):
            continue
        first = np.arange(len(grams))
        doc = w.doc[first]
        if length == n:
            pos = first - item_start[doc]
            keep = ((pos % STRIDE == 0) | (pos == count[doc] - n)) & (count[doc] >= short_item_words)
        else:
            pos = first - item_start[doc]
            sampled = (pos % SHORT_STRIDE == 0) | (pos == count[doc] - short_n)
            keep = sampled & (count[doc] < short_item_words)
        keep &= within(w, first, length) & (2 * (numeric[first + length] - numeric[first]) <= length)
        keys.append(key(grams[keep]))
        docs.append(doc[keep])
        short.append(np.full(int(keep.sum()), length == short_n and short_n < n))
    return np.concatenate(keys), np.concatenate(docs), np.concatenate(short)


def build_pack(items: list[Item], n: int = 13, short_n: int = 8, short_item_words: int = 40) -> Pack:
    """Hash every item's grams (see the module docstring) into a pack."""
    if not 2 <= short_n <= n:
        raise ValueError(f"need 2 <= short_n <= n, got short_n={short_n}, n={n}")
    benchmarks = list(dict.fromkeys(it.benchmark for it in items))
    hashes, item, short = item_grams([it.text for it in items], n, short_n, short_item_words)
    rows = np.unique(np.stack([hashes, item.astype(np.uint64), short]), axis=1)  # by key, item
    return Pack(
        n,
        short_n,
        short_item_words,
        rows[0],
        rows[1].astype(np.int32),
        rows[2].astype(bool),
        np.array([benchmarks.index(it.benchmark) for it in items], np.int16),
        np.array([it.id for it in items], dtype=str),
        benchmarks,
    )
