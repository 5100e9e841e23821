"""What a step is: the one contract every step, built-in or plugin, is written against.

Three kinds, so the executor can fuse and parallelise them:

* `Filter` / `DocumentStep`: per document, no state across documents. Consecutive ones are
  fused into one pass over each work unit.
* `GlobalStep`: needs to see the whole corpus before it can decide (exact dedup, MinHash,
  mixing). It runs as three hooks: `summarize` each unit (parallel), `plan` once over all
  summaries, then `apply` to each unit (parallel). `pipeline.driver` runs those phases for
  every caller (the runner fuses `summarize` into the pass before the step and `apply` into the
  pass after it).
* `Sink`: a global step that ends the pipeline by writing its own output (tokenized shards).

Every step applies as `apply(docs, unit)`. Parameters are the keyword arguments of `__init__`,
their types and ranges in the type hints (`pipeline.config`), checked when the recipe loads.
Steps never know which executor runs them; they are rebuilt from the recipe in each worker, so
building one must stay cheap: steps that load models do so lazily, on first use.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import ParamError, check_params
from pipeline.document import Document, Removal
from pipeline.text.kind import kind_of

Verdict = bool | str
"""A filter's answer for one document: True keeps it; False or a reason string drops it."""


class Step:
    """Base of every step. Parameters are keyword arguments of `__init__`, with type hints:
    the recipe loader validates a recipe's parameters against that signature."""

    name: ClassVar[str] = "step"
    once: ClassVar[bool] = False  # at most one step of this class per recipe
    # A step whose rules fit some kinds of text (`pipeline.text.kind`: "prose", "records", "code") judges only
    # documents of that kind; a recipe may limit a filter to some sources (`sources: [web-*]`).
    # The others pass the step untouched (`judges`). None: every document.
    kinds: ClassVar[tuple[str, ...] | None] = None
    source_patterns: tuple[str, ...] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every parameter of a step's `__init__` becomes an attribute of the same name before
        the constructor's body runs, as a dataclass field would: the signature declares a
        parameter once, and the body only derives what it needs from it."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def init_with_attributes(self: Step, *args: Any, **params: Any) -> None:
            bound = signature.bind(self, *args, **params)
            bound.apply_defaults()
            for key, value in list(bound.arguments.items())[1:]:
                setattr(self, key, value)
            init(self, *args, **params)

        cls.__init__ = init_with_attributes  # type: ignore[method-assign]

    def __init__(self) -> None:
        self.step_name = self.name  # recipe position may rename it, e.g. "c4#2"

    def bind(self, sources: list[str], steps: Sequence[Step]) -> None:
        """Called once the recipe's steps are all built, at load time and in every worker: a
        step that depends on the recipe around it (its source names, a later step's settings)
        checks or takes them here, raising `pipeline.config.ParamError` on a mismatch."""

    def judges(self, doc: Document) -> bool:
        """Whether this step looks at the document at all (its source, then its kind)."""
        if self.source_patterns is not None and not any(
            fnmatch.fnmatchcase(doc.source, p) for p in self.source_patterns
        ):
            return False
        return self.kinds is None or kind_of(doc) in self.kinds

    def apply(self, docs: list[Document], unit: str) -> tuple[list[Document], list[Removal]]:
        """Carry the step out on one batch of `unit`'s documents: (kept, removed)."""
        raise NotImplementedError


class DocumentStep(Step):
    """Per-document transformation and/or removal: a document's fate depends on it alone."""


class Filter(DocumentStep):
    """Keep/drop per document. Override `filter`, or `filter_batch` when batching is faster.

    `filter` may also rewrite `doc.text` in place (C4 drops lines, for instance). Documents the
    filter does not judge (`Step.judges`: another kind, another source) pass it untouched, so
    prose rules never judge source code and code rules never judge prose, in a corpus that
    mixes both."""

    def bind(self, sources: list[str], steps: Sequence[Step]) -> None:
        for pattern in self.source_patterns or ():
            if not any(fnmatch.fnmatchcase(name, pattern) for name in sources):
                raise ParamError("sources", f"{pattern!r} matches none of the recipe's sources {sources}")

    def filter(self, doc: Document) -> Verdict:
        raise NotImplementedError

    def filter_batch(self, docs: list[Document]) -> list[Verdict]:
        return [self.filter(d) for d in docs]

    def apply(self, docs: list[Document], unit: str) -> tuple[list[Document], list[Removal]]:
        judged = [d for d in docs if self.judges(d)]
        verdicts = self.filter_batch(judged)
        if len(verdicts) != len(judged):
            raise RuntimeError(
                f"step {self.step_name!r} returned {len(verdicts)} verdicts for {len(judged)} documents"
            )
        if len(judged) < len(docs):  # the others pass, in their place
            by_doc = {id(d): v for d, v in zip(judged, verdicts, strict=True)}
            verdicts = [by_doc.get(id(d), True) for d in docs]
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
    """A step that must see every unit before it can decide. See the module docstring.

    A step whose plan writes one decision file per unit reads it through `unit_decisions`,
    which holds one unit's decisions at a time (units arrive one after another in a worker),
    so a worker's memory does not grow with the corpus."""

    def __init__(self) -> None:
        super().__init__()
        self.state_dir: Path | None = None
        self._unit: str | None = None
        self._decisions: Any = None

    def summarize(self, docs: list[Document], unit: str) -> pa.Table | None:
        """A small table about one batch of a unit's documents (hashes, counts, a sample...).
        Called once per batch; the driver concatenates a unit's tables into its summary."""
        return None

    def compact_summary(self, table: pa.Table) -> pa.Table:
        """The unit's concatenated batch summaries, reduced before they are written (a sample
        drawn per batch, say, cut to the unit's share). The driver also compacts a large unit
        part way through, so compact(concat(compact(a), b)) must equal compact(concat(a, b))."""
        return table

    def plan(self, summaries: Summaries, state_dir: Path, pmap: ParallelMap) -> dict[str, Any]:
        """Decide from all summaries, once; write the decision under `state_dir` and return
        stats. Heavy plans parallelise through `pmap`."""
        raise NotImplementedError

    def load(self, state_dir: Path) -> None:
        """Read the decision `plan` wrote, in each worker, before `apply`. Steps that read more
        than their per-unit decisions extend this."""
        self.state_dir = Path(state_dir)
        self._unit = None
        self._decisions = None

    def read_decisions(self, state_dir: Path, unit: str) -> Any:
        """One unit's decisions as the step's plan wrote them (for `unit_decisions`)."""
        raise NotImplementedError

    def unit_decisions(self, unit: str) -> Any:
        if self.state_dir is None:
            raise RuntimeError(f"{self.step_name}: apply before load")
        if unit != self._unit:
            self._decisions = self.read_decisions(self.state_dir, unit)
            self._unit = unit
        return self._decisions

    def apply(self, docs: list[Document], unit: str) -> tuple[list[Document], list[Removal]]:
        return docs, []

    def report(self, state_dir: Path, out_dir: Path) -> list[str]:
        """Markdown lines for the corpus report (may also write PNGs into `out_dir`)."""
        return []

    def outcome(self, state_dir: Path, out_dir: Path) -> dict[str, Any] | None:
        """What the step achieved, measured on the written corpus, for manifest.json under the
        step's name (the mix's achieved shares); None: nothing beyond its plan's stats."""
        return None


class Sink(GlobalStep):
    """The last step of every recipe: writes the pipeline's final output for each unit itself.
    A recipe has exactly one, last; one that names none gets `DEFAULT_SINK` appended."""

    once = True
    write_label: ClassVar[str] = "write"  # the progress bar of the writing pass

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


class StepLookupError(LookupError):
    """A recipe names a step that is neither built in nor an importable plugin."""


def step_target(kind: str) -> Any:
    """The class or function a recipe's `step:` names: a built-in step's name or a plugin's
    dotted path (`my_filters:NoShouting`)."""
    from pipeline.steps import BUILTIN_STEPS

    if kind in BUILTIN_STEPS:
        return import_object(BUILTIN_STEPS[kind])
    if ":" not in kind and "." not in kind:
        raise StepLookupError(
            f"unknown step {kind!r}; built-in steps are {', '.join(sorted(BUILTIN_STEPS))}, "
            "or give a plugin as 'module:Name'"
        )
    try:
        target = import_object(kind)
    except (ImportError, AttributeError) as e:
        raise StepLookupError(f"cannot import plugin {kind!r}: {e}") from None
    if not (inspect.isclass(target) or callable(target)):
        raise StepLookupError(f"{kind!r} is not a class or function")
    if inspect.isclass(target) and not issubclass(target, Step) and not hasattr(target, "filter"):
        raise StepLookupError(f"plugin class {kind!r} has no filter(doc) method")
    return target


def build_step(kind: str, params: dict[str, Any], step_name: str) -> Step:
    """Instantiate a step from its recipe entry, its parameters checked against its signature
    first (`pipeline.config.check_params`: pydantic.ValidationError on a bad one). `sources`, a
    key every filter takes, limits it to the sources whose names match its patterns."""
    params = dict(params)
    sources = params.pop("sources", None)
    target = step_target(kind)
    step: Step
    if not inspect.isclass(target):  # a plugin function
        if params:
            raise ParamError(sorted(params)[0], "a plugin function takes no parameters")
        step = PluginFilter(target, step_name, None)
    else:
        obj = target(**check_params(target, params))
        batch = getattr(obj, "filter_batch", None)
        step = obj if isinstance(obj, Step) else PluginFilter(obj.filter, step_name, batch)
    step.step_name = step_name
    if sources is not None:
        if not isinstance(step, Filter):
            raise ParamError("sources", f"only per-document filters can be limited to sources, not {kind!r}")
        if not (isinstance(sources, list) and sources and all(isinstance(x, str) for x in sources)):
            raise ParamError("sources", f"a list of source-name patterns, e.g. [web-*], got {sources!r}")
        step.source_patterns = tuple(sources)
    return step
