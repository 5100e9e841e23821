"""Near-duplicate removal with MinHash LSH: the step. The work is in `pipeline/minhash/`.

Per unit (`summarize`, fused into the pass before): distinct word n-gram hashes and a
datasketch-equal MinHash signature of every document, plus what the keep rule needs.
Once (`plan`): LSH buckets, candidate pairs, optional verification by true Jaccard, union-find
and the keep rule, all as parallel phases bounded by `memory_budget_mb`.
Per unit (`apply`): documents of a cluster other than its kept member are removed with reason
`near_duplicate`, `duplicate_of` = the kept document's id, and the removal's `detail` = cluster
id and estimated Jaccard to the kept document; `<state>/drops/` holds the same records.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, PositiveInt

from pipeline.atomic import read_json
from pipeline.config import ParamError
from pipeline.document import EXCERPT_CHARS, Document, Removal
from pipeline.minhash.config import Keep, MinHashConfig
from pipeline.minhash.keep import read_unit_drops
from pipeline.minhash.plan import run_plan
from pipeline.minhash.report import report_lines
from pipeline.minhash.shingles import shingle_batch
from pipeline.minhash.signatures import optimal_bands, s_curve_threshold, signatures
from pipeline.steps.base import GlobalStep, ParallelMap, Summaries

REASON = "near_duplicate"
DEFAULT_BANDS, DEFAULT_ROWS, DEFAULT_THRESHOLD = 20, 5, 0.7  # chosen on the bench's dev split (below)


class MinHashDedup(GlobalStep):
    """Parameters:

    ngram: words per shingle. num_perm: permutations computed (datasketch's `num_perm`).
    bands, rows: LSH bands x rows per band, bands * rows <= num_perm; default 20 x 5 (below).
      Leave both unset and give `threshold` to take them from datasketch's optimal-parameter
      routine for that threshold instead.
    threshold: target Jaccard similarity; also the verification cut. Default 0.7 with the
      default bands. Given bands and rows without it, the cut is where a pair becomes a
      candidate with probability 1/2, (1/bands)^(1/rows) (0.72 for 14 x 8, 0.55 for 20 x 5).
    seed, scheme: permutations as datasketch.MinHash(seed=..., scheme=...) makes them.
    verify: check every candidate pair's true Jaccard on the shingle sets and drop those below
      the cut. On by default: LSH alone also pairs documents well under the threshold (14 x 8
      makes 21 % of pairs at Jaccard 0.6 candidates), and each such pair deletes a document
      that is not a near-duplicate. The price: summaries carry every shingle set (about 0.7x
      the text), and a shuffle of the candidates' sets.
    keep: which member of a cluster survives: "quality" (highest `doc.meta[quality_key]`, then
      longest, then smallest id), "longest" (then smallest id), "id" (smallest id). With
      verification, later members go only as near-duplicates (Jaccard >= the cut) of a kept
      member; one that resembles none is kept as well (`pipeline/minhash/keep.py`).
    memory_budget_mb: what one plan task may use; above it work is partitioned on disk.
    index: a previous run's saved index (`<its state dir>/index`): its documents take part in
      clusters and are kept, only this corpus's duplicates go. save_index: save this run's.

    Where grist departs from datatrove / FineWeb (14 bands x 8 rows of 112, no verification,
    one document kept per union-find cluster), and why, measured by `python -m
    bench.minhash_bench --sections accuracy,end_to_end` (planted near-duplicates of the shared
    raw data: dev/test by document, 3 plantings of ~1,380 real documents per split):
    * 20 x 5 instead of 14 x 8. 14 x 8 makes a pair at Jaccard 0.8 a candidate with
      probability 0.92; 20 x 5 makes it 0.9996. The price is candidates at lower Jaccard
      (0.47 at 0.5 against 0.05): 43 % more candidate pairs to verify here. Verification,
      not banding, decides what is a near-duplicate, so banding is chosen for recall (on dev:
      18 x 6 and 22 x 5 did as well on the 0.8-0.9 pairs). datasketch's `_optimal_param`
      (equal false-positive and false-negative weights) gives 12 x 9 for 0.7: fewer
      candidates, fewer found, the right trade only without verification.
    * Verification by true Jaccard >= 0.7, close to 14 x 8's implicit 0.72, so what counts as
      a near-duplicate hardly moves; 20 x 5's s-curve midpoint (0.55) would be far lower.
    * A document is removed only as a near-duplicate of one that is kept. FineWeb removes every
      cluster member but one; with 20 x 5 candidates, chains (A~B, B~C) then removed C as a
      copy of A it barely resembles (precision 98.4 % in an earlier run).
    Test split (dev), 14 x 8 with one kept per cluster -> 20 x 5, cut 0.7 and this keep rule:
      planted pairs at true Jaccard 0.8-0.9 of which at most one is kept: 99.27 % (97.81 %)
        -> 99.88 % (99.63 %); all pairs >= 0.8: 99.83 % (99.49 %) -> 99.97 % (99.92 %);
      removals whose kept twin has true Jaccard >= 0.5: 100 % (99.98 %) -> 100 % (99.98 %);
      removals whose twin is of the same planted family or >= the cut: 99.42 % (99.22 %)
        -> 100 % (100 %).
    End to end (normalize > exact_dedup > minhash_dedup, 108 MB, 2 workers, same session):
    11.3 -> 9.9 MB/s; the keep rule's exact Jaccards cost 0.8 s on a corpus where three
    documents in four are near-duplicates.
    """

    name = "minhash_dedup"

    def __init__(
        self,
        *,
        ngram: PositiveInt = 5,
        num_perm: PositiveInt = 112,
        bands: PositiveInt | None = None,
        rows: PositiveInt | None = None,
        threshold: Annotated[float, Field(gt=0, lt=1)] | None = None,
        seed: int = 1,
        scheme: Literal["affine32", "legacy"] = "affine32",
        verify: bool = True,
        keep: Keep = "quality",
        quality_key: str = "quality_score",
        memory_budget_mb: PositiveInt = 1024,
        index: str | None = None,
        save_index: bool = False,
    ) -> None:
        super().__init__()
        if (bands is None) != (rows is None):
            raise ParamError("bands" if bands is None else "rows", "give both bands and rows, or neither")
        if bands is None or rows is None:
            if threshold is None:
                bands, rows, threshold = DEFAULT_BANDS, DEFAULT_ROWS, DEFAULT_THRESHOLD
            else:
                bands, rows = optimal_bands(threshold, num_perm)
        if bands * rows > num_perm:
            raise ParamError("bands", f"bands x rows = {bands} x {rows} is more than num_perm={num_perm}")
        self.config = MinHashConfig(
            ngram=ngram,
            num_perm=num_perm,
            bands=bands,
            rows=rows,
            seed=seed,
            scheme=scheme,
            verify=verify,
            jaccard_threshold=threshold if threshold is not None else s_curve_threshold(bands, rows),
            keep=keep,
            quality_key=quality_key,
            memory_budget=memory_budget_mb << 20,
        )

    def _quality(self, doc: Document) -> float | None:
        value = doc.meta.get(self.config.quality_key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        return None

    def summarize(self, docs: list[Document], unit: str) -> pa.Table:
        cfg = self.config
        sets = shingle_batch([d.text for d in docs], cfg.ngram)
        sigs = signatures(sets, cfg.num_perm, cfg.seed, cfg.scheme)
        columns: dict[str, Any] = {
            "id": [d.id for d in docs],
            "chars": [len(d.text) for d in docs],
            "quality": [self._quality(d) for d in docs],
            "n_shingles": sets.counts().astype(np.int32),
            "sig": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(4 * cfg.num_perm), len(docs), [None, pa.py_buffer(sigs.astype("<u4").tobytes())]
            ),
            "excerpt": [d.text[:EXCERPT_CHARS] for d in docs],
        }
        if cfg.verify:
            columns["shingles"] = sets.to_arrow()
        return pa.table(columns, schema=cfg.summary_schema())

    def plan(self, summaries: Summaries, state_dir: Path, pmap: ParallelMap) -> dict[str, Any]:
        return run_plan(self.config, summaries.files, Path(state_dir), pmap, self.index, self.save_index)

    def read_decisions(self, state_dir: Path, unit: str) -> dict[str, tuple[str, int, float]]:
        """id -> (kept twin, cluster, similarity) of the unit's documents to remove."""
        t = read_unit_drops(state_dir / "drops", unit).to_pydict()
        return {
            i: (d, c, s)
            for i, d, c, s in zip(t["id"], t["duplicate_of"], t["cluster"], t["similarity"], strict=True)
        }

    def apply(self, docs: list[Document], unit: str) -> tuple[list[Document], list[Removal]]:
        drops = self.unit_decisions(unit)
        kept, removed = [], []
        for doc in docs:
            hit = drops.get(doc.id)
            if hit is None:
                kept.append(doc)
                continue
            twin, cluster, similarity = hit
            detail = {"cluster": cluster, "similarity": round(similarity, 3)}
            removed.append(Removal(doc, self.step_name, REASON, duplicate_of=twin, detail=detail))
        return kept, removed

    def report(self, state_dir: Path, out_dir: Path) -> list[str]:
        summary = Path(state_dir) / "summary.json"
        if not summary.exists():
            return []
        return report_lines(
            read_json(summary), read_json(Path(state_dir) / "examples.json"), Path(out_dir), self.step_name
        )
