"""The benchmark pack: n-gram hashes of every benchmark item, each tied to its item and to its
place in the item.

Which grams an item contributes, over its matchable words (`ngrams.words`: normalized, numbers
dropped); GPT-3's 13-gram rule, adapted so short items count too:

* when it has `short_item_words` words or more: every `STRIDE`-th `n`-gram, and its last one.
  Any run of `n + STRIDE - 1` words shared with a document still matches, and the pack is a
  sixth of the size, which matters because it ships in the repo;
* when it has fewer: every `short_n`-gram (6; GPT-3 went down to 8-grams for benchmarks of
  short items). A 20-word question with two words changed rarely keeps 13 words in a row and
  often not 8, but usually pieces of 6 or more, which the step puts together (`evidence`);
* nothing when it has fewer than `short_n` words.

Grams with no more distinct words than half their length are left out. "x x x x x x x x" (a
polynomial's factors once numbers are dropped), "frac x frac x ..." or "true true false false"
are patterns that maths, LaTeX and code repeat everywhere, not text: such grams of a few MMLU
algebra items matched dozens of library source files and a LaTeX book.

Each row keeps its gram's word position in the item, and each item its length in words, so
that the step can tell a document holding an item from one sharing a part of it (`evidence`).

Stored as one `.npz`: the (key, item, position) rows sorted by key, keys as deltas (sorted
48-bit values differ by ~2^29, which zlib packs into ~4 bytes where it cannot pack the
values), and each item's length, benchmark and id. No benchmark text is shipped, only hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline.decontam.ngrams import ngrams, within, words

DEFAULT_PACK = Path(__file__).resolve().parent.parent / "assets" / "benchmarks" / "pack.npz"
HASH_BITS = 48  # stored bits of a gram hash: ~1e-9 false matches per corpus gram
STRIDE = 6
PREFILTER_BITS = 22  # 4 MB of flags per gram length (~5 % set): most corpus grams fail one lookup


class Item(NamedTuple):
    benchmark: str
    id: str
    text: str


def key(grams: np.ndarray) -> np.ndarray:
    """The part of a 64-bit gram hash the pack stores and compares."""
    return grams >> np.uint64(64 - HASH_BITS)


@dataclass
class Pack:
    """Sorted gram keys with their item and position; items by number: length, benchmark, id.
    Items of fewer than `short_item_words` words are "short": matched on `short_n`-grams."""

    n: int
    short_n: int
    short_item_words: int
    hashes: np.ndarray  # uint64 holding HASH_BITS-bit keys, sorted; one row per (key, item, pos)
    item: np.ndarray  # int32, row's item number
    pos: np.ndarray  # uint16, index of the gram's first word in its item
    item_words: np.ndarray  # uint16, item's length in matchable words
    item_bench: np.ndarray  # int16, item's benchmark (index into `benchmarks`)
    item_ids: np.ndarray  # str, item's id within its benchmark
    benchmarks: list[str]

    def __post_init__(self) -> None:
        self._tables: dict[bool, tuple[np.ndarray, np.ndarray]] = {}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            grams=np.array([self.n, self.short_n, self.short_item_words]),
            deltas=np.diff(self.hashes, prepend=np.uint64(0)),
            item=self.item,
            pos=self.pos,
            item_words=self.item_words,
            item_bench=self.item_bench,
            item_ids=self.item_ids,
            benchmarks=np.array(self.benchmarks),
        )

    @classmethod
    def load(cls, path: Path | str) -> Pack:
        with np.load(path) as z:
            n, short_n, short_item_words = (int(x) for x in z["grams"])
            return cls(
                n,
                short_n,
                short_item_words,
                np.cumsum(z["deltas"], dtype=np.uint64),
                z["item"],
                z["pos"],
                z["item_words"],
                z["item_bench"],
                z["item_ids"],
                [str(b) for b in z["benchmarks"]],
            )

    @property
    def settings(self) -> tuple[int, int, int]:
        """(n, short_n, short_item_words): what the hashes mean; packs must agree to merge."""
        return self.n, self.short_n, self.short_item_words

    def item_short(self, items: np.ndarray) -> np.ndarray:
        """Which of `items` are short (matched on `short_n`-grams)."""
        return self.item_words[items] < self.short_item_words

    def merge(self, other: Pack) -> Pack:
        """Both packs' items (their gram settings must agree)."""
        if self.settings != other.settings:
            raise ValueError(
                f"packs of other n-grams (n, short_n, short_item_words): {self.settings} vs {other.settings}"
            )
        names = list(dict.fromkeys(self.benchmarks + other.benchmarks))
        remap = np.array([names.index(b) for b in other.benchmarks], np.int16)
        hashes = np.concatenate([self.hashes, other.hashes])
        item = np.concatenate([self.item, other.item + len(self.item_ids)]).astype(np.int32)
        order = np.lexsort((item, hashes))
        return Pack(
            *self.settings,
            hashes[order],
            item[order],
            np.concatenate([self.pos, other.pos])[order],
            np.concatenate([self.item_words, other.item_words]),
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
        """Which `keys` are grams of the pack's short items (`short`) or of its others: a
        flag-table lookup on their top bits, then a binary search for the few that pass."""
        if short not in self._tables:
            flags = np.zeros(1 << PREFILTER_BITS, dtype=bool)
            table = np.unique(self.hashes[self.item_short(self.item) == short])
            flags[table >> np.uint64(HASH_BITS - PREFILTER_BITS)] = True
            self._tables[short] = (flags, table)
        flags, table = self._tables[short]
        hit = flags[keys >> np.uint64(HASH_BITS - PREFILTER_BITS)]
        cand = np.flatnonzero(hit)
        if len(cand):
            pos = np.minimum(np.searchsorted(table, keys[cand]), len(table) - 1)
            hit[cand] = table[pos] == keys[cand]
        return hit

    def rows_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(key index, row) for every pack row matching one of `keys`."""
        lo = np.searchsorted(self.hashes, keys, side="left")
        hi = np.searchsorted(self.hashes, keys, side="right")
        counts = hi - lo
        which = np.repeat(np.arange(len(keys)), counts)
        rows = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        return which, rows


def _distinct(hashes: np.ndarray, first: np.ndarray, length: int) -> np.ndarray:
    """Distinct words in each window hashes[f : f + length], f in `first`: those whose previous
    occurrence (anywhere before) lies before the window."""
    order = np.lexsort((np.arange(len(hashes)), hashes))
    prev = np.full(len(hashes), -1, np.int64)
    same = hashes[order[1:]] == hashes[order[:-1]]
    prev[order[1:][same]] = order[:-1][same]
    return sum((prev[first + t] < first).astype(np.int64) for t in range(length))


def item_grams(
    texts: list[str], n: int, short_n: int, short_item_words: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(gram key, text index, word position) of every text's grams as the module docstring
    says, and every text's length in words."""
    w = words(texts)
    count = np.bincount(w.doc, minlength=len(texts))
    item_start = np.cumsum(count) - count
    keys, docs, positions = [], [], []
    grams = ngrams(w, range(min(short_n, n), n + 1))
    for short, length in ((True, short_n), (False, n)):
        first = np.arange(len(grams[length]))
        doc = w.doc[first]
        pos = first - item_start[doc]
        if short:
            keep = count[doc] < short_item_words
        else:
            keep = ((pos % STRIDE == 0) | (pos == count[doc] - n)) & (count[doc] >= short_item_words)
        keep &= within(w, first, length)
        keep[keep] = 2 * _distinct(w.hashes, first[keep], length) > length
        keys.append(key(grams[length][keep]))
        docs.append(doc[keep])
        positions.append(pos[keep])
    return np.concatenate(keys), np.concatenate(docs), np.concatenate(positions), count


def build_pack(items: list[Item], n: int = 13, short_n: int = 6, short_item_words: int = 40) -> Pack:
    """Hash every item's grams (see the module docstring) into a pack."""
    if not 2 <= short_n <= n:
        raise ValueError(f"need 2 <= short_n <= n, got short_n={short_n}, n={n}")
    benchmarks = list(dict.fromkeys(it.benchmark for it in items))
    hashes, item, pos, count = item_grams([it.text for it in items], n, short_n, short_item_words)
    if count.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError(f"benchmark items of more than {np.iinfo(np.uint16).max} words are not supported")
    order = np.lexsort((pos, item, hashes))
    return Pack(
        n,
        short_n,
        short_item_words,
        hashes[order],
        item[order].astype(np.int32),
        pos[order].astype(np.uint16),
        count.astype(np.uint16),
        np.array([benchmarks.index(it.benchmark) for it in items], np.int16),
        np.array([it.id for it in items], dtype=str),
        benchmarks,
    )
