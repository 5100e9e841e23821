"""The floors a bench promises, checked where they are printed: each line carries its verdict,
and a bench that missed any exits non-zero (`finish`), so `make bench` fails instead of
printing a miss that nobody reads."""

from __future__ import annotations

import sys

_MISSED: list[str] = []


def floor(name: str, value: float, *, at_least: float | None = None, at_most: float | None = None) -> str:
    """`[floor >= x: ok]` (or `MISSED`) for the value; a miss is remembered for `finish`."""
    ok = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
    bound = f">= {at_least:g}" if at_least is not None else f"<= {at_most:g}"
    if not ok:
        _MISSED.append(f"{name}: {value:.4g}, floor {bound}")
    return f"[floor {bound}: {'ok' if ok else 'MISSED'}]"


def finish() -> None:
    """Exit 1, listing them, when any floor was missed."""
    if _MISSED:
        print("\nfloors missed:\n  " + "\n  ".join(_MISSED), file=sys.stderr)
        sys.exit(1)
