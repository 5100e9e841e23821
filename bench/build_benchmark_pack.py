"""Build the shipped benchmark pack, `pipeline/assets/benchmarks/pack.npz`, from the raw
benchmark files in ../shared/data/benchmarks (see that folder's README for provenance).

A dev tool: grist reads only the pack at run time. Run from the repo root:

    .venv/bin/python -m bench.build_benchmark_pack [--src ../shared/data/benchmarks]

Each item is stored as segments (`pipeline.decontam.pack`): its question first, then its other
parts in the order an eval prompt shows them, and apart, the passage it quotes. Prompt wrappers
("Question: ", "Passage: ", "\\nAnswer:") are stripped. `segments` below is also what
`bench.decontam_bench` renders pages from, so the bench plants what the pack describes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.decontam.pack import DEFAULT_PACK, GramPlan, Item, build_pack

Row = dict[str, Any]
MMLU_PASSAGE = "This question refers to the following information."


class Parts(NamedTuple):
    """An item as its parts: what a page may show of it. `answer` is the correct choice's
    index into `choices`, or None; `solution` a worked answer or code; `passage` the text the
    item quotes (BoolQ, MMLU's history items), `context` a passage that is the item's own text
    (LAMBADA)."""

    id: str
    question: str
    choices: tuple[str, ...] = ()
    answer: int | None = None
    solution: str = ""
    passage: str = ""


def _strip(text: str, *wrappers: str) -> str:
    for w in wrappers:
        text = text.replace(w, " ")
    return text.strip()


def _mmlu(r: Row, i: int) -> Parts:
    q, passage = r["question"].strip(), ""
    if q.startswith(MMLU_PASSAGE):  # the excerpt, its attribution, then the question's own line
        lines = [x for x in q[len(MMLU_PASSAGE) :].split("\n") if x.strip()]
        if len(lines) > 1:
            passage, q = "\n".join(lines[:-1]), lines[-1]
    return Parts(
        f"{r['subject']}/{r['row']}", q, tuple(r["choices"]), "ABCD".index(r["answer"]), passage=passage
    )


def _hellaswag(r: Row, i: int) -> Parts:
    q = f"{r['activity_label']}: {r['ctx']}"
    return Parts(str(r["val_index"]), q, tuple(r["endings"]), int(r["label"]))


def _gsm8k(r: Row, i: int) -> Parts:
    return Parts(str(i), r["question"], solution=r["answer"])


def _humaneval(r: Row, i: int) -> Parts:
    return Parts(r["task_id"], r["prompt"], solution=r["canonical_solution"])


def _query_choices(r: Row, i: int) -> Parts:
    return Parts(str(i), _strip(r["query"], "Question:"), tuple(r["choices"]), int(r["gold"]))


def _winogrande(r: Row, i: int) -> Parts:
    """The sentence with a blank where the two options differ, and the options."""
    a, b = r["context_options"]
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    k = a.rfind(" ", 0, k) + 1  # the options' words, whole
    question = f"{a[:k]}_ {r['continuation']}"
    return Parts(str(i), question, (a[k:], b[k:]), int(r["gold"]))


def _lambada(r: Row, i: int) -> Parts:
    return Parts(str(i), r["context"], (r["continuation"],), 0)


def _boolq(r: Row, i: int) -> Parts:
    passage, _, question = r["query"].rpartition("\nQuestion:")
    return Parts(str(i), question.strip(), ("no", "yes"), int(r["gold"]), passage=_strip(passage, "Passage:"))


def _triviaqa(r: Row, i: int) -> Parts:
    return Parts(str(i), _strip(r["context"], "Question:", "\nAnswer:"), (r["answer"],), 0)


SOURCES: dict[str, tuple[str, Callable[[Row, int], Parts]]] = {
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
# Exam benchmarks whose questions quote documents, speeches, books: a quotation in them is not
# the item's own text (`pipeline.decontam.pack`). The others' quotation marks are dialogue.
CITING = {"mmlu", "arc_easy", "arc_challenge", "triviaqa"}
# BoolQ's yes/no and the letter or number answers of MMLU's maths say nothing of the item
_BARE_ANSWER = re.compile(r"^\W*(yes|no|true|false|[a-e]|[\d\W]*)\W*$", re.IGNORECASE)


def read_parts(src: Path) -> Iterator[tuple[str, Parts]]:
    """Every benchmark item of the shared folder as (benchmark, its parts)."""
    for bench, (name, extract) in SOURCES.items():
        with gzip.open(src / name, "rt", encoding="utf-8") as f:
            for i, line in enumerate(f):
                yield bench, extract(json.loads(line), i)


def to_item(bench: str, p: Parts) -> Item:
    """The pack's view: the question, the choices in order (less bare answers: "yes", "4",
    "B"), then the solution; which segment is the correct answer."""
    gold = None if p.answer is None else p.choices[p.answer]
    choices = [c for c in p.choices if not _BARE_ANSWER.match(c)]
    segments = [p.question, *choices] + ([p.solution] if p.solution else [])
    answer = 1 + choices.index(gold) if gold in choices else None
    return Item(bench, p.id, tuple(segments), p.passage, answer, bench in CITING)


def read_items(src: Path) -> Iterator[Item]:
    """Every benchmark item of the shared folder, as the pack stores it."""
    for bench, p in read_parts(src):
        yield to_item(bench, p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=Path("../shared/data/benchmarks"))
    ap.add_argument("--out", type=Path, default=DEFAULT_PACK)
    ap.add_argument("--n", type=int, default=GramPlan.n)
    args = ap.parse_args()
    pack = build_pack(list(read_items(args.src)), GramPlan(n=args.n))
    pack.save(args.out)
    print(f"{args.out}: {args.out.stat().st_size:,} bytes")
    for bench, (items, grams) in pack.counts().items():
        print(f"  {bench:14s} {items:6d} items {grams:8d} gram rows")


if __name__ == "__main__":
    main()
