"""What a run did, for people: manifest.json, report.md, funnel.png and a console table.

The funnel answers the first question anyone asks of a corpus build: how much survived each
step, and what was removed, why, with real examples to judge the rule by.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.atomic import atomic_path, write_json
from pipeline.counters import add_tally, merge_step_counters, sum_reasons
from pipeline.recipe import Recipe
from pipeline.run import get_pipeline, plan_dir
from pipeline.steps.base import GlobalStep
from pipeline.storage import as_path, identity, is_url
from pipeline.units import input_files

if TYPE_CHECKING:
    from rich.console import Console

VERSIONED = (
    "grist",
    "numpy",
    "pyarrow",
    "tokenizers",
    "tiktoken",
    "fasttext-numpy2-wheel",
    "datasketch",
    "trafilatura",
    "resiliparse",
)


def sum_numeric(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum nested dicts of numbers leaf by leaf (per-unit sink stats into run totals)."""
    total: dict[str, Any] = {}
    for item in items:
        for k, v in item.items():
            if isinstance(v, dict):
                total[k] = sum_numeric([total.get(k, {}), v])
            elif isinstance(v, int | float) and not isinstance(v, bool):
                total[k] = total.get(k, 0) + v
    return total


def file_fingerprint(path: str) -> dict[str, Any]:
    """An input's path, size and SHA-256; a remote object's size and the store's own checksum
    (reading terabytes back to hash them is not a report's job)."""
    if is_url(path):
        return identity(as_path(path))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"path": path, "bytes": Path(path).stat().st_size, "sha256": h.hexdigest()}


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def funnel_rows(result: Any) -> list[dict[str, Any]]:
    """One row per step in run order: docs/chars in and out, removals by reason."""
    rows = []
    read = [r["read"] for r in result.stage_results[0]]
    rows.append(
        {
            "step": "read",
            "docs_in": sum(r["docs"] + r["bad"] for r in read),
            "docs_out": sum(r["docs"] for r in read),
            "chars_in": None,
            "chars_out": sum(r["chars"] for r in read),
            "removed": sum_reasons(result.stage_results[0], "bad"),
        }
    )
    for stage in result.stage_results:
        for step, c in merge_step_counters(stage).items():
            rows.append({"step": step, **c})
    return rows


def source_rows(recipe: Recipe, result: Any, units: list[Any]) -> dict[str, dict[str, Any]]:
    """Per source: documents read, kept (reaching the sink, before any mix copies) and removed
    by step and reason; a corpus builder is judged by what it keeps of each kind of input."""
    source_of = {u.id: recipe.sources[u.source].name for u in units}
    rows: dict[str, dict[str, Any]] = {
        s.name: {"read": 0, "bad": 0, "kept": 0, "removed": {}} for s in recipe.sources
    }
    for r in result.stage_results[0]:
        rows[source_of[r["unit"]]]["read"] += r["read"]["docs"]
        rows[source_of[r["unit"]]]["bad"] += r["read"]["bad"]
    for stage in result.stage_results:
        for r in stage:
            row = rows[source_of[r["unit"]]]
            for step, counts in r["steps"].items():
                add_tally(row["removed"], {f"{step}:{k}": v for k, v in counts["removed"].items()})
    for r in result.stage_results[-1]:
        rows[source_of[r["unit"]]]["kept"] += r["docs_out"]
    return rows


def top_examples(out: Path, step: str, reason: str, k: int = 2) -> list[tuple[str, str]]:
    folder = out / "removed" / step.replace("#", "_")
    found: list[tuple[str, str]] = []
    for p in sorted(folder.glob("*.parquet")):
        t = pq.read_table(p, columns=["id", "reason", "excerpt"])
        t = t.filter(pc.equal(t["reason"], reason))
        for i, ex in zip(t["id"].to_pylist(), t["excerpt"].to_pylist(), strict=True):
            found.append((i, ex))
            if len(found) >= k:
                return found
    return found


def plot_funnel(rows: list[dict[str, Any]], chars_per_token: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    docs = [r["docs_out"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.5 * len(rows) + 2), sharey=True)
    axes[0].barh(steps, docs, color="#4c72b0")
    axes[0].set_xlabel("documents kept after step")
    if chars_per_token:
        tokens = [r["chars_out"] / chars_per_token / 1e6 for r in rows]
        axes[1].barh(steps, tokens, color="#dd8452")
        axes[1].set_xlabel(f"tokens kept, millions (at {chars_per_token:.2f} chars/token)")
    else:
        axes[1].barh(steps, [r["chars_out"] / 1e6 for r in rows], color="#dd8452")
        axes[1].set_xlabel("characters kept, millions")
    for ax, vals in zip(axes, (docs, None), strict=True):
        if vals:
            for y, v in enumerate(vals):
                ax.text(v, y, f" {v:,}", va="center", fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle("grist corpus funnel")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_outputs(recipe: Recipe, result: Any, units: list[Any]) -> dict[str, Any]:
    """Write manifest.json, report.md and funnel.png; return the manifest."""
    out: Path = result.out
    rows = funnel_rows(result)
    sink = sum_numeric([r["stats"] for r in result.sink_results])
    final_chars = rows[-1]["chars_out"]
    tokens = sink.get("train", {}).get("tokens", 0) + sink.get("val", {}).get("tokens", 0)
    tokens -= sink.get("copies", {}).get("tokens", 0)  # the funnel's characters count each document once
    cpt = final_chars / tokens if tokens and final_chars else None
    steps = get_pipeline(recipe).steps
    by_source = source_rows(recipe, result, units)
    outcomes = {
        name: step.outcome(plan_dir(out, name), out)
        for name, step in steps.items()
        if isinstance(step, GlobalStep)
    }
    manifest = {
        "name": recipe.name,
        "recipe": recipe.model_dump(),
        "fingerprint": recipe.fingerprint(),
        "inputs": [file_fingerprint(p) for p in input_files(units)],
        "versions": versions(),
        "steps": rows,
        "plans": result.plan_stats,
        "shards": sink,
        "finalize": result.sink_stats,
        "chars_per_token": cpt,
        "seconds": round(result.seconds, 2),
        "sources": by_source,
        **{name: outcome for name, outcome in outcomes.items() if outcome is not None},
    }
    write_json(out / "manifest.json", manifest)
    plot_funnel(rows, cpt, out / "funnel.png")
    lines = [
        f"# Corpus report: {recipe.name}",
        "",
        f"Built in {result.seconds:.1f} s from {len(units)} input units. ![funnel](funnel.png)",
        "",
        "| step | docs in | docs out | removed | chars out | top reasons |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        removed = r["docs_in"] - r["docs_out"]
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(r["removed"].items(), key=lambda kv: -kv[1])[:4])
        lines.append(
            f"| {r['step']} | {r['docs_in']:,} | {r['docs_out']:,} | {removed:,} | "
            f"{r['chars_out']:,} | {reasons} |"
        )
    lines += [
        "",
        "## Per source",
        "",
        "| source | read | kept | kept % | removed by (step:reason) |",
        "|---|---:|---:|---:|---|",
    ]
    for name, src in by_source.items():
        top = sorted(src["removed"].items(), key=lambda kv: -kv[1])[:4]
        share = f"{src['kept'] / src['read']:.0%}" if src["read"] else "-"
        reasons = ", ".join(f"{k} {v:,}" for k, v in top)
        lines.append(f"| {name} | {src['read']:,} | {src['kept']:,} | {share} | {reasons} |")
    lines += ["", "## Output", ""]
    for split in ("train", "val"):
        s = sink.get(split, {})
        lines.append(f"- {split}: {s.get('docs', 0):,} documents, {s.get('tokens', 0):,} tokens")
    copies = sink.get("copies", {})
    if copies.get("docs"):
        lines.append(
            f"- of these, {copies['docs']:,} repeated copies ({copies['tokens']:,} tokens) made by the mix; "
            f"{sink.get('val_copies_dropped', 0):,} copies of val documents not written (val keeps one)"
        )
    if cpt:
        lines.append(f"- {cpt:.2f} characters per token")
    lines += ["", "## Removal examples", ""]
    for r in rows[1:]:
        for reason, n in sorted(r["removed"].items(), key=lambda kv: -kv[1])[:3]:
            lines.append(f"### {r['step']}: {reason} ({n:,})")
            for doc_id, excerpt in top_examples(out, r["step"], reason):
                text = excerpt[:240].replace("\n", " ⏎ ").replace("|", "\\|")
                lines.append(f"- `{doc_id}`: {text}")
            lines.append("")
    for name, step in steps.items():
        if isinstance(step, GlobalStep):
            lines += step.report(plan_dir(out, name), out)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def console() -> Console:
    """A console as wide as the terminal, and 120 columns when output goes to a file or pipe
    (rich's 80 would wrap the tables into unreadable cells in logs)."""
    from rich.console import Console

    c = Console()
    return c if c.is_terminal else Console(width=120)


def print_summary(manifest: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"grist corpus: {manifest['name']}  ({manifest['seconds']} s)")
    for col in ("step", "docs in", "docs out", "removed %", "chars out", "top reason"):
        table.add_column(col, justify="left" if col in ("step", "top reason") else "right")
    for r in manifest["steps"]:
        removed = r["docs_in"] - r["docs_out"]
        pct = f"{100 * removed / r['docs_in']:.1f}" if r["docs_in"] else "-"
        top = max(r["removed"].items(), key=lambda kv: kv[1], default=("", 0))
        table.add_row(
            r["step"],
            f"{r['docs_in']:,}",
            f"{r['docs_out']:,}",
            pct,
            f"{r['chars_out']:,}",
            f"{top[0]} ({top[1]:,})" if top[1] else "",
        )
    out = console()
    out.print(table)
    for split in ("train", "val"):
        s = manifest["shards"].get(split, {})
        out.print(f"{split}: {s.get('tokens', 0):,} tokens in {s.get('docs', 0):,} documents")
