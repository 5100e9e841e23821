"""`make bench` (training): grist's trainer against nanoGPT, each at its own best learning rate
and warmup, and the default run.

1. The benchmark corpus: the default recipe (same filters, BPE 8192) run on all of the team's
   shared raw text, about 6.3 M training tokens, built once into out/bench/corpus.
2. Tuning. grist (recipes/train_bench.yaml) and nanoGPT both train at the reference config --
   4 layers, 4 heads, width 256, context 256, 16 sequences (4,096 tokens) per step, vocab 8192,
   200 steps (819,200 tokens, under one epoch), CPU, float32 -- once for every point of the
   same grid: peak learning rate {1e-3, 3e-3, 1e-2} x warmup {2 %, 10 %} of the run (4 and 20
   steps), each then cosine-decayed to lr/10 at the last step. Each run is scored by its final
   validation loss on grist's fixed validation windows (65,536 tokens) and labelled as
   train/sweep.py labels a sweep (near best within 0.05 nats, too low, too high, diverged);
   each model's best is its lowest final loss among the runs that did not diverge. While a
   model's best lies on the grid's lowest or highest learning rate, the grid grows by the next
   half decade on that side; while it lies on the shortest or longest warmup, by a warmup 2.5x
   shorter or longer (at most half the run); for both models, at most `--extend` (2) values
   per axis.
   Every finished run is kept as JSON in out/bench/tune/, named by a hash of everything its
   result depends on (model, steps, lr, warmup, the config, the corpus fingerprint, the code
   that trains and scores it, torch's version): a killed or repeated bench re-runs none of them,
   a changed setting re-runs exactly what it changes (`--restart-tune` re-runs everything).
3. The comparison: both models at their best settings, trained in one process on the same
   tokens, one step of each in turn, so both see the same machine load (other processes on a
   2-core machine swing timings by 2x or more), evaluated every `--eval-every` steps. Printed:
   the grid of both models, each one's best settings, training tokens/s (evaluation excluded),
   validation loss against tokens seen, and the training time grist needs to reach nanoGPT's
   final validation loss at nanoGPT's best settings, against nanoGPT's. Each lockstep run is
   the very run its tuning made (same seed, same batches; printed side by side as a check).
4. The default run (`make train`: recipes/train_default.yaml on out/default) as a subprocess:
   its wall time and final validation loss against the corpus' unigram entropy.

The floors of issue #3 -- tokens/s at least nanoGPT's, validation loss lower at every
evaluation from step 50, time to nanoGPT's final loss at most 0.7x -- are checked at the best
settings where they are printed; a miss makes the bench exit 1. Results:
bench/results/train.json (the grid, the best settings, the curves) and
bench/results/train_curves.png (the curves and the grid).

Why this is fair (issue #12): the bench used to give nanoGPT its Shakespeare recipe's 100
warmup steps -- 2 % of that recipe's 5,000 iterations, half of a 200-step run -- and its
untuned lr 1e-3 against grist's 5e-3, tuned for this config. Now both get the same grid, the
same budget, data and validation windows; each keeps its own seed (grist 0, nanoGPT 1337) at
every point of the grid, so within a model the settings are compared on the same initial
weights and batches. The grid spans nanoGPT's recipe rate (1e-3) and grist's (5e-3) at half-
decade steps; warmup 2 % is nanoGPT's own fraction, 10 % a long one. Only the learning rate
and the warmup are tuned, for both: everything else is each model's own recipe (grist: betas
0.95, its init and architecture; nanoGPT: betas 0.99, decay on >= 2-D weights, grad clip 1).
One seed per point: settings within 0.05 nats of the best ("near best") are not told apart by
this grid, and the best is simply the lowest. `--skip-tune` compares at each recipe's own
settings (grist's yaml, nanoGPT lr 1e-3 with 2 % warmup), which is not the fair comparison.
The grid costs 12 runs of 200 steps (about 2.5 minutes each on an idle 2-core CPU, several
times that when the machine is shared), plus 4 per added rate: the cache makes it a one-off.

nanoGPT here: no package on PyPI ships karpathy/nanoGPT's model faithfully (`nano-gpt` and
`buildNanoGPT` package the GPT-2 video code with a broken initialisation and import
`transformers`; `eztransformer` and `autoresearch-nano` change the architecture), and its
code may not be copied into grist. `NanoGPT` below is therefore written to nanoGPT's
specification -- model.py (GPT-2: learned positions, pre-LayerNorm, GELU, tied embeddings,
N(0, 0.02) init with residual projections scaled by 1/sqrt(2 * layers), causal
scaled_dot_product_attention, full logits and F.cross_entropy) with train.py's defaults
(bias=False, dropout 0, AdamW decay on >= 2-D weights, grad clip 1.0, random windows with
replacement) and its get_lr (warmup lr * (it + 1) / (warmup + 1), cosine to min_lr at the
last step). Where it departs from nanoGPT's recipe (config/train_shakespeare_char.py): the
learning rate and warmup come from the grid, not 1e-3 and 100 iterations; min_lr is lr/10 as
nanoGPT's comments advise; the shape and batch are the reference config; dropout stays at
train.py's 0 (the Shakespeare config's 0.2 is for many epochs over 1 MB, these runs see under
one); its batches come from a generator of their own rather than torch's global one. Its
figures are printed next to those the team measured with nanoGPT itself (about 4,200
tokens/s here, validation 5.80 after 200 steps on their benchmark text).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.corpus import SHARED_RAW
from bench.floors import finish, floor
from pipeline.atomic import read_json, write_json
from train.config import TrainConfig, load_config
from train.data import Corpus, val_set
from train.experiment import HOST_KEYS
from train.loop import Diverged, Trainer
from train.sweep import NEAR, label_runs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CORPUS = ROOT / "out" / "bench" / "corpus"
TUNE = ROOT / "out" / "bench" / "tune"
RECIPE = ROOT / "recipes" / "train_bench.yaml"
NANOGPT_REPORTED = {"tokens_per_second": 4200, "val_loss_at_200": 5.80}
MODELS = ("grist", "nanogpt")
NAMES = {"grist": "grist", "nanogpt": "nanoGPT"}

# The tuning grid, the same for both models: peak learning rates on a half-decade ladder and
# warmups as fractions of the run (2 %: nanoGPT's own, 100 of 5,000 iterations; 10 %: a long
# one), each axis grown (`tune`) while a model's best sits on its edge. Both decay to lr/10.
LRS = (1e-3, 3e-3, 1e-2)
WARMUP_FRACTIONS = (0.02, 0.10)
MIN_LR_RATIO = 0.1
EXTEND = 2  # values each axis of the grid may grow by, in all, when a best lies on its edge
# nanoGPT's recipe apart from the tuned lr and warmup (config/train_shakespeare_char.py, train.py).
NANOGPT_RECIPE = {"seed": 1337, "betas": [0.9, 0.99], "weight_decay": 0.1, "grad_clip": 1.0}
NANOGPT_UNTUNED_LR = 1e-3  # its Shakespeare recipe's, for --skip-tune
# Keys of grist's config that do not change what a tuning run computes: where files go, how
# often it logs or evaluates (a tuning run evaluates at its start and end only), and where the
# corpus lies (its content's fingerprint is in the key: a checkout elsewhere reuses the runs).
NOT_RESULT_KEYS = (*HOST_KEYS, "name", "log_every", "checkpoint_every", "eval", "corpus")


def build_corpus() -> Path:
    """The default recipe over all the shared raw text (its tokenize step holds 5 % out for validation)."""
    if not (CORPUS / "shards" / "index.json").exists():
        sources = f"sources=[{{name: shared, path: '{SHARED_RAW}/*.jsonl.gz', format: jsonl}}]"
        cmd = [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            "recipes/default.yaml",
            f"output_dir={CORPUS}",
            sources,
        ]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return CORPUS


@dataclass(frozen=True)
class Setting:
    """What the tuning varies: the peak learning rate and the warmup, as a fraction of the run."""

    lr: float
    warmup_fraction: float

    def warmup(self, steps: int) -> int:
        return max(1, round(self.warmup_fraction * steps))

    def describe(self, steps: int) -> str:
        return f"lr {self.lr:.0e}, warmup {self.warmup(steps)} steps ({percent(self.warmup_fraction)})"

    def as_dict(self, steps: int) -> dict[str, Any]:
        return {"lr": self.lr, "warmup_fraction": self.warmup_fraction, "warmup_steps": self.warmup(steps)}


class NanoGPT(nn.Module):
    """nanoGPT's GPT (model.py) at bias=False, dropout 0: see the module docstring."""

    def __init__(self, vocab: int, context: int, n_layer: int, n_head: int, n_embd: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(context, n_embd)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "ln_1": nn.LayerNorm(n_embd, bias=False),
                    "c_attn": nn.Linear(n_embd, 3 * n_embd, bias=False),
                    "attn_proj": nn.Linear(n_embd, n_embd, bias=False),
                    "ln_2": nn.LayerNorm(n_embd, bias=False),
                    "c_fc": nn.Linear(n_embd, 4 * n_embd, bias=False),
                    "mlp_proj": nn.Linear(4 * n_embd, n_embd, bias=False),
                }
            )
            for _ in range(n_layer)
        )
        self.ln_f = nn.LayerNorm(n_embd, bias=False)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.wte.weight = self.lm_head.weight
        for name, p in self.named_parameters():
            if p.ndim == 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.blocks:
            q, k, v = b["c_attn"](b["ln_1"](x)).split(x.size(-1), dim=2)
            q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + b["attn_proj"](y.transpose(1, 2).contiguous().view(B, T, -1))
            x = x + b["mlp_proj"](F.gelu(b["c_fc"](b["ln_2"](x))))
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


def nanogpt_lr(step: int, max_steps: int, lr: float, min_lr: float, warmup: int) -> float:
    """nanoGPT's get_lr: linear warmup, then cosine to min_lr at lr_decay_iters (= max_steps)."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    ratio = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


class NanoGPTRun:
    """nanoGPT's training loop on the benchmark corpus' train tokens, as one flat stream, at a
    peak learning rate and warmup; the rest is its recipe (NANOGPT_RECIPE)."""

    def __init__(
        self, cfg: TrainConfig, corpus: Corpus, val: torch.Tensor, steps: int, setting: Setting
    ) -> None:
        m = cfg.model
        torch.manual_seed(NANOGPT_RECIPE["seed"])
        self.model = NanoGPT(corpus.vocab_size, m.context, m.n_layer, m.n_head, m.n_embd)
        # Its batches come from a generator of their own (nanoGPT draws them from torch's global
        # one): a run is then the same whether it trains alone (tuning) or beside grist.
        self.generator = torch.Generator().manual_seed(NANOGPT_RECIPE["seed"])
        decay = [p for p in self.model.parameters() if p.ndim >= 2]
        rest = [p for p in self.model.parameters() if p.ndim < 2]
        groups = [
            {"params": decay, "weight_decay": NANOGPT_RECIPE["weight_decay"]},
            {"params": rest, "weight_decay": 0.0},
        ]
        self.optimizer = torch.optim.AdamW(groups, lr=setting.lr, betas=tuple(NANOGPT_RECIPE["betas"]))
        self.data = np.concatenate([np.asarray(s.tokens) for s in corpus.train])
        self.val, self.micro_batch = val, cfg.micro_batch
        self.batch, self.context, self.steps, self.step = cfg.batch_seqs, m.context, steps, 0
        self.lr, self.min_lr = setting.lr, setting.lr * MIN_LR_RATIO
        self.warmup = setting.warmup(steps)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def train_step(self) -> float:
        ix = torch.randint(len(self.data) - self.context, (self.batch,), generator=self.generator).tolist()
        x = torch.stack([torch.from_numpy(self.data[i : i + self.context].astype(np.int64)) for i in ix])
        y = torch.stack(
            [torch.from_numpy(self.data[i + 1 : i + 1 + self.context].astype(np.int64)) for i in ix]
        )
        for group in self.optimizer.param_groups:
            group["lr"] = nanogpt_lr(self.step, self.steps, self.lr, self.min_lr, self.warmup)
        loss = self.model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), NANOGPT_RECIPE["grad_clip"])
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return loss.item()

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean loss over grist's validation windows (all of one length, so the mean of the
        windows' means is the mean over tokens, as grist computes it)."""
        self.model.eval()
        rows = self.val.split(self.micro_batch)
        total = sum(self.model(r[:, :-1], r[:, 1:]).item() * r.size(0) for r in rows)
        self.model.train()
        return total / self.val.size(0)


class GristRun:
    """grist's Trainer driven one step at a time (no checkpoints, no logs but skipped steps')."""

    def __init__(self, cfg: TrainConfig) -> None:
        out = Path(cfg.out_dir)
        shutil.rmtree(out, ignore_errors=True)  # a scratch directory: skipped steps are logged there
        out.mkdir(parents=True)
        self.trainer = Trainer(cfg)

    def num_params(self) -> int:
        return self.trainer.model.num_params()

    def train_step(self) -> float:
        return self.trainer.train_step()[0]

    def evaluate(self) -> float:
        return self.trainer.evaluate()[0]


class Bench:
    """What every run shares: grist's reference config, the corpus and grist's validation windows."""

    def __init__(self) -> None:
        self.cfg = load_config(RECIPE, [f"corpus={CORPUS}"])
        self.corpus = Corpus(CORPUS)
        self.val = val_set(self.corpus.val, self.cfg.model.context, self.cfg.eval.val_tokens).windows

    def grist_config(self, steps: int, setting: Setting, out_dir: Path) -> TrainConfig:
        overrides = [
            f"corpus={CORPUS}",
            f"out_dir={out_dir}",
            f"max_steps={steps}",
            f"optim.lr={setting.lr!r}",
            f"optim.warmup_steps={setting.warmup(steps)}",
            f"optim.min_lr_ratio={MIN_LR_RATIO!r}",
        ]
        return load_config(RECIPE, overrides)

    def start(self, model: str, steps: int, setting: Setting, out_dir: Path) -> GristRun | NanoGPTRun:
        if model == "grist":
            return GristRun(self.grist_config(steps, setting, out_dir))
        return NanoGPTRun(self.cfg, self.corpus, self.val, steps, setting)

    def untuned(self, steps: int) -> dict[str, Setting]:
        """Each model's own recipe, for --skip-tune: grist's train_bench.yaml, and nanoGPT's lr
        with its warmup fraction (2 %)."""
        optim = self.cfg.optim
        return {
            "grist": Setting(optim.lr, optim.warmup_steps / self.cfg.max_steps),
            "nanogpt": Setting(NANOGPT_UNTUNED_LR, WARMUP_FRACTIONS[0]),
        }

    def key(self, model: str, steps: int, setting: Setting) -> dict[str, Any]:
        """Everything a tuning run's result depends on."""
        cfg = self.grist_config(steps, setting, TUNE / "scratch").model_dump(mode="json")
        if model == "nanogpt":  # of grist's config, nanoGPT uses the shape, the batch and the val set
            cfg = {k: cfg[k] for k in ("model", "batch_tokens", "micro_batch")} | {"recipe": NANOGPT_RECIPE}
        else:
            cfg = {k: v for k, v in cfg.items() if k not in NOT_RESULT_KEYS}
        cfg["val_tokens"] = self.cfg.eval.val_tokens
        return tune_key(model, steps, setting, cfg, self.corpus.fingerprint)


def code_digest(model: str) -> str:
    """The code a tuning run of `model` executes, beyond torch: grist's training modules, or the
    NanoGPT classes here; both the validation set's code and the run's own."""
    files = ["train/data.py"] + (
        ["train/model.py", "train/optim.py", "train/loop.py"] if model == "grist" else []
    )
    parts = [(ROOT / f).read_text(encoding="utf-8") for f in files]
    objects = [tune_run] + ([GristRun] if model == "grist" else [NanoGPT, NanoGPTRun, nanogpt_lr])
    parts += [inspect.getsource(o) for o in objects]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def tune_key(
    model: str, steps: int, setting: Setting, config: dict[str, Any], corpus: dict[str, str]
) -> dict[str, Any]:
    return {
        "model": model,
        "steps": steps,
        **setting.as_dict(steps),
        "min_lr_ratio": MIN_LR_RATIO,
        "config": config,
        "corpus": corpus,
        "code": code_digest(model),
        "torch": torch.__version__,
    }


def cache_path(key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return TUNE / f"{key['model']}-lr{key['lr']:.0e}-warmup{key['warmup_steps']}-{digest}.json"


def tune_run(bench: Bench, model: str, steps: int, setting: Setting, tag: str) -> dict[str, Any]:
    """One run of the grid, scored by its final validation loss; `result` as train/sweep.py's
    labels read it (status, final_val_loss, curves of [tokens, loss])."""
    run = bench.start(model, steps, setting, TUNE / "scratch")
    tokens = bench.cfg.batch_tokens
    val = [[0, run.evaluate()]]
    train: list[list[float]] = []
    status, seconds = "finished", 0.0
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        try:
            loss = run.train_step()
        except Diverged as e:  # grist stops after max_bad_steps skipped steps in a row
            status = "diverged"
            print(f"{tag} diverged: {e}", flush=True)
            break
        seconds += time.perf_counter() - t0
        train.append([step * tokens, loss])
        if step % 50 == 0 and step < steps:
            print(f"{tag} step {step}/{steps}: train loss {loss:.4f} ({seconds:.0f} s)", flush=True)
    val.append([len(train) * tokens, run.evaluate()])
    return {
        "status": status,
        "final_val_loss": val[-1][1],
        "train_seconds": seconds,
        "curves": {"train": train, "val": val},
    }


def half_decade(lr: float, up: bool) -> float:
    """The next learning rate on the 1, 3, 10, 30, ... ladder above (or below) `lr`."""
    h = round(2 * math.log10(lr)) + (1 if up else -1)
    return float(f"{(3 if h % 2 else 1) * 10.0 ** (h // 2):.0e}")


def next_warmup(fraction: float, up: bool) -> float:
    """The next warmup fraction, 2.5 times longer (at most half the run) or shorter."""
    return round(min(0.5, fraction * 2.5) if up else fraction / 2.5, 6)


def pick_best(
    lrs: list[float], fractions: list[float], runs: dict[tuple[float, float], dict[str, Any]]
) -> tuple[dict[tuple[float, float], str], tuple[float, float] | None]:
    """One model's grid labelled as train/sweep.py labels a learning-rate sweep (diverged, near
    best within NEAR nats of the best, else too low or too high by its learning rate against the
    best's; at the best's own learning rate, "other warmup"), and the best (lr, warmup fraction):
    the lowest final loss of the runs that did not diverge, None when all did."""
    cells = [(lr, f) for lr in lrs for f in fractions]
    labels, best = label_runs([lr for lr, _ in cells], [runs[c] for c in cells], NEAR)
    if best is not None:
        labels = [
            "other warmup" if lab in ("too low", "too high") and lr == cells[best][0] else lab
            for (lr, _), lab in zip(cells, labels, strict=True)
        ]
    return dict(zip(cells, labels, strict=True)), None if best is None else cells[best]


def edges(values: list[float], picks: list[float | None]) -> list[bool]:
    """Directions (up = True) in which an axis of the grid should grow: a best at the axis'
    lowest or highest value may have a better one beyond; None (a model that diverged
    everywhere) asks for lower."""
    grow = set()
    for pick in picks:
        if pick is None or pick == min(values):
            grow.add(False)
        if pick is not None and pick == max(values):
            grow.add(True)
    return sorted(grow)


def tune(
    bench: Bench, steps: int, lrs: list[float], fractions: list[float], extend: int, restart: bool
) -> dict[str, Any]:
    """Both models through the same grid at `steps`; each finished run cached in out/bench/tune/.
    Each axis grows at an edge where a model's best lies, by at most `extend` values."""
    lrs, fractions, results = sorted(lrs), sorted(fractions), {m: {} for m in MODELS}
    added, started = {"lr": 0, "warmup": 0}, time.perf_counter()
    TUNE.mkdir(parents=True, exist_ok=True)
    print(
        f"tuning: {len(MODELS)} models x {len(lrs)} learning rates x {len(fractions)} warmups, "
        f"{steps} steps each; finished runs are kept in {TUNE}",
        flush=True,
    )
    while True:
        cells = [(m, lr, f) for lr in lrs for f in fractions for m in MODELS]
        for model, lr, fraction in cells:
            if (lr, fraction) in results[model]:
                continue
            i = sum(map(len, results.values())) + 1
            setting = Setting(lr, fraction)
            key = bench.key(model, steps, setting)
            path = cache_path(key)
            tag = f"[tune {i}/{len(cells)}] {NAMES[model]} {setting.describe(steps)}:"
            if path.exists() and not restart:
                result = read_json(path)["result"]
                print(
                    f"{tag} final val loss {result['final_val_loss']:.4f} (kept from {path.name})", flush=True
                )
            else:
                t0 = time.perf_counter()
                result = tune_run(bench, model, steps, setting, tag)
                write_json(path, {"key": key, "result": result})
                print(
                    f"{tag} final val loss {result['final_val_loss']:.4f}"
                    f"{' (diverged)' if result['status'] == 'diverged' else ''} "
                    f"({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
            results[model][(lr, fraction)] = result | {"cache": path.name}
        picks = {m: pick_best(lrs, fractions, results[m]) for m in MODELS}
        bests = [best for _, best in picks.values()]
        grow_lr = edges(lrs, [b and b[0] for b in bests])[: extend - added["lr"]]
        grow_warmup = edges(fractions, [b[1] for b in bests if b])[: extend - added["warmup"]]
        if not grow_lr and not grow_warmup:
            break
        for up in grow_lr:
            new = half_decade(max(lrs) if up else min(lrs), up)
            print(f"a best lies at the highest or lowest lr: adding lr {new:.0e}", flush=True)
            lrs.append(new)
            added["lr"] += 1
        for up in grow_warmup:
            new = next_warmup(max(fractions) if up else min(fractions), up)
            print(f"a best lies at the longest or shortest warmup: adding warmup {percent(new)}", flush=True)
            fractions.append(new)
            added["warmup"] += 1
        lrs.sort()
        fractions.sort()
    runs = [
        {
            "model": m,
            **Setting(lr, f).as_dict(steps),
            "status": results[m][(lr, f)]["status"],
            "final_val_loss": _finite(results[m][(lr, f)]["final_val_loss"]),
            "label": picks[m][0][(lr, f)],
            "train_seconds": results[m][(lr, f)]["train_seconds"],
            "cache": results[m][(lr, f)]["cache"],
        }
        for m in MODELS
        for lr in lrs
        for f in fractions
    ]
    best = {}
    for m in MODELS:
        cell = picks[m][1]
        if cell is None:
            raise SystemExit(f"tuning: every {NAMES[m]} run diverged; lower the learning rates (--lrs)")
        best[m] = Setting(*cell).as_dict(steps) | {"final_val_loss": results[m][cell]["final_val_loss"]}
    on_edge = {
        m: [
            axis
            for axis, value, values in (
                ("lr", best[m]["lr"], lrs),
                ("warmup", best[m]["warmup_fraction"], fractions),
            )
            if value in (min(values), max(values))
        ]
        for m in MODELS
    }
    return {
        "steps": steps,
        "tokens": steps * bench.cfg.batch_tokens,
        "lrs": lrs,
        "warmup_fractions": fractions,
        "min_lr_ratio": MIN_LR_RATIO,
        "near": NEAR,
        "runs": runs,
        "best": best,
        "best_on_edge": on_edge,
        "wall_seconds": time.perf_counter() - started,
    }


def percent(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def time_to_reach(target: float, points: list[tuple[float, float]]) -> float | None:
    """Training seconds at which the (seconds, val loss) curve first reaches `target`, linearly
    interpolated between evaluations."""
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if v1 <= target:
            return t1 if v0 == v1 else t0 + (t1 - t0) * (v0 - target) / (v0 - v1)
    return None


def side_by_side(bench: Bench, steps: int, eval_every: int, settings: dict[str, Setting]) -> dict[str, Any]:
    """Both models at their settings in lockstep, one step of each in turn (the same machine load),
    evaluated every `eval_every` steps on the same validation windows."""
    runs = {m: bench.start(m, steps, settings[m], ROOT / "out" / "bench" / "train") for m in MODELS}
    tokens_per_step = bench.cfg.batch_tokens
    seconds = dict.fromkeys(MODELS, 0.0)
    started = time.perf_counter()
    curve = [{"step": 0, "tokens": 0} | {m: runs[m].evaluate() for m in MODELS}]
    curve[0] |= {f"{m}_seconds": 0.0 for m in MODELS}
    for step in range(1, steps + 1):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run.train_step()
            seconds[name] += time.perf_counter() - t0
        if step % eval_every == 0 or step == steps:
            point = {"step": step, "tokens": step * tokens_per_step}
            point |= {m: runs[m].evaluate() for m in MODELS}
            point |= {f"{m}_seconds": seconds[m] for m in MODELS}
            curve.append(point)
            print(
                f"step {step:>4} | tokens {point['tokens']:>9,} | val loss grist {point['grist']:.4f} "
                f"nanoGPT {point['nanogpt']:.4f} | train s grist {seconds['grist']:.1f} "
                f"nanoGPT {seconds['nanogpt']:.1f}",
                flush=True,
            )
    target = curve[-1]["nanogpt"]
    reach = time_to_reach(target, [(p["grist_seconds"], p["grist"]) for p in curve])
    tokens = steps * tokens_per_step
    return {
        "settings": {m: settings[m].as_dict(steps) for m in MODELS},
        "curve": curve,
        "tokens_per_second": {k: tokens / v for k, v in seconds.items()},
        "params": {m: runs[m].num_params() for m in MODELS},
        "target_val_loss": target,
        "seconds_to_target": {"grist": reach, "nanogpt": seconds["nanogpt"]},
        "unigram_entropy": bench.corpus.unigram_entropy(),
        "train_tokens": bench.corpus.train_tokens,
        "val_tokens": bench.val.size(0) * bench.cfg.model.context,
        "wall_seconds": time.perf_counter() - started,
    }


def default_run() -> dict[str, Any]:
    """`make train` as the user runs it, from an empty output directory."""
    out = ROOT / "out" / "bench" / "train-default"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    if not (ROOT / "out" / "default" / "shards" / "index.json").exists():  # what `make corpus` does
        cmd = [sys.executable, "-m", "pipeline", "run", "recipes/default.yaml"]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "train", "recipes/train_default.yaml", f"out_dir={out}"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((out / "summary.json").read_text())
    evals = [
        r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "eval"
    ]
    flagged = [r["step"] for r in evals if r["overfitting"]]
    return {"wall_seconds": time.perf_counter() - t0, "overfitting_flagged_at": flagged, **summary}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tuning = result.get("tuning")
    curve = result["curve"][1:]
    fig, axes = plt.subplots(1, 3 if tuning else 2, figsize=(16 if tuning else 11, 4), layout="constrained")
    for name, style in (("grist", "-o"), ("nanogpt", "--s")):
        s = result["settings"][name]
        label = f"{NAMES[name]} (lr {s['lr']:.0e}, warmup {s['warmup_steps']})"
        axes[0].plot([p["tokens"] for p in curve], [p[name] for p in curve], style, ms=3, label=label)
        axes[1].plot(
            [p[f"{name}_seconds"] for p in curve], [p[name] for p in curve], style, ms=3, label=label
        )
    for ax, xlabel in ((axes[0], "tokens seen"), (axes[1], "training seconds")):
        ax.axhline(result["target_val_loss"], color="grey", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss")
        ax.grid(alpha=0.3)
        ax.legend()
    if tuning:
        ax = axes[2]
        ceiling = result["curve"][0]["nanogpt"]
        for color, model in (("C0", "grist"), ("C1", "nanogpt")):
            for style, fraction in zip(("-o", "--s", ":^", "-.v"), tuning["warmup_fractions"], strict=False):
                rows = [r for r in tuning["runs"] if r["model"] == model and r["warmup_fraction"] == fraction]
                losses = [r["final_val_loss"] for r in rows]
                shown = [
                    min(x, ceiling) if x is not None and r["status"] != "diverged" else ceiling
                    for x, r in zip(losses, rows, strict=True)
                ]
                warmup = rows[0]["warmup_steps"]
                ax.plot(
                    [r["lr"] for r in rows],
                    shown,
                    style,
                    color=color,
                    ms=4,
                    label=f"{NAMES[model]}, warmup {warmup} ({percent(fraction)})",
                )
            b = tuning["best"][model]
            ax.scatter([b["lr"]], [b["final_val_loss"]], s=150, facecolors="none", edgecolors=color, zorder=3)
        ax.set_xscale("log")
        ax.set_xlabel("peak learning rate")
        ax.set_ylabel(f"final validation loss after {tuning['steps']} steps")
        ax.set_title("tuning grid (circled: each model's best)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle("grist vs nanoGPT at the reference config (CPU, float32), each at its best lr and warmup")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_tuning(tuning: dict[str, Any]) -> None:
    lrs, fractions = tuning["lrs"], tuning["warmup_fractions"]
    print(
        f"\ntuning grid: final validation loss after {tuning['steps']} steps "
        f"({tuning['tokens']:,} tokens), cosine to lr x {tuning['min_lr_ratio']:g}, one seed per model "
        f"(* best, ~ within {tuning['near']} nats of it, ! diverged)"
    )
    print(f"{'model':<8} {'warmup':<12}" + "".join(f"{lr:>11.0e}" for lr in lrs))
    marks = {"near best": "~", "diverged": "!"}
    for model in MODELS:
        best = tuning["best"][model]
        for fraction in fractions:
            rows = {
                r["lr"]: r for r in tuning["runs"] if r["model"] == model and r["warmup_fraction"] == fraction
            }
            warmup = f"{next(iter(rows.values()))['warmup_steps']} ({percent(fraction)})"
            cells = []
            for lr in lrs:
                r = rows[lr]
                loss = "nan" if r["final_val_loss"] is None else f"{r['final_val_loss']:.4f}"
                is_best = lr == best["lr"] and fraction == best["warmup_fraction"]
                cells.append(f"{loss}{'*' if is_best else marks.get(r['label'], ' ')}".rjust(11))
            print(f"{NAMES[model]:<8} {warmup:<12}" + "".join(cells))
    for model in MODELS:
        b = tuning["best"][model]
        axes = " and ".join(tuning["best_on_edge"][model])
        edge = f" (at the grid's edge in {axes}: a better setting may lie beyond)" if axes else ""
        print(
            f"best {NAMES[model]}: lr {b['lr']:.0e}, warmup {b['warmup_steps']} steps "
            f"({percent(b['warmup_fraction'])}): {b['final_val_loss']:.4f}{edge}"
        )
    print(f"tuning wall time {tuning['wall_seconds'] / 60:.1f} min (kept runs are not re-run)")


def parse_floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="steps of the side-by-side comparison")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--tune-steps", type=int, help="steps of each tuning run (default: --steps)")
    parser.add_argument("--lrs", type=parse_floats, default=list(LRS), help="peak learning rates, a,b,c")
    parser.add_argument(
        "--warmups", type=parse_floats, default=list(WARMUP_FRACTIONS), help="warmups as fractions of the run"
    )
    parser.add_argument(
        "--extend", type=int, default=EXTEND, help="values each axis (lr, warmup) may add at its edges"
    )
    parser.add_argument("--restart-tune", action="store_true", help="re-run the grid's kept runs too")
    parser.add_argument(
        "--skip-tune",
        action="store_true",
        help="compare at each recipe's own settings (grist's yaml; nanoGPT lr 1e-3, 2 %% warmup): not fair",
    )
    parser.add_argument("--skip-default", action="store_true", help="skip the 5-minute default run")
    args = parser.parse_args()
    build_corpus()
    bench = Bench()
    tuning = None
    if args.skip_tune:
        settings = bench.untuned(args.steps)
    else:
        tune_steps = args.tune_steps or args.steps
        tuning = tune(bench, tune_steps, args.lrs, args.warmups, args.extend, args.restart_tune)
        settings = {m: Setting(tuning["best"][m]["lr"], tuning["best"][m]["warmup_fraction"]) for m in MODELS}
        print_tuning(tuning)
    print(
        "\nside by side at "
        + (
            "each recipe's own, untuned settings (--skip-tune: not the fair comparison)"
            if args.skip_tune
            else "each model's best settings"
        )
        + ": "
        + "; ".join(f"{NAMES[m]} {settings[m].describe(args.steps)}" for m in MODELS),
        flush=True,
    )
    result = side_by_side(bench, args.steps, args.eval_every, settings)
    if tuning is not None:
        result["tuning"] = tuning
    if not args.skip_default:
        result["default_run"] = default_run()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, RESULTS / "train_curves.png")

    if tuning is not None:
        print_tuning(tuning)
    tps, reach, final = result["tokens_per_second"], result["seconds_to_target"], result["curve"][-1]
    ratio = tps["grist"] / tps["nanogpt"]
    after_warmup = [p for p in result["curve"] if p["step"] >= 50]
    lower = all(p["grist"] < p["nanogpt"] for p in after_warmup)
    time_ratio = reach["grist"] / reach["nanogpt"] if reach["grist"] is not None else math.inf
    verdict = floor("val loss lower than nanoGPT at every eval (1 = yes)", float(lower), at_least=1)
    which = "the recipes' own, untuned" if tuning is None else "each model's best"
    print(
        f"\ncomparison at {which} settings: "
        + "; ".join(f"{NAMES[m]} {settings[m].describe(args.steps)}" for m in MODELS)
    )
    if tuning is not None and tuning["steps"] == args.steps:
        same = ", ".join(
            f"{NAMES[m]} {final[m]:.4f} (tuning run {tuning['best'][m]['final_val_loss']:.4f})"
            for m in MODELS
        )
        print(f"final val loss side by side vs the same settings' tuning run: {same}")
    print(
        f"corpus {result['train_tokens']:,} train / {result['val_tokens']:,} val tokens; "
        f"unigram entropy {result['unigram_entropy']:.4f}"
    )
    print(f"params: grist {result['params']['grist']:,}, nanoGPT {result['params']['nanogpt']:,}")
    print(
        f"tokens/s: grist {tps['grist']:,.0f}, nanoGPT {tps['nanogpt']:,.0f} (reported here "
        f"{NANOGPT_REPORTED['tokens_per_second']:,}): {ratio:.2f}x  "
        f"{floor('tokens/s vs nanoGPT', ratio, at_least=1.0)}"
    )
    print(
        f"val loss at {final['tokens']:,} tokens: grist {final['grist']:.4f}, nanoGPT {final['nanogpt']:.4f} "
        f"(reported {NANOGPT_REPORTED['val_loss_at_200']}); lower at every eval from step 50: {verdict}"
    )
    higher = [p["step"] for p in after_warmup if p["grist"] >= p["nanogpt"]]
    if higher:
        print(f"  grist not lower at steps {higher}")
    grist_reach = "never" if reach["grist"] is None else f"{reach['grist']:.1f} s"
    print(
        f"time to nanoGPT's final val loss {result['target_val_loss']:.4f}: grist {grist_reach}, "
        f"nanoGPT {reach['nanogpt']:.1f} s: {time_ratio:.2f}x  "
        f"{floor('time to nanoGPT loss ratio', time_ratio, at_most=0.7)}"
    )
    print(f"side-by-side wall time {result['wall_seconds'] / 60:.1f} min")
    if "default_run" in result:
        d = result["default_run"]
        print(
            f"default run (make train): {d['wall_seconds']:.0f} s wall "
            f"{floor('default run seconds', d['wall_seconds'], at_most=360)}, {d['steps']} steps, "
            "final val loss "
            f"{d['final_val_loss']:.4f} (best {d['best_val_loss']:.4f}) vs unigram entropy "
            f"{d['unigram_entropy']:.4f}; overfitting flagged at steps "
            f"{d['overfitting_flagged_at'] or 'none'}; "
            f"{d['stop_reason']}"
        )
    print(f"wrote {RESULTS / 'train.json'} and {RESULTS / 'train_curves.png'}")
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
