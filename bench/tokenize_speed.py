"""Tokenizer encoding speed on the shipped sample: HF `tokenizers` vs grist's fast Encoder.

    .venv/bin/python -m bench.tokenize_speed [--vocab-size 8192] [--tokenizer tokenizer.json]

Trains a BPE on the sample itself unless a tokenizer is given, then times each encoder end to
end (texts in, one id sequence per text out) after a warm-up, keeping the best of `--repeats`
runs because other processes on a small machine only ever make a run slower. Checks that the
ids are identical document for document and exits non-zero when they are not.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline.tokenizer import Encoder, load_tokenizer, train_bpe

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"


def sample_texts() -> list[str]:
    texts = []
    for path in sorted(SAMPLE_DIR.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            texts.extend(json.loads(line)["text"] for line in f)
    return texts


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--tokenizer", type=Path, help="an existing tokenizer.json instead of training one")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    texts = sample_texts()
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else train_bpe(texts, args.vocab_size)
    encoder = Encoder(tokenizer)
    print(
        f"{len(texts)} documents, {n_bytes / 1e6:.1f} MB, vocab {tokenizer.get_vocab_size()}, "
        f"fast path: {encoder.fast}, threads: {encoder.num_threads}"
    )

    def hf() -> list[list[int]]:
        return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]

    def fast() -> list[np.ndarray]:
        return encoder.encode_batch(texts)

    tokenizer.encode_batch(texts[:50], add_special_tokens=False)  # warm-up: thread pools, regex caches
    encoder.encode_batch(texts[:50])
    hf_s, hf_ids = best_time(hf, args.repeats)
    fast_s, fast_ids = best_time(fast, args.repeats)
    n_tokens = sum(len(ids) for ids in hf_ids)
    for name, seconds in (("HF tokenizers encode_batch", hf_s), ("grist Encoder.encode_batch", fast_s)):
        print(f"{name:28s} {n_bytes / seconds / 1e6:6.2f} MB/s  {n_tokens / seconds / 1e6:5.2f} M tokens/s")
    print(f"speedup {hf_s / fast_s:.1f}x")
    differing = sum(not np.array_equal(a, b) for a, b in zip(hf_ids, fast_ids, strict=True))
    print(f"identical ids: {len(texts) - differing}/{len(texts)} documents")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
