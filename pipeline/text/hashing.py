"""The one polynomial hash engine: constants, power tables, span hashing, mixers.

A span of code units c_s .. c_(e-1) (bytes, code points, or word hashes one level up) hashes
as Horner's polynomial h = sum(c_k * B^(e-1-k)) modulo 2^64, then mixed (`fmix64`). Why a
polynomial: it can be computed for every span of an array at once from one prefix sum,

    P[i] = sum(c_k * B^-k for k < i)        h(s, e) = (P[e] - P[s]) * B^(e-1)

which is two gathers and a multiply per span, whatever its length. That needs B^-k, so the
base is odd (invertible modulo 2^64); uint64 arithmetic wraps, which is the modulo for free.
`polynomial` is the same thing one value at a time: the plain-Python reference.

Who uses it: `words` hashes normalised words over UTF-8 bytes (and those values are stored,
in MinHash signatures and the shipped decontamination pack, so nothing here may change
them); `stats` fingerprints whitespace tokens over code points; word and token n-grams are
the same polynomial one level up, over hashes, with `NGRAM_BASE`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MASK64 = (1 << 64) - 1
WORD_BASE = 0x9E3779B97F4A7C15  # odd: invertible modulo 2^64, so prefix sums can be divided out
NGRAM_BASE = 0xD6E8FEB86659FD93  # odd, unrelated to WORD_BASE: sequences of hashes
LENGTH_SALT = 0xA0761D6478BD642F  # odd: a span's length times this, for `with_length`
SHARED_UNITS = 1 << 22  # the power tables kept for reuse cover arrays up to this long (32 MiB each)
_U64 = np.uint64
_FMIX64 = (33, 0xFF51AFD7ED558CCD, 33, 0xC4CEB9FE1A85EC53, 33)


# ----------------------------------------------------------------------------- mixers


def fmix64(h: int) -> int:
    """MurmurHash3's 64-bit finalizer: spreads a polynomial hash (whose low bits depend only on
    the last few units) or a small integer over all 64 bits. A bijection; fmix64(0) == 0."""
    s1, m1, s2, m2, s3 = _FMIX64
    h ^= h >> s1
    h = (h * m1) & MASK64
    h ^= h >> s2
    h = (h * m2) & MASK64
    return h ^ (h >> s3)


def fmix64_array(h: np.ndarray) -> np.ndarray:
    """`fmix64` of every element of a uint64 array (a new array)."""
    s1, m1, s2, m2, s3 = (_U64(v) for v in _FMIX64)
    h = h ^ (h >> s1)
    h *= m1
    h ^= h >> s2
    h *= m2
    return h ^ (h >> s3)


# ----------------------------------------------------------------------------- reference


def polynomial(values: Iterable[int], base: int = WORD_BASE) -> int:
    """Horner's polynomial of `values` modulo 2^64, unmixed: what `SpanHasher.polynomials`
    computes for a span, one value at a time."""
    h = 0
    for v in values:
        h = (h * base + v) & MASK64
    return h


def hash_units(units: Iterable[int]) -> int:
    """64-bit hash of one sequence of code units: `SpanHasher.hashes` of it as a span."""
    return fmix64(polynomial(units))


def combine(hashes: Iterable[int]) -> int:
    """64-bit hash of a sequence of hashes (a word n-gram): the polynomial one level up, with
    `NGRAM_BASE`, unmixed. Vectorised callers compute it as `gram * NGRAM_BASE + next`."""
    return polynomial(hashes, NGRAM_BASE)


# ----------------------------------------------------------------------------- vectorised


def _power_table(base: int, size: int) -> np.ndarray:
    """[base^0, base^1, ..., base^(size-1)] mod 2^64, by doubling (log2(size) numpy calls)."""
    table = np.empty(size, _U64)
    table[0] = 1
    step = 1
    while step < size:
        table[step : 2 * step] = table[: min(step, size - step)] * _U64(pow(base, step, 1 << 64))
        step *= 2
    return table


class _Powers:
    """WORD_BASE^k and WORD_BASE^-k modulo 2^64 for k < size. The shared tables grow on demand
    (doubling, so a run of growing batches rebuilds them a few times only) up to
    `SHARED_UNITS` entries; a longer request gets tables of its own, dropped after the call,
    so that one huge document does not pin memory for the rest of the process."""

    def __init__(self) -> None:
        self.up = self.down = np.ones(1, _U64)

    def get(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(up, down) with at least `size` entries."""
        if size <= len(self.up):
            return self.up, self.down
        inverse = pow(WORD_BASE, -1, 1 << 64)
        if size > SHARED_UNITS:
            return _power_table(WORD_BASE, size), _power_table(inverse, size)
        size = min(max(size, 2 * len(self.up)), SHARED_UNITS)
        self.up, self.down = _power_table(WORD_BASE, size), _power_table(inverse, size)
        return self.up, self.down


_POWERS = _Powers()


class SpanHasher:
    """Hashes of any spans [start, end) of one array of code units, from one prefix sum
    (see the module docstring). Build it once per array and ask for as many span sets as
    needed: `stats` hashes every token and every token's core from the same prefix sum.

    `units` is an unsigned integer array (uint8 bytes, uint32 code points...)."""

    __slots__ = ("down", "prefix", "up")

    def __init__(self, units: np.ndarray) -> None:
        n = len(units)
        self.up, self.down = _POWERS.get(n)
        self.prefix = np.zeros(n + 1, _U64)
        np.cumsum(np.multiply(units, self.down[:n], dtype=_U64), out=self.prefix[1:])

    def polynomials(
        self, starts: np.ndarray, ends: np.ndarray, changes: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """`polynomial` of each span, unmixed (0 for an empty span). `changes` = (at, add):
        the spans as if `add[i]` were added to the unit at `at[i]` (`at` sorted), for a few
        changes (case folding: +32 at each capital) without a second prefix sum."""
        inner = self.prefix[ends] - self.prefix[starts]
        if changes is not None:
            at, add = changes
            acc = np.zeros(len(at) + 1, _U64)
            np.cumsum(np.multiply(add, self.down[at], dtype=_U64), out=acc[1:])
            inner += acc[np.searchsorted(at, ends)] - acc[np.searchsorted(at, starts)]
        return inner * self.up[ends - 1]

    def hashes(
        self,
        starts: np.ndarray,
        ends: np.ndarray,
        *,
        with_length: bool = False,
        changes: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """`hash_units` of each span (with `changes` as in `polynomials`). A leading zero unit
        adds nothing to the polynomial, so spans differing only by leading zeros collide:
        harmless where zero is never inside a span (`words` maps separators to 0 and never
        hashes them), not where it can be (a NUL character in a token). `with_length` mixes
        the span's length in first, which tells them apart (the values are then no longer
        `hash_units`)."""
        poly = self.polynomials(starts, ends, changes)
        if with_length:
            poly ^= (ends - starts).astype(_U64) * _U64(LENGTH_SALT)
        return fmix64_array(poly)


def hash_spans(units: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """`hash_units` of every span [starts[i], ends[i]) of `units`, all from one prefix sum."""
    return SpanHasher(units).hashes(starts, ends)
