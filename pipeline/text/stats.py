"""Vectorised text statistics shared by the heuristic filters (Gopher, C4, FineWeb).

Why this module exists: the classic implementations of these filters spend almost all their
time in per-token Python (a tokenizer, then one string join per n-gram). Here a document is
turned into a handful of numpy arrays in a few passes over its characters, and every
statistic the filters need is arithmetic on those arrays:

* **Tokens** are whitespace-separated, exactly as `str.split()` cuts them. A token's
  *word characters* are its characters that are neither whitespace nor punctuation/symbols
  (Unicode categories P*, S*, control). A token with at least one is a *word*.
* **Pieces** approximate what a word tokenizer (spaCy's or NLTK's) would count: each token, plus
  one piece for a punctuation run glued to the start and one for a run glued to the end of
  a word ("(hello)," is three pieces). Gopher and FineWeb ratios use pieces as their
  denominator, like datatrove does with its tokenizer's tokens, at none of the cost.
* **Token fingerprints** are `pipeline.text.hashing`'s polynomial hashes of each token's
  code points, with the token's length mixed in (a NUL counts as a symbol, so two tokens can
  differ only by a leading zero code point), computed for all tokens at once from one prefix sum. No Python
  `hash()` is involved, so results are the same in every process. Their values mean nothing
  outside this module: they are only compared with each other (tokens with tokens, token
  cores with `word_fingerprints`), never stored, so they may change with the engine.
* **N-gram statistics** combine fingerprints as the same polynomial one level up
  (`h * NGRAM_BASE + next`, wrapping uint64) and find repeats by sorting, for a whole batch
  of documents at once.

Work is batched: `text_stats(texts)` analyses many documents in one pass over their
concatenation, and keeps the results in a small cache keyed by the text itself, so two
filters that run back to back on the same unchanged documents (Gopher repetition, then
Gopher quality) analyse each document once. Each filter still works alone.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from pipeline.text.hashing import NGRAM_BASE, SpanHasher, fmix64_array

# Character classes, one bit each, looked up per code point in a table over the BMP.
_SPACE = np.uint8(1)  # str.isspace(): the separators of str.split()
_SYMBOL = np.uint8(2)  # Unicode P*, S*, Cc: punctuation, symbols, control characters
_LETTER = np.uint8(4)  # str.isalpha()
_ADDRESS = np.uint8(8)  # "/", "@", "<": in web and e-mail addresses, file paths, markup tags
_CAPITAL = np.uint8(16)  # A-Z, folded to a-z for vocabulary


def _char_class(ch: str) -> int:
    if ch.isspace():
        return int(_SPACE)
    category = unicodedata.category(ch)
    cls = int(_LETTER) if ch.isalpha() else 0
    if category[0] in "PS" or category == "Cc":
        cls |= int(_SYMBOL)
    if ch in "/@<":
        cls |= int(_ADDRESS)
    if "A" <= ch <= "Z":
        cls |= int(_CAPITAL)
    return cls


_BMP = "".join(map(chr, range(0x10000)))
_CLASS_TABLE = np.fromiter(map(_char_class, _BMP), np.uint8, 0x10000)
del _BMP

_NGRAM_BASE = np.uint64(NGRAM_BASE)
_CHUNK_CHARS = 1 << 17  # documents are analysed in concatenated chunks of about this size
_NGRAM_CHUNK_TOKENS = 1 << 15  # and their n-grams in groups of about this many tokens
_CACHE_CHARS = 1 << 24  # how much text the per-document cache may cover


def _codepoints(text: str) -> np.ndarray:
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)


def _classify(cp: np.ndarray) -> np.ndarray:
    if cp.dtype == np.uint8 or not len(cp) or cp.max() <= 0xFFFF:
        return _CLASS_TABLE[cp]
    cls = _CLASS_TABLE[np.minimum(cp, 0xFFFF)]
    astral = np.flatnonzero(cp > 0xFFFF)  # rare: emoji, historic scripts, CJK extensions
    values, inverse = np.unique(cp[astral], return_inverse=True)
    cls[astral] = np.array([_char_class(chr(v)) for v in values.tolist()], np.uint8)[inverse]
    return cls


@dataclass(frozen=True, slots=True, eq=False)
class TextStats:
    """Token-level statistics of one document (see the module docstring for the terms).

    The arrays are views into a batch's arrays; treat them as read-only."""

    n_chars: int
    n_words: int  # tokens with at least one word character
    word_chars: int  # word characters in the whole document
    n_alpha: int  # tokens with at least one letter
    n_pieces: int  # tokens plus punctuation runs at word edges (a word tokenizer's count)
    hashes: np.ndarray  # uint64 fingerprint of each token, in order
    lengths: np.ndarray  # int64 length of each token in characters
    core_hashes: np.ndarray  # uint64 fingerprint of each token without up to 2 symbols per edge
    vocab_hashes: np.ndarray  # uint64 the same of the core with ASCII letters lower-cased; 0 for a
    # token without a letter or holding "/", "@" or "<" (an address, a path, a tag: not vocabulary)

    @property
    def n_tokens(self) -> int:
        return len(self.hashes)


def _segment_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sums of values over [offsets[i], offsets[i+1]) (empty segments sum to 0)."""
    acc = np.zeros(len(values) + 1, np.int64)
    np.cumsum(values, out=acc[1:])
    return acc[offsets[1:]] - acc[offsets[:-1]]


def _analyze_chunk(texts: Sequence[str]) -> list[TextStats]:
    joined = "\n".join(texts)  # "\n" is whitespace: no token spans two documents
    cp = _codepoints(joined)
    n = len(cp)
    cls = _classify(cp)
    space = (cls & _SPACE).view(bool)
    symbol = (cls & _SYMBOL) != 0

    first = ~space
    first[1:] &= space[:-1]
    last = ~space
    last[:-1] &= space[1:]
    starts = np.flatnonzero(first)
    ends = np.flatnonzero(last) + 1

    word_char = ~(space | symbol)
    word_acc = np.zeros(n + 1, np.int32)
    np.cumsum(word_char, dtype=np.int32, out=word_acc[1:])
    letter_acc = np.zeros(n + 1, np.int32)
    np.cumsum((cls & _LETTER) != 0, dtype=np.int32, out=letter_acc[1:])
    tok_word_chars = word_acc[ends] - word_acc[starts]
    is_word = tok_word_chars > 0
    has_letter = letter_acc[ends] > letter_acc[starts]
    lead = symbol[starts] & is_word
    trail = symbol[ends - 1] & is_word

    spans = SpanHasher(cp)
    hashes = spans.hashes(starts, ends, with_length=True)
    # Cores drop up to two symbols at each edge: "(the)," -> "the", enough for stop words.
    core_start, core_end = starts.copy(), ends.copy()
    last_char = max(n - 1, 0)
    for _ in range(2):
        core_start += symbol[np.minimum(core_start, last_char)] & (core_start < core_end)
        core_end -= symbol[np.maximum(core_end - 1, 0)] & (core_start < core_end)
    core_hashes = spans.hashes(core_start, core_end, with_length=True)
    # Vocabulary: the core case-folded, rehashed only for the tokens holding a capital.
    marks = np.flatnonzero(cls & (_CAPITAL | _ADDRESS))  # a few percent of the characters
    capitals = marks[(cls[marks] & _CAPITAL) != 0]
    capped = np.searchsorted(starts, capitals, side="right") - 1  # sorted, with repeats
    capped = capped[np.diff(capped, prepend=-1) != 0]
    vocab_hashes = core_hashes.copy()
    vocab_hashes[capped] = spans.hashes(
        core_start[capped],
        core_end[capped],
        with_length=True,
        changes=(capitals, np.full(len(capitals), ord("a") - ord("A"), np.uint64)),
    )
    vocab_hashes[~has_letter] = 0
    addresses = marks[(cls[marks] & _ADDRESS) != 0]
    vocab_hashes[np.searchsorted(starts, addresses, side="right") - 1] = 0

    doc_starts = np.zeros(len(texts) + 1, np.int64)
    np.cumsum([len(t) + 1 for t in texts], out=doc_starts[1:])
    tok_off = np.searchsorted(starts, doc_starts)
    n_words = _segment_sums(is_word, tok_off).tolist()
    word_chars = _segment_sums(tok_word_chars, tok_off).tolist()
    n_alpha = _segment_sums(has_letter, tok_off).tolist()
    n_pieces = _segment_sums(1 + lead.astype(np.int64) + trail, tok_off).tolist()
    lengths = ends - starts
    bounds = tok_off.tolist()
    return [
        TextStats(
            n_chars=len(text),
            n_words=n_words[i],
            word_chars=word_chars[i],
            n_alpha=n_alpha[i],
            n_pieces=n_pieces[i],
            hashes=hashes[bounds[i] : bounds[i + 1]],
            lengths=lengths[bounds[i] : bounds[i + 1]],
            core_hashes=core_hashes[bounds[i] : bounds[i + 1]],
            vocab_hashes=vocab_hashes[bounds[i] : bounds[i + 1]],
        )
        for i, text in enumerate(texts)
    ]


class _StatsCache:
    """Recent `TextStats` by text, bounded by the total characters they cover.

    Filters run one after another over the same batch, so a plain LRU would thrash as soon
    as a batch outgrows the budget. Instead, entries used by the current call are never
    evicted by it, and when the budget is still exceeded new entries are simply not kept:
    the next filter then reuses the first part of the batch instead of nothing."""

    def __init__(self, budget_chars: int) -> None:
        self.budget = budget_chars
        self.chars = 0
        self.entries: OrderedDict[str, TextStats] = OrderedDict()

    def get(self, text: str) -> TextStats | None:
        stats = self.entries.get(text)
        if stats is not None:
            self.entries.move_to_end(text)
        return stats

    def put(self, text: str, stats: TextStats, protected: int) -> bool:
        """Add an entry, evicting the oldest ones except the `protected` most recent.
        Returns whether it was added."""
        if text in self.entries:
            return False
        while self.chars + len(text) > self.budget and len(self.entries) > protected:
            old_text, _ = self.entries.popitem(last=False)
            self.chars -= len(old_text)
        if self.chars + len(text) > self.budget:
            return False
        self.entries[text] = stats
        self.chars += len(text)
        return True


_cache = _StatsCache(_CACHE_CHARS)


def clear_cache() -> None:
    """Forget cached statistics (for benchmarks that must measure a cold start)."""
    global _cache
    _cache = _StatsCache(_CACHE_CHARS)


def text_stats(texts: Sequence[str]) -> list[TextStats]:
    """Statistics of each text, computed in batches (and reused from the cache when the
    same text was analysed recently)."""
    result: list[TextStats | None] = [_cache.get(t) for t in texts]
    used = sum(s is not None for s in result)
    chunks: list[list[int]] = [[]]
    chunk_chars = 0
    for i, stats in enumerate(result):
        if stats is None:
            if chunks[-1] and chunk_chars + len(texts[i]) >= _CHUNK_CHARS:
                chunks.append([])
                chunk_chars = 0
            chunks[-1].append(i)
            chunk_chars += len(texts[i]) + 1  # and the separator
    for chunk in filter(None, chunks):
        for i, stats in zip(chunk, _analyze_chunk([texts[i] for i in chunk]), strict=True):
            result[i] = stats
            used += _cache.put(texts[i], stats, protected=used)
    return result  # type: ignore[return-value]


def word_fingerprints(words: Iterable[str]) -> np.ndarray:
    """Fingerprints comparable with `TextStats.core_hashes` (for stop-word lists)."""
    words = list(words)
    if not words:
        return np.zeros(0, np.uint64)
    return _analyze_chunk([" ".join(words)])[0].core_hashes.copy()


def repeated_ngrams(
    stats: Sequence[TextStats], top_ns: Collection[int], dup_ns: Collection[int], copies: int = 1
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Gopher's n-gram repetition statistics for a batch of documents, in characters.

    Returns `(top, dup)`: for each n in `top_ns`, `top[n][d]` is the count of document d's
    most frequent n-gram times its length (tokens joined by single spaces; ties go to the
    n-gram that occurs first, and a document whose n-grams are all distinct reports its
    first one); for each n in `dup_ns`, `dup[n][d]` is the number of token characters
    (whitespace excluded) covered by any n-gram occurrence that has `copies` earlier ones
    (Gopher's rule: 1, every repeat).

    Documents are processed in groups of about `_NGRAM_CHUNK_TOKENS` tokens: large enough
    that numpy's per-call overhead vanishes, small enough for the arrays to stay in cache.
    """
    top = {n: np.zeros(len(stats), np.int64) for n in top_ns}
    dup = {n: np.zeros(len(stats), np.int64) for n in dup_ns}
    if not top and not dup:
        return top, dup
    lo = tokens = 0
    for hi, doc in enumerate(stats, 1):
        tokens += doc.n_tokens
        if tokens >= _NGRAM_CHUNK_TOKENS or hi == len(stats):
            _ngram_chunk(
                stats[lo:hi],
                {n: a[lo:hi] for n, a in top.items()},
                {n: a[lo:hi] for n, a in dup.items()},
                copies,
            )
            lo, tokens = hi, 0
    return top, dup


def _drop_unique(pos: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove most keys that occur once, cheaply, before sorting: a key alone in its bucket
    of a table four times larger than the key count cannot repeat (~78% of unique keys)."""
    bits = max(int(len(keys)).bit_length() + 2, 8)
    buckets = (keys >> np.uint64(64 - bits)).astype(np.intp)
    shared = np.bincount(buckets, minlength=1 << bits)[buckets] > 1
    return pos[shared], keys[shared]


def _ngram_chunk(
    stats: Sequence[TextStats], top: dict[int, np.ndarray], dup: dict[int, np.ndarray], copies: int
) -> None:
    """`repeated_ngrams` for one group of documents, writing into `top` and `dup`.

    N-gram keys of all the group's documents (the document index mixed in) are sorted
    together. An (n+1)-gram can only repeat where its leading n-gram repeats, so after the
    smallest n only positions whose n-gram occurs at least twice are carried to the next n:
    the sorts shrink quickly and stop when nothing repeats any more."""
    counts = np.array([s.n_tokens for s in stats], np.int64)
    offsets = np.zeros(len(stats) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    hashes = np.concatenate([s.hashes for s in stats])
    char_acc = np.zeros(offsets[-1] + 1, np.int64)
    np.cumsum(np.concatenate([s.lengths for s in stats]), out=char_acc[1:])
    doc_of = np.repeat(np.arange(len(stats)), counts)
    doc_end = offsets[1:][doc_of]

    def ngram_chars(pos: np.ndarray, n: int) -> np.ndarray:
        return char_acc[pos + n] - char_acc[pos] + (n - 1)

    for n, out in top.items():
        fits = counts >= n
        out[fits] = ngram_chars(offsets[:-1][fits], n)

    ns = sorted(top.keys() | dup.keys())
    low, high = ns[0], ns[-1]
    pos = np.flatnonzero(np.arange(len(hashes)) + low <= doc_end)
    keys = hashes[pos] ^ fmix64_array(doc_of[pos].astype(np.uint64) + np.uint64(1))
    for k in range(1, low):
        keys = keys * _NGRAM_BASE + hashes[pos + k]
    for n in range(low, high + 1):
        pos, keys = _drop_unique(pos, keys)
        order = np.argsort(keys, kind="stable")  # stable: ties keep ascending positions
        sorted_keys = keys[order]
        same = sorted_keys[1:] == sorted_keys[:-1]  # same[i]: sorted i+1 repeats sorted i
        if not same.any():
            return  # nothing repeats at n, so nothing at any larger n: defaults stand
        if n in top:
            group_first = np.flatnonzero(np.concatenate(([True], ~same)))
            sizes = np.diff(np.append(group_first, len(order)))
            repeated = sizes >= 2
            sizes, first_pos = sizes[repeated], pos[order[group_first[repeated]]]
            docs = doc_of[first_pos]
            best = np.lexsort((first_pos, -sizes, docs))  # per doc: most frequent, earliest
            best = best[np.concatenate(([True], docs[best][1:] != docs[best][:-1]))]
            top[n][docs[best]] = sizes[best] * ngram_chars(first_pos[best], n)
        if n in dup:
            # An occurrence's rank among its n-gram's occurrences (stable sort: by position).
            # Repeats sorted by position; the windows have equal length, so the union of
            # [r_i, r_i + n) is the sum of [r_i, min(r_i + n, r_{i+1})).
            if copies == 1:
                reps = np.sort(pos[order[1:][same]])
            else:
                index = np.arange(len(order))
                starts = np.maximum.accumulate(np.where(np.concatenate(([True], ~same)), index, 0))
                reps = np.sort(pos[order[index - starts >= copies]])
            stop = np.minimum(reps + n, np.append(reps[1:], np.iinfo(np.int64).max))
            covered = char_acc[stop] - char_acc[reps]
            dup[n][:] = np.bincount(doc_of[reps], weights=covered, minlength=len(stats))
        if n == high:
            return
        in_group = np.zeros(len(order), bool)
        in_group[1:] = same
        in_group[:-1] |= same
        keep = np.sort(order[in_group])
        keep = keep[pos[keep] + n + 1 <= doc_end[pos[keep]]]
        pos = pos[keep]
        keys = keys[keep] * _NGRAM_BASE + hashes[pos + n]


def duplicate_stats(items: Sequence[str], copies: int = 1) -> tuple[int, int]:
    """(number of items equal to `copies` earlier items, total characters of those items).

    With `copies=1`, every distinct value's first occurrence is unique and all later ones are
    duplicates, so both numbers follow from one set construction, without a Python loop."""
    if copies == 1:
        distinct = set(items)
        return len(items) - len(distinct), sum(map(len, items)) - sum(map(len, distinct))
    extra = [(item, count - copies) for item, count in Counter(items).items() if count > copies]
    return sum(n for _, n in extra), sum(len(item) * n for item, n in extra)


def count_starting(lines: Iterable[str], prefixes: tuple[str, ...]) -> int:
    """Lines that start with one of `prefixes` once leading whitespace is removed."""
    return sum(map(str.startswith, map(str.lstrip, lines), repeat(prefixes)))


def count_ending(lines: Iterable[str], suffixes: tuple[str, ...], rstrip: bool = True) -> int:
    """Lines that end with one of `suffixes` (after trailing whitespace is removed)."""
    if rstrip:
        lines = map(str.rstrip, lines)
    return sum(map(str.endswith, lines, repeat(suffixes)))


def paragraphs(text: str) -> list[str]:
    """The paragraphs of `text`: what `re.split(r"\\n{2,}", text.strip())` returns (without
    the [""] of an empty text), via `str.split`, which is several times faster here. Splitting
    at "\\n\\n" leaves a run of 2k+1 newlines as one "\\n" opening the next part, and a run of
    2k+2 as an empty part; both are undone below."""
    return list(filter(None, map(str.lstrip, text.strip().split("\n\n"), repeat("\n"))))


_TEXT_BITS = 20  # keyword_stats: texts of a call, in the high bits of a word's key
_HASH_SHIFT = np.uint64(64 - _TEXT_BITS)


def keyword_stats(
    stats: Sequence[TextStats], ignore: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """How much of each text a few keywords take, and how varied its vocabulary is.

    Works on *content words*: tokens whose `vocab_hashes` (the case-folded core) is neither 0
    (no letter; an address, path or tag: "https://github.com/org/repo" is not vocabulary, and a
    README full of badge links would otherwise read as a page repeating "github") nor in the
    sorted array `ignore` (function words, short words: `word_fingerprints` of lower-case
    words). Returns two float arrays, one value per text:

    * `top3`: the occurrences of the text's three most frequent content words, as a share of
      its words (`TextStats.n_words`; 0 for a text without words);
    * `diversity`: the moving-average type-token ratio (MATTR, Covington & McFall 2010) of
      its content words: the share of distinct words in every run of `window` consecutive
      content words, averaged over all runs (over the whole sequence when it is shorter;
      1 without content words). MATTR, unlike a plain type-token ratio, does not fall as
      a text grows.

    All windows are counted without visiting them: a word at position j is the first of its
    kind in the window starting at s exactly when its previous occurrence lies before s, so
    it is counted by the windows s in (max(prev, j - window), j], clipped to the windows
    that exist. Only a previous occurrence less than `window` words back matters, so it is
    found by comparing the word sequence with itself shifted by 1 .. window - 1, not by
    sorting. Counting words sorts one key a word: its text in the high bits, its hash below,
    so two different words of one text share a key only when 44 bits of their hashes agree."""
    n = len(stats)
    if n >= 1 << _TEXT_BITS:
        raise ValueError(f"keyword_stats takes fewer than {1 << _TEXT_BITS} texts at once, not {n}")
    n_words = np.array([s.n_words for s in stats], np.int64)
    tokens = np.concatenate([s.vocab_hashes for s in stats]) if n else np.zeros(0, np.uint64)
    token_doc = np.repeat(np.arange(n), [s.n_tokens for s in stats])
    spot = np.minimum(np.searchsorted(ignore, tokens), max(len(ignore) - 1, 0))
    content = (tokens != 0) & (ignore[spot] != tokens if len(ignore) else True)
    hashes, doc = tokens[content], token_doc[content]
    n_content = np.bincount(doc, minlength=n)
    pos = np.arange(len(hashes)) - (np.cumsum(n_content) - n_content)[doc]

    prev = pos - window  # no earlier copy within reach: as good as none
    for back in range(window - 1, 0, -1):  # the nearest copy is written last
        copy = (hashes[back:] == hashes[:-back]) & (doc[back:] == doc[:-back])
        prev[back:][copy] = pos[back:][copy] - back
    width_all = np.minimum(window, n_content)
    width = width_all[doc]
    lo = np.maximum(np.maximum(prev + 1, pos - width + 1), 0)
    hi = np.minimum(pos, n_content[doc] - width)
    counted = np.bincount(doc, np.maximum(hi - lo + 1, 0), minlength=n)
    runs = (n_content - width_all + 1) * width_all
    diversity = np.divide(counted, runs, out=np.ones(n), where=n_content > 0)

    keys = np.sort((doc.astype(np.uint64) << _HASH_SHIFT) | (hashes >> np.uint64(_TEXT_BITS)))
    starts = np.flatnonzero(np.diff(keys, prepend=~keys[:1]) != 0) if len(keys) else np.zeros(0, np.int64)
    counts = np.diff(np.append(starts, len(keys)))
    group_doc = (keys[starts] >> _HASH_SHIFT).astype(np.int64)
    by_count = np.lexsort((-counts, group_doc))
    ranked_doc = group_doc[by_count]
    rank = np.arange(len(by_count)) - np.searchsorted(ranked_doc, ranked_doc)
    top = by_count[rank < 3]
    top3 = np.bincount(group_doc[top], counts[top], minlength=n)
    return np.divide(top3, n_words, out=np.zeros(n), where=n_words > 0), diversity
