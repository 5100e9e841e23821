"""Shared fixtures: real documents from the sample shipped in data/sample."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pipeline.document import Document

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


def load_sample(name: str, limit: int | None = None) -> list[Document]:
    docs = []
    with gzip.open(SAMPLE / name, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            docs.append(Document(r["id"], r.get("source", name), r["text"], r.get("meta") or {}))
            if limit and len(docs) >= limit:
                break
    return docs


@pytest.fixture(autouse=True)
def _run_in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recipes name inputs relative to the working directory, as `make corpus` runs them."""
    monkeypatch.chdir(ROOT)
