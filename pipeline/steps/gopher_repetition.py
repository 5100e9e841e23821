"""Gopher's repetition filter (Rae et al. 2021, "Scaling Language Models", Table A1)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
from pydantic import PositiveInt

from pipeline.config import UnitFloat
from pipeline.document import Document
from pipeline.steps.base import Filter, Verdict
from pipeline.text.kind import RECORDS, kind_of
from pipeline.text.stats import duplicate_stats, paragraphs, repeated_ngrams, text_stats

TOP_N_GRAMS: Mapping[int, float] = MappingProxyType({2: 0.20, 3: 0.18, 4: 0.16})
DUP_N_GRAMS: Mapping[int, float] = MappingProxyType({5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10})


class GopherRepetitionFilter(Filter):
    """Drops documents that repeat themselves: duplicated paragraphs or lines, one n-gram
    taking a large share of the text, or many characters inside repeated n-grams.

    Rules, checked in this order; the first that fails is the reason (a threshold of None
    disables its rule; fractions are of the document's characters unless stated). A line,
    paragraph or n-gram is repeated when `copies` (2) earlier occurrences of it exist:

    * ``empty``: the text is empty.
    * ``dup_para_frac``: repeated paragraphs (split at runs of 2+ newlines), as a fraction of
      paragraphs, > `dup_para_frac`.
    * ``dup_para_char_frac``: characters in those paragraphs > `dup_para_char_frac`.
    * ``dup_line_frac``: repeated non-empty lines, as a fraction of non-empty lines,
      > `dup_line_frac`.
    * ``dup_line_char_frac``: characters in those lines > `dup_line_char_frac`.
    * ``top_{n}gram_frac`` (e.g. ``top_2gram_frac``): the most frequent word n-gram's
      characters times its count > `top_n_grams[n]`.
    * ``dup_{n}gram_frac`` (e.g. ``dup_5gram_frac``): characters of words covered by
      repeated n-grams > `dup_n_grams[n]`.

    Words are whitespace-separated tokens (punctuation stays attached), and n-grams are
    hashed and counted with numpy over whole batches (see `pipeline.text.stats`): no per-n-gram
    string is ever built, which is where datatrove's version of this filter spends its time.

    Differences from datatrove's `GopherRepetitionFilter`, all deliberate:

    * Records (`pipeline.text.kind`: changelogs, copyright files, release notes) are judged by the
      paragraph and line rules only: their frame (a maintainer's sign-off, "New upstream
      release", a licence's name in every "Files:" stanza) repeats the same n-grams in every
      entry, which the n-gram rules read as degenerate text. A page that repeats whole lines
      or paragraphs is still caught.
    * A passage's second copy is not repetition; its third is (`copies=2`; Gopher and datatrove
      count every copy after the first, `copies=1`). Text quoted twice is common in documents
      nobody would call degenerate: a licence reproduced for two sets of files in a Debian
      copyright file, the same notice at a README's top and bottom, two changelog entries that
      both say "New upstream release"; degenerate text (a looping generator, a spun page, a
      line repeated to fill space) repeats itself many times. On the filter evaluation's dev
      split this rule set, alone and reading every document as prose, removed 34 % of licence
      files and 33 % of changelogs with `copies=1`, 15 % and 16 % with `copies=2`, and every
      repeated-lines junk page either way.
      The thresholds are Gopher's, applied to the third and later copies.
    * Words come from `str.split`, not a word tokenizer: "end." is one word, not "end" and ".". The
      character measures barely move (both count the characters of the words), but
      n-gram boundaries and counts can differ slightly on punctuation-heavy text.
    * Duplicated n-gram characters are the *coverage* of every repeated occurrence: a word
      counts once if any n-gram that repeats an earlier one covers it. datatrove scans
      left to right and, at a repeat, counts that n-gram and jumps n words ahead, so repeats
      that overlap the jump are missed. Coverage is never lower than datatrove's count and
      equals it for the usual case of a repeated passage; it needs no sequential scan.
    * Lines are the non-empty "\\n"-separated lines (datatrove's `re.split("\\n+")` also
      yields an empty first/last line when the text starts/ends with a newline).
    """

    name = "gopher_repetition"
    kinds = ("prose", "records")  # source code repeats lines and lacks sentences by nature

    def __init__(
        self,
        *,
        dup_para_frac: UnitFloat | None = 0.30,
        dup_para_char_frac: UnitFloat | None = 0.20,
        dup_line_frac: UnitFloat | None = 0.30,
        dup_line_char_frac: UnitFloat | None = 0.20,
        top_n_grams: Mapping[PositiveInt, UnitFloat] = TOP_N_GRAMS,
        dup_n_grams: Mapping[PositiveInt, UnitFloat] = DUP_N_GRAMS,
        copies: PositiveInt = 2,
    ) -> None:
        super().__init__()
        self.top_n_grams = dict(sorted(top_n_grams.items()))
        self.dup_n_grams = dict(sorted(dup_n_grams.items()))

    def filter(self, doc: Document) -> Verdict:
        return self.filter_batch([doc])[0]

    def filter_batch(self, docs: list[Document]) -> list[Verdict]:
        verdicts = [self._block_verdict(doc.text) for doc in docs]
        pending = [i for i, v in enumerate(verdicts) if v is True and kind_of(docs[i]) != RECORDS]
        if not pending or not (self.top_n_grams or self.dup_n_grams):
            return verdicts
        stats = text_stats([docs[i].text for i in pending])
        top, dup = repeated_ngrams(stats, self.top_n_grams, self.dup_n_grams, self.copies)
        for k, i in enumerate(pending):
            verdicts[i] = self._ngram_verdict(stats[k].n_chars, top, dup, k)
        return verdicts

    def _ngram_verdict(
        self, n_chars: int, top: dict[int, np.ndarray], dup: dict[int, np.ndarray], k: int
    ) -> Verdict:
        for n, limit in self.top_n_grams.items():
            if top[n][k] / n_chars > limit:
                return f"top_{n}gram_frac"
        for n, limit in self.dup_n_grams.items():
            if dup[n][k] / n_chars > limit:
                return f"dup_{n}gram_frac"
        return True

    def _block_verdict(self, text: str) -> Verdict:
        """The paragraph and line rules: cheap, and they decide most repetitive pages."""
        if not text:
            return "empty"
        verdict = self._dup_verdict(
            paragraphs(text), len(text), self.dup_para_frac, self.dup_para_char_frac, "para"
        )
        if verdict is True:
            lines = list(filter(None, text.split("\n")))
            verdict = self._dup_verdict(lines, len(text), self.dup_line_frac, self.dup_line_char_frac, "line")
        return verdict

    def _dup_verdict(
        self, blocks: list[str], n_chars: int, count_limit: float | None, char_limit: float | None, kind: str
    ) -> Verdict:
        if not blocks or (count_limit is None and char_limit is None):
            return True
        dup_count, dup_chars = duplicate_stats(blocks, self.copies)
        if count_limit is not None and dup_count / len(blocks) > count_limit:
            return f"dup_{kind}_frac"
        if char_limit is not None and dup_chars / n_chars > char_limit:
            return f"dup_{kind}_char_frac"
        return True
