"""Executors run a stage's work units in parallel. Steps never see them.

The whole interface is `map`: apply a picklable function to independent work units and
yield results as they finish. Committing, resuming and ordering live in `pipeline.run`, so the
Ray executor is only its own `map` (`ray.remote` tasks and `ray.wait`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    workers: int

    def map(self, fn: Callable[[T], R], items: Sequence[T], desc: str) -> Iterator[R]:
        """Yield fn(item) for every item, in completion order, with progress shown."""
        ...


EXECUTORS = ("local", "ray")


def make_executor(kind: str, workers: int, address: str | None = None) -> Executor:
    """`local`: a process pool of `workers`; `ray`: Ray tasks on the cluster at `address` (None:
    a Ray instance started on this machine with `workers` CPUs)."""
    if kind == "local":
        from pipeline.executor.local import LocalExecutor

        return LocalExecutor(workers)
    if kind == "ray":
        from pipeline.executor.ray import RayExecutor

        return RayExecutor(workers, address)
    raise ValueError(f"unknown executor {kind!r} (available: {', '.join(EXECUTORS)})")
