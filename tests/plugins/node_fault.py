"""A recipe plugin that takes down the Ray node it runs on, once: a worker node lost mid-run, at
a fixed point of the pipeline (the first document this step sees on that node), not at a time.

The test writes the target node's id to `target`; the first task of this step that runs there
claims `marker` (O_EXCL: only one ever does), then kills the node's raylet (its parent) and
itself, which takes every worker of that node with them. Anywhere else, or with the local
executor, the step keeps every document unchanged."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from pipeline.document import Document


class KillNodeOnce:
    def __init__(self, target: str, marker: str) -> None:
        self.target = target
        self.marker = marker

    def filter(self, doc: Document) -> bool:
        try:
            import ray

            node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
        except ImportError:
            node = None
        if node is None or node != Path(self.target).read_text().strip():
            return True
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return True
        os.kill(os.getppid(), signal.SIGKILL)  # the raylet: the node is gone
        os.kill(os.getpid(), signal.SIGKILL)
        return True
