"""Kill a CPU training run with SIGKILL mid-training, resume it, and get the uninterrupted run's
losses and weights exactly (float32 on CPU is deterministic for a fixed thread count)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from test_train_corpus import tiny_config, tiny_corpus  # noqa: F401 - a fixture

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

    proc = subprocess.Popen(train_command(config), cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any(r["step"] >= 25 for r in rows(killed) if r["kind"] == "train"):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    steps_before_kill = max(r["step"] for r in rows(killed))
    assert steps_before_kill < STEPS  # killed mid-training
    assert torch.load(killed / LAST, weights_only=True)["step"] in range(20, steps_before_kill + 1, 10)

    subprocess.run(train_command(config, "--resume"), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(train_command(config, f"out_dir={whole}"), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    resumed, reference = rows(killed), rows(whole)
    assert [r["step"] for r in resumed] == [r["step"] for r in reference]
    for a, b in zip(resumed, reference, strict=True):
        assert a["kind"] == b["kind"]
        assert a.get("loss") == b.get("loss") and a.get("val_loss") == b.get("val_loss")  # exactly
    a, b = (torch.load(d / LAST, weights_only=True) for d in (killed, whole))
    assert a["step"] == b["step"] == STEPS
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(
        torch.equal(x, y)
        for k in a["optimizer"]["state"]
        for x, y in zip(a["optimizer"]["state"][k].values(), b["optimizer"]["state"][k].values(), strict=True)
    )
