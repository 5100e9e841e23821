"""Corpus recipes: YAML in, a validated `Recipe` out, or one clear `RecipeError` naming the
file, the YAML line and the key (`pipeline.config` does the YAML, overrides and messages).

Every step is built when the recipe loads, so a bad parameter, a plugin that does not import or
a mix share naming no source is a one-line recipe error before any work is spent, never a
traceback mid-run. Step parameters are validated against the step's own `__init__` signature,
so a plugin author declares parameters once, as ordinary keyword arguments with type hints.

The last step writes the output: a `Sink` (`tokenize`, which trains or loads the tokenizer,
splits train/val and writes shards). A recipe that names no sink gets `DEFAULT_SINK` appended
with its defaults; a sink anywhere but last is an error.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import Field, model_validator

from pipeline.config import Loaded, ParamError, RecipeError, Strict, load_yaml, raise_validation, validate
from pipeline.readers import FORMATS, expand_paths
from pipeline.steps import DEFAULT_SINK
from pipeline.steps.base import Sink, Step, StepLookupError, build_step, step_target

MOVED = {
    "tokenizer": "the tokenizer settings moved into the last step: `- step: tokenize` with vocab_size, "
    "tokenizer, train_sample_mb",
    "shards": "the split settings moved into the last step: `- step: tokenize` with val_fraction, val_tokens",
    "seed": "the split seed moved into the last step: `- step: tokenize` with seed",
}


class SourceSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    path: str
    format: Literal[FORMATS] = "jsonl"  # type: ignore[valid-type]
    text_field: str = "text"
    id_field: str = "id"
    html_extractor: Literal["trafilatura", "resiliparse"] = "trafilatura"


class ErrorBudget(Strict):
    """How much bad input a run tolerates before it stops (quarantined records / records read)."""

    max_fraction: float = Field(0.05, ge=0, le=1)


def _is_sink(entry: Any) -> bool:
    try:
        target = step_target(entry["step"])
    except (StepLookupError, TypeError, KeyError):
        return False  # reported when the step is built
    return inspect.isclass(target) and issubclass(target, Sink)


class Recipe(Strict):
    name: str = "corpus"
    output_dir: str
    workers: int = Field(0, ge=0)  # 0: all cores
    # Where the work units run: this machine's process pool, or Ray tasks (`ray_address` "auto" or
    # host:port joins a running cluster; unset, a Ray instance is started here). Neither changes
    # the output, so neither is in the fingerprint: a run may resume under the other executor.
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    # Where a run whose output_dir is a URL keeps its working files (`pipeline.mirror`); default
    # ~/.cache/grist/runs/<hash of the URL>. With Ray on several machines: a shared file system.
    staging_dir: str | None = None
    batch_size: int = Field(1000, ge=1)  # documents per step call inside a work unit
    # Inputs larger than this are cut into work units of about this size where the format allows
    # (uncompressed JSONL, Parquet row groups: `pipeline.units`), so one big file keeps every
    # worker busy. 16 MB: a 200 MB file is 13 units, 7 and 6 on two workers (1.77x one worker's
    # speed; with 32 MB, 4 and 3 of 7 units gave 1.59x: `make bench`, scale_bench).
    unit_mb: float = Field(16.0, gt=0)
    error_budget: ErrorBudget = ErrorBudget()
    sources: list[SourceSpec] = Field(min_length=1)
    steps: list[dict[str, Any]] = Field(default_factory=list)
    # Set by the loader, not by users: where the recipe lives, so plugins next to it import.
    base_dir: str = "."

    @model_validator(mode="before")
    @classmethod
    def _sink_last(cls, data: Any) -> Any:
        """Append the default sink to a recipe that names none, so every recipe ends in one."""
        if isinstance(data, dict) and isinstance(data.get("steps", []), list):
            steps = list(data.get("steps", []))
            if not any(isinstance(e, dict) and _is_sink(e) for e in steps):
                data = {**data, "steps": [*steps, {"step": DEFAULT_SINK}]}
        return data

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def entries(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, unique step name, params) for each step: a kind used twice is named `c4#2`."""
        out, seen = [], {}
        for entry in self.steps:
            params = dict(entry)
            kind = params.pop("step")
            short = kind.rpartition(":")[2] if ":" in kind else kind
            seen[short] = seen.get(short, 0) + 1
            out.append((kind, short if seen[short] == 1 else f"{short}#{seen[short]}", params))
        return out

    def fingerprint(self) -> str:
        """Identifies what the output depends on: not where it is written, nor by what."""
        data = self.model_dump(exclude={"output_dir", "workers", "executor", "ray_address", "staging_dir"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class StepError(Exception):
    """Building or binding the recipe's step `index` failed with `error`."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(f"steps.{index}: {error}")
        self.index = index
        self.error = error


def build_steps(recipe: Recipe) -> list[tuple[str, Step]]:
    """The recipe's steps built and bound to the recipe around them, in order (the sink last).
    The same call checks a recipe when it loads and builds the steps in every worker."""
    add_plugin_path(recipe.base_dir)
    steps: list[tuple[str, Step]] = []
    for i, (kind, name, params) in enumerate(recipe.entries()):
        try:
            steps.append((name, build_step(kind, params, name)))
        except (StepLookupError, pydantic.ValidationError, ParamError) as e:
            raise StepError(i, e) from e
    sources = [s.name for s in recipe.sources]
    for i, (_, step) in enumerate(steps):
        try:
            step.bind(sources, [s for _, s in steps])
        except ParamError as e:
            raise StepError(i, e) from e
    return steps


def add_plugin_path(base_dir: str) -> None:
    """Plugins live next to the recipe (e.g. recipes/my_filters.py): make them importable."""
    for p in (str(Path(base_dir).resolve()), os.getcwd()):
        if p not in sys.path:
            sys.path.insert(0, p)


def check_inputs(loaded: Loaded, key: str, sources: list[SourceSpec]) -> None:
    """Every source's path or glob must match at least one input."""
    for i, src in enumerate(sources):
        try:
            expand_paths(src.path, src.format)
        except FileNotFoundError:
            raise loaded.error((key, i, "path"), f"no input matches {src.path!r}") from None


def _step_problem(loaded: Loaded, e: StepError) -> RecipeError:
    """A step that failed to build or bind, as the recipe line that set the bad value."""
    prefix = ("steps", str(e.index))
    if isinstance(e.error, pydantic.ValidationError):
        try:
            raise_validation(loaded, prefix, e.error)
        except RecipeError as err:
            return err
    if isinstance(e.error, ParamError):
        return loaded.error((*prefix, e.error.key), e.error.message)
    return loaded.error((*prefix, "step"), str(e.error))


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    path = Path(path)
    loaded = load_yaml(path, overrides, "recipe", "name, output_dir, sources, steps, ...")
    data = loaded.data
    for key, why in MOVED.items():
        if key in data:
            raise loaded.error((key,), why)
    if "base_dir" in data:
        raise loaded.error(("base_dir",), "unknown key")
    for i, entry in enumerate(data.get("steps") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), str):
            raise loaded.error(
                ("steps", i), f"expected a mapping with a 'step' key naming the step, got {entry!r}"
            )
    data["base_dir"] = str(path.resolve().parent)
    recipe: Recipe = validate(Recipe, loaded)
    try:
        steps = build_steps(recipe)
    except StepError as e:
        raise _step_problem(loaded, e) from None
    for i, (_, step) in enumerate(steps):
        if isinstance(step, Sink) and i != len(steps) - 1:
            raise loaded.error(
                ("steps", i, "step"), f"{step.name!r} writes the output: it must be the last step"
            )
        if step.once and sum(type(s) is type(step) for _, s in steps) > 1:
            first = next(j for j, (_, s) in enumerate(steps) if type(s) is type(step))
            if i != first:
                raise loaded.error(("steps", i, "step"), f"only one {step.name} step per recipe")
    check_inputs(loaded, "sources", recipe.sources)
    names = [s.name for s in recipe.sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise loaded.error(("sources",), f"duplicate source name(s) {dupes}")
    return recipe
