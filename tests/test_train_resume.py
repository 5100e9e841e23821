"""Kill a CPU training run with SIGKILL mid-training and mid-checkpoint, resume it, and get the
uninterrupted run's log, losses and weights exactly (float32 on CPU is deterministic for a fixed
thread count)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from test_train_corpus import tiny_config, tiny_corpus  # noqa: F401 - a fixture

from tests.crashes import crash_at_each, leftovers
from train.checkpoint import LAST

ROOT = Path(__file__).resolve().parents[1]
STEPS = 150


def train_command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "train", str(config), *extra]


def rows(out_dir: Path) -> list[dict]:
    path = out_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_sigkill_then_resume_equals_an_uninterrupted_run(tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "tiny.yaml"
    options = {"max_steps": STEPS, "checkpoint_every": 10, "eval.every": 50}
    config.write_text(json.dumps(tiny_config(tiny_corpus, tmp_path / "killed", **options)))
    killed, whole = tmp_path / "killed", tmp_path / "whole"

    # Killed after step 25 (between checkpoints), then, resumed from step 20, killed half way
    # through writing its second checkpoint (step 40: the one at 30 is what survives).
    crash_at_each(train_command(config), ["train/step@25"])
    assert torch.load(killed / LAST, weights_only=True)["step"] == 20
    crash_at_each(train_command(config, "--resume"), ["checkpoint@2"])
    assert torch.load(killed / LAST, weights_only=True)["step"] == 30
    assert leftovers(killed)  # the torn write, which the next start clears
    resumed = subprocess.run(
        train_command(config, "--resume"), cwd=ROOT, check=True, capture_output=True, text=True
    )
    assert f"resuming {killed} at step 30 of {STEPS}" in resumed.stdout  # says from where
    assert not leftovers(killed)
    subprocess.run(train_command(config, f"out_dir={whole}"), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    untimed = [{k: v for k, v in r.items() if k != "tok_per_s"} for r in rows(killed)]
    assert untimed == [{k: v for k, v in r.items() if k != "tok_per_s"} for r in rows(whole)]  # exactly
    a, b = (torch.load(d / LAST, weights_only=True) for d in (killed, whole))
    assert a["step"] == b["step"] == STEPS
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(
        torch.equal(x, y)
        for k in a["optimizer"]["state"]
        for x, y in zip(a["optimizer"]["state"][k].values(), b["optimizer"]["state"][k].values(), strict=True)
    )
