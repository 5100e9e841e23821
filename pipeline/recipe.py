"""Recipes: YAML in, a validated `Recipe` out, or one clear `RecipeError` naming the key.

A user mistake (unknown key, wrong type, missing file, unknown step) must read like a
compiler error, `recipe.yaml: steps.2.min_words: Input should be a valid integer (got 'abc')`,
never a traceback. Step parameters are validated against the step's own `__init__` signature,
so a plugin author declares parameters once, as ordinary keyword arguments.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
import typing
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from pipeline.readers import FORMATS, expand_paths
from pipeline.steps import BUILTIN_STEPS
from pipeline.steps.base import Step, import_object


class RecipeError(Exception):
    """A user-facing recipe problem. The message is complete: print it, no traceback."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    path: str
    format: Literal[FORMATS] = "jsonl"  # type: ignore[valid-type]
    text_field: str = "text"
    id_field: str = "id"
    html_extractor: Literal["trafilatura", "resiliparse"] = "trafilatura"


class TokenizerSpec(_Strict):
    vocab_size: int = Field(8192, ge=257, le=2**32 - 1)
    path: str | None = None  # an existing tokenizer.json; trained on the corpus when absent
    train_sample_mb: float = Field(64, gt=0)


class ShardSpec(_Strict):
    val_fraction: float = Field(0.01, ge=0, lt=1)
    val_tokens: int | None = Field(None, ge=1)


class ErrorBudget(_Strict):
    """How much bad input a run tolerates before it stops (quarantined records / records read)."""

    max_fraction: float = Field(0.05, ge=0, le=1)


class Recipe(_Strict):
    name: str = "corpus"
    output_dir: str
    workers: int = Field(0, ge=0)  # 0: all cores
    seed: int = 0
    batch_size: int = Field(1000, ge=1)  # documents per step call inside a work unit
    error_budget: ErrorBudget = ErrorBudget()
    sources: list[SourceSpec] = Field(min_length=1)
    steps: list[dict[str, Any]] = Field(default_factory=list)
    tokenizer: TokenizerSpec = TokenizerSpec()
    shards: ShardSpec = ShardSpec()
    # Set by the loader, not by users: where the recipe lives, so plugins next to it import.
    base_dir: str = "."

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def step_entries(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, unique step name, params) for each step, the sink excluded. The mix estimates
        tokens with the tokenizer the sink will train or load, so it gets that by default."""
        out, seen = [], {}
        for entry in self.steps:
            params = dict(entry)
            kind = params.pop("step")
            if kind == "mix":
                params = {"vocab_size": self.tokenizer.vocab_size, "tokenizer": self.tokenizer.path, **params}
            short = kind.rpartition(":")[2] if ":" in kind else kind
            seen[short] = seen.get(short, 0) + 1
            out.append((kind, short if seen[short] == 1 else f"{short}#{seen[short]}", params))
        return out

    def sink_params(self) -> dict[str, Any]:
        return {
            "vocab_size": self.tokenizer.vocab_size,
            "tokenizer": self.tokenizer.path,
            "train_sample_mb": self.tokenizer.train_sample_mb,
            "val_fraction": self.shards.val_fraction,
            "val_tokens": self.shards.val_tokens,
            "seed": self.seed,
        }

    def fingerprint(self) -> str:
        """Identifies what the output depends on (workers and batch size do not change it)."""
        data = self.model_dump(exclude={"workers"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def parse_override(item: str) -> tuple[list[str], Any]:
    """`steps.2.min_words=30` -> (["steps", "2", "min_words"], 30); values are YAML scalars/lists."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise RecipeError(f"override {item!r}: expected key=value, e.g. output_dir=out/x")
    try:
        parsed = yaml.safe_load(value) if value != "" else ""
    except yaml.YAMLError as e:
        raise RecipeError(f"override {item!r}: value is not valid YAML: {e}") from None
    return key.split("."), parsed


def apply_override(data: dict[str, Any], keys: list[str], value: Any, item: str) -> None:
    node: Any = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise RecipeError(
                    f"override {item!r}: {where}: no list item {key} (the list has {len(node)})"
                )
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            raise RecipeError(f"override {item!r}: {'.'.join(keys[:depth])} is a value, not a mapping")


def _format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def raise_validation(where: str, prefix: str, err: pydantic.ValidationError) -> typing.NoReturn:
    lines = []
    for e in err.errors():
        loc = _format_loc(tuple(p for p in (prefix, *e["loc"]) if p != ""))
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        got = "" if e["type"] in ("missing", "extra_forbidden") else f" (got {e.get('input')!r})"
        lines.append(f"{where}: {loc}: {msg}{got}")
    raise RecipeError("\n".join(lines))


def _step_target(kind: str, where: str, index: int) -> Any:
    if kind in BUILTIN_STEPS:
        return import_object(BUILTIN_STEPS[kind])
    if ":" not in kind and "." not in kind:
        raise RecipeError(
            f"{where}: steps.{index}.step: unknown step {kind!r}; built-in steps are "
            f"{', '.join(sorted(BUILTIN_STEPS))}, or give a plugin as 'module:Name'"
        )
    try:
        return import_object(kind)
    except (ImportError, AttributeError) as e:
        raise RecipeError(f"{where}: steps.{index}.step: cannot import plugin {kind!r}: {e}") from None


def validate_step_params(target: Any, params: dict[str, Any], where: str, index: int) -> None:
    """Check params against the step's keyword arguments and their type hints."""
    if not inspect.isclass(target):
        if params:
            raise RecipeError(
                f"{where}: steps.{index}: plugin function takes no parameters, got {sorted(params)}"
            )
        return
    sig = inspect.signature(target.__init__)
    hints = typing.get_type_hints(target.__init__)
    fields: dict[str, Any] = {}
    for name, p in sig.parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        # Only given values are validated; an absent optional one keeps the step's own default,
        # which is never copied into the model (defaults may be immutable mappings and the like).
        required = p.default is p.empty or name in params
        fields[name] = (hints.get(name, Any), ... if required else None)
    model = pydantic.create_model(
        f"{target.__name__}Params", __config__=ConfigDict(extra="forbid", strict=False), **fields
    )
    try:
        model(**params)
    except pydantic.ValidationError as e:
        raise_validation(where, f"steps.{index}", e)


def _check_step(entry: Any, where: str, index: int) -> None:
    if not isinstance(entry, dict):
        raise RecipeError(f"{where}: steps.{index}: expected a mapping with a 'step' key, got {entry!r}")
    if "step" not in entry:
        raise RecipeError(f"{where}: steps.{index}: missing key 'step' (the step's name or plugin path)")
    kind = entry["step"]
    if not isinstance(kind, str):
        raise RecipeError(f"{where}: steps.{index}.step: expected a string, got {kind!r}")
    if kind == "tokenize":
        raise RecipeError(
            f"{where}: steps.{index}: 'tokenize' always runs last; "
            "configure it under 'tokenizer:' and 'shards:'"
        )
    target = _step_target(kind, where, index)
    if not (inspect.isclass(target) or callable(target)):
        raise RecipeError(f"{where}: steps.{index}.step: {kind!r} is not a class or function")
    if inspect.isclass(target) and not issubclass(target, Step) and not hasattr(target, "filter"):
        raise RecipeError(f"{where}: steps.{index}.step: plugin class {kind!r} has no filter(doc) method")
    validate_step_params(target, {k: v for k, v in entry.items() if k != "step"}, where, index)


def add_plugin_path(base_dir: str) -> None:
    """Plugins live next to the recipe (e.g. recipes/my_filters.py): make them importable."""
    for p in (str(Path(base_dir).resolve()), os.getcwd()):
        if p not in sys.path:
            sys.path.insert(0, p)


def load_yaml_mapping(
    path: Path, overrides: list[str] | tuple[str, ...], what: str, keys: str
) -> dict[str, Any]:
    """A YAML file that must hold a mapping, with dotted overrides applied; user errors as
    RecipeError naming the file. Shared by corpus recipes and train configs."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{where}: {what} file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RecipeError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: a {what} is a YAML mapping ({keys})")
    for item in overrides:
        keys_, value = parse_override(item)
        apply_override(data, keys_, value, item)
    return data


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    path = Path(path)
    where = str(path)
    data = load_yaml_mapping(path, overrides, "recipe", "name, output_dir, sources, steps, ...")
    if "base_dir" in data:
        raise RecipeError(f"{where}: base_dir: unknown key")
    data["base_dir"] = str(path.resolve().parent)
    try:
        recipe = Recipe(**data)
    except pydantic.ValidationError as e:
        raise_validation(where, "", e)
    add_plugin_path(recipe.base_dir)
    for i, entry in enumerate(recipe.steps):
        _check_step(entry, where, i)
    for i, src in enumerate(recipe.sources):
        try:
            expand_paths(src.path, src.format)
        except FileNotFoundError:
            raise RecipeError(f"{where}: sources.{i}.path: no input matches {src.path!r}") from None
    names = [s.name for s in recipe.sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RecipeError(f"{where}: sources: duplicate source name(s) {dupes}")
    if recipe.tokenizer.path and not Path(recipe.tokenizer.path).is_file():
        raise RecipeError(f"{where}: tokenizer.path: file not found: {recipe.tokenizer.path!r}")
    _check_mix(recipe, where)
    return recipe


def _check_mix(recipe: Recipe, where: str) -> None:
    """A mix's shares must fit the recipe's sources. Checked now: found after the steps before
    the mix have run, the fix would change the recipe, which a run cannot resume with."""
    from pipeline.steps.mix import Mix

    mixes = [(i, params) for i, (kind, _, params) in enumerate(recipe.step_entries()) if kind == "mix"]
    if len(mixes) > 1:
        raise RecipeError(f"{where}: steps.{mixes[1][0]}: only one mix step per recipe")
    for i, params in mixes:
        try:
            Mix(**params).check_sources([s.name for s in recipe.sources])
        except ValueError as e:
            raise RecipeError(f"{where}: steps.{i}.{e}") from None
