"""Text garbled on its way here: mojibake, stacked combining marks, words spelled across scripts.

Language ID and the prose rules see garbled text only indirectly (a lower English score, odd
word lengths), and miss most of it: on the filter evaluation's dev split they removed half of
it. These rules look at the garbling itself:

* ``mojibake``: UTF-8 read as cp1252 or Latin-1 ("cafÃ©", "itâ€™s"), once or twice: more than
  `max_mojibake_per_1000` (1) of ftfy's mojibake sequences (`ftfy.badness`) per 1,000
  characters. ftfy could repair some of it (`normalize`'s `fix_mojibake`), but a document
  garbled all through is rarely repaired whole.
* ``stacked_marks``: "Zalgo" text, runs of three or more combining diacritics on one letter,
  more than `max_stacked_marks_per_1000` (1) per 1,000 characters. Languages that stack marks
  (Vietnamese, Thai, Devanagari) stack two at most.
* ``mixed_scripts``: words mixing Latin letters with Cyrillic or Greek look-alikes ("pаypal"
  with a Cyrillic "а"), spoofing or obfuscation: more than `max_mixed_script_words` (5 %) of
  the words.

The thresholds were set on the filter evaluation's dev split, where each rule flags every
document of its kind of garbling and no clean one (ftfy finds no mojibake sequence in any clean
kind); on its test split the chain removes 97.5 % of garbled documents. datatrove has no such
filter.
"""

from __future__ import annotations

import re

import ftfy.badness
from pydantic import NonNegativeFloat

from pipeline.config import UnitFloat
from pipeline.document import Document
from pipeline.steps.base import Filter, Verdict

# UTF-8's lead bytes read as cp1252/Latin-1 (Â Ã Ä Å â ã ä å) followed by what its continuation
# bytes become (the Latin-1 range 0x80-0xBF, or cp1252's curly quotes, dashes, € and friends).
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00c5\u00e2-\u00e5][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
    "\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
_STACKED = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff]{3,}")
_LATIN = re.compile(r"[A-Za-z]")
_LOOKALIKE = re.compile(r"[\u0370-\u03ff\u0400-\u04ff]")
_MIXED_WORD = re.compile(r"\b(?=\w*[A-Za-z])(?=\w*[\u0370-\u03ff\u0400-\u04ff])\w+\b")


class EncodingFilter(Filter):
    """See the module docstring; a threshold of None disables its rule."""

    name = "encoding"

    def __init__(
        self,
        *,
        max_mojibake_per_1000: NonNegativeFloat | None = 1.0,
        max_stacked_marks_per_1000: NonNegativeFloat | None = 1.0,
        max_mixed_script_words: UnitFloat | None = 0.05,
    ) -> None:
        super().__init__()

    def filter(self, doc: Document) -> Verdict:
        text = doc.text
        if text.isascii():  # every rule needs characters beyond ASCII
            return True
        per_1000 = 1000 / len(text)
        mojibake = self.max_mojibake_per_1000
        hint = _MOJIBAKE_HINT.search(text)  # ftfy's scan is slow; mojibake always shows this pair
        if mojibake is not None and hint and ftfy.badness.badness(text) * per_1000 > mojibake:
            return "mojibake"
        stacked = self.max_stacked_marks_per_1000
        if stacked is not None and len(_STACKED.findall(text)) * per_1000 > stacked:
            return "stacked_marks"
        mixed = self.max_mixed_script_words
        if mixed is None or not (_LOOKALIKE.search(text) and _LATIN.search(text)):
            return True
        if len(_MIXED_WORD.findall(text)) / max(len(text.split()), 1) > mixed:
            return "mixed_scripts"
        return True
