"""Learning-rate schedules and AdamW parameter groups."""

from __future__ import annotations

import pytest
import torch

from train.config import ModelConfig, OptimConfig
from train.model import GPT
from train.optim import build_optimizer, build_scheduler, lr_multiplier


def test_cosine_warms_up_then_decays_to_the_floor() -> None:
    cfg = OptimConfig(schedule="cosine", warmup_steps=10, min_lr_ratio=0.1)
    lr = [lr_multiplier(s, cfg, 110) for s in range(110)]
    assert lr[0] == pytest.approx(0.1) and lr[4] == pytest.approx(0.5) and lr[9] == pytest.approx(1.0)
    assert lr[10] == pytest.approx(1.0)
    assert lr[60] == pytest.approx(0.55)  # halfway through the decay: (1 + 0.1) / 2
    assert all(a >= b for a, b in zip(lr[10:], lr[11:], strict=False))
    assert lr_multiplier(110, cfg, 110) == pytest.approx(0.1)
    assert lr_multiplier(500, cfg, 110) == pytest.approx(0.1)


def test_wsd_is_flat_then_decays_linearly_over_the_last_fraction() -> None:
    cfg = OptimConfig(schedule="wsd", warmup_steps=10, decay_fraction=0.2, min_lr_ratio=0.0)
    assert lr_multiplier(4, cfg, 100) == pytest.approx(0.5)
    assert [lr_multiplier(s, cfg, 100) for s in (10, 50, 79, 80)] == pytest.approx([1, 1, 1, 1])
    assert lr_multiplier(90, cfg, 100) == pytest.approx(0.5)
    assert lr_multiplier(100, cfg, 100) == pytest.approx(0.0)


def test_no_warmup() -> None:
    assert lr_multiplier(0, OptimConfig(warmup_steps=0), 10) == pytest.approx(1.0)


def test_scheduler_follows_the_multiplier_and_decay_skips_vectors() -> None:
    model = GPT(ModelConfig(n_layer=1, n_head=2, n_embd=16, context=8, vocab_size=50))
    model.register_parameter(
        "gain", torch.nn.Parameter(torch.ones(16))
    )  # a 1-D tensor, as a norm gain would be
    cfg = OptimConfig(lr=2e-3, warmup_steps=4, weight_decay=0.1)
    opt = build_optimizer(model, cfg, "cpu")
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and all(p.ndim == 2 for p in decay["params"])
    assert no_decay["weight_decay"] == 0.0 and [p.ndim for p in no_decay["params"]] == [1]
    sched = build_scheduler(opt, cfg, 20)
    seen = []
    for _ in range(6):
        seen.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert seen == pytest.approx([2e-3 * lr_multiplier(s, cfg, 20) for s in range(6)])


def test_the_fused_adamw_a_gpu_gets_updates_like_the_cpu_path() -> None:
    """build_optimizer picks fused AdamW for CUDA; torch runs the same kernel family on the CPU."""
    models = [GPT(ModelConfig(n_layer=1, n_head=2, n_embd=16, context=8, vocab_size=50)) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    before = models[0].wte.weight.detach().clone()
    cfg = OptimConfig(lr=1e-2, warmup_steps=0, weight_decay=0.1)
    optimizers = [build_optimizer(models[0], cfg, "cuda"), build_optimizer(models[1], cfg, "cpu")]
    assert optimizers[0].defaults["fused"] and not optimizers[1].defaults["fused"]
    x = torch.randint(0, 50, (4, 9), generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        for model, opt in zip(models, optimizers, strict=True):
            model(x[:, :-1], x[:, 1:]).backward()
            opt.step()
            opt.zero_grad()
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(models[0].wte.weight, before)  # they did move
