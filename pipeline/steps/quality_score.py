"""Model-based quality: each document's probability of being high quality, and a keep rule.

The score is `QualityModel.scores` (a fastText classifier, `pipeline.quality`; by default the
shipped model) and lands in ``meta["quality_score"]``, where `minhash_dedup`'s keep rule looks
for it. Keep rules (`threshold`, `top_fraction`, `pareto`, `none`) and the global-step
machinery are `pipeline.scoring`'s; removed documents have reason ``low_quality``. The report
shows the histogram of scores, kept and removed, with the cut, and the model card's figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, FilePath, NonNegativeInt, PositiveFloat

from pipeline.config import UnitFloat
from pipeline.quality import DEFAULT_MODEL, QualityModel
from pipeline.scoring import ScoreStep


class QualityScore(ScoreStep):
    """`model`: a model written by `python -m pipeline train-quality` (default: the shipped
    one). `threshold` is read by ``keep: threshold``, `fraction` by ``keep: top_fraction``,
    `alpha` and `seed` by ``keep: pareto`` (GPT-3 used alpha 9)."""

    name = "quality_score"
    meta_key = "quality_score"
    reason = "low_quality"
    title = "Quality scores"
    score_label = "quality score (probability of the high-quality label)"

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

    def score_texts(self, texts: list[str]) -> np.ndarray:
        return self.classifier.scores(texts)

    def card_lines(self, card: dict[str, Any] | None) -> list[str]:
        if not card:
            return []
        trained = ", ".join(f"{s['class']} {s['name']} ({s['train']})" for s in card["sources"])
        m = card["held_out"]
        return [
            f"- trained on {trained}; held-out precision {m['precision']}, recall {m['recall']}, "
            f"F1 {m['f1']}, ROC-AUC {m['roc_auc']}"
        ]
