"""Dev/test by group, never by document: a book, a Wikipedia article, a Debian source package, a
Python distribution, a header directory or a UDHR language lands whole in one split, so test
documents come from files (and packages) that dev never saw. Exact and near-exact duplicates
(the same licence with another copyright line) are dropped first, keeping one copy.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict

from bench.filter_eval.common import CLEAN_KINDS, SPLITS, Item, stable_hash

REAL_KINDS = (*CLEAN_KINDS, "non_english")  # the kinds whose documents are real text, split by group
PER_KIND = {"non_english": 200}  # documents of a kind in one split at most
DEFAULT_PER_KIND = 300
PER_GROUP = {"books": 40, "code": 5, "docs": 3, "changelogs": 2, "licences": 2, "non_english": 4}  # default 1

_COPYRIGHT_LINE = re.compile(r"(?im)^.*(?:copyright|\(c\)|©).*$")
_NOT_LETTERS = re.compile(r"[\W\d_]+")


def dedup_key(text: str) -> str:
    """Equal for texts that differ only in copyright lines, case, digits and punctuation."""
    core = _NOT_LETTERS.sub("", _COPYRIGHT_LINE.sub("", text).lower())
    return hashlib.sha256(core.encode()).hexdigest()


def dedup(items: list[Item]) -> list[Item]:
    """One item per dedup key; the first in (kind, source, origin) order wins."""
    seen: set[str] = set()
    out = []
    for it in sorted(items, key=lambda i: (i.kind, i.source, i.origin)):
        key = dedup_key(it.text)
        if key not in seen:
            seen.add(key)
            out.append(it)
    return out


def per_group(kind: str) -> int:
    return PER_GROUP.get(kind, 1)


def assign(items: list[Item]) -> dict[str, str]:
    """group -> split. Source by source (within each kind), groups in hash order go to the split
    that holds fewer of the source's documents so far, so splits stay balanced even for sources
    of few groups (books). A group met again later (a package's README after its changelog)
    keeps its split."""
    side: dict[str, str] = {}
    for kind in REAL_KINDS:
        for source in sorted({it.source for it in items if it.kind == kind}):
            sizes = Counter(it.group for it in items if it.kind == kind and it.source == source)
            load = dict.fromkeys(SPLITS, 0)
            for g in sizes:
                if g in side:
                    load[side[g]] += min(sizes[g], per_group(kind))
            for g in sorted((g for g in sizes if g not in side), key=lambda g: stable_hash("split", g)):
                if load["dev"] == load["test"]:
                    side[g] = SPLITS[stable_hash("tie", g) % 2]
                else:
                    side[g] = min(SPLITS, key=load.__getitem__)
                load[side[g]] += min(sizes[g], per_group(kind))
    return side


def select(items: list[Item], side: dict[str, str], split: str) -> list[Item]:
    """A split's real documents: for each kind, its sources taken in turn (so one large source
    does not crowd out the others), each in hash order with at most `PER_GROUP` a group."""
    chosen: list[Item] = []
    for kind in REAL_KINDS:
        by_source: dict[str, list[Item]] = defaultdict(list)
        taken: Counter = Counter()
        mine = [it for it in items if it.kind == kind and side[it.group] == split]
        for it in sorted(mine, key=lambda i: (stable_hash("group", i.group), stable_hash("doc", i.origin))):
            if taken[it.group] < per_group(kind):
                taken[it.group] += 1
                by_source[it.source].append(it)
        queues = [by_source[s] for s in sorted(by_source)]
        cap, picked = PER_KIND.get(kind, DEFAULT_PER_KIND), []
        while len(picked) < cap and any(queues):
            for q in queues:
                if q and len(picked) < cap:
                    picked.append(q.pop(0))
        chosen += picked
    return chosen
