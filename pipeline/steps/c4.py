"""C4's line and page heuristics (Raffel et al. 2020, §2.2), with FineWeb's defaults."""

from __future__ import annotations

import re

from pydantic import NonNegativeInt, PositiveInt

from pipeline.config import UnitFloat
from pipeline.document import Document
from pipeline.steps.base import Filter, Verdict
from pipeline.text.lines import menu_words

CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
"""Wikipedia-style markers stripped from the text: "[1]", "[]", "[edit]", "[citation needed]"."""

TERMINAL_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
SENTENCE_BREAK = re.compile(r"[.!?]+[\"'”’)\]]*[^\S\n]+(?=\S)")
"""A sentence end followed by more text on the same line."""


class C4Filter(Filter):
    """Removes boilerplate lines, then drops pages that are code, placeholder text or too
    short to be prose. Kept documents get the cleaned text (`doc.text` is rewritten).

    Line rules (a line failing one is removed, the document stays):

    * it contains a word longer than `max_word_length` characters;
    * it does not end in terminal punctuation ('.', '?', '!', '"' or "'") or ends with
      "..." — only when `filter_no_terminal_punct` (C4 has it on; FineWeb turns it off, and
      so does this default);
    * it has fewer than `min_words_per_line` words;
    * it mentions "javascript" (`filter_javascript`), or a cookie / privacy / terms-of-use
      phrase from `policy_phrases` (`filter_policy`), case-insensitively.

    Page rules, over the lines that survive the rules above, in line order; the reason is:

    * ``lorem_ipsum``: a line contains "lorem ipsum" (`filter_lorem_ipsum`);
    * ``curly_bracket``: a line contains "{" (`filter_curly_bracket`): code, CSS, templates. Off
      by default, where grist departs from C4: C4 used it to keep code out of web text, and
      grist routes code to `code_quality` instead; on the filter evaluation's dev split it removed 41 % of
      encyclopedic pages (MediaWiki templates), 17 % of changelogs and 10 % of documentation;
    * ``boilerplate_lines`` (grist's own): more than `max_boilerplate_words` (0.5) of the page's
      words (of those left by the word-length and terminal-punctuation rules) are in lines
      removed as too short or as javascript / policy lines, or in menu items of the kept lines
      (`pipeline.text.lines.menu_words`: a line cut where menus are laid out, " | ", " · ",
      " • ", " > ", and its segments of five words or fewer without a sentence's end). C4
      keeps a page whose menu lines it strips; what is left of a page of chrome is then its
      longer footer lines (cookie and copyright notices, "Follow us on Twitter"), which pass
      every later rule, and FineWeb's line rules, run after C4, never see the menu. On the
      filter evaluation's dev split it removes 76 % of the boilerplate pages, and 6 of 1,573
      clean documents (2 MediaWiki articles, 3 READMEs, a changelog). The anchor is
      RefinedWeb's (DCLM's `word_removal_ratio_filter`): a page whose line corrections removed
      more than 5 % of its words goes. grist counts C4's line removals and menu items and
      allows half, because its menu-item count also sees headings; RefinedWeb's own line
      corrections (lines mostly in capitals, counters, sign-in lines) added nothing on
      boilerplate there and removed licences for their capitalised warranty disclaimers
      (licence files removed 11.7 -> 19.6 %);
    * ``too_few_sentences``: fewer than `min_num_sentences` sentences remain;
    * ``empty``: no line remains (only reachable with `min_num_sentences=None`).

    With `remove_citations`, "[1]", "[edit]" and "[citation needed]" are deleted first.
    A value of None disables a numeric rule.

    Differences from datatrove's `C4QualityFilter`: sentences are counted with a regex (a
    line is one sentence plus one per ".", "!" or "?" followed by more text) rather than
    NLTK's punkt, which recognises abbreviations, so "Mr. Smith" counts two here; citation
    markers are removed before lines are stripped and words counted, so a kept line never
    keeps the space that preceded a marker. Lines are judged with whole-document substring
    checks first, so documents without any trigger phrase never pay for per-line lowercasing.
    """

    name = "c4"
    kinds = ("prose",)  # source code repeats lines and lacks sentences by nature

    def __init__(
        self,
        *,
        remove_citations: bool = True,
        filter_no_terminal_punct: bool = False,
        min_num_sentences: NonNegativeInt | None = 5,
        min_words_per_line: NonNegativeInt | None = 3,
        max_word_length: PositiveInt | None = 1000,
        filter_lorem_ipsum: bool = True,
        filter_javascript: bool = True,
        filter_curly_bracket: bool = False,
        filter_policy: bool = True,
        policy_phrases: tuple[str, ...] = POLICY_PHRASES,
        max_boilerplate_words: UnitFloat | None = 0.5,
    ) -> None:
        super().__init__()
        self.policy_phrases = tuple(p.lower() for p in policy_phrases)
        # A word is too long when max_word_length + 1 non-space characters follow a token start.
        self._long_word = (
            re.compile(rf"(?<!\S)\S{{{max_word_length + 1}}}") if max_word_length is not None else None
        )

    def filter(self, doc: Document) -> Verdict:
        text = doc.text
        if self.remove_citations and "[" in text:
            text = CITATION.sub("", text)
        lines = list(map(str.strip, text.splitlines()))
        limit = self.max_word_length
        if self._long_word is not None and max(map(len, lines), default=0) > limit:
            lines = [line for line in lines if len(line) <= limit or not self._long_word.search(line)]
        if self.filter_no_terminal_punct:
            lines = [
                line for line in lines if line.endswith(TERMINAL_PUNCTUATION) and not line.endswith("...")
            ]
        words = sum(len(line.split()) for line in lines) if self.max_boilerplate_words is not None else 0
        if self.min_words_per_line:
            k = self.min_words_per_line
            lines = [line for line in lines if len(line.split(None, k - 1)) >= k]
        lines_or_reason = self._phrase_rules(lines, text)
        if isinstance(lines_or_reason, str):
            return lines_or_reason
        lines = lines_or_reason
        removable = self.max_boilerplate_words
        body = sum(len(line.split()) - menu_words(line) for line in lines) if removable is not None else 0
        if removable is not None and body < (1 - removable) * words:
            return "boilerplate_lines"
        n_lines = len(lines) - lines.count("")
        if self.min_num_sentences and n_lines < self.min_num_sentences:
            sentences = n_lines + len(SENTENCE_BREAK.findall("\n".join(lines)))
            if sentences < self.min_num_sentences:
                return "too_few_sentences"
        if not n_lines:
            return "empty"
        doc.text = "\n".join(lines).strip()
        return True

    def _phrase_rules(self, lines: list[str], text: str) -> list[str] | str:
        """Apply the javascript / policy / lorem-ipsum / curly-bracket rules to the lines.

        Each is first looked for in the whole document; only when one occurs are lines
        examined one by one, in order, so the first offending line decides as in C4."""
        lower = (
            text.lower() if self.filter_lorem_ipsum or self.filter_javascript or self.filter_policy else ""
        )
        lorem = self.filter_lorem_ipsum and "lorem ipsum" in lower
        javascript = self.filter_javascript and "javascript" in lower
        policy = self.filter_policy and any(p in lower for p in self.policy_phrases)
        curly = self.filter_curly_bracket and "{" in text
        if not (lorem or javascript or policy or curly):
            return lines
        kept = []
        for line in lines:
            line_lower = line.lower() if lorem or javascript or policy else line
            if lorem and "lorem ipsum" in line_lower:
                return "lorem_ipsum"
            if javascript and "javascript" in line_lower:
                continue
            if curly and "{" in line:
                return "curly_bracket"
            if policy and any(p in line_lower for p in self.policy_phrases):
                continue
            kept.append(line)
        return kept
