"""Writes bench/data/filter_eval/{dev,test}.jsonl.gz: real clean text of seven kinds, real
non-English text, and ten kinds of generated junk, the junk of each split made from that split's
own clean text with that split's seeds. Same machine, same bytes: every choice is a hash or a
seeded draw. Each record: id, text, kind, label (clean/junk), origin, source (a family within
the kind, or the generator's variant), group (the split's unit).

Run alone: python -m bench.filter_eval.build   (the evaluation builds it when missing or stale)
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from collections import Counter
from pathlib import Path

from bench.filter_eval import junk, local_sources, shared_sources, split
from bench.filter_eval.common import CLEAN_KINDS, JUNK_KINDS, OUT, SPLITS, Item, rng
from pipeline.atomic import atomic_path, write_json

JUNK_PER_KIND = 200  # generated documents of each junk kind in each split
POOL_SOURCES = {"gutenberg", "shakespeare", "wikitext2", "dclm-high"}  # prose the junk is made from
FORMAT = 1  # bump when the records change shape


def builder_digest() -> str:
    """Changes whenever the code that makes the data changes: stale data is rebuilt."""
    h = hashlib.sha256(str(FORMAT).encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.name not in {"evaluate.py", "__main__.py"}:
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def real_items() -> list[Item]:
    found: list[Item | None] = []
    for source in shared_sources.prose_sources():
        found += source()
    found += local_sources.local_items()
    found += shared_sources.non_english()
    return split.dedup([it for it in found if it is not None])


def make_pool(name: str, chosen: list[Item]) -> junk.Pool:
    docs = [
        (it.origin, junk.detok_wikitext(it.text))
        for it in chosen
        if it.label == "clean" and it.source in POOL_SOURCES
    ]
    return junk.Pool(name, docs)


def generated(name: str, chosen: list[Item]) -> list[Item]:
    """The split's junk: every generator JUNK_PER_KIND times, seeded by split, kind and number."""
    pool = make_pool(name, chosen)
    group_of = {it.origin: it.group for it in chosen}
    out = []
    for kind, generate in junk.GENERATORS.items():
        for i in range(JUNK_PER_KIND):
            text, variant, fed = generate(rng(name, kind, str(i)), pool)
            origin = f"gen:{kind}/{variant}#{name}-{i}"
            if fed in group_of:
                origin += f" <- {fed}"
            elif fed:
                origin += f" (bytes of {fed})"
            out.append(
                Item(kind, text, origin, f"{kind}/{variant.split('/')[0]}", group_of.get(fed, f"gen/{name}"))
            )
    return out


def records(name: str, items: list[Item]) -> list[dict]:
    """Numbered by kind, then shuffled together: one mixed source."""
    numbered: Counter = Counter()
    recs = []
    for it in items:
        n = numbered[it.kind]
        numbered[it.kind] += 1
        recs.append(
            {
                "id": f"{name}/{it.kind}/{n:04d}",
                "text": it.text,
                "kind": it.kind,
                "label": it.label,
                "origin": it.origin,
                "source": it.source,
                "group": it.group,
            }
        )
    rng(name, "order").shuffle(recs)
    return recs


def write_jsonl_gz(path: Path, recs: list[dict]) -> str:
    """gzip without a timestamp (same records, same bytes); returns the file's sha256."""
    data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in recs).encode()
    blob = gzip.compress(data, compresslevel=6, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    return hashlib.sha256(blob).hexdigest()


def build(out: Path = OUT) -> dict:
    t0 = time.perf_counter()
    items = real_items()
    side = split.assign(items)
    manifest: dict = {"builder": builder_digest(), "files": {}, "counts": {}, "sources": {}}
    for name in SPLITS:
        chosen = split.select(items, side, name)
        recs = records(name, chosen + generated(name, chosen))
        manifest["files"][f"{name}.jsonl.gz"] = write_jsonl_gz(out / f"{name}.jsonl.gz", recs)
        manifest["counts"][name] = dict(sorted(Counter(r["kind"] for r in recs).items()))
        manifest["sources"][name] = dict(sorted(Counter(f"{r['kind']}:{r['source']}" for r in recs).items()))
    write_json(out / "manifest.json", manifest)
    manifest["seconds"] = round(time.perf_counter() - t0, 1)
    return manifest


def ensure_built(out: Path = OUT) -> dict:
    """The manifest of data built by this code, building it first when missing or stale."""
    path = out / "manifest.json"
    if path.exists():
        manifest = json.loads(path.read_text())
        files_ok = all((out / f).exists() for f in manifest.get("files", {}))
        if manifest.get("builder") == builder_digest() and files_ok:
            return manifest
    print(f"building the filter evaluation set in {out} ...", flush=True)
    manifest = build(out)
    print(f"built in {manifest['seconds']} s", flush=True)
    return manifest


def read_split(name: str, out: Path = OUT) -> list[dict]:
    with gzip.open(out / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


if __name__ == "__main__":
    m = build()
    for name in SPLITS:
        print(name, sum(m["counts"][name].values()), m["counts"][name])
    print(f"{m['seconds']} s;", "kinds:", len(CLEAN_KINDS), "clean,", len(JUNK_KINDS), "junk")
