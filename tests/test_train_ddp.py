"""Two CPU processes with gloo (torchrun) follow the loss curve of one process at the same
global batch: each rank reads its half of every batch and gradients are averaged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_train_corpus import tiny_config, tiny_corpus  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[1]


def losses(out_dir: Path, kind: str, key: str) -> list[float]:
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in rows if r["kind"] == kind]


def test_two_gloo_processes_match_one_process(tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "tiny.yaml"
    # 32 sequences per step: 1 process x 4 micro-steps of 8, or 2 processes x 2 micro-steps of 8
    options = {"max_steps": 20, "micro_batch": 8, "eval.every": 10, "threads": 1}
    config.write_text(json.dumps(tiny_config(tiny_corpus, tmp_path / "one", **options)))
    subprocess.run(
        [sys.executable, "-m", "train", str(config)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*torchrun, "-m", "train", str(config), f"out_dir={tmp_path / 'two'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 process(es) x 2 micro-steps of 8" in done.stdout
    one, two = tmp_path / "one", tmp_path / "two"
    assert len(losses(two, "train", "loss")) == 20
    assert losses(two, "train", "loss") == pytest.approx(losses(one, "train", "loss"), rel=1e-4)
    assert losses(two, "eval", "val_loss") == pytest.approx(losses(one, "eval", "val_loss"), rel=1e-4)
