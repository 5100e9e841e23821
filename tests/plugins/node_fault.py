"""A recipe plugin that takes down the Ray node it runs on, once: a worker node lost mid-run, at
a fixed point of the pipeline (the first document this step sees), not at a time.

The test's head node has no CPUs, so every task runs on a worker node, and the first task of
this step runs on one whichever Ray picks. It claims `marker` (O_EXCL: only one task ever does),
writes its node's id there, then kills the node's raylet (its parent) and itself, which takes
every worker of that node with them. On the head node (`head` holds its id: a process forked
from the driver, as the local executor's workers are) the step keeps every document unchanged."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from pipeline.document import Document


class KillNodeOnce:
    def __init__(self, head: str, marker: str) -> None:
        self.head = head
        self.marker = marker

    def filter(self, doc: Document) -> bool:
        try:
            import ray

            node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
        except ImportError:
            node = None
        if node is None or node == Path(self.head).read_text().strip():
            return True
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return True
        os.write(fd, node.encode())
        os.close(fd)
        os.kill(os.getppid(), signal.SIGKILL)  # the raylet: the node is gone
        os.kill(os.getpid(), signal.SIGKILL)
        return True
