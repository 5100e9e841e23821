"""What kind of text a document is: source code, records or prose. Rules written for one are
wrong for another (Gopher's stop words and FineWeb's line punctuation remove every source file;
The Stack's line-length and alphanumeric rules say nothing about prose), and real crawls mix
them, so the heuristic filters ask this and apply only to their kind (`Filter.kinds`).

Records are text built of entries with a frame around each: changelogs (an entry header, its items,
a sign-off line with name, address and date), Debian copyright files ("Files:", "Copyright:",
"License:" fields), licence files under their copyright notices, release notes under version
headings, git logs. Their frames repeat and their items carry versions and dates, which Gopher's
n-gram repetition and alphabetic-word rules and C4's and FineWeb's line rules read as junk: on the
filter evaluation's dev split those rules removed a third of the changelogs and a fifth of the
licence files. A document is records when more than `RECORD_SHARE` of its non-blank lines are frame
lines (`_RECORD_LINE`: a short "Field: value" line, a Debian entry header or sign-off, a git
"commit" line, a version heading, a heading underline, a dated copyright notice); on the dev split
that is 76 % of changelogs, 56 % of licence files, 4 % of documentation, 6 % of good web pages (a
film's credits, a shop's addresses), no book or article, and of junk 15 % of the numeric dumps
(logs), 4 % of the repeated-line pages, 2 % of the mojibake and 1 % of the link lists, all of which
the rules kept for records still remove. The filters that judge records keep what fits them
(language, encoding, whole-line and paragraph repetition, length and stop words, word order) and
leave out what does not. In the shipped sample, 39 of 499 DCLM pages and the 6 Project Gutenberg
metadata headers ("Title:", "Author:", "Release Date:") come out as records.

Code is told by its lines: a code line ends in `; { } ) , :` or a backslash, or opens with a
keyword or a comment marker of a common language, or is indented under such a line. A document
is code when enough of its non-blank lines look so and its characters are dense in brackets
and operators. Measured on ../shared/data/raw: 2 of 1,152 Gutenberg chunks, 4 of 499 DCLM pages
and 3 of 328 Wikipedia pages (MediaWiki markup) come out as code, and 9 of 344 Python
stdlib files as prose (docstring-heavy ones); of installed packages' files, 40 of 400 `.py` and
73 of 300 C headers (comment-heavy) come out as prose. A README with code blocks stays prose,
which is what its text mostly is. And a document with at least a quarter of its characters in
paragraph lines (200+ characters, 30+ tokens, 70 % of them plain words) is prose whatever its
other lines are: MediaWiki source, whose templates and links end lines in brackets, came out
as code 5 times in 52 on the filter evaluation's dev split and lost its articles to The Stack's
line-length rule (2 of 206 in the shared MediaWiki sample now, 9 before); no source file there
or among the 344 stdlib files has such lines. The verdict is cached in ``meta["kind"]`` so the
filters of a chain share it.
"""

from __future__ import annotations

import re

from pipeline.document import Document

CODE, PROSE, RECORDS = "code", "prose", "records"
KINDS = (CODE, PROSE, RECORDS)
META_KEY = "kind"

_END_CHARS = frozenset(";{}(),:\\[")
_START_CHARS = frozenset("}])")
_CODE_START = re.compile(
    r"^\s*(?:def|class|import|from\s+\S+\s+import|return|if\s*\(|for\s*\(|while\s*\(|elif|else:|try:|except|"
    r"#include|#define|#!|//|/\*|\*/|function|var|let|const|public|private|protected|static|package|fn|"
    r"pub|impl|struct|enum|func|async|await|@\w+|<\?php|\$\w+\s*=|end\b|begin\b|module|export)\b",
    re.M,
)
# An assignment (`x = 1`, `self.a += b`) or a call standing alone (`main()`, `foo.bar(x, y)`).
_CODE_STATEMENT = re.compile(
    r"^\s*[A-Za-z_$][\w.$\[\]'\"]*\s*(?:[-+*/%|&^]|//|<<|>>)?=\s*[^=\s]|^\s*[A-Za-z_$][\w.$]*\(.*\)\s*;?\s*$",
    re.M,
)
_SYMBOLS = re.compile(r"[{}\[\]()<>=;:*/+\-&|!%^~$#@\\_]")
MIN_LINES = 5


_URL = re.compile(r"(?:https?://|www\.)\S+")
_PLAIN_WORD = re.compile(r"[A-Za-z][a-z]*[,.;:!?'\"”’]?")
PARAGRAPH_LINE = 200  # characters
PARAGRAPH_SHARE = 0.25  # of the characters, in paragraph lines: prose


def _paragraph_share(lines: list[str]) -> float:
    """The share of characters in lines that are paragraphs of words (module docstring)."""
    chars = sum(map(len, lines)) or 1
    in_paragraphs = 0
    for line in lines:
        if len(line) >= PARAGRAPH_LINE:
            tokens = line.split()
            words = sum(1 for token in tokens if _PLAIN_WORD.fullmatch(token))
            if len(tokens) >= 30 and words >= 0.7 * len(tokens):
                in_paragraphs += len(line)
    return in_paragraphs / chars


_RECORD_LINE = re.compile(
    r"""^(?:
      (?=.{0,80}$)[^\S\n]*[A-Z][\w-]*(?:[ ][A-Za-z][\w-]*)?:[ \t]+\S.*       # Field: value (short)
     |[ ]--[ ].+<[^>\s]+@[^>\s]+>.*                                          # Debian sign-off
     |\S+[ ]\([^)\s]*\d[^)\s]*\)[ ][\w./-]+(?:[ ][\w./-]+)*;[ ]urgency=\S+      # Debian entry header
     |commit[ ][0-9a-f]{7,40}\b.*                                             # git log
     |[^\S\n]*(?:version[ ]+|release[ ]+|v)?\d+(?:\.\d+)+\S*(?:[ ].{0,40})?      # version heading
     |[^\S\n]*[=~^-]{3,}[^\S\n]*                                              # heading underline
     |[^\S\n]*(?:copyright|\(c\)|©)[^\n]{0,80}\b(?:19|20)\d\d\b.*               # copyright notice
    )$""",
    re.X | re.I | re.M,
)
RECORD_SHARE = 0.15  # of non-blank lines, frame lines: records


def _bracket_signals(text: str) -> int:
    """Lines ending in one of `; { } ( ) , : \\ [` plus lines opening with one of `} ] )`, a
    line that is a single such character counting once: exactly the matches of the multiline
    regex `[;{}(),:\\\\\\[]\\s*$|^\\s*[}\\])]` (tests/test_heuristic_filters.py checks it on
    real text), five times faster, line by line."""
    n = 0
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped:
            opens = stripped[0] in _START_CHARS
            n += opens + (stripped[-1] in _END_CHARS and (not opens or len(stripped) > 1))
    return n


def detect_kind(text: str) -> str:
    """Code, records or prose (see the module docstring). URLs are left out first: their
    slashes, colons and brackets are not code (a list of links is not a program)."""
    linked = _URL.sub("link", text)
    lines = [line for line in linked.splitlines() if line.strip()]
    if len(lines) < MIN_LINES:
        return PROSE
    signals = (
        _bracket_signals(linked) + len(_CODE_START.findall(linked)) + len(_CODE_STATEMENT.findall(linked))
    )
    share = signals / len(lines)  # a line may give more than one signal
    symbols = len(_SYMBOLS.findall(linked)) / max(len(linked), 1)
    if ((share >= 0.35 and symbols >= 0.035) or share >= 0.7) and _paragraph_share(lines) < PARAGRAPH_SHARE:
        return CODE
    return RECORDS if len(_RECORD_LINE.findall(text)) > RECORD_SHARE * len(lines) else PROSE


def kind_of(doc: Document) -> str:
    """The document's kind, computed once and kept in its metadata."""
    kind = doc.meta.get(META_KEY)
    if kind not in KINDS:
        kind = doc.meta[META_KEY] = detect_kind(doc.text)
    return kind
