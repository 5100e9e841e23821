"""Many small trainings, one experiment: run them, keep every run, resume after a kill, collect.

An experiment is a base train config, overrides common to every run, and a list of runs, each
its own overrides on top (a learning rate, a model size). Everything lands under
`out/experiments/<name>/`:

    experiment.json        what was asked: the config, the common overrides, the runs
    runs/<run-id>/         the trainer's own out_dir (metrics.jsonl, loss_curves.png, last.pt, ...)
      config.json          the run's resolved config, written before it starts
      result.json          written atomically when the run ends: the run's completed marker
    results.json results.md curves.png    everything collected, and the commands' own PNGs

A run with result.json is finished and never trained again; one without it continues from its
own last.pt (bit for bit what an uninterrupted run does, as `--resume` guarantees), or starts.
So a killed experiment started again keeps every finished run and loses at most the steps since
the killed run's last checkpoint. A run that stops on `max_bad_steps` is a result (status
`diverged`), not a failure: a learning-rate sweep expects it at the top of its range.

Runs go one after another in this process by default (the trainer takes every CPU core); with
`parallel` > 1 each run is a child process (`python -m train.experiment RUN_DIR`), one per GPU
when there are GPUs, else sharing the cores. Each run is reproducible from its config's seed.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import queue
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pipeline.atomic import atomic_path, crash_point, read_json, write_json
from train.checkpoint import LAST, config_differences
from train.config import TrainConfig, config_from_dict, load_config
from train.loop import Diverged, Trainer
from train.plots import plot_runs

RESULT = "result.json"
MARKER = "experiment.json"
ROOT = Path("out/experiments")
# Settings of where and how fast a run goes, not of what it computes: a resumed experiment may
# change them (another `parallel` gives another thread count, a moved directory another out_dir)
# and keep its finished runs.
HOST_KEYS = ("out_dir", "threads", "tensorboard")


class ExperimentError(Exception):
    """An experiment cannot start or continue; the message is complete (print it, no traceback)."""


@dataclass(frozen=True)
class Run:
    """One training of an experiment: its id (a directory name) and the overrides that make it."""

    id: str
    overrides: tuple[str, ...]
    params: dict[str, str] = field(default_factory=dict)  # what varies, for tables and plots

    @classmethod
    def of(cls, overrides: dict[str, str]) -> Run:
        """A run named by its overrides, `optim.lr=3e-3,model.dropout=0.1`."""
        items = [f"{k}={v}" for k, v in overrides.items()]
        return cls(",".join(items).replace("/", "_") or "base", tuple(items), dict(overrides))


def grid(axes: dict[str, list[str]]) -> list[Run]:
    """Every combination of the axes' values, the first axis varying slowest."""
    return [Run.of(dict(zip(axes, values, strict=True))) for values in itertools.product(*axes.values())]


@dataclass
class Experiment:
    name: str
    config: Path  # the base train config (YAML)
    overrides: tuple[str, ...]  # common to every run
    runs: list[Run]
    root: Path = ROOT
    parallel: int = 0  # runs at once; 0: one per GPU when there are GPUs, else 1

    @property
    def dir(self) -> Path:
        return self.root / self.name

    def run_dir(self, run: Run) -> Path:
        return self.dir / "runs" / run.id

    def resolve(self, run: Run) -> TrainConfig:
        out_dir = f"out_dir={self.run_dir(run)}"
        cfg = load_config(self.config, [*self.overrides, *run.overrides, out_dir])
        cfg.grad_accum(1)  # a batch that does not split into micro-batches fails here, not mid-experiment
        return cfg

    def slots(self) -> int:
        return self.parallel or max(1, torch.cuda.device_count())


def run_experiment(exp: Experiment, *, restart: bool = False) -> list[dict[str, Any]]:
    """Train every run of `exp` not finished yet; return all runs' results in the given order.
    Every config is resolved (and so checked) before the first step of any run."""
    if len({r.id for r in exp.runs}) != len(exp.runs):
        raise ExperimentError(f"{exp.name}: two runs share an id: {[r.id for r in exp.runs]}")
    configs = [exp.resolve(run) for run in exp.runs]
    if restart:
        _clear(exp.dir)
    slots = exp.slots()
    gpus = torch.cuda.device_count()
    cpu_threads = max(1, len(os.sched_getaffinity(0)) // slots)
    if slots > 1 and not gpus:  # the cores, shared
        configs = [c if c.threads else c.model_copy(update={"threads": cpu_threads}) for c in configs]
    dumps = [cfg.model_dump(mode="json") for cfg in configs]
    for run, current in zip(exp.runs, dumps, strict=True):  # every run checked before any is written
        _check(exp, run, current)
    for run, current in zip(exp.runs, dumps, strict=True):
        path = exp.run_dir(run) / "config.json"
        if not path.exists() or read_json(path) != current:
            write_json(path, current)
    pending = [run for run in exp.runs if not (exp.run_dir(run) / RESULT).exists()]
    write_json(
        exp.dir / MARKER,
        {"name": exp.name, "config": str(exp.config), "overrides": list(exp.overrides)}
        | {"runs": [{"id": r.id, "overrides": list(r.overrides)} for r in exp.runs]},
    )
    kept = len(exp.runs) - len(pending)
    print(
        f"experiment {exp.name}: {len(exp.runs)} runs in {exp.dir}"
        + (f", {kept} already finished (kept)" if kept else "")
        + (f", {slots} at a time" if slots > 1 and pending else "")
    )
    if slots == 1:
        _each_in_process(exp, pending)
    else:
        _each_in_child(exp, pending, slots, gpus)
    return [read_json(exp.run_dir(run) / RESULT) | {"params": run.params} for run in exp.runs]


def _clear(directory: Path) -> None:
    """Remove a previous experiment: only a directory this module wrote (it holds MARKER)."""
    if not directory.exists():
        return
    if not (directory / MARKER).exists():
        raise ExperimentError(f"--restart: {directory} holds no {MARKER}: not an experiment, not removed")
    shutil.rmtree(directory)


def _check(exp: Experiment, run: Run, current: dict[str, Any]) -> None:
    """Refuse a run that was started with other settings: a finished or half-done run of other
    settings must not pass for this one."""
    path = exp.run_dir(run) / "config.json"
    if not path.exists():
        return
    saved = read_json(path)
    keys = tuple(sorted((current.keys() | saved.keys()) - set(HOST_KEYS)))
    changed = config_differences(saved, current, keys)
    if changed:
        raise ExperimentError(
            f"{exp.dir}: run {run.id} was started with other settings ({'; '.join(changed)}); "
            "pass --restart to discard the experiment, or choose another --name"
        )


def _each_in_process(exp: Experiment, runs: list[Run]) -> None:
    started = time.perf_counter()
    for i, run in enumerate(runs):
        elapsed = time.perf_counter() - started
        eta = f", about {elapsed / i * (len(runs) - i) / 60:.1f} min left" if i else ""
        tqdm.write(f"\n[{i + 1}/{len(runs)}] {exp.name}: {run.id}{eta}")
        train_run(exp.run_dir(run))


def _each_in_child(exp: Experiment, runs: list[Run], slots: int, gpus: int) -> None:
    """`slots` child processes at a time, each pinned to one GPU when there are GPUs; a child's
    output goes to its run's log.txt so that runs side by side do not interleave."""
    free: queue.Queue[int] = queue.Queue()
    for slot in range(slots):
        free.put(slot)

    def one(run: Run) -> str | None:
        slot = free.get()
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
        run_dir = exp.run_dir(run)
        with open(run_dir / "log.txt", "a", encoding="utf-8") as log:
            cmd = [sys.executable, "-m", "train.experiment", str(run_dir)]
            code = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        free.put(slot)
        return None if code == 0 else f"{run.id} (exit {code}, see {run_dir / 'log.txt'})"

    with ThreadPoolExecutor(slots) as pool:
        failed = [f for f in tqdm(pool.map(one, runs), total=len(runs), unit="run") if f]
    if failed:
        raise ExperimentError(f"{exp.name}: runs failed: {', '.join(failed)}")


def train_run(run_dir: Path) -> dict[str, Any]:
    """Train (or continue) the run whose config.json is in `run_dir`, then write its result.json."""
    cfg = config_from_dict(read_json(run_dir / "config.json"), str(run_dir / "config.json"))
    trainer = Trainer(cfg, resume=(run_dir / LAST).exists())
    status, error = "finished", None
    try:
        summary = trainer.run()
    except Diverged as e:
        status, error, summary = "diverged", str(e), None
        tqdm.write(f"diverged: {e}")
    finally:
        trainer.close()
    result = _result(cfg, trainer, status, error, summary)
    write_json(run_dir / RESULT, result)
    crash_point("experiment/run")
    return result


def _result(
    cfg: TrainConfig, trainer: Trainer, status: str, error: str | None, summary: dict[str, Any] | None
) -> dict[str, Any]:
    history = trainer.history
    train = [[r["tokens"], r["loss"]] for r in history if r["kind"] == "train"]
    val = [[r["tokens"], r["val_loss"]] for r in history if r["kind"] == "eval"]
    tokens = trainer.tokens_at(trainer.step)
    flops = trainer.model.flops_per_token()
    return {
        "id": Path(cfg.out_dir).name,
        "status": status,
        "error": error,
        "seed": cfg.seed,
        "final_val_loss": val[-1][1],
        "best_val_loss": min(v for _, v in val),
        "final_train_loss": train[-1][1] if train else math.nan,
        "steps": trainer.step,
        "tokens": tokens,
        "n_params": trainer.model.num_params(),
        "flops_per_token": flops,
        "compute": flops * tokens,
        "train_seconds": trainer.train_seconds,
        "curves": {"train": train, "val": val},
        "summary": summary,
    }


def write_report(
    exp: Experiment,
    results: list[dict[str, Any]],
    *,
    columns: dict[str, Callable[[dict], str]] | None = None,
    extra: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> None:
    """results.json, results.md (one row per run) and curves.png (every run's train and
    validation loss) in the experiment's directory. The caller adds table `columns`, `extra`
    keys to results.json and `notes` (Markdown lines) after the table."""
    write_json(
        exp.dir / "results.json",
        {"name": exp.name, "config": str(exp.config), "overrides": list(exp.overrides)}
        | (extra or {})
        | {"runs": results},
    )
    table = {
        "run": lambda r: r["id"],
        "status": lambda r: r["status"],
        "final val loss": lambda r: f"{r['final_val_loss']:.4f}",
        "best val loss": lambda r: f"{r['best_val_loss']:.4f}",
        "final train loss": lambda r: f"{r['final_train_loss']:.4f}",
        "tokens": lambda r: f"{r['tokens']:,}",
        "parameters": lambda r: f"{r['n_params']:,}",
        "seconds": lambda r: f"{r['train_seconds']:.0f}",
    } | (columns or {})
    lines = [
        f"# Experiment {exp.name}",
        "",
        f"Config `{exp.config}`" + (f" with `{' '.join(exp.overrides)}`" if exp.overrides else "") + ".",
        "",
        "| " + " | ".join(table) + " |",
        "|" + "---|" * len(table),
        *("| " + " | ".join(cell(r) for cell in table.values()) + " |" for r in results),
        "",
        *notes,
    ]
    with atomic_path(exp.dir / "results.md") as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    plot_runs(results, exp.dir / "curves.png", title=f"experiment {exp.name}")


def main(argv: list[str] | None = None) -> int:
    """`python -m train.experiment RUN_DIR`: one run, as `parallel` starts it in a child process."""
    args = sys.argv[1:] if argv is None else argv
    result = train_run(Path(args[0]))
    print(json.dumps({k: result[k] for k in ("id", "status", "final_val_loss")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
