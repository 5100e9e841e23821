"""Kill a command at chosen crash points (`pipeline.atomic.crash_point`), one after another,
each run resuming what the previous one left: recovery tested at every kind of point, the same
points every time, however fast or busy the machine is."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import ROOT


def crash_at_each(cmd: list[str], points: list[str]) -> None:
    """Run `cmd` once per crash point, SIGKILLed there; a point the run never reaches fails."""
    for point in points:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, "GRIST_CRASH": point},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        _, err = proc.communicate()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers of a killed main process die with it
        assert proc.returncode != 0, f"the run never reached crash point {point!r}"
        assert proc.returncode == -signal.SIGKILL or "BrokenProcessPool" in err, err[-2000:]


def leftovers(out: Path) -> list[str]:
    """Temporary files a finished run must not leave behind."""
    return [p.name for p in out.rglob(".tmp-*")]
