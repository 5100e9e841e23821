"""Experiments (train/experiment.py, train/sweep.py): a sweep on a tiny corpus end to end, the
labelling rule on synthetic curves, and a sweep killed twice (between runs and inside one) that
resumes without training a finished run again and ends where an uninterrupted one does."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_train_corpus import tiny_config, tiny_corpus  # noqa: F401 - a fixture
from test_train_loop import change_loss

from pipeline.config import RecipeError
from tests.crashes import crash_at_each
from train.__main__ import main
from train.config import load_config
from train.experiment import ExperimentError
from train.scaling import PRESETS, Preset, Size, fit_power_law
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
    assert json.loads((exp / "results.json").read_text())["best"] == best["params"]["optim.lr"]
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
    # moved elsewhere, an experiment keeps its runs (their out_dir follows it)
    exp.rename(tmp_path / "exp" / "moved")
    capsys.readouterr()
    assert main([*args, "--root", str(tmp_path / "exp"), "--name", "moved"]) == 0
    assert "4 already finished (kept)" in capsys.readouterr().out
    exp = tmp_path / "exp" / "moved"
    assert json.loads((exp / "runs" / "optim.lr=10" / "config.json").read_text())["out_dir"].endswith(
        "moved/runs/optim.lr=10"
    )
    # a run that could not start is found before any run starts
    with pytest.raises(RecipeError, match="batch_tokens 512 = 16 sequences of 32 does not split"):
        run_sweep(config, ["batch_tokens=1024,512"], name="batch", root=tmp_path / "exp")
    assert not (tmp_path / "exp" / "batch").exists()
    # the same experiment with other settings would mix runs of two kinds: refused, nothing trained
    with pytest.raises(
        ExperimentError, match=r"optim.lr=1e-3 was started with other settings \(max_steps: 20 -> 30\)"
    ):
        run_sweep(
            config,
            ["optim.lr=1e-3,1e-2", "max_steps=30", "optim.betas=[0.9,0.99]"],
            name="moved",
            root=tmp_path / "exp",
        )


def test_a_run_stopped_on_bad_steps_is_a_diverged_result_and_the_sweep_goes_on(
    tiny_corpus: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # every loss of the runs at a learning rate above 1 is NaN, from step 5 on
    change_loss(monkeypatch, lambda t, loss: loss * math.nan if t.cfg.optim.lr > 1 and t.step >= 4 else loss)
    config = write_config(tmp_path, tiny_corpus, max_bad_steps=3)
    sweep = run_sweep(config, ["optim.lr=1e-2,1e1,1e-1"], root=tmp_path)
    assert [r["status"] for r in sweep["results"]] == ["finished", "diverged", "finished"]
    stopped = sweep["results"][1]
    assert stopped["steps"] == 7 and "3 steps in a row were skipped" in stopped["error"]
    assert sweep["labels"][1] == "diverged" and sweep["best"] in ("1e-2", "1e-1")
    assert (tmp_path / "sweep-lr" / "runs" / "optim.lr=1e1" / "result.json").exists()


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


def test_the_fit_recovers_a_known_power_law() -> None:
    compute = np.geomspace(1e11, 1e14, 6)
    exact = fit_power_law(compute, 40.0 * compute**-0.07)
    assert exact.a == pytest.approx(40.0, rel=1e-9) and exact.alpha == pytest.approx(0.07, rel=1e-9)
    assert (
        exact.e == 0 and exact.r2 == pytest.approx(1.0) and exact(1e15) == pytest.approx(40.0 * 1e15**-0.07)
    )
    # seeded noise of 1 % on the loss: the exponent within a few thousandths, R² still high
    noise = np.random.default_rng(0).normal(0, 0.01, compute.size)
    noisy = fit_power_law(compute, 40.0 * compute**-0.07 * np.exp(noise))
    assert noisy.alpha == pytest.approx(0.07, abs=0.005) and 0.9 < noisy.r2 < 1
    # with an irreducible loss: a plain power law bends away, the fit with E finds it
    bent = 1.5 + 300.0 * compute**-0.15
    with_e = fit_power_law(compute, bent, irreducible=True)
    assert with_e.e == pytest.approx(1.5, abs=0.01) and with_e.alpha == pytest.approx(0.15, rel=0.02)
    assert with_e.a == pytest.approx(300.0, rel=0.15) and with_e.r2 > 0.9999
    assert fit_power_law(compute, bent).r2 < with_e.r2
    with pytest.raises(ValueError, match="needs 3 points"):
        fit_power_law(compute[:2], bent[:2], irreducible=True)


def test_a_tiny_scaling_run_fits_predicts_and_checks(
    tiny_corpus: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    tiny = Preset(
        sizes=(Size(1, 2, 8), Size(1, 2, 16), Size(1, 2, 32), Size(2, 2, 32)),
        next_size=Size(2, 2, 48),
        base_compute=3e8,
        growth=3.0,
    )
    monkeypatch.setitem(PRESETS, "tiny", tiny)
    config = write_config(tmp_path, tiny_corpus)
    args = ["scaling", str(config), "optim.lr=3e-2", "--preset", "tiny", "--root", str(tmp_path / "exp")]
    assert main(args) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "exp" / "scaling-tiny" / "results.json").read_text())
    runs = report["runs"]
    assert [r["params"]["size"] for r in runs] == ["1x8", "1x16", "1x32", "2x32", "2x48"]
    budgets = [3e8 * 3**i for i in range(4)] + [4 * 3e8 * 3**3]
    for run, budget in zip(runs, budgets, strict=True):
        # whole steps of 1024 tokens, as many as fit in the budget
        assert budget - run["flops_per_token"] * 1024 < run["compute"] <= budget
        assert [t for t, _ in run["curves"]["val"]] == [0, run["tokens"]]
    assert [r["final_val_loss"] for r in runs] == sorted((r["final_val_loss"] for r in runs), reverse=True)
    fit = report["fit"]
    law = fit_power_law([r["compute"] for r in runs[:4]], [r["final_val_loss"] for r in runs[:4]])
    assert (fit["A"], fit["alpha"], fit["r2"]) == (law.a, law.alpha, law.r2) and fit["alpha"] > 0
    assert report["predicted"] == pytest.approx(float(law(runs[-1]["compute"])))
    assert report["measured"] == runs[-1]["final_val_loss"]
    assert f"predicted {report['predicted']:.4f}, measured {report['measured']:.4f}" in out
    assert "4 already finished (kept)" in out  # the 4x point joined the experiment, the others kept
    assert (tmp_path / "exp" / "scaling-tiny" / "scaling.png").read_bytes()[:4] == b"\x89PNG"


def test_the_shipped_sweep_and_scaling_presets_are_valid() -> None:
    """What `make sweep` and `make scaling` run: ≥ 6 log-spaced learning rates, every preset size a
    valid model of recipes/train_small.yaml."""
    sweep = next(line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("SWEEP ?="))
    _, axes = parse_axes(sweep.split("?=")[1].split())
    lrs = [float(v) for v in axes["optim.lr"]]
    ratios = [b / a for a, b in itertools.pairwise(lrs)]
    assert len(lrs) >= 6 and max(ratios) / min(ratios) < 1.2 and lrs[-1] / lrs[0] >= 100
    for preset in PRESETS.values():
        for size in (*preset.sizes, preset.next_size):
            load_config(ROOT / "recipes" / "train_small.yaml", size.overrides())
