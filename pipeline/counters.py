"""Counters: what each step kept and removed and why, per unit, then summed over the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.document import Document, Removal


def tally(reasons: Iterable[str]) -> dict[str, int]:
    """How many times each reason occurs, in first-seen order."""
    return dict(Counter(reasons))


def add_tally(total: dict[str, int], more: Mapping[str, int]) -> None:
    for reason, n in more.items():
        total[reason] = total.get(reason, 0) + n


def _empty() -> dict[str, Any]:
    return {"docs_in": 0, "docs_out": 0, "chars_in": 0, "chars_out": 0, "seconds": 0.0, "removed": {}}


class Counters:
    """Per-step docs/chars in and out and removals by reason, for one unit."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def record(
        self,
        step: str,
        n_in: int,
        chars_in: int,
        kept: list[Document],
        removed: list[Removal],
        seconds: float,
    ) -> None:
        """`chars_in` is measured before the step ran: steps may rewrite text in place."""
        c = self.data.setdefault(step, _empty())
        c["seconds"] += seconds
        c["docs_in"] += n_in
        c["docs_out"] += len(kept)
        c["chars_in"] += chars_in
        c["chars_out"] += sum(len(d.text) for d in kept)
        add_tally(c["removed"], tally(r.reason for r in removed))
        if len(kept) + len(removed) != n_in:
            raise RuntimeError(
                f"step {step!r} returned {len(kept)} kept + {len(removed)} removed documents "
                f"for {n_in} in: a step must account for every document"
            )


def merge_step_counters(unit_results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Sum the per-unit counters of one stage, step by step, keeping step order."""
    total: dict[str, dict[str, Any]] = {}
    for r in unit_results:
        for step, c in r["steps"].items():
            t = total.setdefault(step, _empty())
            for k in ("docs_in", "docs_out", "chars_in", "chars_out", "seconds"):
                t[k] += c[k]
            add_tally(t["removed"], c["removed"])
    return total


def sum_reasons(unit_results: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in unit_results:
        add_tally(out, r.get(key) or {})
    return out
