"""AdamW with weight decay on matrices only, and the learning-rate schedules.

Decay applies to >= 2-D tensors (every matrix, the embedding included) and never to 1-D ones
(norm gains, biases: this model has none, a variant might), as nanoGPT and nanochat do.
The schedule is a multiplier of the peak `lr` as a pure function of the step, so a resumed run
recomputes it exactly from the step it restarts at:

* cosine (default): linear warmup, then half a cosine down to `min_lr_ratio` at `max_steps`;
* wsd (warmup-stable-decay): linear warmup, flat, then linear down to `min_lr_ratio` over the
  last `decay_fraction` of the steps. Stopping anywhere before the decay leaves a model one can
  resume and decay later, which is why large runs prefer it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from train.config import OptimConfig


def build_optimizer(model: nn.Module, cfg: OptimConfig, device_type: str) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
        fused=device_type == "cuda",  # one kernel for all tensors; the CPU uses the foreach path
    )


def lr_multiplier(step: int, cfg: OptimConfig, max_steps: int) -> float:
    """The learning rate at `step` (0-based, the step about to be taken) as a fraction of cfg.lr."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, max_steps - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    decay_steps = max(1, round(cfg.decay_fraction * max_steps))
    decay_start = max(cfg.warmup_steps, max_steps - decay_steps)
    if step < decay_start:
        return 1.0
    progress = min(1.0, (step - decay_start) / max(1, max_steps - decay_start))
    return 1 - (1 - cfg.min_lr_ratio) * progress


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_multiplier(step, cfg, max_steps))
