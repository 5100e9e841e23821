"""Scale-out: work units as Ray tasks, on a running cluster or on one started for the run.

Ray schedules, places and retries; grist keeps what it already has, the atomic commit of each
unit and its marker (`pipeline.run`), so a task Ray re-runs after a lost worker or node redoes
exactly that unit and overwrites whatever the lost attempt left. Every node must see the same
files at the same paths (a shared file system, or object storage for the inputs and
`output_dir`), which a cluster on one machine does by construction; tasks run from the
driver's working directory so that a recipe's relative paths mean what they mean to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")


def _run_in(cwd: str, fn: Callable[[T], R], item: T) -> R:
    """`fn(item)` from the driver's working directory, where the recipe's relative paths (inputs,
    `output_dir`, plugins beside it) point: a Ray worker starts wherever its node was started."""
    os.chdir(cwd)
    return fn(item)


# A task lost with its worker process or node is re-run this many times before the run fails.
# Exceptions raised by grist's own code are not retried: they would fail again.
TASK_RETRIES = 3


class RayExecutor:
    """One Ray task per work unit, one CPU each; results yielded as they finish.

    `address` None starts a Ray instance on this machine with `workers` CPUs (stopped when the
    process exits); "auto" or "host:port" joins a running cluster, whose CPUs set the
    parallelism. A process already connected to Ray (a test's cluster, a notebook) is used as is."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        import ray

        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map(self, fn: Callable[[T], R], items: Sequence[T], desc: str) -> Iterator[R]:
        import ray

        task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False)(_run_in)
        fn_ref, cwd = ray.put(fn), os.getcwd()
        pending = [task.remote(cwd, fn_ref, item) for item in items]
        bar = tqdm(total=len(items), desc=f"{desc} [ray]", unit="unit", leave=False, dynamic_ncols=True)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
                bar.update()
        finally:
            for ref in pending:  # a failed unit fails the run: do not leave the others running
                ray.cancel(ref, force=True)
            bar.close()
