"""Unicode and whitespace normalization, optional mojibake repair, and length limits.

Runs first so every later step (and exact dedup) sees one canonical form of the same text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from pydantic import NonNegativeInt, PositiveInt

from pipeline.document import Document
from pipeline.steps.base import Filter, Verdict

_TRAILING_SPACE = re.compile(r"[ \t\u00a0]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")
# C0/C1 controls other than tab and newline carry no text and confuse tokenizers and viewers.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class Normalize(Filter):
    """NFC, line endings to `\\n`, control characters dropped, trailing spaces stripped, at most
    one blank line in a row; then documents outside [min_chars, max_chars] are removed.

    Reasons: `too_short`, `too_long`.
    """

    name = "normalize"

    def __init__(
        self,
        *,
        form: Literal["NFC", "NFKC", "NFD", "NFKD"] = "NFC",
        fix_mojibake: bool = False,
        min_chars: NonNegativeInt = 1,
        max_chars: PositiveInt = 1_000_000,
    ) -> None:
        super().__init__()

    def normalize(self, text: str) -> str:
        if self.fix_mojibake:
            import ftfy

            text = ftfy.fix_text(text, normalization=self.form)
        text = unicodedata.normalize(self.form, text)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = _CONTROL.sub("", text)
        text = _TRAILING_SPACE.sub("\n", text)
        text = _BLANK_RUNS.sub("\n\n", text)
        return text.strip()

    def filter(self, doc: Document) -> Verdict:
        doc.text = self.normalize(doc.text)
        n = len(doc.text)
        if n < self.min_chars:
            return "too_short"
        if n > self.max_chars:
            return "too_long"
        return True
