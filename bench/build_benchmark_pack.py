"""Build the shipped benchmark pack, `pipeline/assets/benchmarks/pack.npz`, from the raw
benchmark files in ../shared/data/benchmarks (see that folder's README for provenance).

A dev tool: grist reads only the pack at run time. Run from the repo root:

    .venv/bin/python -m bench.build_benchmark_pack [--src ../shared/data/benchmarks]

Each benchmark's "text to match" follows the benchmarks README: prompt wrappers ("Question: ",
"Passage: ", "\\nAnswer:") are stripped, and the fields an item is scored on are joined into
one text, so its n-grams cover the question, the choices and the joins between them.
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipeline.decontam.pack import DEFAULT_PACK, Item, build_pack

Row = dict[str, Any]


def _strip(text: str, *wrappers: str) -> str:
    for w in wrappers:
        text = text.replace(w, " ")
    return text.strip()


def _mmlu(r: Row, i: int) -> tuple[str, str]:
    return f"{r['subject']}/{r['row']}", " ".join([r["question"], *r["choices"]])


def _hellaswag(r: Row, i: int) -> tuple[str, str]:
    return str(r["val_index"]), f"{r['activity_label']}: {r['ctx']} {r['endings'][int(r['label'])]}"


def _gsm8k(r: Row, i: int) -> tuple[str, str]:
    return str(i), f"{r['question']}\n{r['answer']}"


def _humaneval(r: Row, i: int) -> tuple[str, str]:
    return r["task_id"], r["prompt"] + r["canonical_solution"]


def _query_choices(r: Row, i: int) -> tuple[str, str]:
    return str(i), " ".join([_strip(r["query"], "Question:"), *r["choices"]])


def _winogrande(r: Row, i: int) -> tuple[str, str]:
    return str(i), f"{r['context_options'][int(r['gold'])]} {r['continuation']}"


def _lambada(r: Row, i: int) -> tuple[str, str]:
    return str(i), f"{r['context']} {r['continuation']}"


def _boolq(r: Row, i: int) -> tuple[str, str]:
    return str(i), _strip(r["query"], "Passage:", "\nQuestion:")


def _triviaqa(r: Row, i: int) -> tuple[str, str]:
    # The question alone: most are shorter than 13 words and match as a whole item, which
    # appending the answer would prevent wherever a page quotes the question without it.
    return str(i), _strip(r["context"], "Question:", "\nAnswer:")


SOURCES: dict[str, tuple[str, Callable[[Row, int], tuple[str, str]]]] = {
    "mmlu": ("mmlu_test.jsonl.gz", _mmlu),
    "hellaswag": ("hellaswag_val.jsonl.gz", _hellaswag),
    "gsm8k": ("gsm8k_test.jsonl.gz", _gsm8k),
    "humaneval": ("humaneval.jsonl.gz", _humaneval),
    "arc_easy": ("arc_easy_test.jsonl.gz", _query_choices),
    "arc_challenge": ("arc_challenge_test.jsonl.gz", _query_choices),
    "piqa": ("piqa_val.jsonl.gz", _query_choices),
    "winogrande": ("winogrande_dev.jsonl.gz", _winogrande),
    "lambada": ("lambada_openai_test.jsonl.gz", _lambada),
    "boolq": ("boolq_val.jsonl.gz", _boolq),
    "triviaqa": ("triviaqa_val_subset.jsonl.gz", _triviaqa),
}


def read_items(src: Path) -> Iterator[Item]:
    """Every benchmark item of the shared folder, as (benchmark, item id, text to match)."""
    for bench, (name, extract) in SOURCES.items():
        with gzip.open(src / name, "rt", encoding="utf-8") as f:
            for i, line in enumerate(f):
                item_id, text = extract(json.loads(line), i)
                yield Item(bench, item_id, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=Path("../shared/data/benchmarks"))
    ap.add_argument("--out", type=Path, default=DEFAULT_PACK)
    ap.add_argument("--n", type=int, default=13)
    ap.add_argument("--short-n", type=int, default=6)
    ap.add_argument("--short-item-words", type=int, default=40)
    args = ap.parse_args()
    pack = build_pack(list(read_items(args.src)), args.n, args.short_n, args.short_item_words)
    pack.save(args.out)
    print(f"{args.out}: {args.out.stat().st_size:,} bytes")
    for bench, (items, grams) in pack.counts().items():
        print(f"  {bench:14s} {items:6d} items {grams:8d} gram rows")


if __name__ == "__main__":
    main()
