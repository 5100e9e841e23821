"""Experiments (train/experiment.py, train/sweep.py): a sweep on a tiny corpus end to end, the
labelling rule on synthetic curves, and a sweep killed twice (between runs and inside one) that
resumes without training a finished run again and ends where an uninterrupted one does."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from test_train_corpus import tiny_config, tiny_corpus  # noqa: F401 - a fixture

from tests.crashes import crash_at_each
from train.__main__ import main
from train.experiment import ExperimentError
from train.sweep import label_runs, parse_axes, run_sweep

ROOT = Path(__file__).resolve().parents[1]
LRS = "optim.lr=1e-3,1e-2,1e-1"


def write_config(tmp_path: Path, corpus: Path, **overrides: object) -> Path:
    path = tmp_path / "tiny.yaml"
    options = {"max_steps": 20, "eval.every": 10, "log_every": 2} | overrides
    path.write_text(json.dumps(tiny_config(corpus, tmp_path / "unused", **options)))
    return path


def synthetic(final: float, train: list[float], status: str = "finished") -> dict:
    """A run's result as the runner writes it, with only what the labels read."""
    curve = [[1000 * i, loss] for i, loss in enumerate(train, 1)]
    return {"status": status, "final_val_loss": final, "curves": {"train": curve, "val": [[0, 9.0]]}}


def test_the_labels_follow_the_rule_on_synthetic_curves() -> None:
    lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]
    runs = [
        synthetic(6.0, [9.0, 8.0, 7.0, 6.1]),  # still falling when it ends: too low
        synthetic(5.5, [9.0, 7.0, 6.0, 5.6]),
        synthetic(5.04, [9.0, 6.0, 5.5, 5.1]),  # within 0.05 of the best
        synthetic(5.0, [9.0, 5.8, 5.3, 5.05]),  # the best
        synthetic(5.3, [9.0, 5.6, 5.4, 5.35]),  # too high: worse, not blown up
        synthetic(7.4, [9.0, 5.5, 6.5, 7.5]),  # gave back more than half of what it learned
        synthetic(9.0, [9.0, 5.5, math.nan]),  # its last interval's loss was not finite
        synthetic(9.0, [9.0, 12.0], status="diverged"),  # stopped on max_bad_steps
    ]
    labels, best = label_runs(lrs, runs)
    assert best == 3
    assert labels == [
        "too low",
        "too low",
        "near best",
        "near best",
        "too high",
        "diverged",
        "diverged",
        "diverged",
    ]
    # a loss that rose back only a little is not divergence; a wider tolerance takes more in
    assert label_runs([1.0, 2.0], [synthetic(5.0, [9.0, 5.0]), synthetic(5.2, [9.0, 6.0, 6.9])])[0] == [
        "near best",
        "too high",
    ]
    assert label_runs(lrs[:2], runs[:2], near=0.6)[0] == ["near best", "near best"]
    assert label_runs(lrs[-2:], runs[-2:]) == (["diverged", "diverged"], None)


def test_axes_are_the_arguments_with_commas_outside_brackets() -> None:
    overrides, axes = parse_axes(
        ["optim.lr=1e-3,3e-3", "optim.betas=[0.9,0.99]", "model.dropout=0,0.1", "seed=1"]
    )
    assert overrides == ["optim.betas=[0.9,0.99]", "seed=1"]
    assert axes == {"optim.lr": ["1e-3", "3e-3"], "model.dropout": ["0", "0.1"]}


def test_a_tiny_sweep_runs_end_to_end(
    tiny_corpus: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    config = write_config(tmp_path, tiny_corpus)
    args = ["sweep", str(config), "optim.lr=1e-3,1e-2,1e-1,10", "optim.betas=[0.9,0.99]"]
    assert main([*args, "--root", str(tmp_path / "exp"), "--name", "lr"]) == 0
    out = capsys.readouterr().out
    exp = tmp_path / "exp" / "lr"
    results = json.loads((exp / "results.json").read_text())["runs"]
    assert [r["id"] for r in results] == [f"optim.lr={v}" for v in ("1e-3", "1e-2", "1e-1", "10")]
    assert [r["params"] for r in results][1] == {"optim.lr": "1e-2"}
    labels = [r["label"] for r in results]
    # 20 steps are too few for 1e-3; 10 blows the loss up; the best is in between
    assert labels[0] == "too low" and labels[-1] == "diverged" and "near best" in labels[1:3]
    best = min(results[:3], key=lambda r: r["final_val_loss"])
    assert f"best optim.lr = {best['params']['optim.lr']}" in out
    for r in results:
        assert r["status"] == "finished" and r["steps"] == 20 and r["tokens"] == 20 * 1024
        assert [t for t, _ in r["curves"]["val"]] == [0, 10240, 20480]
        assert r["compute"] == r["flops_per_token"] * r["tokens"]
        run = json.loads((exp / "runs" / r["id"] / "config.json").read_text())
        assert run["optim"]["betas"] == [0.9, 0.99] and run["out_dir"] == str(exp / "runs" / r["id"])
    table = (exp / "results.md").read_text()
    assert "| optim.lr=10 | finished |" in table and table.count("diverged") == 1
    for png in ("curves.png", "sweep.png"):
        assert (exp / png).read_bytes()[:4] == b"\x89PNG"
    # the same experiment with other settings would mix runs of two kinds: refused, nothing trained
    with pytest.raises(
        ExperimentError, match=r"optim.lr=1e-3 was started with other settings \(max_steps: 20 -> 30\)"
    ):
        run_sweep(
            config,
            ["optim.lr=1e-3,1e-2", "max_steps=30", "optim.betas=[0.9,0.99]"],
            name="lr",
            root=tmp_path / "exp",
        )


def test_a_killed_sweep_keeps_its_finished_runs_and_ends_as_an_uninterrupted_one(
    tiny_corpus: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, tiny_corpus, checkpoint_every=5)
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "train", "sweep", str(config), LRS, "--root", str(killed), "--name", "lr"]
    runs = killed / "lr" / "runs"
    # Killed right after the first run's result.json, then (the first run kept) at step 13 of the
    # second run, whose last.pt is from step 10.
    crash_at_each(cmd, ["experiment/run"])
    first = runs / "optim.lr=1e-3"
    assert (first / "result.json").exists() and not (runs / "optim.lr=1e-2" / "metrics.jsonl").exists()
    stamps = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    crash_at_each(cmd, ["train/step@13"])
    assert not (runs / "optim.lr=1e-2" / "result.json").exists()
    done = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert "3 runs in" in done and "1 already finished (kept)" in done
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == stamps  # not touched, let alone trained

    # An uninterrupted sweep, two runs at a time in child processes: the same results exactly.
    whole = tmp_path / "whole"
    main(["sweep", str(config), LRS, "--root", str(whole), "--name", "lr", "--parallel", "2"])

    def outcome(root: Path) -> list[tuple]:
        results = json.loads((root / "lr" / "results.json").read_text())["runs"]
        return [(r["id"], r["final_val_loss"], r["curves"], r["label"]) for r in results]

    assert outcome(killed) == outcome(whole)
