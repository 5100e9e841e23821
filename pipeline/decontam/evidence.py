"""Which documents hold which benchmark items, judged from the item grams they share.

Sharing an n-gram with an item is not holding the item. The clean books and articles that the
first version of this step removed in document mode shared with MMLU items what the items
quote: the opening of *A Tale of Two Cities* (in four history items), a passage of Plato's
*Republic*, a letter of the Continental Congress, "We hold these truths to be self-evident"
(in a 40-word question). A document that holds an item holds its question and choices too.

The grams a document shares with an item are first grouped by alignment: a copy of the item
shows them at the same distances from each other as the item does (give or take
`ALIGN_SLACK` words, for a word inserted, dropped or split), while grams shared by chance lie
anywhere. On one alignment, a document holds the item when:

* the shared grams cover at least `min_words` of the item's words: fewer is a phrase, like
  the 4-7 word fragments of items that ordinary prose contains. Short items are matched on
  `short_n`-grams (6) rather than on 8-grams, so that a copy with a word changed every seven
  or so words still shows, in pieces that together cover 8 words or more;
* no stretch of more than `max_gap` words of the item, from its first word to its last, lacks
  a shared gram. A changed word hides only the grams over it, so a copy with a few words
  changed has small holes (two changed words: at most 27 words in 99 % of the bench's lightly
  edited items), while a quoted passage leaves the item's question and choices uncovered (58
  words and more in the cases above);
* an item matched on n-grams (`short_item_words` words or more) shares at least `min_grams`
  of them: one 13-gram is one sentence, and a famous sentence is what other texts share with an
  item that quotes it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pipeline.decontam.pack import Pack

ALIGN_SLACK = 2  # words by which grams of one copy of an item may drift apart


class ItemMatches(NamedTuple):
    """One row per (document, key occurrence, item) where the key is a gram of the item;
    `held`: the document holds the item on this row's alignment."""

    doc: np.ndarray
    key: np.ndarray
    at: np.ndarray
    item: np.ndarray
    held: np.ndarray


def judge(
    doc: np.ndarray,
    keys: np.ndarray,
    at: np.ndarray,
    pack: Pack,
    *,
    max_gap: int,
    min_grams: int,
    min_words: int,
) -> ItemMatches:
    """The items that documents' keys belong to, and whether they hold them (module docstring).
    One entry per key occurrence: its document number, key and word position in the document."""
    which, rows = pack.rows_of(keys)
    d, k, a, it = doc[which], keys[which], at[which].astype(np.int64), pack.item[rows]
    if len(d) == 0:
        return ItemMatches(d, k, a, it, np.zeros(0, bool))
    p = pack.pos[rows].astype(np.int64)
    offset = a - p
    order = np.lexsort((offset, it, d))
    d, k, a, it, p, offset = (x[order] for x in (d, k, a, it, p, offset))
    new = np.ones(len(d), bool)
    new[1:] = (d[1:] != d[:-1]) | (it[1:] != it[:-1]) | (offset[1:] - offset[:-1] > ALIGN_SLACK)
    align = np.cumsum(new)
    order = np.lexsort((p, align))  # each alignment's grams in item order
    d, k, a, it, p, align = (x[order] for x in (d, k, a, it, p, align))

    first = np.ones(len(d), bool)
    first[1:] = align[1:] != align[:-1]
    starts = np.flatnonzero(first)
    last = np.append(starts[1:], len(d)) - 1
    gram = np.where(pack.item_short(it), pack.short_n, pack.n)
    prev = np.zeros(len(d), np.int64)  # the previous gram's first word (grams of an item are alike)
    prev[1:] = p[:-1]
    gap = np.where(first, p, p - prev - gram)  # uncovered words before this gram
    fresh = np.where(first, gram, np.clip(p - prev, 0, gram))  # words this gram adds to the cover
    tail = pack.item_words[it[last]].astype(np.int64) - p[last] - gram[last]
    widest = np.maximum(np.maximum.reduceat(gap, starts), tail)
    covered = np.add.reduceat(fresh, starts)
    grams = np.add.reduceat((first | (p != prev)).astype(np.int64), starts)
    short = pack.item_short(it[starts])
    held = (covered >= min_words) & (widest <= max_gap) & (short | (grams >= min_grams))
    return ItemMatches(d, k, a, it, np.repeat(held, np.diff(np.append(starts, len(d)))))
