"""MinHash signatures of shingle sets, equal to datasketch's, and LSH band keys.

datasketch defines the permutations: grist draws them from the same `RandomState(seed)`
stream in the same order (a test compares them with a `datasketch.MinHash`'s), without
importing datasketch, whose import (scipy) costs each worker process most of a second:

* `affine32` (datasketch >= 2.0 default): the 32-bit shingle hash is pre-mixed with the
  MurmurHash3 32-bit finalizer, then permuted as `a*h + b mod 2^32` (`a` odd: a bijection).
* `legacy` (datasketch < 2.0): `((a*h + b) mod 2^64) mod (2^61 - 1)`, truncated to 32 bits.
  The first reduction is numpy's uint64 wrap-around, which datasketch also has.

The hot loop applies every permutation to a block of shingles in one broadcast, laid out
permutations x shingles so that the per-document minimum (`minimum.reduceat` over runs of one
document's shingles) reads contiguous memory.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

from pipeline.minhash.shingles import ShingleSets
from pipeline.text.hashing import WORD_BASE, fmix64_array

Scheme = Literal["affine32", "legacy"]
EMPTY = np.uint32(0xFFFFFFFF)  # datasketch's initial value: a document without shingles
_MERSENNE = np.uint64((1 << 61) - 1)
_BLOCK = 4096  # shingles per broadcast: permutations x block x 4 bytes stays in L2 cache


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int, scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's (a, b) permutation parameters, as column vectors for broadcasting."""
    gen = np.random.RandomState(seed)
    if scheme == "affine32":  # a odd: a bijection of the 32-bit range
        a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    else:  # legacy: one (a, b) draw per permutation, in turn
        pairs = [
            (gen.randint(1, _MERSENNE, dtype=np.uint64), gen.randint(0, _MERSENNE, dtype=np.uint64))
            for _ in range(num_perm)
        ]
        a, b = (np.array(column, np.uint64) for column in zip(*pairs, strict=True))
    return a[:, None], b[:, None]


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signatures(sets: ShingleSets, num_perm: int, seed: int, scheme: Scheme) -> np.ndarray:
    """(documents, num_perm) uint32: each document's MinHash; all EMPTY without shingles."""
    a, b = permutations(num_perm, seed, scheme)
    n_docs = len(sets)
    out = np.full((num_perm, n_docs), EMPTY, np.uint32)
    hashes = sets.hashes
    counts = sets.counts()
    has = np.flatnonzero(counts > 0)
    if len(has) == 0:
        return out.T.copy()
    doc_of = np.repeat(np.arange(n_docs), counts)
    starts = sets.offsets[has]
    with np.errstate(over="ignore"):
        mixed = _fmix32(hashes.copy()) if scheme == "affine32" else hashes.astype(np.uint64)
        for lo in range(0, len(hashes), _BLOCK):
            hi = min(lo + _BLOCK, len(hashes))
            seg = starts[(starts > lo) & (starts < hi)] - lo
            seg = np.concatenate([[0], seg]).astype(np.intp)
            block = mixed[lo:hi]
            if scheme == "affine32":
                phv = a * block + b
            else:
                phv = ((a * block + b) % _MERSENNE) & np.uint64(0xFFFFFFFF)
            mins = np.minimum.reduceat(phv, seg, axis=1).astype(np.uint32, copy=False)
            docs = doc_of[lo + seg]  # distinct within a block, so plain fancy assignment is safe
            out[:, docs] = np.minimum(out[:, docs], mins)
    return out.T.copy()


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents, bands) uint64: a 64-bit hash of each band's `rows` values. Two documents
    share a key when the band is equal (or, with probability 2^-64, by accident; the optional
    verification catches that like any other false candidate). Each key is
    `text.hashing.hash_units` of (band + 1, the band's values), for all documents at once."""
    n = len(sigs)
    keys = np.empty((n, bands), np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = np.full(n, np.uint64(band + 1))
            for r in range(rows):
                h = h * np.uint64(WORD_BASE) + sigs[:, band * rows + r].astype(np.uint64)
            keys[:, band] = fmix64_array(h)
    return keys


def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising false positives + false negatives around `threshold`, by
    datasketch's own routine (equal weights, as `MinHashLSH` defaults to)."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.5, 0.5)


def s_curve_threshold(bands: int, rows: int) -> float:
    """The Jaccard at which a pair becomes a candidate with probability ~1/2: (1/b)^(1/r)."""
    return (1.0 / bands) ** (1.0 / rows)
