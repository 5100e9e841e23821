"""Model-based junk scoring: how well a document's words follow each other, under a reference
language model trained on curated text, and a keep rule on that score.

Rules see counts and ratios; fluent-looking junk has ordinary counts. Word salad (real words,
sentence-like punctuation, no order), spun or machine-shuffled text, and lists of unrelated
phrases pass every Gopher, C4 and FineWeb rule, and datatrove ships nothing that catches them.
cc_net scores pages by perplexity under a KenLM model of Wikipedia; grist scores the *order
gain* of `pipeline.ngram_lm` (the bigram model's log-probability of each word over its
context-free probability), which does not punish rare vocabulary, so technical prose and code
keep their place while shuffled words fall below zero.

The score lands in ``meta["junk_score"]``; removed documents have reason ``incoherent_text``.
Documents with fewer than `min_pairs` word pairs are not judged (kept): the very short kind of
junk is the rules' job. Keep rules and the global-step machinery are `pipeline.scoring`'s:
``threshold`` (the default, 0.2), ``top_fraction`` or ``none``. `model` names a model written by
`python -m pipeline train-junk-scorer` (default: the shipped one, `pipeline/assets/junk/`,
trained by `recipes/junk_scorer.yaml`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, FilePath, PositiveInt

from pipeline.ngram_lm import BigramLM
from pipeline.scoring import ScoreStep

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "assets" / "junk" / "model.npz"


class JunkScore(ScoreStep):
    """`threshold` on the mean order gain (nats per word pair); `fraction` for ``top_fraction``."""

    name = "junk_score"
    kinds = ("prose", "records")  # code orders its tokens by its own grammar: `code_quality` judges it
    meta_key = "junk_score"
    reason = "incoherent_text"
    title = "Junk scores"
    score_label = "order gain (mean log P(word | previous) - log P(word), nats)"

    def __init__(
        self,
        *,
        model: FilePath | None = None,
        keep: Literal["threshold", "top_fraction", "none"] = "threshold",
        threshold: float = 0.2,
        fraction: Annotated[float, Field(gt=0, le=1)] = 0.9,
        min_pairs: PositiveInt = 20,
    ) -> None:
        super().__init__()
        self.model_path = Path(model) if model else DEFAULT_MODEL
        self._lm: BigramLM | None = None

    @property
    def lm(self) -> BigramLM:
        """Loaded on first use: steps are rebuilt in every worker, and only `summarize` scores."""
        if self._lm is None:
            self._lm = BigramLM.load(self.model_path)
        return self._lm

    def score_texts(self, texts: list[str]) -> np.ndarray:
        gain, pairs = self.lm.order_gain(texts)
        return np.where(pairs >= self.min_pairs, gain, np.nan)

    def card_lines(self, card: dict[str, Any] | None) -> list[str]:
        if not card:
            return []
        h = card["held_out"]
        trained = ", ".join(f"{s['name']} ({s['documents']:,})" for s in card["sources"])
        return [
            f"- reference model trained on {trained}; held out, real against shuffled words: ROC-AUC "
            f"{h['roc_auc_real_vs_shuffled']}, {h['real_kept']:.1%} kept and {h['shuffled_removed']:.1%} "
            f"removed at {h['threshold']}"
        ]
