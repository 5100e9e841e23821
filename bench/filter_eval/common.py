"""What every part of the evaluation set shares: the record, the kinds, stable hashing, trimming."""

from __future__ import annotations

import hashlib
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_RAW = Path(os.environ.get("GRIST_SHARED_RAW", ROOT.parent / "shared" / "data" / "raw"))
SAMPLE = ROOT / "data" / "sample"  # the repository's identical copy, used when shared/ is absent
OUT = ROOT / "bench" / "data" / "filter_eval"

CLEAN_KINDS = ("books", "encyclopedic", "web", "code", "docs", "changelogs", "licences")
JUNK_KINDS = (
    "binary",
    "boilerplate",
    "keyword_spam",
    "link_list",
    "minified",
    "non_english",
    "numeric",
    "mojibake",
    "repeated_lines",
    "very_short",
    "word_salad",
)
SPLITS = ("dev", "test")

MAX_CHARS = 20_000  # longer files are cut at a line boundary (changelogs, licences, code, wiki pages)
MIN_WORDS, MIN_CHARS = 50, 300  # a clean document is at least a paragraph; "very short" is junk


@dataclass(slots=True)
class Item:
    """One document before ids are given. `group` is the unit of the dev/test split (a book, a
    Debian source package, a Python distribution, a language): all of a group's documents land
    in the same split. `origin` names the file (or generator and what it was fed)."""

    kind: str
    text: str
    origin: str
    source: str  # a family inside the kind: "gutenberg", "deb-changelog", "word_salad/bag", ...
    group: str

    @property
    def label(self) -> str:
        return "clean" if self.kind in CLEAN_KINDS else "junk"


def raw_path(name: str) -> Path:
    """A file of ../shared/data/raw (or of data/sample, which holds the same files)."""
    path = SHARED_RAW / name
    return path if path.exists() else SAMPLE / name


def stable_hash(*parts: str) -> int:
    """The same 64-bit number on every machine and run (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def rng(*parts: str) -> random.Random:
    return random.Random(stable_hash("filter-eval", *parts))


def trim(text: str, limit: int = MAX_CHARS) -> str:
    """`text` cut to at most `limit` characters at the last line break (else space) before it."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    if cut < limit // 2:
        cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > 0 else limit].rstrip()


def long_enough(text: str) -> bool:
    return len(text) >= MIN_CHARS and len(text.split()) >= MIN_WORDS


_LETTER = re.compile(r"[^\W\d_]")
_OTHER_LETTER = re.compile(r"[^\W\d_\x00-\u017f]")


def latin_script(text: str, max_other: float = 0.02) -> bool:
    """At most `max_other` of the letters outside Latin-1 and Latin Extended-A (a cheap guard that
    keeps Chinese, Cyrillic, ... READMEs out of the English kinds; not a language detector)."""
    text = text[:MAX_CHARS]
    letters = len(_LETTER.findall(text))
    if text.isascii():
        return letters > 0
    return letters > 0 and len(_OTHER_LETTER.findall(text)) <= max_other * letters


def clean_item(kind: str, text: str, origin: str, source: str, group: str) -> Item | None:
    """An Item for real clean text: trimmed, long enough, mostly Latin script; else None."""
    text = trim(text.replace("\r\n", "\n").strip())
    if not long_enough(text) or not latin_script(text):
        return None
    return Item(kind, text, origin, source, group)


_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z])")


def words(text: str) -> list[str]:
    """English word tokens (letters and an apostrophe suffix), as written."""
    return _WORD.findall(text)


def sentences(text: str) -> list[str]:
    """Sentences of prose: split after . ! ? before a capital; line breaks become spaces."""
    flat = " ".join(text.split())
    return [s.strip() for s in _SENTENCE_END.split(flat) if s.strip()]
