"""Configuration files, for corpus recipes, quality recipes and train configs alike: YAML with
dotted overrides in, a validated pydantic model out, or one `RecipeError` naming the file, the
YAML line and the key.

A user mistake must read like a compiler error,
`recipes/x.yaml:14: steps.2.min_doc_words: Input should be a valid integer (got 'abc')`, never a
traceback. This module knows nothing of steps or readers, so the trainer can use it without
importing the pipeline.

Parameters of steps (built-in or plugin) are declared once, as the keyword arguments of the
step's `__init__` with type hints; a range is part of the type (`Annotated[float, Field(ge=0,
le=1)]`, or pydantic's `PositiveInt` and friends). `params_model` turns a signature into the
pydantic model that checks a recipe's values. A rule that ties several parameters together is
checked by the constructor, which raises `ParamError` naming the parameter.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

Key = tuple[str, ...]

UnitFloat = Annotated[float, Field(ge=0, le=1)]
"""A fraction or probability: 0 to 1 inclusive."""


class RecipeError(Exception):
    """A user-facing configuration problem. The message is complete: print it, no traceback."""


class ParamError(ValueError):
    """A step's parameter breaks a rule the type cannot say (it depends on another parameter):
    raised by the step's constructor, reported with the recipe line of `key`."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class Strict(BaseModel):
    """Unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class Loaded:
    """A YAML mapping with overrides applied, and where each key came from, for error messages."""

    where: str
    data: dict[str, Any]
    lines: dict[Key, int] = field(default_factory=dict)  # 1-based line of each key in the file
    overrides: dict[Key, str] = field(default_factory=dict)  # keys set on the command line

    def locate(self, key: Key | list[Any]) -> str:
        """`file:line` of the deepest part of `key` the file or an override set."""
        parts = tuple(str(k) for k in key)
        for depth in range(len(parts), 0, -1):
            prefix = parts[:depth]
            if prefix in self.overrides:
                return f"{self.where} (override {self.overrides[prefix]!r})"
            if prefix in self.lines:
                return f"{self.where}:{self.lines[prefix]}"
        return self.where

    def error(self, key: Key | list[Any], message: str) -> RecipeError:
        dotted = ".".join(str(k) for k in key)
        return RecipeError(
            f"{self.locate(key)}: {dotted}: {message}" if dotted else f"{self.where}: {message}"
        )


def _key_lines(node: yaml.Node, prefix: Key, out: dict[Key, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            key = (*prefix, str(key_node.value))
            out[key] = key_node.start_mark.line + 1
            _key_lines(value, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key = (*prefix, str(i))
            out[key] = item.start_mark.line + 1
            _key_lines(item, key, out)


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


def load_yaml(path: Path, overrides: list[str] | tuple[str, ...], what: str, keys: str) -> Loaded:
    """A YAML file that must hold a mapping, with dotted overrides applied; user errors as
    RecipeError naming the file."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{where}: {what} file not found") from None
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as e:
        raise RecipeError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: a {what} is a YAML mapping ({keys})")
    loaded = Loaded(where, data)
    if node is not None:
        _key_lines(node, (), loaded.lines)
    for item in overrides:
        keys_, value = parse_override(item)
        apply_override(data, keys_, value, item)
        loaded.overrides[tuple(keys_)] = item
    return loaded


def raise_validation(loaded: Loaded, prefix: Key, err: pydantic.ValidationError) -> typing.NoReturn:
    """Every problem pydantic found, one line each, with its file line and dotted key."""
    by_key: dict[Key, list[Any]] = {}
    for e in err.errors():
        # A union (`Literal["default"] | FilePath | None`) reports once per member, the member's
        # tag in the location: one message per key, the member that says the most.
        parts = [str(p) for p in e["loc"]]
        cut = next((i for i, p in enumerate(parts) if "[" in p), len(parts))
        by_key.setdefault((*prefix, *parts[:cut]), []).append(e)
    lines = []
    for key, errors in by_key.items():
        telling = [e for e in errors if e["type"] not in _UNION_NOISE] or errors
        e = telling[-1]
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        got = "" if e["type"] in ("missing", "extra_forbidden") else f" (got {e.get('input')!r})"
        lines.append(str(loaded.error(key, msg + got)))
    raise RecipeError("\n".join(lines))


_UNION_NOISE = {"literal_error", "none_required", "is_instance_of"}


def validate(model: type[pydantic.BaseModel], loaded: Loaded, prefix: Key = ()) -> Any:
    """`model` built from the loaded mapping (at `prefix`), or a RecipeError."""
    data: Any = loaded.data
    for k in prefix:
        data = data[int(k)] if isinstance(data, list) else data[k]
    try:
        return model(**data)
    except pydantic.ValidationError as e:
        raise_validation(loaded, prefix, e)


@functools.cache
def params_model(target: Any) -> type[BaseModel]:
    """The pydantic model of a class's keyword parameters, from its `__init__` signature and type
    hints (ranges included). A parameter given no value keeps the class's own default, which is
    never copied into the model (defaults may be immutable mappings and the like)."""
    init = target.__init__
    sig = inspect.signature(init)
    hints = typing.get_type_hints(init, include_extras=True)
    fields: dict[str, Any] = {}
    for name, p in sig.parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        fields[name] = (hints.get(name, Any), ... if p.default is p.empty else None)
    return pydantic.create_model(
        f"{target.__name__}Params",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )


def check_params(target: Any, params: dict[str, Any]) -> dict[str, Any]:
    """`params` checked against `target`'s signature (pydantic.ValidationError on a bad one),
    converted as the hints say (an int where a float is asked becomes a float)."""
    checked = params_model(target)(**params)
    return {name: getattr(checked, name) for name in params}


def parse_any_order(
    parser: argparse.ArgumentParser, commands: argparse._SubParsersAction, argv: list[str]
) -> argparse.Namespace:
    """A command line whose options may come anywhere: `run R --restart k=v` as well as
    `run --restart R k=v` (argparse alone ends a command's positionals at its first option, so
    the overrides after an option were refused). The command's own parser reads its arguments
    intermixed; help and unknown commands go through `parser` as before."""
    if argv and argv[0] in commands.choices:
        args = commands.choices[argv[0]].parse_intermixed_args(argv[1:])
        setattr(args, commands.dest, argv[0])
        return args
    return parser.parse_args(argv)
