"""Lines as a writer meant them: hard-wrapped paragraphs joined back into one line each.

Books from Project Gutenberg, RFCs, man pages, changelogs and many READMEs wrap their
paragraphs at a fixed width (about 70 characters), so most of their lines end mid-sentence.
Line rules written for web pages, where a line is a paragraph (FineWeb's share of lines ending
in punctuation, its short-line share, the newline ratio), then read clean prose as a list and
remove it: `line_punct_ratio` alone removed 254 of the sample's 715 book documents. So line
rules look at `unwrap(text)`.

A document is hard-wrapped when most of its lines are nearly as long as its wrap width (the
90th percentile of line lengths, between `MIN_WIDTH` and `MAX_WIDTH`): then, inside each
paragraph (lines between blank lines), a line at least `WRAPPED` of that width continues on
the next line. Short lines (the last line of a paragraph, a verse, a heading, a list item) keep
their breaks, and text that is not wrapped (a web page, whose lines vary in length) is returned
unchanged.
"""

from __future__ import annotations

import re

import numpy as np

MIN_WIDTH = 55  # narrower lines are verse, lists or dialogue, not a wrapped paragraph
MAX_WIDTH = 100  # wider lines are paragraphs, not a wrap width
WRAPPED = 0.75  # a line this close to the width was broken by the width, not by the writer
MIN_WRAPPED_SHARE = 0.5  # of non-blank lines, for the document to count as hard-wrapped


def wrap_width(lines: list[str]) -> int | None:
    """The width a document's lines were wrapped at, or None when they were not."""
    lengths = np.array([len(line) for line in lines if line.strip()])
    if len(lengths) < 4:
        return None
    width = int(np.percentile(lengths, 90))
    if not MIN_WIDTH <= width <= MAX_WIDTH or np.mean(lengths >= WRAPPED * width) < MIN_WRAPPED_SHARE:
        return None
    return width


def unwrap(text: str) -> str:
    """The text with hard-wrapped paragraphs joined into single lines (module docstring)."""
    lines = text.split("\n")
    width = wrap_width(lines)
    if width is None:
        return text
    out: list[str] = []
    joining = False
    for line in lines:
        if joining and line.strip():
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line)
        joining = len(line.rstrip()) >= WRAPPED * width
    return "\n".join(out)


_MENU_MARKS = (" | ", " · ", " • ", " > ")  # separators that are tokens of their own
_LAYOUT = (*_MENU_MARKS, "\t", "  ")  # and runs of blanks
# How menus and breadcrumbs are laid out: line breaks, the marks above, tabs, runs of spaces.
MENU_SEPARATORS = re.compile("|".join(["\n", *map(re.escape, _MENU_MARKS), "\t", " {2,}"]))
MENU_ITEM_WORDS = 5  # a segment of at most this many words, without a sentence's end, is a menu item
_CLAUSE_END = (".", "!", "?", ":", ";", ",", '"', "'", "”", "’")


# A list item of four or more words ("* Fix weight conversion on MacOS", "2. Run the tests"):
# a changelog's or a README's sentence, written without a full stop.
LIST_ITEM = re.compile(r"\s*(?:[*+•-]|\d{1,3}[.)])\s+\S+(?:\s+\S+){3}")


def is_menu_item(segment: str) -> bool:
    """A navigation, login or footer item ("Store Locator", "Follow us on Twitter"): a few
    words that do not end a sentence or a clause, and not a list item (`LIST_ITEM`). FineWeb's
    `menu_ratio` and C4's `boilerplate_lines` (grist's own rules) both weigh a page's text in
    such items."""
    return (
        len(segment.split()) <= MENU_ITEM_WORDS
        and not segment.rstrip().endswith(_CLAUSE_END)
        and not LIST_ITEM.match(segment)
    )


def menu_words(line: str) -> int:
    """Tokens of `line` that are menu layout: the words of its menu items, the line cut where
    menus are laid out (`MENU_SEPARATORS`), and the separators between them ("|", "·", ...)."""
    if not any(sep in line for sep in _LAYOUT) and line.count(" ") >= MENU_ITEM_WORDS:
        return 0  # one segment of more than five words: no menu item (the common case, cheaply)
    segments = MENU_SEPARATORS.split(line)
    items = sum(len(seg.split()) for seg in segments if seg.strip() and is_menu_item(seg.strip()))
    return items + sum(map(line.count, _MENU_MARKS))
