"""What a step is. Three kinds, so the executor can fuse and parallelise them:

* `Filter` / `DocumentStep`: per document, no state across documents. Consecutive ones are
  fused into one pass over each work unit.
* `GlobalStep`: needs to see the whole corpus before it can decide (exact dedup, MinHash,
  mixing). It runs as three hooks: `summarize` each unit (parallel), `plan` once over all
  summaries, then `apply` to each unit (parallel). The executor fuses `summarize` into the
  pass that precedes the step and `apply` into the pass that follows it.
* `Sink`: a global step that ends the pipeline by writing its own output (tokenized shards).

Steps never know which executor runs them; they are rebuilt from the recipe in each worker.
Steps that load models do so lazily, on first use, so building one is cheap.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.document import Document, Removal

Verdict = bool | str
"""A filter's answer for one document: True keeps it; False or a reason string drops it."""


class Step:
    """Base of every step. Parameters are keyword arguments of `__init__`, with type hints:
    the recipe loader validates a recipe's parameters against that signature."""

    name: ClassVar[str] = "step"

    def __init__(self) -> None:
        self.step_name = self.name  # recipe position may rename it, e.g. "c4#2"


class DocumentStep(Step):
    """Per-document transformation and/or removal."""

    def apply(self, docs: list[Document]) -> tuple[list[Document], list[Removal]]:
        raise NotImplementedError


class Filter(DocumentStep):
    """Keep/drop per document. Override `filter`, or `filter_batch` when batching is faster.

    `filter` may also rewrite `doc.text` in place (C4 drops lines, for instance)."""

    def filter(self, doc: Document) -> Verdict:
        raise NotImplementedError

    def filter_batch(self, docs: list[Document]) -> list[Verdict]:
        return [self.filter(d) for d in docs]

    def apply(self, docs: list[Document]) -> tuple[list[Document], list[Removal]]:
        verdicts = self.filter_batch(docs)
        if len(verdicts) != len(docs):
            raise RuntimeError(
                f"step {self.step_name!r} returned {len(verdicts)} verdicts for {len(docs)} documents"
            )
        kept: list[Document] = []
        removed: list[Removal] = []
        for doc, verdict in zip(docs, verdicts, strict=True):
            if verdict is True:
                kept.append(doc)
            elif verdict is False:
                removed.append(Removal(doc, self.step_name, self.step_name))
            elif isinstance(verdict, str):
                removed.append(Removal(doc, self.step_name, verdict))
            else:
                raise TypeError(
                    f"step {self.step_name!r} returned {verdict!r} for document {doc.id!r}: "
                    "a filter must return True (keep), False or a reason string (drop)"
                )
        return kept, removed


ParallelMap = Callable[[Callable[[Any], Any], Sequence[Any], str], Iterator[Any]]
"""The executor's `map(fn, items, desc)`: yields fn(item) in completion order. `fn` must be a
module-level function and items picklable, so any executor (processes, Ray) can run them."""


@dataclass(frozen=True)
class Summaries:
    """Every unit's summary for one global step: `(unit, path)` pairs, in unit order.
    Iterating yields the tables one at a time, so a plan never has to hold them all."""

    files: list[tuple[str, Path]]

    def __iter__(self) -> Iterator[pa.Table]:
        for _, path in self.files:
            yield pq.read_table(path)


class GlobalStep(Step):
    """A step that must see every unit before it can decide. See the module docstring."""

    def summarize(self, docs: list[Document], unit: str) -> pa.Table | None:
        """A small table about one batch of a unit's documents (hashes, counts, a sample...).
        Called once per batch; the runner concatenates a unit's tables into its summary."""
        return None

    def compact_summary(self, table: pa.Table) -> pa.Table:
        """The unit's concatenated batch summaries, reduced before they are written (a sample
        drawn per batch, say, cut to the unit's share). The runner also compacts a large unit
        part way through, so compact(concat(compact(a), b)) must equal compact(concat(a, b))."""
        return table

    def plan(self, summaries: Summaries, state_dir: Path, pmap: ParallelMap) -> dict[str, Any]:
        """Decide from all summaries, once; write the decision under `state_dir` and return
        stats. Heavy plans parallelise through `pmap`."""
        raise NotImplementedError

    def load(self, state_dir: Path) -> None:
        """Read the decision `plan` wrote, in each worker, before `apply`."""

    def apply(self, docs: list[Document], unit: str) -> tuple[list[Document], list[Removal]]:
        """Carry out the decision on one batch of `unit`'s documents."""
        return docs, []

    def report(self, state_dir: Path, out_dir: Path) -> list[str]:
        """Markdown lines for the corpus report (may also write PNGs into `out_dir`)."""
        return []

    def outcome(self, state_dir: Path, out_dir: Path) -> dict[str, Any] | None:
        """What the step achieved, measured on the written corpus, for manifest.json under the
        step's name (the mix's achieved shares); None: nothing beyond its plan's stats."""
        return None


class Sink(GlobalStep):
    """The last step: writes the pipeline's final output for each unit itself."""

    def write_unit(self, batches: Iterable[list[Document]], unit_id: str, out_dir: Path) -> dict[str, Any]:
        """Write this unit's output, streamed in batches, under `out_dir`; return its stats.
        Must be idempotent: a unit may be re-run after a crash."""
        raise NotImplementedError

    def finalize(self, out_dir: Path) -> dict[str, Any]:
        """Run once after every unit is written (index files, summary)."""
        return {}


class PluginFilter(Filter):
    """Adapts a user's plain function or object (`doc -> bool | str`) into a Filter."""

    def __init__(
        self,
        fn: Callable[[Document], Verdict],
        name: str,
        batch_fn: Callable[[list[Document]], list[Verdict]] | None = None,
    ) -> None:
        super().__init__()
        self.fn = fn
        self.batch_fn = batch_fn
        self.step_name = name

    def filter(self, doc: Document) -> Verdict:
        return self.fn(doc)

    def filter_batch(self, docs: list[Document]) -> list[Verdict]:
        return self.batch_fn(docs) if self.batch_fn else [self.fn(d) for d in docs]


def import_object(dotted: str) -> Any:
    """Import `package.module:attr` (or `package.module.attr`)."""
    if ":" in dotted:
        module_name, _, attr = dotted.partition(":")
    else:
        module_name, _, attr = dotted.rpartition(".")
    if not module_name or not attr:
        raise ImportError(f"{dotted!r} is not a dotted path like 'my_filters:NoShouting'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as e:
        raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from e


def step_parameters(target: Any) -> dict[str, inspect.Parameter]:
    """The recipe-settable parameters of a step class or plugin class (its __init__ keywords)."""
    if inspect.isclass(target):
        params = inspect.signature(target.__init__).parameters
        return {
            k: p
            for k, p in params.items()
            if k != "self" and p.kind is p.KEYWORD_ONLY or (k != "self" and p.kind is p.POSITIONAL_OR_KEYWORD)
        }
    return {}


def build_step(kind: str, params: dict[str, Any], step_name: str) -> Step:
    """Instantiate a step from its recipe entry. `kind` is a built-in name or a dotted path."""
    from pipeline.steps import BUILTIN_STEPS

    target = import_object(BUILTIN_STEPS.get(kind, kind))
    if inspect.isclass(target) and issubclass(target, Step):
        step = target(**params)
        step.step_name = step_name
        return step
    if inspect.isclass(target):  # a plain user class: instantiate with params, then adapt
        obj = target(**params)
        return PluginFilter(obj.filter, step_name, getattr(obj, "filter_batch", None))
    if callable(target):
        if params:
            raise TypeError(f"plugin function {kind!r} takes no parameters, got {sorted(params)}")
        return PluginFilter(target, step_name, None)
    raise TypeError(f"{kind!r} is neither a step class, a plugin class nor a function")
