"""The MinHash section of the corpus report: what was removed, cluster sizes, examples.

Examples show each cluster's kept document beside its least similar removed members, so a
reader judges the threshold on the cases closest to it, not on the obvious copies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.atomic import atomic_path


def _cell(text: str, limit: int = 300) -> str:
    return text[:limit].replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ⏎ ")


def plot_sizes(size_counts: dict[int, int], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(size_counts)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar([str(s) for s in sizes], [size_counts[s] for s in sizes], color="#4c72b0")
    ax.set_yscale("log")
    ax.set_xlabel("documents in cluster")
    ax.set_ylabel("clusters (log)")
    ax.set_title(title)
    if len(sizes) > 20:
        for i, label in enumerate(ax.get_xticklabels()):
            label.set_visible(i % max(1, len(sizes) // 20) == 0)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def report_lines(
    stats: dict[str, Any], examples: list[dict[str, Any]], out_dir: Path, step: str
) -> list[str]:
    sizes = {int(k): v for k, v in stats["cluster_sizes"].items()}
    lines = [
        f"## Near-duplicates ({step})",
        "",
        f"- {stats['duplicates']:,} documents removed ({stats['chars_removed']:,} characters) from "
        f"{stats['documents']:,}, in {stats['clusters']:,} clusters holding "
        f"{stats['documents_in_clusters']:,} documents",
        f"- LSH {stats['bands']} bands x {stats['rows']} rows of {stats['num_perm']} permutations: "
        f"{stats['candidate_pairs']:,} candidate pairs",
    ]
    if stats["verify"]:
        lines.append(
            f"- verified by true Jaccard >= {stats['jaccard_threshold']}: {stats['pairs_verified']:,} "
            f"pairs kept, {stats['candidate_pairs'] - stats['pairs_verified']:,} LSH false positives dropped"
        )
        lines.append(
            f"- each removal is a near-duplicate of a kept document; {stats.get('kept_beyond_first', 0):,} "
            "documents were kept in a cluster besides its first, as they resemble no kept document "
            "(linked to it only through a chain of near-duplicates)"
        )
    if stats["index_used"]:
        lines.append(
            f"- deduplicated against the index {stats['index_used']} ({stats['index_documents']:,} documents)"
        )
    if stats["index_saved"]:
        lines.append(
            f"- index saved to {stats['index_saved']} ({stats['index_saved_documents']:,} documents)"
        )
    if sizes:
        png = f"{step.replace('#', '_')}_clusters.png"
        plot_sizes(sizes, out_dir / png, f"{step}: cluster sizes")
        lines += ["", f"![cluster sizes]({png})"]
    for ex in examples:
        lines += ["", f"### Cluster {ex['cluster']} ({ex['size']} documents)", ""]
        lines.append(
            "| "
            + " | ".join(("kept" if m["kept"] else "removed") + f" `{m['id']}`" for m in ex["members"])
            + " |"
        )
        lines.append("|" + "---|" * len(ex["members"]))
        lines.append(
            "| "
            + " | ".join(
                f"{m['chars']:,} chars"
                + (
                    ""
                    if m["kept"]
                    else f", {'' if stats['verify'] else 'est. '}Jaccard {m['similarity']:.2f}"
                )
                for m in ex["members"]
            )
            + " |"
        )
        lines.append("| " + " | ".join(_cell(m["excerpt"]) for m in ex["members"]) + " |")
    return [*lines, ""]
