"""The training bench's tuning logic on synthetic results: what keys a kept run, which setting
wins, when the grid grows. No corpus, no training, no timing."""

from __future__ import annotations

import math

import pytest

from bench.train_bench import (
    Setting,
    cache_path,
    edges,
    half_decade,
    nanogpt_lr,
    next_warmup,
    pick_best,
    tune_key,
)

CONFIG = {"model": {"n_layer": 4, "n_embd": 256}, "batch_tokens": 4096, "val_tokens": 65536}
CORPUS = {"tokenizer": "a" * 16, "shards": "b" * 16}


def key(model: str = "grist", steps: int = 200, lr: float = 3e-3, warmup: float = 0.02, **changes):
    config = {**CONFIG, **changes.pop("config", {})}
    corpus = {**CORPUS, **changes.pop("corpus", {})}
    return tune_key(model, steps, Setting(lr, warmup), config, corpus)


def test_a_kept_run_is_found_again_under_the_same_settings():
    assert cache_path(key()) == cache_path(key())
    assert cache_path(key()).name.startswith("grist-lr3e-03-warmup4-")


@pytest.mark.parametrize(
    "changed",
    [
        {"model": "nanogpt"},
        {"steps": 100},
        {"lr": 1e-2},
        {"warmup": 0.10},
        {"config": {"model": {"n_layer": 6, "n_embd": 256}}},
        {"config": {"val_tokens": 32768}},
        {"corpus": {"shards": "c" * 16}},
    ],
)
def test_anything_that_changes_the_result_changes_the_key(changed):
    assert cache_path(key(**changed)) != cache_path(key())


def test_the_two_models_run_different_code():
    assert key("grist")["code"] != key("nanogpt")["code"]


def test_warmup_is_a_fraction_of_the_run_at_least_one_step():
    assert Setting(1e-3, 0.02).warmup(200) == 4
    assert Setting(1e-3, 0.10).warmup(200) == 20
    assert Setting(1e-3, 0.02).warmup(20) == 1


def test_half_decade_ladder():
    assert half_decade(1e-2, up=True) == 3e-2
    assert half_decade(3e-2, up=True) == 1e-1
    assert half_decade(1e-3, up=False) == 3e-4
    assert half_decade(3e-3, up=False) == 1e-3


def test_warmup_ladder():
    assert next_warmup(0.10, up=True) == 0.25
    assert next_warmup(0.25, up=True) == 0.5
    assert next_warmup(0.5, up=True) == 0.5
    assert next_warmup(0.02, up=False) == 0.008


def run(final: float, status: str = "finished", last_train: float | None = None) -> dict:
    """A result as tune_run returns it: untrained loss 9.0, training down to `final`."""
    last = final if last_train is None else last_train
    return {
        "status": status,
        "final_val_loss": final,
        "curves": {"train": [[4096, 8.0], [8192, last]], "val": [[0, 9.0], [8192, final]]},
    }


LRS = [1e-3, 3e-3, 1e-2]
FRACTIONS = [0.02, 0.10]


def test_best_is_the_lowest_final_loss_and_neighbours_are_labelled():
    runs = {
        (1e-3, 0.02): run(6.0),
        (1e-3, 0.10): run(6.2),
        (3e-3, 0.02): run(5.50),
        (3e-3, 0.10): run(5.53),
        (1e-2, 0.02): run(5.7),
        (1e-2, 0.10): run(5.8),
    }
    labels, best = pick_best(LRS, FRACTIONS, runs)
    assert best == (3e-3, 0.02)
    assert labels[(3e-3, 0.10)] == "near best"
    assert labels[(1e-3, 0.02)] == "too low"
    assert labels[(1e-2, 0.10)] == "too high"
    assert edges(LRS, [best[0]]) == []
    assert edges(FRACTIONS, [best[1]]) == [False]  # the shortest warmup won: try a shorter one


def test_a_worse_warmup_at_the_best_lr_is_not_called_too_high():
    runs = {(lr, f): run(6.0) for lr in LRS for f in FRACTIONS}
    runs[(3e-3, 0.02)] = run(5.0)
    runs[(3e-3, 0.10)] = run(5.5)
    labels, best = pick_best(LRS, FRACTIONS, runs)
    assert best == (3e-3, 0.02)
    assert labels[(3e-3, 0.10)] == "other warmup"


def test_a_diverged_run_never_wins():
    runs = {cell: run(6.0) for cell in [(lr, f) for lr in LRS for f in FRACTIONS]}
    runs[(1e-2, 0.02)] = run(1.0, status="diverged")  # grist stopped it: a low number means nothing
    runs[(1e-2, 0.10)] = run(math.nan)
    runs[(3e-3, 0.10)] = run(5.9, last_train=8.9)  # the training loss gave back what it learned
    runs[(3e-3, 0.02)] = run(5.95)
    labels, best = pick_best(LRS, FRACTIONS, runs)
    assert best == (3e-3, 0.02)
    assert [labels[(1e-2, f)] for f in FRACTIONS] == ["diverged", "diverged"]
    assert labels[(3e-3, 0.10)] == "diverged"


def test_the_grid_grows_where_a_best_lies_on_its_edge():
    assert edges(LRS, [1e-2, 3e-3]) == [True]
    assert edges(LRS, [1e-3, 3e-3]) == [False]
    assert edges(LRS, [1e-3, 1e-2]) == [False, True]
    assert edges(LRS, [None, 3e-3]) == [False]  # everything diverged: go lower
    assert edges([0.02, 0.10, 0.25], [0.10, 0.10]) == []


def test_nanogpt_schedule_warms_up_then_decays_to_a_tenth():
    lrs = [nanogpt_lr(step, 200, 1e-2, 1e-3, 4) for step in range(201)]
    assert lrs[0] == pytest.approx(1e-2 / 5)
    assert max(lrs) == pytest.approx(1e-2)
    assert lrs[200] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:], strict=False))
