"""Sweeps: any config key over a list of values, one short training each, compared.

`python -m train sweep CONFIG optim.lr=1e-4,3e-4,1e-3 [key=value ...]`: an argument holding
commas outside brackets is an axis, the others are overrides common to every run; several axes
make a grid. The runs go through the experiment runner (train/experiment.py: kept, resumable),
and the sweep adds what a person wants to see of one numeric axis:

* `sweep.png`: final validation loss against the value (the U of a learning-rate sweep);
* a label per run, by rule (`label_runs`): too low, near best, too high or diverged;
* the best value, printed and in results.md / results.json.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from train.experiment import ROOT, Experiment, ExperimentError, grid, run_experiment, write_report
from train.plots import plot_sweep

NEAR = 0.05  # nats/token: a run this close to the best final validation loss is "near best"


def split_values(value: str) -> list[str]:
    """`1e-3,3e-3` -> ["1e-3", "3e-3"]; commas inside [] or {} belong to a YAML list or mapping."""
    parts, depth, current = [], 0, ""
    for char in value:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def parse_axes(items: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(overrides common to every run, {key: values} of every axis), in the order given."""
    overrides, axes = [], {}
    for item in items:
        key, _, value = item.partition("=")
        values = split_values(value)
        if len(values) > 1:
            axes[key] = values
        else:
            overrides.append(item)
    return overrides, axes


def diverged(result: dict[str, Any]) -> bool:
    """The run stopped on `max_bad_steps`, its final loss is not finite, or its last training
    loss gave back more than half of what it had learned: above the midpoint between where it
    started (the untrained model's loss, the step-0 evaluation) and its lowest. The loss blew
    up, whether or not it ever became NaN."""
    if result["status"] == "diverged" or not math.isfinite(result["final_val_loss"]):
        return True
    train = [loss for _, loss in result["curves"]["train"]]
    if train and not math.isfinite(train[-1]):
        return True
    start = result["curves"]["val"][0][1]
    lowest = min([start, *(loss for loss in train if math.isfinite(loss))])
    return bool(train) and train[-1] > (start + lowest) / 2


def label_runs(
    values: list[float], results: list[dict[str, Any]], near: float = NEAR
) -> tuple[list[str], int | None]:
    """Each run's label and the index of the best one (None when every run diverged). The best
    is the lowest final validation loss of the runs that did not diverge; runs within `near`
    nats of it are near best, the others too low or too high by their value against the best's."""
    blown = [diverged(r) for r in results]
    candidates = [i for i, b in enumerate(blown) if not b]
    if not candidates:
        return ["diverged"] * len(results), None
    best = min(candidates, key=lambda i: results[i]["final_val_loss"])
    floor = results[best]["final_val_loss"]
    labels = []
    for value, result, blew in zip(values, results, blown, strict=True):
        if blew:
            labels.append("diverged")
        elif result["final_val_loss"] <= floor + near:
            labels.append("near best")
        else:
            labels.append("too low" if value < values[best] else "too high")
    return labels, best


def numeric(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def run_sweep(
    config: Path,
    items: list[str],
    *,
    name: str | None = None,
    root: Path = ROOT,
    parallel: int = 0,
    restart: bool = False,
    near: float = NEAR,
) -> dict[str, Any]:
    """Run the sweep and write its report; return {"results", "labels", "best"}."""
    overrides, axes = parse_axes(items)
    if not axes:
        raise ExperimentError("a sweep needs an axis: key=v1,v2,... (e.g. optim.lr=1e-3,3e-3,1e-2)")
    name = name or "sweep-" + "-".join(key.rsplit(".", 1)[-1] for key in axes)  # optim.lr -> sweep-lr
    exp = Experiment(name, config, tuple(overrides), grid(axes), root, parallel)
    results = run_experiment(exp, restart=restart)
    key, raw = next(iter(axes.items()))
    values = numeric(raw) if len(axes) == 1 else None
    if values is None:  # several axes or words: the runs' curves and table, no U and no labels
        write_report(exp, results)
        print(f"results: {exp.dir}/ (results.md, results.json, curves.png)")
        return {"results": results, "labels": None, "best": None}
    labels, best = label_runs(values, results, near)
    for result, label in zip(results, labels, strict=True):
        result["label"] = label
    width = max(len(v) for v in raw)
    for value, result, label in zip(raw, results, labels, strict=True):
        print(f"  {key}={value:<{width}}  final val loss {result['final_val_loss']:.4f}  {label}")
    if best is None:
        verdict = f"every run diverged: lower {key}"
    else:
        near_best = [v for v, lab in zip(raw, labels, strict=True) if lab == "near best"]
        verdict = (
            f"best {key} = {raw[best]} (final validation loss {results[best]['final_val_loss']:.4f}); "
            f"near best (within {near} nats): {', '.join(near_best)}"
        )
    print(verdict)
    write_report(
        exp,
        results,
        columns={"label": lambda r: r["label"]},
        extra={"key": key, "best": None if best is None else raw[best], "near": near},
        notes=[verdict[0].upper() + verdict[1:] + "."],
    )
    ceiling = max(r["curves"]["val"][0][1] for r in results)
    plot_sweep(values, [r["final_val_loss"] for r in results], labels, key, exp.dir / "sweep.png", ceiling)
    print(f"results: {exp.dir}/ (results.md, results.json, curves.png, sweep.png)")
    return {"results": results, "labels": labels, "best": None if best is None else raw[best]}
