"""What runs show people: a run's loss_curves.png and the summary table printed at the end; an
experiment's curves of every run, a sweep's U, a scaling fit on log-log axes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter  # noqa: E402

from pipeline.atomic import atomic_path  # noqa: E402


def plot_curves(history: list[dict[str, Any]], path: str | Path, title: str) -> None:
    """Training loss (solid) and validation loss (dashed) against tokens seen, the best
    validation point marked, and the learning rate in a panel beneath."""
    train = [r for r in history if r["kind"] == "train"]
    evals = [r for r in history if r["kind"] == "eval"]
    fig, (ax, ax_lr) = plt.subplots(
        2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}, layout="constrained"
    )

    def curve(rows: list[dict[str, Any]], key: str, style: str, color: str, label: str, **kw: Any) -> None:
        ax.plot([r["tokens"] for r in rows], [r[key] for r in rows], style, color=color, label=label, **kw)

    curve(train, "loss", "-", "C0", "train")
    curve(evals, "val_loss", "--o", "C1", "validation", ms=3)
    if evals:
        best = min(evals, key=lambda r: r["val_loss"])
        curve([best], "val_loss", "*", "C3", f"best {best['val_loss']:.3f}", ms=12)
    flagged = [r for r in evals if r["overfitting"]]
    if flagged:
        curve(flagged, "val_loss", "x", "C3", "overfitting", ms=8)
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(f"grist train: {title}")
    ax.grid(alpha=0.3)
    ax.legend()
    ax_lr.plot([r["tokens"] for r in train], [r["lr"] for r in train], color="C2")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("tokens seen")
    ax_lr.grid(alpha=0.3)
    _save(fig, path)


def print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"grist train: {s['name']}", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    rows = [
        ("parameters", f"{s['params']:,}"),
        ("FLOPs per token (6N + attention)", f"{s['flops_per_token']:,}"),
        ("steps", f"{s['steps']:,}"),
        ("tokens seen", f"{s['tokens']:,} ({s['epochs']:.2f} epochs)"),
        ("training time", f"{s['train_seconds']:.1f} s"),
        ("tokens per second", f"{s['tokens_per_second']:,.0f}"),
        ("final validation loss", f"{s['final_val_loss']:.4f} ({s['final_val_bpb']:.4f} bits/byte)"),
        (
            "validation loss by source",
            "\n".join(f"{k} {v:.4f}" for k, v in s["final_val_loss_by_source"].items()),
        ),
        ("best validation loss", f"{s['best_val_loss']:.4f} at step {s['best_step']}"),
        ("unigram entropy of the corpus", f"{s['unigram_entropy']:.4f}"),
        ("stopped", s["stop_reason"]),
        ("outputs", f"{s['out_dir']}/ (best.pt, last.pt, metrics.jsonl, loss_curves.png)"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)


def _save(fig: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def plot_runs(results: list[dict[str, Any]], path: str | Path, title: str) -> None:
    """Every run of an experiment in one plot: training loss solid, validation dashed, one colour
    per run. The loss axis stops a little above the untrained model's loss, so that one diverged
    run does not flatten everyone else's curve."""
    fig, ax = plt.subplots(figsize=(9, 5.5), layout="constrained")
    many = len(results) > 10
    for i, r in enumerate(results):
        color = plt.get_cmap("viridis")(i / (len(results) - 1)) if many else f"C{i}"
        train, val = r["curves"]["train"], r["curves"]["val"]
        label = r["id"] + ("" if r["status"] == "finished" else f" ({r['status']})")
        if train:
            ax.plot(*zip(*train, strict=True), "-", color=color, lw=1.2, label=label)
        if val:
            ax.plot(*zip(*val, strict=True), "--o", color=color, ms=3, lw=1, label=None if train else label)
    starts = [r["curves"]["val"][0][1] for r in results if r["curves"]["val"]]
    if starts:
        ax.set_ylim(top=max(starts) + 0.5)
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(f"grist {title}: training loss solid, validation dashed")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


LABEL_COLORS = {"too low": "C0", "near best": "C2", "too high": "C1", "diverged": "C3"}


def plot_sweep(
    values: list[float], losses: list[float], labels: list[str], key: str, path: str | Path, ceiling: float
) -> None:
    """Final validation loss against the swept value (the U of a learning-rate sweep), each point
    coloured by its label; diverged runs sit at `ceiling` (the untrained loss) marked x. A log
    axis when the values are positive and span a decade or more."""
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    shown = [min(loss, ceiling) if math.isfinite(loss) else ceiling for loss in losses]
    ax.plot(values, shown, "-", color="0.7", zorder=1)
    for label, color in LABEL_COLORS.items():
        points = [(v, y) for v, y, lab in zip(values, shown, labels, strict=True) if lab == label]
        if points:
            marker = "x" if label == "diverged" else "o"
            ax.scatter(*zip(*points, strict=True), color=color, marker=marker, s=50, label=label, zorder=2)
    if min(values) > 0 and max(values) >= 10 * min(values):
        ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel("final validation loss (nats/token)")
    ax.set_title(f"grist sweep: final validation loss against {key}")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    _save(fig, path)


def plot_scaling(
    compute: list[float],
    loss: list[float],
    law: Any,
    check: tuple[float, float, float],
    names: list[str],
    path: str | Path,
) -> None:
    """Final validation loss against training compute on log-log axes: the fitted points, the
    fitted law (solid) and its extrapolation (dashed) out to the checked point, whose predicted
    (hollow) and measured (star) losses are both shown. `law` is a callable of compute."""
    target, predicted, measured = check
    fig, ax = plt.subplots(figsize=(7.5, 5), layout="constrained")
    inside = np.geomspace(min(compute), max(compute), 50)
    beyond = np.geomspace(max(compute), target, 20)
    ax.plot(inside, law(inside), "-", color="C0", label=law.describe())
    ax.plot(beyond, law(beyond), "--", color="C0", label="extrapolation")
    ax.scatter(compute, loss, color="C0", zorder=3, label="trained, fitted")
    for c, y, name in zip(compute, loss, names, strict=False):
        ax.annotate(name.split("-")[0], (c, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.scatter(
        [target],
        [predicted],
        facecolors="none",
        edgecolors="C1",
        s=80,
        zorder=3,
        label=f"predicted {predicted:.3f}",
    )
    ax.scatter(
        [target], [measured], marker="*", color="C3", s=140, zorder=4, label=f"measured {measured:.3f}"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis_formatter(FormatStrFormatter("%.1f"))  # losses span less than a decade: plain numbers
    ax.set_xlabel("training compute C (FLOPs: 6N + attention per token, times tokens)")
    ax.set_ylabel("final validation loss (nats/token)")
    ax.set_title("grist scaling: L(C) = A·C^-α fitted in log space")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_ablation(
    summary: dict[str, dict[str, list[float]]], sets: list[str], path: str | Path, title: str
) -> None:
    """Bits per byte of every variant on every eval set: one group of bars per eval set, one bar
    per variant, the seed spread as an error bar. The axis starts near the lowest bar, since the
    differences between variants are small next to the losses themselves."""
    fig, ax = plt.subplots(
        figsize=(max(7, 1.6 * len(sets) * max(1, len(summary) / 4)), 4.8), layout="constrained"
    )
    width = 0.8 / len(summary)
    x = np.arange(len(sets))
    for i, (variant, row) in enumerate(summary.items()):
        means = [row[s][0] for s in sets]
        spreads = [row[s][1] for s in sets]
        ax.bar(x + (i - (len(summary) - 1) / 2) * width, means, width, yerr=spreads, capsize=3, label=variant)
    low = min(row[s][0] - row[s][1] for row in summary.values() for s in sets)
    high = max(row[s][0] + row[s][1] for row in summary.values() for s in sets)
    ax.set_ylim(bottom=low * 0.95, top=high * 1.03)
    ax.set_xticks(x, sets)
    ax.set_ylabel("bits per byte (lower is better)")
    ax.set_title(f"grist {title}")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, ncol=2)
    _save(fig, path)
