"""The embedded default: a pool of worker processes on this machine."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor:
    """N processes (fork), one work unit per task. With one worker, or one unit, it runs in
    process: no pickling, and a debugger or profiler sees everything.

    A worker that dies (the OOM killer, a SIGKILL) fails the run at once with BrokenProcessPool,
    which concurrent.futures reports and multiprocessing.Pool does not (it waits forever for the
    lost task); the units committed so far stay committed, and a rerun resumes from them."""

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
            with ProcessPoolExecutor(min(self.workers, len(items)), mp_context=ctx) as pool:
                futures = [pool.submit(fn, item) for item in items]
                try:
                    for future in as_completed(futures):
                        yield future.result()
                        bar.update()
                finally:
                    for future in futures:
                        future.cancel()
        finally:
            bar.close()
