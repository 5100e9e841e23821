"""Real text installed on this machine: Debian's changelogs, READMEs, copyright files, common
licences and man pages; installed Python packages' READMEs, long descriptions, licences,
changelogs and source; C headers and Perl modules.

What is found depends on what is installed, so the build records which files it used (their
origins) and a digest of the result: numbers from two machines compare only when those agree.
Candidates are drawn per group in a fixed (hash) order before any file is read, so the build
reads a few thousand files, not every one on the disk.
"""

from __future__ import annotations

import email.parser
import gzip
import os
import re
import sys
import sysconfig
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from bench.filter_eval.common import Item, clean_item, stable_hash

DOC = Path("/usr/share/doc")
LICENSES = Path("/usr/share/common-licenses")
MAN = Path("/usr/share/man")
INCLUDE = Path("/usr/include")
PERL = Path("/usr/share/perl5")
DPKG_STATUS = Path("/var/lib/dpkg/status")

PER_GROUP = 3  # candidates drawn from one group (package, header directory) per source
PER_SOURCE = 900  # candidates read per source at most

# A path naming a translation: README.zh-CN.md, docs/ja/index.rst, locale/...
_TRANSLATED = re.compile(
    r"(?i)(?:^|[/._-])(?:zh|cn|tw|ja|jp|ko|kr|ru|de|fr|es|it|pt|br|pl|tr|uk|vi|fa|ar|he|cs|hu|locale|i18n)"
    r"(?:[/._-]|$)"
)
_CHANGELOG = re.compile(r"(?i)^(?:changelog|changes|history|news|release[-_ ]?notes)(?:[._-].*)?$")
_LICENCE = re.compile(r"(?i)^(?:licen[cs]e|copying|copyright|notice)(?:[._-].*)?$")
CHANGELOG_SOURCES = {  # Debian's own changelogs, the upstream ones, and release notes
    "deb-changelog": re.compile(r"changelog\.Debian"),
    "upstream-changelog": re.compile(r"(?i)(?:changelog|changes|history)(?!\.Debian)"),
    "news": re.compile(r"(?i)news|release"),
}
_PEOPLE = re.compile(r"(?i)^(?:authors|contributors|thanks|maintainers|codeowners)\b")  # name lists, not docs
_TEXT_SUFFIXES = {"", ".md", ".rst", ".txt"}  # what a package's README, licence or changelog is written in
_README = re.compile(r"(?i)^(?:readme|faq|intro)(?:[._-].*)?$")


def read_text(path: Path) -> str | None:
    """A file's text (gunzipped when it ends in .gz), or None when it is not UTF-8 or unreadable."""
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
        return None


def pick(candidates: Iterable[tuple[str, Path]], per_group: int = PER_GROUP, limit: int = PER_SOURCE) -> list:
    """(group, path) pairs reduced to `per_group` a group and `limit` in all, both in hash order,
    so the choice does not depend on the order the disk lists files in."""
    by_group: dict[str, list[Path]] = defaultdict(list)
    for group, path in candidates:
        by_group[group].append(path)
    out: list[tuple[str, Path]] = []
    for group in sorted(by_group, key=lambda g: stable_hash("group", g)):
        paths = sorted(set(by_group[group]), key=lambda p: stable_hash("path", str(p)))
        out += [(group, p) for p in paths[:per_group]]
        if len(out) >= limit:
            break
    return out[:limit]


def items(
    kind: str, source: str, picked: list, to_text: Callable[[Path], str | None] = read_text
) -> Iterator:
    for group, path in picked:
        text = to_text(path)
        if text is not None:
            yield clean_item(kind, text, f"{source}:{path}", source, group)


# ---------------------------------------------------------------------------- Debian


def source_packages() -> dict[str, str]:
    """Debian binary package -> source package, from dpkg's status file (so gcc-12's and
    cpp-12's identical docs fall in one group)."""
    out: dict[str, str] = {}
    if not DPKG_STATUS.exists():
        return out
    for para in DPKG_STATUS.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        fields = dict(re.findall(r"^(Package|Source): (\S+)", para, flags=re.M))
        if "Package" in fields:
            out[fields["Package"]] = fields.get("Source", fields["Package"])
    return out


def debian_docs() -> dict[str, list[tuple[str, Path]]]:
    """/usr/share/doc files sorted into changelogs, licences and READMEs, grouped by source package."""
    src = source_packages()
    found: dict[str, list[tuple[str, Path]]] = {"changelogs": [], "licences": [], "docs": []}
    if not DOC.is_dir():
        return found
    seen: set[str] = set()
    for pkg_dir in sorted(DOC.iterdir()):
        real = os.path.realpath(pkg_dir)
        if real in seen or not pkg_dir.is_dir():
            continue
        seen.add(real)
        group = "deb:" + src.get(pkg_dir.name.split(":")[0], pkg_dir.name)
        for path in sorted(pkg_dir.iterdir()):
            if not path.is_file() or path.is_symlink():
                continue
            name = path.name.removesuffix(".gz")
            if _TRANSLATED.search(name):
                continue
            if _CHANGELOG.match(name):
                found["changelogs"].append((group, path))
            elif name == "copyright":
                found["licences"].append((group, path))
            elif _README.match(name) or name.endswith((".md", ".txt")):
                found["docs"].append((group, path))
    return found


def common_licences() -> list[tuple[str, Path]]:
    if not LICENSES.is_dir():
        return []
    return [
        (f"licence:{p.name}", p) for p in sorted(LICENSES.iterdir()) if p.is_file() and not p.is_symlink()
    ]


_ROFF_COMMENT = re.compile(r"^\.\s*\\\".*$|^'\\\".*$", re.M)
_ROFF_ESCAPES = [
    (re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\s[-+]?\d"), ""),
    (re.compile(r"\\\*(?:\(..|\[[^\]]*\]|.)"), ""),
    (re.compile(r"\\\((?:em|en)"), "-"),
    (re.compile(r"\\\(bu"), "*"),
    (re.compile(r"\\\((?:aq|cq|oq)"), "'"),
    (re.compile(r"\\\((?:dq|lq|rq)"), '"'),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""),
    (re.compile(r"\\[-e]"), lambda m: "-" if m.group() == "\\-" else "\\"),
    (re.compile(r"\\[&,/:|^%){}]"), ""),
    (re.compile(r"\\ "), " "),
]
_ROFF_ARGS = re.compile(r'"([^"]*)"|(\S+)')
_ALTERNATING = {"BR", "IR", "RB", "BI", "IB", "RI"}  # fonts alternate word by word, no spaces
_FONT_MACROS = {"B", "I", "SM", "SB", *_ALTERNATING}


class _Filler:
    """Text lines joined into paragraphs as roff fills them; no-fill blocks and tags kept as lines."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.para: list[str] = []
        self.nofill = False
        self.tag_next = False

    def flush(self, *lines: str) -> None:
        if self.para:
            self.out.append(" ".join(self.para))
            self.para = []
        self.out += lines

    def text(self, line: str) -> None:
        if not line.strip():
            self.flush("")
        elif self.nofill or self.tag_next:
            self.flush(line)
            self.tag_next = False
        else:
            self.para.append(line.strip())

    def request(self, macro: str, args: list[str]) -> None:
        if macro in _FONT_MACROS:
            if args:
                self.text(("" if macro in _ALTERNATING else " ").join(args))
        elif macro in {"SH", "SS", "Sh", "Ss"}:
            self.flush("", " ".join(args))
        elif macro in {"PP", "P", "LP", "Pp", "sp"}:
            self.flush("")
        elif macro == "TP":
            self.flush()
            self.tag_next = True
        elif macro == "IP":
            self.flush(*args[:1])
        elif macro in {"nf", "EX"}:
            self.flush()
            self.nofill = True
        elif macro in {"fi", "EE"}:
            self.flush()
            self.nofill = False
        elif macro == "br":
            self.flush()


def deroff(source: str) -> str | None:
    """A man page's roff source as plain text, filled into paragraphs as `man` shows it: requests
    dropped except those that carry text (headings, fonts, tags), escapes removed. `.so`
    redirects give None."""
    if source.lstrip().startswith(".so "):
        return None
    filler = _Filler()
    in_definition = False  # .de / .ig blocks define macros or hide text, up to a ".." line
    for line in _ROFF_COMMENT.sub("", source).splitlines():
        if in_definition:
            in_definition = line.strip() != ".."
        elif line.startswith((".", "'")):
            macro, _, args = line[1:].strip().partition(" ")
            in_definition = macro in {"de", "de1", "ig", "am"}
            filler.request(macro, [a or b for a, b in _ROFF_ARGS.findall(args)])
        else:
            filler.text(line)
    filler.flush()
    text = "\n".join(filler.out)
    for pattern, repl in _ROFF_ESCAPES:
        text = pattern.sub(repl, text)
    text = re.sub(r"(?m)^\\?\s*$", "", text)  # lines left holding only a backslash
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def man_pages() -> list[tuple[str, Path]]:
    """English man pages of sections 1, 5 and 8 (commands, file formats, administration)."""
    out = []
    for section in ("man1", "man5", "man8"):
        folder = MAN / section
        if folder.is_dir():
            # One group per command family: gcloud's thousands of pages are one group, not thousands.
            out += [
                (f"man:{re.split(r'[._]', p.name)[0]}", p)
                for p in folder.iterdir()
                if p.is_file() and not p.is_symlink()
            ]
    return out


def man_text(path: Path) -> str | None:
    source = read_text(path)
    return deroff(source) if source is not None else None


# ---------------------------------------------------------------------------- Python packages


def site_packages() -> list[Path]:
    """The running interpreter's site-packages, its base installation's and Debian's, once each."""
    paths = [
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})["purelib"],
        "/usr/lib/python3/dist-packages",
    ]
    out: list[Path] = []
    for p in paths:
        if os.path.isdir(p) and Path(p).resolve() not in out:
            out.append(Path(p).resolve())
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def python_files() -> dict[str, list[tuple[str, Path]]]:
    """Files of installed Python distributions sorted by kind, grouped by distribution (a
    package directory joins its distribution through the dist-info's top_level.txt)."""
    found: dict[str, list[tuple[str, Path]]] = {
        "docs": [],
        "metadata": [],
        "licences": [],
        "changelogs": [],
        "code": [],
    }
    for root in site_packages():
        top_to_dist: dict[str, str] = {}
        for info in root.glob("*.dist-info"):
            dist = _norm(info.name.split("-")[0])
            top_level = info / "top_level.txt"
            if top_level.exists():
                for top in top_level.read_text(errors="replace").split():
                    top_to_dist[_norm(top.split("/")[0])] = dist
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            top = rel.split(os.sep)[0]
            if rel == "." or top == "__pycache__" or top.endswith(".egg-info"):
                continue
            if top.endswith(".dist-info"):
                group = "py:" + _norm(top.split("-")[0])
            else:
                group = "py:" + top_to_dist.get(_norm(top), _norm(top))
            for name in sorted(filenames):
                suffix = os.path.splitext(name)[1]
                if name == "METADATA":
                    kind = "metadata"
                elif suffix == ".py" and name != "__init__.py":
                    kind = "code"
                elif suffix not in _TEXT_SUFFIXES:
                    continue
                elif _LICENCE.match(name):
                    kind = "licences"
                elif _CHANGELOG.match(name):
                    kind = "changelogs"
                elif (suffix in {".md", ".rst"} or _README.match(name)) and not _PEOPLE.match(name):
                    kind = "docs"
                else:
                    continue
                if not _TRANSLATED.search(f"{rel}/{name}"):
                    found[kind].append((group, Path(dirpath, name)))
    return found


def long_description(path: Path) -> str | None:
    """The README a package ships in its METADATA: the message body (or the old Description field)."""
    text = read_text(path)
    if text is None:
        return None
    msg = email.parser.Parser().parsestr(text)
    body = msg.get_payload()
    if isinstance(body, str) and body.strip():
        return body
    desc = msg.get("Description", "")
    return re.sub(r"\n {8}\|?", "\n", desc) if desc and desc != "UNKNOWN" else None


# ---------------------------------------------------------------------------- C and Perl


def tree_files(root: Path, suffix: str, prefix: str) -> list[tuple[str, Path]]:
    """Files ending in `suffix` under `root`, grouped by their first directory below it (a file
    at the top is a group of its own)."""
    if not root.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        for name in sorted(filenames):
            if name.endswith(suffix):
                out.append((f"{prefix}:{rel.parts[0] if rel.parts else name}", Path(dirpath) / name))
    return out


# ---------------------------------------------------------------------------- the kinds


def local_items() -> Iterator[Item | None]:
    """Every local candidate, each kind drawn from several sources."""
    deb = debian_docs()
    py = python_files()
    for source, names in CHANGELOG_SOURCES.items():
        chosen = [(g, p) for g, p in deb["changelogs"] if names.match(p.name)]
        yield from items("changelogs", source, pick(chosen, per_group=1))
    yield from items("changelogs", "py-changelog", pick(py["changelogs"]))
    yield from items("licences", "deb-copyright", pick(deb["licences"]))
    yield from items("licences", "common-licence", pick(common_licences()))
    yield from items("licences", "py-licence", pick(py["licences"]))
    yield from items("docs", "deb-readme", pick(deb["docs"]))
    yield from items("docs", "py-doc", pick(py["docs"]))
    yield from items("docs", "py-metadata", pick(py["metadata"]), long_description)
    yield from items("docs", "man", pick(man_pages()), man_text)
    yield from items("code", "py-third-party", pick(py["code"], per_group=5))
    yield from items("code", "c-header", pick(tree_files(INCLUDE, ".h", "include"), per_group=5))
    yield from items("code", "perl", pick(tree_files(PERL, ".pm", "perl"), per_group=5))
