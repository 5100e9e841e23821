"""The saved index of an incremental run: every kept document's summary row, by generation.

A run with `save_index` writes `<state>/index/`: `meta.json` (how signatures were made) and
`docs/g<generation>-<unit>.parquet` (the summary rows of the documents it kept, signature and,
when verifying, shingle set included). A later run given that directory as `index` reads its
files as extra, "old" units: old documents take part in clusters and win them, but are never
removed, and pairs between two old documents are not even formed. If that later run saves an
index too, the new index holds the old files (hard-linked when possible) plus its own kept
documents under the next generation number, so indexes accumulate run after run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.atomic import read_json, write_json
from pipeline.minhash.config import MinHashConfig
from pipeline.minhash.keep import read_unit_drops

FORMAT = 1


class IndexMismatch(ValueError):
    """An index that cannot be used with this step's parameters (named for the user)."""


def open_index(path: str | Path, cfg: MinHashConfig) -> tuple[int, list[tuple[str, Path]]]:
    """(generation, [(unit name, docs file)]) of a saved index, after checking it fits `cfg`."""
    root = Path(path)
    meta_path = root / "meta.json"
    if not meta_path.exists():
        raise IndexMismatch(f"minhash_dedup: index {root} has no meta.json (save one with save_index: true)")
    meta: dict[str, Any] = read_json(meta_path)
    if meta.get("format") != FORMAT:
        raise IndexMismatch(f"minhash_dedup: index {root} has format {meta.get('format')}, expected {FORMAT}")
    if meta["hashing"] != cfg.hashing():
        raise IndexMismatch(
            f"minhash_dedup: index {root} was built with {meta['hashing']}, this step uses {cfg.hashing()}"
        )
    if cfg.verify and not meta["verify"]:
        raise IndexMismatch(
            f"minhash_dedup: index {root} holds no shingle sets (saved with verify: false); "
            "use verify: false or rebuild the index"
        )
    files = [root / "docs" / name for name in meta["files"]]
    return int(meta["generation"]), [(f"index:{f.stem}", f) for f in files]


def save_unit(task: tuple[MinHashConfig, str, str, str, str]) -> int:
    """Write one new unit's kept rows into the index being saved; returns rows written."""
    cfg, unit, summary_path, drops_dir, out_path = task
    table = pq.read_table(summary_path).select(cfg.summary_schema().names)
    dropped = read_unit_drops(Path(drops_dir), unit)["id"]
    if len(dropped):
        table = table.filter(pc.invert(pc.is_in(table["id"], value_set=dropped.combine_chunks())))
    pq.write_table(table, out_path, compression="zstd")
    return table.num_rows


def link_old(files: list[Path], docs_dir: Path) -> list[str]:
    """Carry an earlier index's files into the new one."""
    names = []
    for f in files:
        dest = docs_dir / f.name
        try:
            os.link(f, dest)
        except OSError:
            shutil.copy2(f, dest)
        names.append(f.name)
    return names


def write_meta(root: Path, cfg: MinHashConfig, generation: int, files: list[str], documents: int) -> None:
    write_json(
        root / "meta.json",
        {
            "format": FORMAT,
            "hashing": cfg.hashing(),
            "verify": cfg.verify,
            "generation": generation,
            "files": sorted(files),
            "documents": documents,
            "schema": cfg.summary_schema().to_string(),
        },
    )
