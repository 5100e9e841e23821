"""text.hashing: the one span-hash engine equals its plain-Python reference on real text, for
bytes and code points, whether the array fits the shared power tables or gets its own."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.text import hashing
from pipeline.text.hashing import SpanHasher, hash_units, polynomial
from tests.conftest import load_sample


def spans(n: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random spans of an array of n units, empty ones and the whole array included."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n + 1, count)
    ends = np.minimum(starts + rng.integers(0, 40, count), n)
    return np.append(starts, [0, 0, n]), np.append(ends, [0, n, n])


@pytest.mark.parametrize("shared_units", [hashing.SHARED_UNITS, 64])
def test_span_hashes_equal_the_reference(monkeypatch: pytest.MonkeyPatch, shared_units: int) -> None:
    # 64: every array below is longer than the shared tables, so it gets tables of its own.
    monkeypatch.setattr(hashing, "SHARED_UNITS", shared_units)
    monkeypatch.setattr(hashing, "_POWERS", hashing._Powers())
    texts = [d.text[:3000] for d in load_sample("multilingual_udhr.jsonl.gz")]
    text = max(texts, key=lambda t: len(t.encode("utf-8")) - len(t))  # the most non-ASCII
    for units in (
        np.frombuffer(text.encode("utf-8"), np.uint8),
        np.frombuffer(text.encode("utf-32-le"), np.uint32),
    ):
        starts, ends = spans(len(units), 300, seed=len(units))
        hasher = SpanHasher(units)
        values = units.tolist()
        expected = [polynomial(values[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
        assert hasher.polynomials(starts, ends).tolist() == expected
        assert hasher.hashes(starts, ends).tolist() == [hashing.fmix64(h) for h in expected]
        assert hashing.hash_spans(units, starts[:5], ends[:5]).tolist() == [
            hash_units(values[s:e]) for s, e in zip(starts[:5].tolist(), ends[:5].tolist(), strict=True)
        ]
    assert len(hashing._POWERS.up) <= shared_units  # longer requests got tables of their own


def test_changed_spans_hash_as_the_changed_array() -> None:
    """`changes` (case folding's +32 at each capital) equals hashing the folded text itself."""
    text = load_sample("web_dclm_quality_labeled.jsonl.gz")[0].text
    units = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    capitals = np.flatnonzero((units >= ord("A")) & (units <= ord("Z")))
    assert len(capitals) > 10
    folded = np.frombuffer(text.translate({c: c + 32 for c in range(65, 91)}).encode("utf-32-le"), np.uint32)
    starts, ends = spans(len(units), 300, seed=7)
    changes = (capitals, np.full(len(capitals), 32, np.uint64))
    changed = SpanHasher(units).hashes(starts, ends, with_length=True, changes=changes)
    assert changed.tolist() == SpanHasher(folded).hashes(starts, ends, with_length=True).tolist()
    assert changed.tolist() != SpanHasher(units).hashes(starts, ends, with_length=True).tolist()


def test_length_tells_leading_zeros_apart() -> None:
    units = np.array([0, 7, 7, 0, 0, 7], np.uint32)  # "\0a", "a" and "\0\0a" as code points
    starts, ends = np.array([0, 1, 3]), np.array([2, 2, 6])
    assert len(set(SpanHasher(units).hashes(starts, ends).tolist())) == 1
    assert len(set(SpanHasher(units).hashes(starts, ends, with_length=True).tolist())) == 3
