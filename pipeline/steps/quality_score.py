"""Model-based quality: each document's probability of being high quality, and a keep rule.

The score is `QualityModel.scores` (a fastText classifier, `pipeline.quality`; by default the
shipped model) and lands in ``meta["quality_score"]``, where `minhash_dedup`'s keep rule looks
for it. Keep rules:

* ``threshold``: keep score >= `threshold`;
* ``top_fraction``: keep the best `fraction` of the corpus (DCLM keeps the top 10 %): the cut is
  the score of the ceil(fraction x n)-th best document and every document scoring at least that
  is kept, so ties at the cut never depend on order;
* ``pareto``: GPT-3's noisy rule, keep when ``np.random.pareto(alpha) > 1 - score``, which keeps
  most good documents and some poor ones; the draw is seeded by `seed` and the document id,
  so a rerun keeps the same documents (a generator per document: about 16 us each);
* ``none``: annotate only.

Why a global step: the top fraction needs every score before the cut is known, and the report
shows the whole corpus's score histogram in every mode. Each document is scored once:
`summarize` (fused into the pass before) scores the batch and records (id, score, pareto draw),
`plan` computes the cut and writes each unit's decisions, `apply` looks its documents up. The
price of the stage boundary is writing and reading the documents once more; the summary is
about 30 bytes a document, and `plan` holds 8 bytes of score per document of the corpus.

Removed documents have reason ``low_quality`` and carry their score in the removal's `detail`
and in their metadata. The report shows the histogram of scores, kept and removed, with the cut.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from pydantic import Field, FilePath, NonNegativeInt, PositiveFloat

from pipeline.atomic import atomic_path, read_json, write_json
from pipeline.config import UnitFloat
from pipeline.document import Document, Removal
from pipeline.quality import DEFAULT_MODEL, QualityModel
from pipeline.steps.base import GlobalStep, ParallelMap, Summaries

META_KEY = "quality_score"
REASON = "low_quality"
BINS = 50  # of the report's histogram, spanning the scores (and the cut): a model's scores may be bunched


class QualityScore(GlobalStep):
    """See the module docstring. `model`: a model written by `python -m pipeline train-quality`
    (default: the shipped one). `threshold` is read by ``keep: threshold``, `fraction` by
    ``keep: top_fraction``, `alpha` and `seed` by ``keep: pareto`` (GPT-3 used alpha 9)."""

    name = "quality_score"

    def __init__(
        self,
        *,
        model: FilePath | None = None,
        keep: Literal["threshold", "top_fraction", "pareto", "none"] = "none",
        threshold: UnitFloat = 0.5,
        fraction: Annotated[float, Field(gt=0, le=1)] = 0.1,
        alpha: PositiveFloat = 9.0,
        seed: NonNegativeInt = 0,
    ) -> None:
        super().__init__()
        self.model_path = Path(model) if model else DEFAULT_MODEL
        self._model: QualityModel | None = None

    @property
    def classifier(self) -> QualityModel:
        """Loaded on first use: steps are rebuilt in every worker, and only `summarize` scores."""
        if self._model is None:
            self._model = QualityModel.load(self.model_path)
        return self._model

    def _pareto_draw(self, doc_id: str) -> float:
        return float(
            np.random.default_rng([self.seed, xxhash.xxh3_64_intdigest(doc_id.encode())]).pareto(self.alpha)
        )

    def summarize(self, docs: list[Document], unit: str) -> pa.Table:
        # Rounded once, here, so that the stored score, the cut and the decision agree exactly.
        scores = np.round(self.classifier.scores([d.text for d in docs]), 6)
        columns: dict[str, Any] = {"id": [d.id for d in docs], "score": scores}
        if self.keep == "pareto":
            columns["draw"] = [self._pareto_draw(d.id) for d in docs]
        return pa.table(columns)

    def _cut(self, scores: np.ndarray) -> float | None:
        if self.keep == "threshold":
            return self.threshold
        if self.keep == "top_fraction" and len(scores):
            k = math.ceil(self.fraction * len(scores))
            return float(np.partition(scores, len(scores) - k)[len(scores) - k])
        return None

    def _kept(self, table: pa.Table, cut: float | None) -> np.ndarray:
        scores = table["score"].to_numpy()
        if self.keep == "pareto":
            return table["draw"].to_numpy() > 1 - scores
        if cut is None:
            return np.ones(len(scores), dtype=bool)
        return scores >= cut

    def plan(self, summaries: Summaries, state_dir: Path, pmap: ParallelMap) -> dict[str, Any]:
        state = Path(state_dir)
        # Scores of the whole corpus first (the cut needs them all), then one unit at a time.
        scores = np.concatenate(
            [
                np.zeros(0),
                *(pq.read_table(p, columns=["score"])["score"].to_numpy() for _, p in summaries.files),
            ]
        )
        cut = self._cut(scores)
        edges = np.histogram_bin_edges(scores if cut is None else np.r_[scores, cut], BINS)
        hist_kept = np.zeros(BINS, dtype=np.int64)
        hist_removed = np.zeros(BINS, dtype=np.int64)
        for unit, path in summaries.files:
            table = pq.read_table(path)
            kept = self._kept(table, cut)
            hist_kept += np.histogram(table["score"].to_numpy()[kept], edges)[0]
            hist_removed += np.histogram(table["score"].to_numpy()[~kept], edges)[0]
            with atomic_path(state / "decisions" / f"{unit}.parquet") as tmp:
                pq.write_table(pa.table({"id": table["id"], "score": table["score"], "keep": kept}), tmp)
        stats = {
            "model": str(self.model_path),
            "keep": self.keep,
            "cut": cut,
            "documents": len(scores),
            "kept": int(hist_kept.sum()),
            "removed": int(hist_removed.sum()),
            "mean_score": round(float(scores.mean()), 4) if len(scores) else None,
        }
        card = self.model_path.with_name("card.json")
        write_json(
            state / "quality.json",
            {
                **stats,
                "histogram": {
                    "edges": edges.tolist(),
                    "kept": hist_kept.tolist(),
                    "removed": hist_removed.tolist(),
                },
                "card": read_json(card) if card.exists() else None,
            },
        )
        return stats

    def read_decisions(self, state_dir: Path, unit: str) -> dict[str, tuple[float, bool]]:
        """id -> (score, keep) of the unit's documents."""
        t = pq.read_table(state_dir / "decisions" / f"{unit}.parquet").to_pydict()
        return dict(zip(t["id"], zip(t["score"], t["keep"], strict=True), strict=True))

    def apply(self, docs: list[Document], unit: str) -> tuple[list[Document], list[Removal]]:
        decisions = self.unit_decisions(unit)
        kept, removed = [], []
        for doc in docs:
            score, keep = decisions[doc.id]
            doc.meta[META_KEY] = score
            if keep:
                kept.append(doc)
            else:
                removed.append(Removal(doc, self.step_name, REASON, detail={META_KEY: score}))
        return kept, removed

    def report(self, state_dir: Path, out_dir: Path) -> list[str]:
        path = Path(state_dir) / "quality.json"
        if not path.exists():
            return []
        stats = read_json(path)
        rule = {
            "threshold": f"keep score >= {self.threshold}",
            "top_fraction": f"keep the top {self.fraction:.1%}: score >= {stats['cut']}",
            "pareto": f"keep when np.random.pareto({self.alpha}) > 1 - score (GPT-3), seed {self.seed}",
            "none": "annotate only",
        }[stats["keep"]]
        lines = [
            f"## Quality scores ({self.step_name})",
            "",
            f"- model `{stats['model']}`; rule: {rule}",
            f"- {stats['kept']:,} kept, {stats['removed']:,} removed of {stats['documents']:,} documents; "
            f"mean score {stats['mean_score']}",
        ]
        card = stats["card"]
        if card:
            trained = ", ".join(f"{s['class']} {s['name']} ({s['train']})" for s in card["sources"])
            m = card["held_out"]
            lines.append(
                f"- trained on {trained}; held-out precision {m['precision']}, recall {m['recall']}, "
                f"F1 {m['f1']}, ROC-AUC {m['roc_auc']}"
            )
        if stats["documents"]:
            png = f"{self.step_name.replace('#', '_')}_scores.png"
            plot_scores(stats, out_dir / png, f"{self.step_name}: {rule}")
            lines += ["", f"![quality scores]({png})"]
        return lines + [""]


def plot_scores(stats: dict[str, Any], path: Path, title: str) -> None:
    """Stacked histogram of kept and removed documents' scores, with the cut as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = stats["histogram"]
    edges = np.asarray(hist["edges"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(
        [edges[:-1], edges[:-1]],
        bins=edges,
        weights=[hist["kept"], hist["removed"]],
        stacked=True,
        color=["#4c72b0", "#dd8452"],
        label=["kept", "removed"],
    )
    if stats["cut"] is not None:
        ax.axvline(stats["cut"], color="black", linestyle="--", label=f"cut {stats['cut']:.3f}")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("quality score (probability of the high-quality label)")
    ax.set_ylabel("documents")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
