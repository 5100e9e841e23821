"""FineWeb's own quality heuristics (Penedo et al. 2024, "The FineWeb Datasets", §3.3)."""

from __future__ import annotations

import numpy as np
from pydantic import NonNegativeFloat, NonNegativeInt, PositiveInt

from pipeline.config import UnitFloat
from pipeline.document import Document
from pipeline.steps.base import Filter, Verdict
from pipeline.text.lines import LIST_ITEM, MENU_SEPARATORS, is_menu_item, unwrap
from pipeline.text.stats import count_ending, duplicate_stats, text_stats

TERMINAL_PUNCTUATION = (
    # FineWeb's own: . ' " ! ?  and their typographic closing quotes; a colon, which ends the
    # sentence that introduces a list or an example in documentation ("Options:")
    ".", "'", '"', "!", "?", "”", "’", "»", ":",
    # sentence ends of other scripts, so non-Latin prose is not mistaken for a list
    "…", "‼", "‽", "⁇", "⁈", "⁉", "。", "｡", "．", "！", "？",
    "؟", "۔", "।", "॥", "։", "።", "፧", "။", "។", "៕",
)  # fmt: skip


MIN_MENU_SEGMENTS = 8


class FineWebFilter(Filter):
    """Drops pages that are lists, menus or link farms rather than running text: the rules
    FineWeb added on top of C4 and Gopher, each kept because removing what it flags trained
    better models.

    Rules, checked in this order; the first that fails is the reason (None disables one).
    Lines are the non-blank "\\n"-separated lines of the text with hard-wrapped paragraphs
    joined (`pipeline.text.lines.unwrap`).

    * ``empty``: no non-blank line.
    * ``line_punct_ratio``: share of lines that end a sentence (end in `terminal_punctuation`,
      or are list items of four or more words) < `line_punct_thr`, and so is the share of
      characters in such lines (with `line_punct_exclude_zero`, a share of exactly 0 is let
      through).
    * ``short_line_ratio``: share of lines of at most `short_line_length` characters >
      `short_line_thr`.
    * ``char_dup_ratio``: characters in lines that repeat an earlier line, over the
      document's characters without newlines, > `char_duplicates_ratio` (FineWeb-2's 0.1;
      FineWeb used 0.01); lines of at most `short_line_length` characters are not counted, nor
      is a line's first repeat (`copies`, as in `GopherRepetitionFilter`).
    * ``newline_ratio``: newlines per token > `new_line_ratio` (datatrove: "list_ratio").
    * ``menu_ratio`` (grist's own): the text cut at line breaks and at the separators menus and
      breadcrumbs are laid out with (" | ", " · ", " • ", " > ", runs of spaces) gives at least
      eight segments, and more than `max_menu_ratio` (0.45) of its characters are in segments of
      five words or fewer without a sentence's end: a page of navigation, login and footer
      chrome, which FineWeb's line rules miss when the menu is laid out on one line. Weighed by
      characters, not segments, so an article's infobox or a manual's option table (many
      short segments) does not outweigh its paragraphs.

    This follows datatrove's current `FineWebQualityFilter` (blank lines ignored, strict
    comparisons; the version FineWeb was built with counted blank lines and used <= / >=).
    Tokens are counted as in `GopherQualityFilter` (whitespace tokens plus punctuation runs at
    word edges, an estimate of the word-tokenizer count datatrove uses), and only when the cheap lower
    bound `len(text.split())` cannot already clear the rule. The terminal punctuation is
    FineWeb's five ASCII marks plus common sentence ends of other scripts (datatrove now uses
    Unicode's sentence terminals, without the quote marks).

    Where grist departs from FineWeb, and why (figures: the filter evaluation's dev split, kinds
    of clean text removed before -> after): (1) line rules read unwrapped paragraphs, because
    text wrapped at a fixed width (books, RFCs, changelogs) otherwise fails `line_punct_ratio`
    for most of its lines ending mid-sentence (537 of 1,152 Gutenberg books were removed by the
    line rules before, about 100 after); (2) duplicated short lines (speaker names in plays, a
    heading, "Home") do not count towards `char_dup_ratio`: 264 of 265 Shakespeare plays failed it
    on their repeated speaker names, while a repeated long line still counts; (3) source code is
    not judged (`kinds`): it is not running prose, and `code_quality` has rules for it; (4) a
    line ending in a closing curly quote (”, ’, ») ends a sentence, as the ASCII quotes do
    (books 4.2 -> 2.1 %); (5) `line_punct_ratio` fails a page only when its share of
    *characters* in sentence-ended lines is low too: an article with a 40-line infobox or a
    README with headings and option lists is running text when most of its characters are in
    sentences (encyclopedic 17 -> 13 %, documentation 16 -> 14 %), while a menu or a link list is
    short lines by count and by characters alike (no junk kind moved); (6) `char_dup_ratio`
    takes FineWeb-2's 0.1, not FineWeb's 0.01, under which one repeated sentence removes a long
    page (changelogs 63 -> 55 %, licences 45 -> 41 %, documentation 20 -> 16 %; no junk kind
    moved), and a long line's second copy is not a repeat (`copies`; licences 25 -> 22.5 %);
    (7) a list item of four or more words ends a sentence, as does a line ending in a colon:
    changelogs and READMEs write their items without a full stop (changelogs 48 -> 44 %,
    encyclopedic 10.4 -> 6.6 %, documentation 14 -> 12 %), while a menu's items are shorter and
    a link list fails the other rules; no junk kind moved.
    """

    name = "fineweb"
    kinds = ("prose",)

    def __init__(
        self,
        *,
        line_punct_thr: UnitFloat | None = 0.12,
        line_punct_exclude_zero: bool = False,
        short_line_thr: UnitFloat | None = 0.67,
        short_line_length: NonNegativeInt = 30,
        char_duplicates_ratio: UnitFloat | None = 0.1,
        new_line_ratio: NonNegativeFloat | None = 0.3,
        max_menu_ratio: UnitFloat | None = 0.45,
        copies: PositiveInt = 2,
        terminal_punctuation: tuple[str, ...] = TERMINAL_PUNCTUATION,
    ) -> None:
        super().__init__()
        self.terminal_punctuation = tuple(terminal_punctuation)

    def filter(self, doc: Document) -> Verdict:
        return self.filter_batch([doc])[0]

    def filter_batch(self, docs: list[Document]) -> list[Verdict]:
        texts = [unwrap(doc.text) for doc in docs]
        verdicts = [self._line_verdict(text) for text in texts]
        if self.new_line_ratio is None:
            return verdicts
        # Tokens >= whitespace tokens, so most documents pass without the exact count.
        unsure = [
            i
            for i, verdict in enumerate(verdicts)
            if verdict is True and texts[i].count("\n") > self.new_line_ratio * len(texts[i].split())
        ]
        for i, stats in zip(unsure, text_stats([texts[i] for i in unsure]), strict=True):
            newlines = texts[i].count("\n")
            if not stats.n_pieces or newlines / stats.n_pieces > self.new_line_ratio:
                verdicts[i] = "newline_ratio"
        return verdicts

    def _line_verdict(self, text: str) -> Verdict:
        lines = list(filter(str.strip, text.split("\n")))
        if not lines:
            return "empty"
        if self.line_punct_thr is not None:
            ratio = count_ending(lines, self.terminal_punctuation, rstrip=False) / len(lines)
            if ratio < self.line_punct_thr:  # FineWeb's rule failed: list items, then characters
                ended = [
                    line
                    for line in lines
                    if line.endswith(self.terminal_punctuation) or LIST_ITEM.match(line)
                ]
                ratio = max(len(ended) / len(lines), sum(map(len, ended)) / sum(map(len, lines)))
            if ratio < self.line_punct_thr and not (ratio == 0 and self.line_punct_exclude_zero):
                return "line_punct_ratio"
        if self.short_line_thr is not None:
            lengths = np.fromiter(map(len, lines), np.int64, len(lines))
            if np.count_nonzero(lengths <= self.short_line_length) / len(lines) > self.short_line_thr:
                return "short_line_ratio"
        if self.char_duplicates_ratio is not None:
            long_lines = [line for line in lines if len(line) > self.short_line_length]
            dup_chars = duplicate_stats(long_lines, self.copies)[1]
            if dup_chars / (len(text) - text.count("\n")) > self.char_duplicates_ratio:
                return "char_dup_ratio"
        if self.max_menu_ratio is not None:
            segments = [seg.strip() for seg in MENU_SEPARATORS.split(text) if seg.strip()]
            if len(segments) >= MIN_MENU_SEGMENTS:
                menu = sum(len(seg) for seg in segments if is_menu_item(seg))
                if menu / sum(map(len, segments)) > self.max_menu_ratio:
                    return "menu_ratio"
        return True
