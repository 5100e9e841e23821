"""Gopher's quality filter (Rae et al. 2021, "Scaling Language Models", Table A1 / §A.1.1)."""

from __future__ import annotations

import re

import numpy as np
from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from pipeline.config import UnitFloat
from pipeline.document import Document
from pipeline.steps.base import Filter, Verdict
from pipeline.text.kind import RECORDS, kind_of
from pipeline.text.stats import TextStats, count_ending, count_starting, text_stats, word_fingerprints

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
ELLIPSES = ("...", "…")
_LINK = re.compile(r"\S*(?:https?://|www\.)\S*")


class GopherQualityFilter(Filter):
    """Drops documents that do not look like natural prose: too short or too long, odd word
    lengths, hashtag or ellipsis soup, bullet lists, mostly non-words, or no function words.

    Rules, checked in this order; the first that fails is the reason (a threshold of None
    disables its rule):

    * ``too_few_words`` / ``too_many_words``: words outside [`min_doc_words`, `max_doc_words`].
    * ``mean_word_length_low`` / ``mean_word_length_high``: mean word length outside
      [`min_avg_word_length`, `max_avg_word_length`].
    * ``hash_ratio`` / ``ellipsis_ratio``: "#" characters, or ellipses ("..." or "…"), per
      token > `max_symbol_word_ratio`.
    * ``bullet_lines``: share of lines starting with one of `bullet_prefixes` >
      `max_bullet_lines_ratio`.
    * ``ellipsis_lines``: share of lines ending with an ellipsis > `max_ellipsis_lines_ratio`.
    * ``alpha_words``: share of words containing a letter < `min_alpha_words_ratio`.
    * ``stop_words``: fewer than `min_stop_words` of the `stop_words` occur (distinct words,
      exact case, surrounding punctuation ignored).

    Definitions (see `pipeline.text.stats`): a *word* is a whitespace-separated token with at least one
    character that is not punctuation or a symbol; its length counts those characters only.
    *Tokens* count words and symbol runs the way a word tokenizer would ("(hello)," is three).

    Differences from datatrove's `GopherQualityFilter`: it tokenizes with a word tokenizer
    (spaCy's rule-based English one in datatrove 0.10.1, NLTK's before), where this filter
    reads whitespace tokens and estimates the tokenizer's count from punctuation runs,
    so contractions ("don't") are one word here and a word's interior punctuation ("e.g.",
    "U.S.") does not count towards its length. datatrove's `max_non_alpha_words_ratio` is a
    minimum despite its name; it is called `min_alpha_words_ratio` here.

    Where grist departs from Gopher as datatrove implements it, and why: ``alpha_words`` divides
    by words, not by tokenizer tokens. datatrove counts every punctuation token ("," "." "(") as a
    word without a letter, so ordinary punctuated prose falls under 0.8: on a mixed corpus of
    technical prose nobody tuned for, a tester (issue #11) saw this one rule remove 10,783 clean
    documents. Gopher's paper asks that 80 % of *words* hold a letter. And a web address is not a
    word: a README whose badges and links are long URLs failed ``mean_word_length_high`` on them,
    so when the mean is too high and the text holds addresses, it is measured again without
    them (filter evaluation, dev split: documentation 7.3 -> 6.7 % removed; link lists are
    removed by the language and line rules as before). Source code is not judged (`kinds`), and
    records (`pipeline.text.kind`: changelogs, copyright files) skip ``alpha_words``: their
    versions, dates and bug numbers are words without letters in every entry.
    """

    name = "gopher_quality"
    kinds = ("prose", "records")

    def __init__(
        self,
        *,
        min_doc_words: NonNegativeInt | None = 50,
        max_doc_words: PositiveInt | None = 100_000,
        min_avg_word_length: NonNegativeFloat | None = 3,
        max_avg_word_length: PositiveFloat | None = 10,
        max_symbol_word_ratio: NonNegativeFloat | None = 0.1,
        max_bullet_lines_ratio: UnitFloat | None = 0.9,
        max_ellipsis_lines_ratio: UnitFloat | None = 0.3,
        min_alpha_words_ratio: UnitFloat | None = 0.8,
        min_stop_words: NonNegativeInt | None = 2,
        stop_words: tuple[str, ...] = STOP_WORDS,
        bullet_prefixes: tuple[str, ...] = ("•", "-"),
    ) -> None:
        super().__init__()
        self.stop_words = tuple(stop_words)
        self.bullet_prefixes = tuple(bullet_prefixes)
        self._stop_fingerprints = np.unique(word_fingerprints(self.stop_words))

    def filter(self, doc: Document) -> Verdict:
        return self.filter_batch([doc])[0]

    def filter_batch(self, docs: list[Document]) -> list[Verdict]:
        texts = [doc.text for doc in docs]
        records = [kind_of(doc) == RECORDS for doc in docs]
        return [
            self._verdict(text, stats, record)
            for text, stats, record in zip(texts, text_stats(texts), records, strict=True)
        ]

    def _verdict(self, text: str, stats: TextStats, record: bool = False) -> Verdict:
        words = stats.n_words
        if self.min_doc_words is not None and words < self.min_doc_words:
            return "too_few_words"
        if self.max_doc_words is not None and words > self.max_doc_words:
            return "too_many_words"
        if words:
            mean_length = stats.word_chars / words
            if self.min_avg_word_length is not None and mean_length < self.min_avg_word_length:
                return "mean_word_length_low"
            if self.max_avg_word_length is not None and mean_length > self.max_avg_word_length:
                if not _LINK.search(text):
                    return "mean_word_length_high"
                prose = text_stats([_LINK.sub(" ", text)])[0]  # addresses are not words
                if prose.n_words and prose.word_chars / prose.n_words > self.max_avg_word_length:
                    return "mean_word_length_high"
        tokens = stats.n_pieces
        if tokens and self.max_symbol_word_ratio is not None:
            if text.count("#") / tokens > self.max_symbol_word_ratio:
                return "hash_ratio"
            if (text.count("...") + text.count("…")) / tokens > self.max_symbol_word_ratio:
                return "ellipsis_ratio"
        lines = text.splitlines()
        if lines:
            limit = self.max_bullet_lines_ratio
            if limit is not None and count_starting(lines, self.bullet_prefixes) / len(lines) > limit:
                return "bullet_lines"
            limit = self.max_ellipsis_lines_ratio
            if limit is not None and count_ending(lines, ELLIPSES) / len(lines) > limit:
                return "ellipsis_lines"
        limit = self.min_alpha_words_ratio
        if words and limit is not None and not record and stats.n_alpha / words < limit:
            return "alpha_words"
        if self.min_stop_words is not None and self._count_stop_words(stats) < self.min_stop_words:
            return "stop_words"
        return True

    def _count_stop_words(self, stats: TextStats) -> int:
        """How many distinct stop words occur: a sorted-array lookup of every token's core."""
        stops = self._stop_fingerprints
        if not len(stops) or not stats.n_tokens:
            return 0
        where = np.minimum(np.searchsorted(stops, stats.core_hashes), len(stops) - 1)
        found = where[stops[where] == stats.core_hashes]
        return int(np.count_nonzero(np.bincount(found, minlength=len(stops))))
