"""Checkpoints: one file holding everything a run needs to continue exactly, written atomically.

A checkpoint is a plain dict of tensors, numbers and strings, so `torch.load(weights_only=True)`
reads it (nothing is unpickled that could run code): model, optimizer and scheduler state, the
step, the data position, the RNG states, the config, the corpus fingerprint (tokenizer and
shards) and the tokenizer itself, so `python -m train sample CKPT` needs nothing else.

`last.pt` is rewritten at every evaluation (and every `checkpoint_every` steps); `best.pt` at
every new best validation loss, without the optimizer state it would never need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipeline.atomic import atomic_path, crash_point

FORMAT = 1
LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable or belongs to another run; the message says which."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write to a temporary sibling, fsync, rename, fsync the directory (`atomic_path`): a crash
    leaves the previous file intact."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
        crash_point("checkpoint")  # written, not yet renamed into place


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint here")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a truncated or foreign file
        raise CheckpointError(f"{path}: not a readable grist checkpoint: {e}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a grist checkpoint of format {FORMAT}")
    return state


def config_differences(saved: dict[str, Any], current: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """`dotted.key: saved -> current` for every changed value under the listed top-level keys."""
    out: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(a.keys() | b.keys()):
                walk(a.get(k), b.get(k), f"{where}.{k}")
        elif a != b:
            out.append(f"{where}: {a!r} -> {b!r}")

    for key in keys:
        walk(saved.get(key), current.get(key), key)
    return out
