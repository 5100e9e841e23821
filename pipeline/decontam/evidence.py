"""Which documents hold which benchmark items, judged from the item grams they share.

Sharing a gram with an item is not holding the item. The grams a document shares with an item
are first grouped by alignment: a copy of the item shows them at the same distances from each
other as the item does (give or take `ALIGN_SLACK` words, for a word inserted, dropped or
split), while grams shared by chance lie anywhere. A copy of a part of the item is one
alignment. So is a page that shows the question and then only the correct answer, skipping the
other choices: the pack holds the answer's grams also where they stand when the answer follows
the question (`pack`), and the question's words and the answer's add up on that alignment; a
short question and a short answer, each under `min_words` once retyped, hold the item together.
On one alignment, a document holds the item when:

* the shared grams cover at least `min_words` (10) of the item's own words (its question,
  choices, answer; not the passage it quotes): fewer is a phrase, like the 4-7 word fragments
  of items that ordinary prose contains. Any part will do, the question alone, the question
  and some choices, the second half of the item: what leaked is the item's text, whichever
  part a page shows;
* or they cover `min_words` of the passage the item quotes and run on into its question, over
  `n` of its words or all of it when it is shorter (a BoolQ paragraph followed by its 8-word
  question). The passage alone is not the item: BoolQ's are Wikipedia paragraphs and
  MMLU's history items quote books, speeches and letters that clean books and articles hold (*A
  Tale of Two Cities*, a letter of the Continental Congress). Quotations inside an item's text
  (`pack.QUOTE_WORDS` words or more in quotation marks) count the same way: grams lying wholly
  in a passage or quotation cover only it, the others the item's own words;
* no stretch of more than `max_gap` words between two shared grams lacks one (a copy with a
  few words changed has small holes; grams shared by chance at the right distance rarely have
  only small holes between them).

A page showing fewer than `min_words` of an item's words (in one alignment) is not found: it cannot be
told from a phrase. NeMo Curator likewise hashes the fields it takes (mostly the question)
apart and skips those under 8 words; datatrove finds nothing shorter than its 12-gram;
GPT-3 matched n-grams of 8 to 13 words. grist takes 10 rather than 8 because the 8-9 word
stretches clean Wikipedia shared with items were names and titles ("The Diagnostic and
Statistical Manual of Mental Disorders"). Where grist departs from all three: no item is
required to be held from end to end (grist's first rule did that, and missed every page showing
an item in another shape than the benchmark file: the question alone, the question and its
answer), and a passage or quotation the item cites is not the item.
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
    min_words: int,
) -> ItemMatches:
    """The items that documents' keys belong to, and whether they hold them (module docstring).
    One entry per key occurrence: its document number, key and word position in the document."""
    which, rows = pack.rows_of(keys)
    d, k, a, it = doc[which], keys[which], at[which].astype(np.int64), pack.item[rows]
    if len(d) == 0:
        return ItemMatches(d, k, a, it, np.zeros(0, bool))
    p, q = pack.pos[rows].astype(np.int64), pack.quoted[rows]
    offset = a - p
    order = np.lexsort((offset, it, d))
    d, k, a, it, p, q, offset = (x[order] for x in (d, k, a, it, p, q, offset))
    new = np.ones(len(d), bool)
    new[1:] = (d[1:] != d[:-1]) | (it[1:] != it[:-1]) | (offset[1:] - offset[:-1] > ALIGN_SLACK)
    align = np.cumsum(new) - 1
    order = np.lexsort((p, align))  # each alignment's grams in item order
    d, k, a, it, p, q, align = (x[order] for x in (d, k, a, it, p, q, align))

    n = pack.n
    first = np.ones(len(d), bool)
    first[1:] = align[1:] != align[:-1]
    starts = np.flatnonzero(first)
    prev_end = np.zeros(len(d), np.int64)
    prev_end[1:] = p[:-1] + n
    widest = np.maximum.reduceat(np.where(first, 0, p - prev_end), starts)  # holes between grams
    item = it[starts]
    own_start = pack.item_own[it].astype(np.int64)

    # Cover, counted apart for the item's own grams (their words past the passage) and for the
    # grams lying in a passage or quotation: each class's grams in item order, new words only.
    order = np.lexsort((p, q, align))
    al, pq, qq, os = align[order], p[order], q[order], own_start[order]
    head = np.ones(len(al), bool)
    head[1:] = (al[1:] != al[:-1]) | (qq[1:] != qq[:-1])
    prev = np.zeros(len(al), np.int64)
    prev[1:] = pq[:-1] + n
    begin = np.where(head, pq, np.maximum(pq, prev))
    fresh = np.clip(pq + n - np.where(qq, begin, np.maximum(begin, os)), 0, n)
    covered_own = np.bincount(al[~qq], weights=fresh[~qq], minlength=len(starts))
    covered_quoted = np.bincount(al[qq], weights=fresh[qq], minlength=len(starts))

    question = (pack.item_first[item].astype(np.int64) - pack.item_own[item]).clip(1, n)
    held = ((covered_own >= min_words) | ((covered_quoted >= min_words) & (covered_own >= question))) & (
        widest <= max_gap
    )
    return ItemMatches(d, k, a, it, np.repeat(held, np.diff(np.append(starts, len(d)))))
