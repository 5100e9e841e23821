"""Scaling: train several model sizes at growing compute, fit L(C) = A·C^−α (+ E), predict the
next point, train it, and compare.

`python -m train scaling CONFIG [key=value ...] [--preset cpu|gpu] [--irreducible]` runs a
preset's sizes through the experiment runner (train/experiment.py: kept, resumable), each with
its own compute budget C (FLOPs: the model's FLOPs per token, 6N plus attention, times tokens).
Budgets grow by `growth` from size to size and the sizes grow with them, so that parameters and
tokens both grow along the series, as on the compute-efficient frontier (Hoffmann et al. 2022).
The fit is made in log space (least squares on log L), reported with A, α and R² (on log L), and
used to predict the loss at 4× the largest compute; that point (the preset's next size) is then
trained and its measured loss printed against the prediction. `scaling.png` shows the points,
the fit, its extrapolation and the predicted and measured fourth-fold point on log-log axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.config import load_config
from train.data import Corpus
from train.experiment import ROOT, Experiment, ExperimentError, Run, run_experiment, write_report
from train.model import GPT
from train.plots import plot_scaling

EXTRAPOLATION = 4.0  # the point predicted then measured: this many times the largest fitted compute


@dataclass(frozen=True)
class PowerLaw:
    """L(C) = E + A·C^−α, fitted to `n` points; `r2` is on log L."""

    a: float
    alpha: float
    e: float
    r2: float
    n: int

    def __call__(self, compute: float | np.ndarray) -> float | np.ndarray:
        return self.e + self.a * np.power(compute, -self.alpha)

    def describe(self) -> str:
        law = f"L(C) = {self.a:.4g} · C^-{self.alpha:.4f}" + (f" + {self.e:.4f}" if self.e else "")
        return f"{law}  (R² {self.r2:.4f} on log L, {self.n} points)"


def fit_power_law(compute: Sequence[float], loss: Sequence[float], *, irreducible: bool = False) -> PowerLaw:
    """Least squares in log space. Without an irreducible term, a line through (log C, log L).
    With one, E is scanned over [0, min L) and for each the line through (log C, log(L − E)) is
    fitted; the E whose curve fits log L best is kept (a grid of 2,000 steps: E to 0.05 % of
    the smallest loss, well inside what a handful of noisy points can tell)."""
    c, y = np.log(np.asarray(compute, float)), np.log(np.asarray(loss, float))
    if len(c) < 2 + irreducible:
        raise ValueError(
            f"a power law{' with E' if irreducible else ''} needs {2 + irreducible} points or more"
        )

    def line(e: float) -> tuple[float, float, float]:
        slope, intercept = np.polyfit(c, np.log(np.exp(y) - e), 1)
        predicted = np.log(e + np.exp(intercept + slope * c))
        return float(np.sum((y - predicted) ** 2)), float(np.exp(intercept)), float(-slope)

    grid = np.linspace(0, float(np.exp(y).min()), 2000, endpoint=False) if irreducible else np.zeros(1)
    sse, a, alpha, e = min((*line(e), e) for e in grid)
    total = float(np.sum((y - y.mean()) ** 2))
    return PowerLaw(a, alpha, float(e), 1 - sse / total if total else 1.0, len(c))


@dataclass(frozen=True)
class Size:
    n_layer: int
    n_head: int
    n_embd: int

    @property
    def id(self) -> str:
        return f"{self.n_layer}x{self.n_embd}"

    def overrides(self) -> list[str]:
        return [f"model.n_layer={self.n_layer}", f"model.n_head={self.n_head}", f"model.n_embd={self.n_embd}"]


@dataclass(frozen=True)
class Preset:
    """Sizes to fit, each given `base · growth^i` FLOPs, and the size trained at 4× the last."""

    sizes: tuple[Size, ...]
    next_size: Size
    base_compute: float
    growth: float


PRESETS = {
    # recipes/train_small.yaml on the default corpus, a 2-core CPU: budgets 5e11 ... 1.35e13
    # FLOPs (280k to 1.4M tokens), then 5.4e13 (2.8M tokens, just under one epoch of the train
    # split); 8 minutes in all (measured), 5 1/2 of them for the last point. At half these budgets the
    # smallest model ended above the corpus' unigram entropy, and the points bent away from a line.
    "cpu": Preset(
        sizes=(Size(1, 2, 32), Size(1, 2, 64), Size(2, 4, 96), Size(2, 4, 128)),
        next_size=Size(3, 4, 192),
        base_compute=5e11,
        growth=3.0,
    ),
    # The same series a GPU can afford, not yet run on one: it needs a corpus of billions of tokens
    # (corpus=...), a GPU-sized batch (batch_tokens=262144 micro_batch=32) and a learning rate for
    # models this size (a sweep's), as overrides.
    "gpu": Preset(
        sizes=(Size(4, 4, 256), Size(6, 6, 384), Size(8, 8, 512), Size(12, 12, 768)),
        next_size=Size(16, 16, 1024),
        base_compute=1e16,
        growth=4.0,
    ),
}


def scaling_runs(config: Path, overrides: list[str], preset: Preset) -> list[Run]:
    """One run per size, the fitted ones then the 4× one, each with whole optimizer steps
    adding up to (just under) its compute budget and evaluated at its start and end only."""
    base = load_config(config, overrides)
    vocab = Corpus(base.corpus).vocab_size
    budgets = [preset.base_compute * preset.growth**i for i in range(len(preset.sizes))]
    runs = []
    for size, budget in [
        *zip(preset.sizes, budgets, strict=True),
        (preset.next_size, EXTRAPOLATION * budgets[-1]),
    ]:
        model = base.model.model_copy(update=vars(size) | {"vocab_size": vocab})
        per_step = GPT(model).flops_per_token() * base.batch_tokens
        steps = max(1, int(budget // per_step))
        items = [*size.overrides(), f"max_steps={steps}", f"eval.every={steps}"]
        runs.append(
            Run(f"{size.id}-C{budget:.2e}", tuple(items), {"size": size.id, "compute": str(steps * per_step)})
        )
    return runs


def run_scaling(
    config: Path,
    overrides: list[str],
    *,
    preset: str = "cpu",
    name: str = "scaling",
    root: Path = ROOT,
    parallel: int = 0,
    restart: bool = False,
    irreducible: bool = False,
) -> dict[str, Any]:
    """Train the preset's sizes, fit, predict 4×, train it, report; return the fit and both losses."""
    if preset not in PRESETS:
        raise ExperimentError(f"--preset {preset}: not one of {', '.join(PRESETS)}")
    runs = scaling_runs(config, overrides, PRESETS[preset])
    exp = Experiment(name, config, tuple(overrides), runs[:-1], root, parallel)
    fitted = run_experiment(exp, restart=restart)
    if any(r["status"] != "finished" for r in fitted):
        raise ExperimentError(f"{exp.dir}: a run diverged, no law to fit (results in {exp.dir}/runs/)")
    law = fit_power_law(
        [r["compute"] for r in fitted], [r["final_val_loss"] for r in fitted], irreducible=irreducible
    )
    target = float(runs[-1].params["compute"])  # whole steps: just under EXTRAPOLATION x the last budget
    predicted = float(law(target))
    ratio = target / fitted[-1]["compute"]
    print(f"fit: {law.describe()}")
    print(f"predicted at {ratio:.2f}x the largest compute ({target:.3g} FLOPs): {predicted:.4f}; training it")
    exp.runs = runs
    results = run_experiment(exp)
    measured = results[-1]["final_val_loss"]
    error = measured - predicted
    verdict = f"predicted {predicted:.4f}, measured {measured:.4f} ({error:+.4f}, {error / measured:+.1%})"
    plot_scaling(
        [r["compute"] for r in fitted],
        [r["final_val_loss"] for r in fitted],
        law,
        (target, predicted, measured),
        [r["id"] for r in results],
        exp.dir / "scaling.png",
    )
    fit = {"A": law.a, "alpha": law.alpha, "E": law.e, "r2": law.r2, "points": law.n}
    write_report(
        exp,
        results,
        columns={"compute (FLOPs)": lambda r: f"{r['compute']:.3g}"},
        extra={"fit": fit, "predicted": predicted, "measured": measured, "compute_predicted": target},
        notes=[
            f"Fit on the first {law.n} runs: {law.describe()}.",
            "",
            f"At {ratio:.2f}× the largest fitted compute ({results[-1]['id']}): {verdict}.",
        ],
    )
    print(f"{results[-1]['id']}: {verdict}")
    print(f"results: {exp.dir}/ (results.md, results.json, curves.png, scaling.png)")
    return {"fit": law, "predicted": predicted, "measured": measured}
