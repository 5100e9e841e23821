"""What a run shows people: loss_curves.png and the summary table printed at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


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
