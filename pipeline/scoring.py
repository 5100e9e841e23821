"""Steps that score every document with a model and keep it by a rule on the score.

The score needs the whole corpus before a cut can be set (keep the best fraction), and the
report shows the whole corpus' histogram in every mode, so a scoring step is a global step:
`summarize` (fused into the pass before) scores each batch and records (id, score, a pareto
draw), `plan` sets the cut and writes each unit's decisions, `apply` looks its documents up.
The price of the stage boundary is writing and reading the surviving documents once more; the
summary is about 30 bytes a document.

Keep rules, on scores where higher is better:

* ``threshold``: keep score >= `threshold`;
* ``top_fraction``: keep the best `fraction` of the corpus (DCLM keeps the top 10 %): the cut is
  the score of the ceil(fraction x n)-th best document and every document scoring at least that
  is kept, so ties at the cut never depend on order;
* ``pareto``: GPT-3's noisy rule, keep when ``np.random.pareto(alpha) > 1 - score`` (for scores
  in 0..1), which keeps most good documents and some poor ones; the draw is seeded by `seed`
  and the document id, so a rerun keeps the same documents;
* ``none``: annotate only.

A document the model cannot judge (a score of NaN: too little text) is kept and left out of
the cut and the histogram. Each document's score lands in ``meta[meta_key]``; removed documents
carry it in the removal's `detail`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from pipeline.atomic import atomic_path, read_json, write_json
from pipeline.document import Document, Removal
from pipeline.steps.base import GlobalStep, ParallelMap, Summaries

STATS_FILE = "scores.json"
BINS = 50  # of the report's histogram, spanning the scores (and the cut): a model's scores may be bunched


class ScoreStep(GlobalStep):
    """Base of the scoring steps. A subclass declares its parameters (`keep`, `threshold`,
    `fraction`, and for the pareto rule `alpha` and `seed`), sets `model_path` and implements
    `score_texts`."""

    meta_key: ClassVar[str]
    reason: ClassVar[str]
    title: ClassVar[str]
    score_label: ClassVar[str] = "score"
    keep: str
    threshold: float
    fraction: float
    alpha: float = 9.0  # a step without the pareto rule need not declare these
    seed: int = 0
    model_path: Path

    def score_texts(self, texts: list[str]) -> np.ndarray:
        """One score per text, higher is better; NaN where the model cannot judge."""
        raise NotImplementedError

    def card_lines(self, card: dict[str, Any] | None) -> list[str]:
        """Report lines about the model, from its card (`card.json` beside it), if any."""
        return []

    def _pareto_draw(self, doc_id: str) -> float:
        return float(
            np.random.default_rng([self.seed, xxhash.xxh3_64_intdigest(doc_id.encode())]).pareto(self.alpha)
        )

    def summarize(self, docs: list[Document], unit: str) -> pa.Table:
        # Rounded once, here, so that the stored score, the cut and the decision agree exactly.
        judged = [i for i, d in enumerate(docs) if self.judges(d)]  # the others score NaN: kept
        scores = np.full(len(docs), np.nan)
        if judged:
            scores[judged] = np.round(self.score_texts([docs[i].text for i in judged]), 6)
        columns: dict[str, Any] = {"id": [d.id for d in docs], "score": scores}
        if self.keep == "pareto":
            columns["draw"] = [self._pareto_draw(d.id) for d in docs]
        return pa.table(columns)

    def _cut(self, scores: np.ndarray) -> float | None:
        scores = scores[np.isfinite(scores)]
        if self.keep == "threshold":
            return self.threshold
        if self.keep == "top_fraction" and len(scores):
            k = math.ceil(self.fraction * len(scores))
            return float(np.partition(scores, len(scores) - k)[len(scores) - k])
        return None

    def _kept(self, table: pa.Table, cut: float | None) -> np.ndarray:
        """Documents the score cannot judge (NaN: too little text) are kept."""
        scores = table["score"].to_numpy()
        unjudged = ~np.isfinite(scores)
        if self.keep == "pareto":
            return unjudged | (table["draw"].to_numpy() > 1 - scores)
        if cut is None:
            return np.ones(len(scores), dtype=bool)
        return unjudged | (scores >= cut)

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
        judged = scores[np.isfinite(scores)]
        edges = np.histogram_bin_edges(judged if cut is None else np.r_[judged, cut], BINS)
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
            "not_judged": int(len(scores) - len(judged)),
            "kept": int(hist_kept.sum()) + int(len(scores) - len(judged)),
            "removed": int(hist_removed.sum()),
            "mean_score": round(float(judged.mean()), 4) if len(judged) else None,
        }
        card = self.model_path.with_name("card.json")
        write_json(
            state / STATS_FILE,
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
            score = score if math.isfinite(score) else None
            doc.meta[self.meta_key] = score
            if keep:
                kept.append(doc)
            else:
                removed.append(Removal(doc, self.step_name, self.reason, detail={self.meta_key: score}))
        return kept, removed

    def report(self, state_dir: Path, out_dir: Path) -> list[str]:
        path = Path(state_dir) / STATS_FILE
        if not path.exists():
            return []
        stats = read_json(path)
        rule = {
            "threshold": f"keep score >= {self.threshold}",
            "top_fraction": f"keep the top {self.fraction:.1%}: score >= {stats['cut']}",
            "pareto": f"keep when np.random.pareto({self.alpha}) > 1 - score (GPT-3), seed {self.seed}",
            "none": "annotate only",
        }[stats["keep"]]
        unjudged = stats.get("not_judged", 0)
        lines = [
            f"## {self.title} ({self.step_name})",
            "",
            f"- model `{stats['model']}`; rule: {rule}",
            f"- {stats['kept']:,} kept, {stats['removed']:,} removed of {stats['documents']:,} documents; "
            f"mean score {stats['mean_score']}"
            + (f"; {unjudged:,} too short to judge, kept" if unjudged else ""),
            *self.card_lines(stats["card"]),
        ]
        if stats["documents"] > unjudged:
            png = f"{self.step_name.replace('#', '_')}_scores.png"
            plot_scores(stats, out_dir / png, f"{self.step_name}: {rule}", self.score_label)
            lines += ["", f"![{self.title.lower()}]({png})"]
        return lines + [""]


def plot_scores(stats: dict[str, Any], path: Path, title: str, label: str = "score") -> None:
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
    ax.set_xlabel(label)
    ax.set_ylabel("documents")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
