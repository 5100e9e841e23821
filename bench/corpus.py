"""Builds the benchmark corpus: at least 100 MB of real text from the team's shared data.

The shared raw files hold about 28 MB of real text (web, wiki, books, code, UDHR). To reach
the size floor without inventing text, every document is written in several variants whose
paragraphs are rotated (variant k starts at paragraph k). The text stays real and its
statistics (words, lines, n-grams) unchanged, while exact dedup does not collapse the copies.
Output: bench/data/corpus/part-NNN.jsonl.gz, split so two workers have many units to share.
"""

from __future__ import annotations

import gzip
import json
import os
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_RAW = Path(os.environ.get("GRIST_SHARED_RAW", ROOT.parent / "shared" / "data" / "raw"))
OUT = ROOT / "bench" / "data" / "corpus"


def rotate_paragraphs(text: str, k: int) -> str:
    parts = text.split("\n\n") if "\n\n" in text else text.split("\n")
    if len(parts) < 2 or k == 0:
        return text
    k %= len(parts)
    sep = "\n\n" if "\n\n" in text else "\n"
    return sep.join(parts[k:] + parts[:k])


def build(min_mb: float = 100, n_parts: int = 32) -> list[Path]:
    """Write the corpus once; reuse it when it is already there and big enough."""
    done = OUT / "done.json"
    if done.exists() and json.loads(done.read_text())["mb"] >= min_mb:
        return sorted(OUT.glob("part-*.jsonl.gz"))
    if not SHARED_RAW.is_dir():
        raise SystemExit(
            f"bench corpus: {SHARED_RAW} not found (set GRIST_SHARED_RAW to the shared raw data)"
        )
    docs = []
    for path in sorted(SHARED_RAW.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            docs += [json.loads(line) for line in f]
    base_bytes = sum(len(d["text"].encode()) for d in docs)
    variants = max(1, -(-int(min_mb * 1e6) // base_bytes))
    OUT.mkdir(parents=True, exist_ok=True)
    total, n = 0, 0
    with ExitStack() as stack:
        files = [
            stack.enter_context(
                gzip.open(OUT / f"part-{i:03d}.jsonl.gz", "wt", encoding="utf-8", compresslevel=1)
            )
            for i in range(n_parts)
        ]
        for k in range(variants):
            for d in docs:
                text = rotate_paragraphs(d["text"], k)
                rec = {
                    "id": f"{d['id']}#v{k}",
                    "text": text,
                    "meta": {"variant": k, "origin": d.get("source")},
                }
                files[n % n_parts].write(json.dumps(rec, ensure_ascii=False) + "\n")
                total += len(text.encode())
                n += 1
    done.write_text(json.dumps({"mb": total / 1e6, "docs": n, "variants": variants}))
    return sorted(OUT.glob("part-*.jsonl.gz"))


if __name__ == "__main__":
    paths = build()
    print(json.loads((OUT / "done.json").read_text()), len(paths), "files")
