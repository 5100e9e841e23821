"""Junk generators, seeded and deterministic: `generate(kind, r, pool)` -> (text, variant, fed).

Each takes a `random.Random` and the split's `Pool` of real English prose, and returns the text,
the variant it chose and the origin of the real text it was fed ("" when it used none). Every
variant has its own range of lengths and layouts, so no single length or format rule catches a
kind. Non-English text is real (see `shared_sources.non_english`), not generated.
"""

from __future__ import annotations

import base64
import bisect
import gzip
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate

from bench.filter_eval import phrases as ph
from bench.filter_eval.common import raw_path, sentences, words

# ---------------------------------------------------------------------------- the real text


@dataclass
class Pool:
    """One split's real English prose (books, Wikipedia, good web pages), ready to be sampled:
    documents, their sentences, and the vocabulary with each word's frequency."""

    split: str
    docs: list[tuple[str, str]]  # (origin, text)
    sentences: list[tuple[str, str]] = field(default_factory=list)
    vocab: list[str] = field(default_factory=list)
    cum_weights: list[int] = field(default_factory=list)
    content: list[str] = field(default_factory=list)  # longer, rarer words: topics, names, slugs

    def __post_init__(self) -> None:
        counts: Counter = Counter()
        capital: Counter = Counter()
        for origin, text in self.docs:
            self.sentences += [(origin, s) for s in sentences(text) if 3 <= len(s.split()) <= 60]
            for w in words(text):
                low = w.lower()
                counts[low] += 1
                capital[low] += w[0].isupper()
        # A word keeps its capital when it is mostly written so (names, "I"), else lower case.
        self.vocab = sorted(w.capitalize() if capital[w] > counts[w] / 2 else w for w in counts)
        self.cum_weights = list(accumulate(counts[w.lower()] for w in self.vocab))
        self.content = [w for w in self.vocab if w.islower() and len(w) >= 5 and 3 <= counts[w] <= 200]

    def word(self, r: random.Random) -> str:
        """A word drawn by its frequency in the pool (so "the" and "of" come as often as in prose)."""
        return self.vocab[bisect.bisect_right(self.cum_weights, r.random() * self.cum_weights[-1])]

    def doc(self, r: random.Random) -> tuple[str, str]:
        return r.choice(self.docs)

    def sentence(self, r: random.Random) -> tuple[str, str]:
        return r.choice(self.sentences)

    def topic(self, r: random.Random, n: int = 2) -> str:
        return " ".join(r.choice(self.content) for _ in range(n))


def detok_wikitext(text: str) -> str:
    """WikiText-2's tokenization undone enough for prose (`@-@`, `<unk>`, spaced punctuation)."""
    text = text.replace("<unk>", "").replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
    text = re.sub(r" ([,.;:!?)'])", r"\1", text)
    return re.sub(r"\( ", "(", text)


def _length(r: random.Random, low: int, high: int) -> int:
    """A length between low and high, log-uniform (short and long pages alike)."""
    return int(low * (high / low) ** r.random())


def _head(text: str, n: int) -> str:
    """The first n characters of text, cut back to the last whitespace (no half words)."""
    return text if len(text) <= n else text[:n].rsplit(None, 1)[0]


def _paragraphs(r: random.Random, parts: list[str], low: int = 2, high: int = 6) -> str:
    out, i = [], 0
    while i < len(parts):
        n = r.randint(low, high)
        out.append(" ".join(parts[i : i + n]))
        i += n
    return "\n\n".join(out)


# ---------------------------------------------------------------------------- binary


def binary(r: random.Random, pool: Pool) -> tuple[str, str, str]:
    """Random bytes or real compressed/binary files, decoded as latin-1 or as UTF-8 with U+FFFD."""
    variant = r.choice(["random", "shared-file", "gzip-of-text"])
    n = _length(r, 300, 12_000)
    fed = ""
    if variant == "random":
        data = r.randbytes(n)
    elif variant == "shared-file":
        name = r.choice(sorted(p.name for p in raw_path("x").parent.glob("*.jsonl.gz")))
        blob = raw_path(name).read_bytes()
        start = r.randrange(0, max(1, len(blob) - n))
        data, fed = blob[start : start + n], f"raw/{name}@{start}"
    else:
        fed, text = pool.doc(r)
        data = gzip.compress(text.encode(), mtime=0)[:n]
    decode = r.choice(["latin-1", "utf-8"])
    return data.decode(decode, errors="replace"), f"{variant}/{decode}", fed


# ---------------------------------------------------------------------------- web chrome and spam


def _fill(r: random.Random, phrase: str, site: str) -> str:
    return phrase.format(
        site=site,
        city=r.choice(ph.CITIES),
        year=r.randint(2005, 2025),
        n=r.randint(0, 12),
        phone=f"+1 ({r.randint(200, 999)}) {r.randint(200, 999)}-{r.randint(1000, 9999)}",
    )


def boilerplate(r: random.Random, pool: Pool) -> tuple[str, str, str]:
    """A page of chrome only: menus, breadcrumbs, cookie and login prompts, widgets, footers."""
    s = pool.split
    site = pool.topic(r, 1).capitalize() + r.choice(["", "ly", "Hub", " Co", " Online", "Box"])
    joiner = r.choice(["\n", " | ", " · ", "  "])
    blocks = [site, joiner.join(r.sample(ph.for_split(ph.NAV, s), r.randint(4, 14)))]
    sections = [ph.COOKIE, ph.ACCOUNT, ph.WIDGETS, ph.NAV, ph.FOOTER]
    for _ in range(r.randint(2, 9)):
        pool_ = ph.for_split(r.choice(sections), s)
        lines = r.sample(pool_, min(len(pool_), r.randint(1, 6)))
        blocks.append(r.choice(["\n", " | "]).join(_fill(r, p, site) for p in lines))
    if r.random() < 0.5:
        blocks.insert(
            1, " > ".join(["Home", *(pool.topic(r, 1).capitalize() for _ in range(r.randint(1, 3)))])
        )
    blocks.append(_fill(r, r.choice(ph.for_split(ph.FOOTER, s)), site))
    variant = "menus" if joiner != "\n" else "lines"
    return "\n".join(blocks), variant, ""


def keyword_spam(r: random.Random, pool: Pool) -> tuple[str, str, str]:
    """SEO stuffing: keyword lists, pipe-joined titles, or prose templates repeating the keyword."""
    s = pool.split
    mods = ph.for_split(ph.SPAM_MODIFIERS, s)
    products = ph.for_split(ph.PRODUCTS, s)
    topic = r.choice(products) if r.random() < 0.7 else pool.topic(r, r.randint(1, 2))
    topic2 = r.choice(products) if r.random() < 0.5 else pool.topic(r, 1)

    def kw() -> str:
        place = r.choice(["", "", f" {r.choice(ph.CITIES)}", f" in {r.choice(ph.CITIES)}"])
        return f"{r.choice(mods)} {r.choice([topic, topic2])}{place}" if r.random() < 0.8 else topic

    variant = r.choice(["list", "titles", "templates"])
    n = _length(r, 15, 400)
    if variant == "list":
        lines = [", ".join(kw() for _ in range(r.randint(3, 12))) for _ in range(max(1, n // 6))]
        text = "\n".join(
            [f"{topic.title()} - {kw().title()}", *lines, "Tags: " + ", ".join(kw() for _ in range(20))]
        )
    elif variant == "titles":
        text = "\n".join(
            " | ".join(kw().title() for _ in range(r.randint(2, 5))) for _ in range(max(2, n // 8))
        )
    else:
        temps = ph.for_split(ph.SPAM_TEMPLATES, s)
        parts = []
        for _ in range(max(3, n // 12)):
            k, k2 = kw(), kw()
            parts.append(
                r.choice(temps).format(
                    kw=k,
                    kw2=k2,
                    KW=k.title(),
                    KW2=k2.title(),
                    city=r.choice(ph.CITIES),
                    year=r.randint(2010, 2025),
                )
            )
        text = _paragraphs(r, parts)
    return text, variant, ""


def _url(r: random.Random, pool: Pool) -> str:
    host = "".join(pool.topic(r, r.randint(1, 2)).split()) + "." + r.choice(ph.TLDS)
    slug = "-".join(pool.topic(r, r.randint(1, 5)).split())
    path = r.choice(
        [f"/{slug}", f"/{slug}.html", f"/p/{r.randint(1, 99999)}", f"/{slug}/?id={r.randint(1, 9999)}", "/"]
    )
    return f"{r.choice(['http', 'https'])}://{r.choice(['', 'www.'])}{host}{path}"


def link_list(r: random.Random, pool: Pool) -> tuple[str, str, str]:
    """Lines of links: bare URLs, anchor text with its URL, Markdown links, or anchor texts alone."""
    variant = r.choice(["urls", "anchor-url", "markdown", "anchors"])
    n = _length(r, 8, 300)
    lines = [r.choice(["Links", "Related links", "Resources", "Partners", "Blogroll", "Sitemap", ""])]
    for _ in range(n):
        anchor = pool.topic(r, r.randint(1, 5)).title()
        if variant == "urls":
            lines.append(_url(r, pool))
        elif variant == "anchor-url":
            lines.append(f"{anchor}{r.choice([' - ', ': ', ' ', ' | '])}{_url(r, pool)}")
        elif variant == "markdown":
            lines.append(f"{r.choice(['- ', '* ', ''])}[{anchor}]({_url(r, pool)})")
        else:
            lines.append(f"{r.choice(['', '» ', '• ', '> '])}{anchor}")
    return "\n".join(lines).strip(), variant, ""


# ---------------------------------------------------------------------------- data, not text


def _ident(r: random.Random) -> str:
    return r.choice("abcdefghijklmnopqrstuvwxyz$_") + (
        r.choice("abcdefghijklmnopqrstuvwxyz0123456789") if r.random() < 0.4 else ""
    )


def _js(r: random.Random, pool: Pool, n: int) -> str:
    stmts = []
    for _ in range(n):
        a, b, c = _ident(r), _ident(r), _ident(r)
        prop = pool.topic(r, 1)
        stmts.append(
            r.choice(
                [
                    f"var {a}={b}.{prop}||{{}}",
                    f"function {a}({b},{c}){{return {b}.{prop}({c})}}",
                    f"{a}.prototype.{prop}=function({b}){{this.{b}={b}|0;return this}}",
                    f'if(!{a}){{throw new Error("{prop}")}}',
                    f"for(var {a}=0;{a}<{b}.length;{a}++){c}[{a}]={b}[{a}]*{r.randint(2, 255)}",
                    f'{a}=document.querySelector(".{prop}");{a}&&{a}.addEventListener("click",{b})',
                    f"{a}={b}?{c}:{r.randint(0, 1000)}",
                ]
            )
        )
    return "!function(e,t){" + ";".join(stmts) + "}(window,document);"


def _css(r: random.Random, pool: Pool, n: int) -> str:
    rules = []
    for _ in range(n):
        sel = r.choice([".", "#", ""]) + "-".join(pool.topic(r, r.randint(1, 2)).split())
        props = [
            f"color:#{r.randrange(16**6):06x}",
            f"margin:{r.randint(0, 40)}px {r.choice(['auto', '0', '8px'])}",
            f"padding:{r.randint(0, 24)}px",
            f"font-size:{r.choice(['12px', '1.2em', '14px', '.875rem'])}",
            f"display:{r.choice(['flex', 'block', 'none', 'inline-block'])}",
            f"z-index:{r.randint(1, 9999)}",
        ]
        rules.append(
            f"{sel}{r.choice(['', ':hover', '>a', ' li'])}{{{';'.join(r.sample(props, r.randint(1, 5)))}}}"
        )
    return "".join(rules)


def _json(r: random.Random, pool: Pool, depth: int = 0) -> object:
    if depth > 2 or r.random() < 0.3:
        return r.choice(
            [
                r.randint(-(10**6), 10**6),
                round(r.uniform(-1000, 1000), 4),
                r.random() < 0.5,
                None,
                pool.topic(r, 1),
            ]
        )
    if r.random() < 0.5:
        return [_json(r, pool, depth + 1) for _ in range(r.randint(1, 8))]
    return {pool.topic(r, 1): _json(r, pool, depth + 1) for _ in range(r.randint(1, 8))}


def minified(r: random.Random, pool: Pool) -> tuple[str, str, str]:
    """Minified JavaScript, CSS or JSON on one long line, or base64 blobs (some as data: URIs)."""
    variant = r.choice(["js", "css", "json", "base64"])
    n = _length(r, 10, 250)
    fed = ""
    if variant == "js":
        text = _js(r, pool, n)
    elif variant == "css":
        text = _css(r, pool, n)
    elif variant == "json":
        text = json.dumps([_json(r, pool) for _ in range(max(1, n // 5))], separators=(",", ":"))
    else:
        fed, doc = pool.doc(r)
        data = gzip.compress(doc.encode(), mtime=0)[: n * 40] if r.random() < 0.5 else r.randbytes(n * 30)
        b64 = base64.b64encode(data).decode()
        if r.random() < 0.5:
            text = f"data:application/octet-stream;base64,{b64}"
        else:
            text = "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
        fed = fed if data[:2] == b"\x1f\x8b" else ""
    return text, variant, fed


def numeric(r: random.Random, pool: Pool) -> tuple[str, str, str]:
    """Numbers with little or no text: CSV of floats, aligned tables, counter logs, hex dumps."""
    variant = r.choice(["csv", "table", "log", "hexdump", "sequence"])
    n = _length(r, 10, 400)
    cols = r.randint(2, 9)
    if variant == "csv":
        head = ",".join(pool.topic(r, 1) for _ in range(cols))
        rows = [
            ",".join(f"{r.gauss(0, 10 ** r.randint(0, 4)):.{r.randint(0, 6)}f}" for _ in range(cols))
            for _ in range(n)
        ]
        text = "\n".join([head, *rows])
    elif variant == "table":
        rows = [
            " ".join(f"{r.randint(0, 10 ** r.randint(1, 7)):>10d}" for _ in range(cols)) for _ in range(n)
        ]
        text = "\n".join(rows)
    elif variant == "log":
        keys = r.sample(ph.LOG_EVENTS, r.randint(2, 6))
        t = r.randint(1_500_000_000, 1_700_000_000)
        lines = []
        for _ in range(n):
            t += r.randint(1, 60)
            fields = " ".join(f"{k}={r.randint(0, 10**6)}" for k in keys)
            lines.append(f"{t} host{r.randint(1, 9)} {r.choice(['INFO', 'DEBUG', 'STAT'])} {fields}")
        text = "\n".join(lines)
    elif variant == "hexdump":
        data = r.randbytes(16 * n)
        lines = []
        for i in range(0, len(data), 16):
            chunk = data[i : i + 16]
            ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            lines.append(f"{i:08x}  {' '.join(f'{b:02x}' for b in chunk)}  |{ascii_}|")
        text = "\n".join(lines)
    else:
        text = " ".join(str(r.randint(0, 10 ** r.randint(1, 6))) for _ in range(n * 5))
    return text, variant, ""


# ---------------------------------------------------------------------------- broken real text


def smarten(text: str) -> str:
    """Typographic quotes and dashes, as most published English text has them."""
    text = re.sub(r"(\w)'(\w)", "\\1\u2019\\2", text)
    text = re.sub(r'"(\S)', "\u201c\\1", text)
    text = text.replace('"', "\u201d").replace("--", "\u2014").replace("...", "\u2026")
    text = re.sub(r"'(\S)", "\u2018\\1", text)
    return text.replace("'", "\u2019")


def _decode_cp1252(data: bytes) -> str:
    """Bytes read as Windows-1252, its five undefined bytes as Latin-1 (what browsers do)."""
    return "".join(data[i : i + 1].decode("cp1252", errors="ignore") or chr(b) for i, b in enumerate(data))


def _encode_cp1252(text: str) -> bytes:
    return b"".join(
        c.encode("cp1252") if c.encode("cp1252", errors="ignore") else bytes([ord(c)]) for c in text
    )


def mis_decode(text: str, codec: str, times: int = 1) -> str:
    """UTF-8 bytes read as `codec` ("cp1252" or "latin-1"), `times` times over."""
    for _ in range(times):
        data = text.encode("utf-8")
        text = _decode_cp1252(data) if codec == "cp1252" else data.decode(codec)
    return text


def undo_mis_decode(text: str, codec: str, times: int = 1) -> str:
    """The inverse of `mis_decode`."""
    for _ in range(times):
        data = _encode_cp1252(text) if codec == "cp1252" else text.encode(codec)
        text = data.decode("utf-8")
    return text


EXTRA = ["café", "naïve", "résumé", "€", "©", "±", "°", "½", "•", "→", "–", "—", "’s", "™"]


def _non_ascii(r: random.Random, text: str, per_words: int = 12) -> str:
    """At least one non-ASCII character per `per_words` words, as real pages with typographic
    quotes, dashes and symbols have, so that a wrong decode shows all through the document."""
    ws = text.split(" ")
    missing = len(text.split()) // per_words - sum(1 for c in text if ord(c) > 127)
    for _ in range(max(0, missing)):
        i = r.randrange(len(ws))
        ws[i] = f"{ws[i]} {r.choice(EXTRA)}"
    return " ".join(ws)


HOMOGLYPHS = dict(zip("aeopcxyisABEHOT", "аеорсхуіѕΑΒΕΗΟΤ", strict=True))  # Cyrillic and Greek look-alikes


def mojibake(r: random.Random, pool: Pool) -> tuple[str, str, str]:
    """Real prose garbled: UTF-8 read as cp1252 (once or twice) or Latin-1, Zalgo marks, or
    letters swapped for look-alikes from other scripts with private-use characters mixed in."""
    fed, text = pool.doc(r)
    text = _head(text, _length(r, 400, 12_000))
    variant = r.choice(["cp1252", "cp1252x2", "latin-1", "zalgo", "homoglyph"])
    if variant.startswith("cp1252") or variant == "latin-1":
        text = _non_ascii(r, smarten(text))
        times = 2 if variant == "cp1252x2" else 1
        return mis_decode(text, variant.removesuffix("x2"), times), variant, fed
    share = r.uniform(0.3, 0.9)
    if variant == "zalgo":
        marks = [chr(c) for c in range(0x300, 0x370)]
        out = [
            c + "".join(r.choices(marks, k=r.randint(1, 8))) if c.isalpha() and r.random() < share else c
            for c in text
        ]
    else:
        out = []
        for c in text:
            if c in HOMOGLYPHS and r.random() < share:
                c = HOMOGLYPHS[c]
            out.append(c)
            if r.random() < share / 10:
                out.append(chr(r.randint(0xE000, 0xF8FF)))
    return "".join(out), variant, fed


def repeated_lines(r: random.Random, pool: Pool) -> tuple[str, str, str]:
    """Real lines repeated: one line, a cycle of a few, a whole paragraph, or a page that
    starts normally and then repeats one line to the end."""
    variant = r.choice(["one-line", "few-lines", "paragraph", "page-then-loop"])
    fed, first = pool.sentence(r)
    n = _length(r, 8, 300)
    if variant == "one-line":
        lines = [first] * n
    elif variant == "few-lines":
        cycle = [first] + [pool.sentence(r)[1] for _ in range(r.randint(1, 4))]
        lines = [cycle[i % len(cycle)] for i in range(max(n, 3 * len(cycle)))]
    elif variant == "paragraph":
        para = " ".join([first] + [pool.sentence(r)[1] for _ in range(r.randint(1, 3))])
        lines = [para, ""] * max(4, n // 8)
    else:
        fed, doc = pool.doc(r)
        head = _head(doc, r.randint(200, 800))
        lines = [head, *([first] * max(30, n))]
    return "\n".join(lines).strip(), variant, fed


def very_short(r: random.Random, pool: Pool) -> tuple[str, str, str]:
    """Under ten words: a real sentence cut short, a title, a real short sentence, or a stub page."""
    variant = r.choice(["fragment", "title", "short-sentence", "stub"])
    fed, sentence = pool.sentence(r)
    n = r.randint(1, 9)
    if variant == "fragment":
        text = " ".join(sentence.split()[:n])
    elif variant == "title":
        text = " ".join(sentence.split()[:n]).title().rstrip(".,;:")
    elif variant == "short-sentence":
        short = [s for _ in range(50) if len((s := pool.sentence(r))[1].split()) < 10]
        fed, text = short[0] if short else (fed, " ".join(sentence.split()[:n]))
    else:
        fed, text = "", r.choice(ph.for_split(ph.STUBS, pool.split))
    return text, variant, fed


def word_salad(r: random.Random, pool: Pool) -> tuple[str, str, str]:
    """Real English words in random order dressed as prose: drawn by frequency into sentences
    with capitals, commas and full stops ("bag"), a real document's words shuffled within each
    sentence ("shuffled-sentences"), or across the whole document ("shuffled-document")."""
    variant = r.choice(["bag", "shuffled-sentences", "shuffled-document"])
    fed = ""
    if variant == "bag":
        parts = []
        for _ in range(_length(r, 6, 120)):
            ws = [pool.word(r) for _ in range(r.randint(5, 28))]
            ws = [w + "," if r.random() < 0.07 else w for w in ws[:-1]] + ws[-1:]
            parts.append(ws)
    else:
        fed, doc = pool.doc(r)
        parts = [s.split() for s in sentences(_head(doc, _length(r, 600, 15_000)))]
        if variant == "shuffled-document":
            flat = [w for ws in parts for w in ws]
            r.shuffle(flat)
            ends = list(accumulate(len(ws) for ws in parts))
            parts = [flat[end - len(ws) : end] for ws, end in zip(parts, ends, strict=True)]
        else:
            for ws in parts:
                r.shuffle(ws)
    out = []
    for ws in parts:
        ws = [w.rstrip(".!?") for w in ws if w.rstrip(".!?")]
        if ws:
            ws[0] = re.sub(r"^[\W_]*[a-z]", lambda m: m.group().upper(), ws[0])
            out.append(" ".join(ws).rstrip(",;:") + r.choices([".", "?", "!"], [20, 1, 1])[0])
    return _paragraphs(r, out, 2, 7), variant, fed


# ---------------------------------------------------------------------------- registry

GENERATORS: dict[str, Callable[[random.Random, Pool], tuple[str, str, str]]] = {
    "binary": binary,
    "boilerplate": boilerplate,
    "keyword_spam": keyword_spam,
    "link_list": link_list,
    "minified": minified,
    "numeric": numeric,
    "mojibake": mojibake,
    "repeated_lines": repeated_lines,
    "very_short": very_short,
    "word_salad": word_salad,
}
