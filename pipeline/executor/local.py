"""The embedded default: a pool of worker processes on this machine."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor:
    """N processes (fork), one work unit per task. With one worker, or one unit, it runs in
    process: no pickling, and a debugger or profiler sees everything."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def map(self, fn: Callable[[T], R], items: Sequence[T], desc: str) -> Iterator[R]:
        bar = tqdm(total=len(items), desc=desc, unit="unit", leave=False, dynamic_ncols=True)
        try:
            if self.workers == 1 or len(items) <= 1:
                for item in items:
                    yield fn(item)
                    bar.update()
                return
            ctx = mp.get_context("fork")
            with ctx.Pool(min(self.workers, len(items)), maxtasksperchild=None) as pool:
                for result in pool.imap_unordered(fn, items, chunksize=1):
                    yield result
                    bar.update()
        finally:
            bar.close()
