"""Real text from the team's shared raw data (../shared/data/raw): books, encyclopedic pages, the
web pages people labelled high quality, Python source, and the non-English text the junk needs.

Left out on purpose: Project Gutenberg licence headers and footers (boilerplate that is neither
a book nor a standalone licence), the LaTeX source of one book, MediaWiki `#REDIRECT` stubs and
DCLM pages labelled low quality (neither clearly clean nor one of the junk kinds).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

from bench.filter_eval.common import Item, clean_item, raw_path, trim

NON_ENGLISH_CHUNK = 3000  # UDHR translations are cut into pieces of about this many characters


def read_raw(name: str) -> list[dict]:
    with gzip.open(raw_path(name), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def books() -> Iterator[Item | None]:
    """English Project Gutenberg book chunks (one group per book) and tinyshakespeare (one group)."""
    for r in read_raw("books_gutenberg.jsonl.gz"):
        m = r["meta"]
        if r["source"] == "gutenberg" and m.get("language") == "en" and m.get("part") == "body":
            yield clean_item("books", r["text"], f"raw/books_gutenberg:{r['id']}", "gutenberg", m["repo"])
    for r in read_raw("books_tinyshakespeare.jsonl.gz"):
        yield clean_item(
            "books", r["text"], f"raw/books_tinyshakespeare:{r['id']}", "shakespeare", "tinyshakespeare"
        )


def encyclopedic() -> Iterator[Item | None]:
    """Wikipedia articles: WikiText-2 (tokenized) and English MediaWiki markup, one group per title."""
    for r in read_raw("wiki_wikitext2.jsonl.gz"):
        title = r["meta"]["title"]
        yield clean_item(
            "encyclopedic", r["text"], f"raw/wiki_wikitext2:{r['id']}", "wikitext2", f"wiki:{title}"
        )
    for r in read_raw("wiki_mediawiki_dump_sample.jsonl.gz"):
        if r["source"] == "wikipedia-en-dump" and not r["meta"]["redirect"]:
            title = r["meta"]["title"]
            yield clean_item(
                "encyclopedic", r["text"], f"raw/wiki_mediawiki:{r['id']}", "mediawiki", f"wiki:{title}"
            )


def web() -> Iterator[Item | None]:
    """DCLM Common Crawl pages that people labelled high quality (meta.quality_label == 1)."""
    for r in read_raw("web_dclm_quality_labeled.jsonl.gz"):
        if r["meta"]["quality_label"] == 1:
            yield clean_item("web", r["text"], f"raw/web_dclm:{r['id']}", "dclm-high", f"dclm:{r['id']}")


def python_stdlib() -> Iterator[Item | None]:
    """CPython's standard library, one group per top-level module or package."""
    for r in read_raw("code_python_stdlib.jsonl.gz"):
        path = r["meta"]["path"]  # Lib/asyncio/events.py
        top = path.split("/")[1].removesuffix(".py")
        yield clean_item("code", r["text"], f"raw/code_python_stdlib:{path}", "py-stdlib", f"stdlib:{top}")


def _chunks(text: str, size: int) -> list[str]:
    """Consecutive paragraphs joined into pieces of about `size` characters."""
    out, cur = [], ""
    for para in text.split("\n\n"):
        cur = f"{cur}\n\n{para}" if cur else para
        if len(cur) >= size:
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out


def non_english() -> Iterator[Item]:
    """Real text in other languages: the UDHR's 78 translations (cut into pieces, one group per
    language), the German, Dutch, French and Latin Gutenberg books, the Bulgarian Wikipedia page."""
    for r in read_raw("multilingual_udhr.jsonl.gz"):
        m = r["meta"]
        if m["iso639_3"] == "eng":
            continue
        for i, piece in enumerate(_chunks(r["text"], NON_ENGLISH_CHUNK)):
            yield Item(
                "non_english", piece, f"raw/udhr:{r['id']}#{i}", f"udhr/{m['script']}", f"udhr:{m['bcp47']}"
            )
    for r in read_raw("books_gutenberg.jsonl.gz"):
        m = r["meta"]
        if r["source"] == "gutenberg" and m.get("language") != "en" and m.get("part") == "body":
            yield Item("non_english", r["text"], f"raw/books_gutenberg:{r['id']}", "gutenberg", m["repo"])
    for r in read_raw("wiki_mediawiki_dump_sample.jsonl.gz"):
        if r["source"] == "wikipedia-bg-dump":
            text = trim(r["text"])
            yield Item("non_english", text, f"raw/wiki_mediawiki:{r['id']}", "wiki-bg", f"wiki:{r['id']}")


def prose_sources() -> list:
    """The clean kinds that come from the shared data, as functions yielding Items."""
    return [books, encyclopedic, web, python_stdlib]
