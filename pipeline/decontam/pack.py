"""The benchmark pack: word n-gram hashes of every benchmark item, each tied to its item and to
its place in the item, and each item's parts.

An item is stored as segments, the parts an eval prompt or a web page shows in its own place:
its question (the prompt, context or stem), then its other parts (each choice, the answer, the
solution) in order, and, before all of them, the passage it quotes, if any (`Item.source`: a
BoolQ Wikipedia paragraph, the excerpt an MMLU history item "refers to"). Grams are taken over
the item's words (`ngrams.words`: normalized, numbers and choice labels dropped) from the
passage to the last part, so a copy that keeps the parts in order shares grams across their
joins, and grams are kept per segment:

* every `n`-gram (6) starting in the question, and in the correct answer where it follows the
  question, when that segment has fewer than `dense_words` (40) words, every `stride`-th (6)
  one in any other segment, and the one ending each segment (it starts in an earlier segment
  when the segment is shorter than `n`: "can be put inside socks"). Grams starting near a
  segment's end run on into the next. The question is the part a page shows alone, often short
  and sometimes retyped: every gram of it is kept, so the shortest question the evidence rule
  takes (`min_words`, 10) is covered whole and a copy with a few words changed keeps most of
  its grams. The correct answer is the part a page shows with it ("Answer: ..."), retyped with
  it, and it carries the evidence where the question is short: a PIQA goal has 4-9 words, so a
  retyped goal and solution hold `min_words` only if the solution's grams survive its changed
  words, and grams six words apart may leave one gram, 6 words, of a 15-word solution with one
  word changed (PIQA's "question + answer" edited insertions, test split of
  `bench.decontam_bench`: 90.7 % found with every 6th gram of the answer and only the joins of
  the next rule, 100 % with both rules as they are). Other parts show with the question, or in
  long runs (a passage, a solution) in which grams six words apart still hold one gram in
  every run of eleven words;
* the grams a page shows where it puts the correct answer right after the question ("Which
  property of an object allows it to bend? flexibility"), when another choice follows the
  question in the item: the question's last words joined to the answer's first, and the
  answer's own grams (every one, under `dense_words` words), at the positions they take when
  the answer comes first. A page showing the question and then its answer alone is then one
  alignment (`evidence`) holding both parts' words, not two of which neither holds
  `min_words`: a 6-word PIQA goal and its 10-word solution; "Playing pool: A sports logo
  flashes on the screen. A woman" and, on an "Answer:" line, HellaSwag's fourth ending. The
  answer's grams at its place in the item, after the other choices, stay every 6th: a page
  showing all the choices in order shows the question's grams with them;
* nothing from an item of fewer than `n` words.

Quotations are another text's words in the items of exam benchmarks (`Item.quotes`; not in a
story's dialogue, LAMBADA's or HellaSwag's): a passage quoted in quotation marks inside a
question ("We hold these truths to be self-evident, that all men are created equal" in an MMLU
item, a sentence of Plato's *Republic*) is marked like the passage before an item: grams lying
in it count as the item's only where they run on into its own words (`evidence`), and the
Declaration of Independence in a book is not that item.

Grams with no more distinct words than half their length are left out: "x x x x x x" (a
polynomial's factors once numbers are dropped), "frac x frac x ..." or "true true false false"
are patterns that maths, LaTeX and code repeat everywhere, not text. So are grams found in
`TEMPLATE_ITEMS` (16) items or more: the instructions a benchmark repeats in every item ("For
which of these two scenarios does the main character ... Scenario 1 |" heads 895 MMLU items)
say nothing of which item a page holds. Passages are exempt: BoolQ and MMLU ask several
questions of one passage.

GPT-3 hashes each item as one text; datatrove its prompt and gold answer (and the grams across
them); NeMo Curator the fields it takes, apart, mostly the question alone (BoolQ's question,
not its passage). grist keeps all the segments because pages show items in other shapes than
the benchmark file: the question alone, with its correct answer only, with its choices lettered
and one per line, half of it. `evidence` judges a copy by the words of the item it covers.

Stored as one `.npz` of (key, item, position) rows, item by item (`Pack.save`: 40-bit keys in 5
bytes, positions as strides, ~5.5 bytes a row), and per item its length, where its own text
starts (after the passage) and where its question ends, its benchmark and its id. No benchmark
text is shipped, only hashes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline.decontam.ngrams import ngrams, words

DEFAULT_PACK = Path(__file__).resolve().parent.parent / "assets" / "benchmarks" / "pack.npz"
FORMAT = 2  # segments; format 1 had one text per item and two gram lengths
HASH_BITS = 40  # stored bits of a gram hash: ~5e-7 false leads per corpus gram, none a verdict
KEY_BYTES = HASH_BITS // 8
QUOTE_WORDS = 8  # a quotation this long in an item is another text's words
# in straight or curly double quotes; not a Python docstring's triple quotes
_QUOTE = re.compile(r'(?<!")"(?!")[^"]*(?<!")"(?!")|\u201c[^\u201c\u201d]*\u201d')
TEMPLATE_ITEMS = 16  # a gram in this many items is a benchmark's boilerplate
PREFILTER_BITS = 22  # 4 MB of flags (~16 % set): most corpus grams fail one lookup


class Item(NamedTuple):
    """A benchmark item: `text` is its own text, one string or its segments in order (question
    first, then choices, answer...); `source` a passage it quotes, matched but never evidence
    on its own; `answer` the segment holding the correct answer, if any; `quotes`: its
    quotations are another text's words (an exam question citing a document), not its own (a
    story's dialogue)."""

    benchmark: str
    id: str
    text: str | Sequence[str]
    source: str = ""
    answer: int | None = None
    quotes: bool = False

    @property
    def segments(self) -> list[str]:
        return [self.text] if isinstance(self.text, str) else list(self.text)


def key(grams: np.ndarray) -> np.ndarray:
    """The part of a 64-bit gram hash the pack stores and compares."""
    return grams >> np.uint64(64 - HASH_BITS)


@dataclass(frozen=True)
class GramPlan:
    """Which grams a pack keeps (module docstring): `n` is what the corpus is hashed with and
    must be the step's; the strides only decide how many grams are stored."""

    n: int = 6
    stride: int = 6
    dense_words: int = 40


@dataclass
class Pack:
    """Sorted gram keys with their item and position; items by number: length in words, where
    their own text starts (`item_own`: words of the quoted passage before it) and where their
    question ends (`item_first`), benchmark, id."""

    n: int
    hashes: np.ndarray  # uint64 holding HASH_BITS-bit keys, sorted; one row per (key, item, pos)
    item: np.ndarray  # int32, row's item number
    pos: np.ndarray  # uint16, index of the gram's first word in its item
    quoted: np.ndarray  # bool, the gram lies in a passage or quotation the item quotes
    item_words: np.ndarray  # uint16
    item_own: np.ndarray  # uint16
    item_first: np.ndarray  # uint16
    item_bench: np.ndarray  # int16, item's benchmark (index into `benchmarks`)
    item_ids: np.ndarray  # str, item's id within its benchmark
    benchmarks: list[str]

    def __post_init__(self) -> None:
        self._table: tuple[np.ndarray, np.ndarray] | None = None

    def save(self, path: Path) -> None:
        """Rows item by item, each item's in word order: keys as their `KEY_BYTES` bytes
        (random, they do not compress), positions as steps from the previous row of the item
        (the strides: they compress to almost nothing), and rows per item. `load` sorts them
        by key again."""
        path.parent.mkdir(parents=True, exist_ok=True)
        order = np.lexsort((self.pos, self.item))
        item, pos = self.item[order], self.pos[order].astype(np.int64)
        step = np.diff(pos, prepend=0)
        restart = np.ones(len(item), bool)
        restart[1:] = item[1:] != item[:-1]
        step[restart] = pos[restart]
        keys = self.hashes[order].astype("<u8").view(np.uint8).reshape(-1, 8)[:, :KEY_BYTES]
        np.savez_compressed(
            path,
            format=np.array([FORMAT, self.n]),
            keys=keys,
            pos_steps=step.astype(np.uint16),
            quoted=self.quoted[order],
            rows=np.bincount(item, minlength=len(self.item_ids)).astype(np.uint32),
            item_words=self.item_words,
            item_own=self.item_own,
            item_first=self.item_first,
            item_bench=self.item_bench,
            item_ids=self.item_ids,
            benchmarks=np.array(self.benchmarks),
        )

    @classmethod
    def load(cls, path: Path | str) -> Pack:
        with np.load(path) as z:
            if "format" not in z or int(z["format"][0]) != FORMAT:
                raise ValueError(
                    f"{path}: a benchmark pack of an older format; rebuild it with "
                    "bench/build_benchmark_pack.py"
                )
            keys = np.zeros((len(z["keys"]), 8), np.uint8)
            keys[:, :KEY_BYTES] = z["keys"]
            hashes = keys.view("<u8").ravel().astype(np.uint64)
            rows = z["rows"].astype(np.int64)
            item = np.repeat(np.arange(len(rows), dtype=np.int32), rows)
            step = z["pos_steps"].astype(np.int64)
            starts = np.cumsum(rows) - rows
            total = np.cumsum(step)
            base = np.repeat(total[starts[rows > 0]] - step[starts[rows > 0]], rows[rows > 0])
            pos = (total - base).astype(np.uint16)
            order = np.lexsort((pos, item, hashes))
            return cls(
                int(z["format"][1]),
                hashes[order],
                item[order],
                pos[order],
                z["quoted"][order],
                z["item_words"],
                z["item_own"],
                z["item_first"],
                z["item_bench"],
                z["item_ids"],
                [str(b) for b in z["benchmarks"]],
            )

    def merge(self, other: Pack) -> Pack:
        """Both packs' items (their gram length must agree)."""
        if self.n != other.n:
            raise ValueError(f"packs of other n-grams: n={self.n} vs n={other.n}")
        names = list(dict.fromkeys(self.benchmarks + other.benchmarks))
        remap = np.array([names.index(b) for b in other.benchmarks], np.int16)
        hashes = np.concatenate([self.hashes, other.hashes])
        item = np.concatenate([self.item, other.item + len(self.item_ids)]).astype(np.int32)
        order = np.lexsort((item, hashes))
        return Pack(
            self.n,
            hashes[order],
            item[order],
            np.concatenate([self.pos, other.pos])[order],
            np.concatenate([self.quoted, other.quoted])[order],
            np.concatenate([self.item_words, other.item_words]),
            np.concatenate([self.item_own, other.item_own]),
            np.concatenate([self.item_first, other.item_first]),
            np.concatenate([self.item_bench, remap[other.item_bench]]),
            np.concatenate([self.item_ids.astype(object), other.item_ids.astype(object)]).astype(str),
            names,
        )

    def counts(self) -> dict[str, tuple[int, int]]:
        """Per benchmark: (items, gram rows)."""
        items = np.bincount(self.item_bench, minlength=len(self.benchmarks))
        grams = np.bincount(self.item_bench[self.item], minlength=len(self.benchmarks))
        return {b: (int(items[i]), int(grams[i])) for i, b in enumerate(self.benchmarks)}

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Which `keys` are grams of the pack: a flag-table lookup on their top bits, then a
        binary search for the few that pass."""
        if self._table is None:
            flags = np.zeros(1 << PREFILTER_BITS, dtype=bool)
            table = np.unique(self.hashes)
            flags[table >> np.uint64(HASH_BITS - PREFILTER_BITS)] = True
            self._table = (flags, table)
        flags, table = self._table
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


def quoted_spans(text: str, min_words: int = QUOTE_WORDS) -> list[tuple[int, int]]:
    """Character spans of the quotations of `min_words` words or more in `text`."""
    return [m.span() for m in _QUOTE.finditer(text) if len(m.group().split()) >= min_words]


def _quoted_words(texts: list[str], cites: list[bool], w_doc: np.ndarray, w_start: np.ndarray) -> np.ndarray:
    """Which words (of `words(texts)`) lie inside a quotation of their text, in the texts that
    `cites`."""
    out = np.zeros(len(w_doc), bool)
    for t, text in enumerate(texts):
        spans = quoted_spans(text) if cites[t] else []
        if not spans:
            continue
        sel = np.flatnonzero(w_doc == t)
        for s, e in spans:
            bs, be = len(text[:s].encode("utf-8")), len(text[:e].encode("utf-8"))
            out[sel[(w_start[sel] >= bs) & (w_start[sel] < be)]] = True
    return out


class ItemGrams(NamedTuple):
    keys: np.ndarray
    item: np.ndarray  # index into the items given
    pos: np.ndarray
    quoted: np.ndarray
    words: np.ndarray  # per item: length in words
    own: np.ndarray  # per item: where its own text starts
    first: np.ndarray  # per item: where its question ends


def item_grams(items: Sequence[Item], plan: GramPlan = GramPlan()) -> ItemGrams:
    """Every item's grams as the module docstring says, before the template filter."""
    n = plan.n
    # kind: 0 source, 1 question, 2 other part, 3 the correct answer (another part, kept dense)
    texts, seg_item, seg_kind, cites = [], [], [], []
    for i, it in enumerate(items):
        parts = ([it.source] if it.source else []) + it.segments
        kinds = [3 if k == it.answer == 1 else 2 for k in range(len(it.segments))]
        kinds = ([0] if it.source else []) + [1] + kinds[1:]
        texts += parts
        cites += [it.quotes] * len(parts)
        seg_item += [i] * len(parts)
        seg_kind += kinds
    seg_item_a, seg_kind_a = np.array(seg_item, np.int64), np.array(seg_kind, np.int8)
    w = words(texts)
    seg_len = np.bincount(w.doc, minlength=len(texts))
    seg_start = np.cumsum(seg_len) - seg_len
    count = np.bincount(seg_item_a, weights=seg_len, minlength=len(items)).astype(np.int64)
    item_start = np.cumsum(count) - count
    own = np.bincount(seg_item_a, weights=seg_len * (seg_kind_a == 0), minlength=len(items))
    first = own + np.bincount(seg_item_a, weights=seg_len * (seg_kind_a == 1), minlength=len(items))
    if len(w.hashes) < n:
        empty = np.zeros(0, np.int64)
        return ItemGrams(
            empty.astype(np.uint64),
            empty,
            empty,
            empty.astype(bool),
            count,
            own.astype(np.int64),
            first.astype(np.int64),
        )
    grams = ngrams(w, range(n, n + 1))[n]
    at = np.arange(len(grams))
    word_item = seg_item_a[w.doc]
    seg = w.doc[at]
    item = word_item[at]
    in_seg = at - seg_start[seg]
    length = seg_len[seg]
    dense = (seg_kind_a[seg] == 1) | (seg_kind_a[seg] == 3)  # the question, the correct answer
    step = np.where(dense & (length < plan.dense_words), 1, plan.stride)
    keep = in_seg % step == 0
    ends = seg_start + seg_len - n  # the gram ending each segment, wherever it starts
    ends = ends[(seg_len > 0) & (ends >= item_start[seg_item_a])]
    keep[ends[ends < len(keep)]] = True
    keep &= word_item[at + n - 1] == item  # within the item
    keep[keep] = 2 * _distinct(w.hashes, at[keep], n) > n
    first_at = at[keep]
    other = _quoted_words(texts, cites, w.doc, w.start) | (seg_kind_a[w.doc] == 0)  # quoted or passage
    cum = np.concatenate([[0], np.cumsum(other)])
    own, first = own.astype(np.int64), first.astype(np.int64)
    j_keys, j_item, j_pos, j_quoted = _answer_first(items, plan, own, first)
    return ItemGrams(
        np.concatenate([key(grams[first_at]), j_keys]),
        np.concatenate([item[first_at], j_item]),
        np.concatenate([first_at - item_start[item[first_at]], j_pos]),
        np.concatenate([cum[first_at + n] - cum[first_at] == n, j_quoted]),
        count,
        own,
        first,
    )


def _answer_first(
    items: Sequence[Item], plan: GramPlan, own: np.ndarray, first: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(key, item, position, quoted) of the grams a page shows where it puts the correct answer
    right after the question, for items where another segment follows the question (module
    docstring): the question and the answer hashed as one text, and the grams not lying wholly
    in the question (the item's own grams hold those) kept as `item_grams` keeps the answer's,
    at the positions they would have if the answer came first."""
    n = plan.n
    sel = np.array([i for i, it in enumerate(items) if it.answer is not None and it.answer > 1], np.int64)
    texts = [items[i].segments[0] + "\n" + items[i].segments[items[i].answer] for i in sel.tolist()]
    w = words(texts)
    if len(w.hashes) < n:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    grams = ngrams(w, range(n, n + 1))[n]
    at = np.arange(len(grams))
    doc = w.doc[at]
    count = np.bincount(w.doc, minlength=len(texts))
    local = at - (np.cumsum(count) - count)[doc]
    question = (first - own)[sel][doc]
    answer = count[doc] - question  # words of the answer
    in_answer = local - question
    step = np.where(answer < plan.dense_words, 1, plan.stride)
    kept = (in_answer < 0) | (in_answer % step == 0) | (local == count[doc] - n)
    keep = kept & (local + n > question) & (w.doc[at + n - 1] == doc)
    keep[keep] = 2 * _distinct(w.hashes, at[keep], n) > n
    at, doc = at[keep], doc[keep]
    quoted = _quoted_words(texts, [items[i].quotes for i in sel.tolist()], w.doc, w.start)
    cum = np.concatenate([[0], np.cumsum(quoted)])
    return key(grams[at]), sel[doc], own[sel][doc] + local[keep], cum[at + n] - cum[at] == n


def build_pack(items: Sequence[Item], plan: GramPlan = GramPlan()) -> Pack:
    """Hash every item's grams (see the module docstring) into a pack."""
    if plan.n < 2:
        raise ValueError(f"need n >= 2, got {plan.n}")
    benchmarks = list(dict.fromkeys(it.benchmark for it in items))
    g = item_grams(items, plan)
    if g.words.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError(f"benchmark items of more than {np.iinfo(np.uint16).max} words are not supported")
    pairs = np.unique(np.stack([g.keys, g.item.astype(np.uint64)]), axis=1)  # each (key, item) once
    uniq, n_items = np.unique(pairs[0], return_counts=True)
    keep = ~np.isin(g.keys, uniq[n_items >= TEMPLATE_ITEMS]) | g.quoted  # items share passages
    hashes, item, pos, quoted = g.keys[keep], g.item[keep], g.pos[keep], g.quoted[keep]
    order = np.lexsort((pos, item, hashes))
    return Pack(
        plan.n,
        hashes[order],
        item[order].astype(np.int32),
        pos[order].astype(np.uint16),
        quoted[order],
        g.words.astype(np.uint16),
        g.own.astype(np.uint16),
        g.first.astype(np.uint16),
        np.array([benchmarks.index(it.benchmark) for it in items], np.int16),
        np.array([it.id for it in items], dtype=str),
        benchmarks,
    )
