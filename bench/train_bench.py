"""`make bench` (training): grist's trainer side by side with nanoGPT, and the default run.

1. The benchmark corpus: the default recipe (same filters, BPE 8192) run on all of the team's
   shared raw text, about 1.1 M training tokens, built once into out/bench/corpus.
2. grist (recipes/train_bench.yaml) and nanoGPT at the reference config -- 4 layers, 4 heads,
   width 256, context 256, 16 sequences (4,096 tokens) per step, vocab 8192, 200 steps, CPU,
   float32 -- trained in one process on the same tokens, one step of each in turn, so both
   see the same machine load (other processes on a 2-core machine swing timings by 2x or
   more). Both are evaluated every `--eval-every` steps on grist's fixed validation windows.
   Printed: training tokens/s (evaluation excluded), validation loss against tokens seen, and
   the training time each needs to reach nanoGPT's final validation loss.
3. The default run (`make train`: recipes/train_default.yaml on out/default) as a subprocess:
   its wall time and final validation loss against the corpus' unigram entropy.

The floors of issue #3 are checked where they are printed; a miss makes the bench exit 1.
Results: bench/results/train.json and bench/results/train_curves.png.

nanoGPT here: no package on PyPI ships karpathy/nanoGPT's model faithfully (`nano-gpt` and
`buildNanoGPT` package the GPT-2 video code with a broken initialisation and import
`transformers`; `eztransformer` and `autoresearch-nano` change the architecture), and its
code may not be copied into grist. `NanoGPT` below is therefore written to nanoGPT's
specification -- model.py (GPT-2: learned positions, pre-LayerNorm, GELU, tied embeddings,
N(0, 0.02) init with residual projections scaled by 1/sqrt(2 * layers), causal
scaled_dot_product_attention, full logits and F.cross_entropy) with train.py's defaults
(bias=False, dropout 0, AdamW decay on >= 2-D weights, grad clip 1.0, random windows with
replacement) and the schedule of its CPU recipe config/train_shakespeare_char.py (lr 1e-3,
beta2 0.99, 100 warmup steps, cosine to 1e-4 at the last step). Its figures are printed next
to those the team measured with nanoGPT itself (about 4,200 tokens/s here, validation 5.80
after 200 steps on their benchmark text).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.corpus import SHARED_RAW
from bench.floors import finish, floor
from train.config import load_config
from train.loop import Trainer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CORPUS = ROOT / "out" / "bench" / "corpus"
NANOGPT_REPORTED = {"tokens_per_second": 4200, "val_loss_at_200": 5.80}


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


def nanogpt_lr(step: int, max_steps: int, lr: float = 1e-3, min_lr: float = 1e-4, warmup: int = 100) -> float:
    """nanoGPT's get_lr: linear warmup, then cosine to min_lr at lr_decay_iters (= max_steps)."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    ratio = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


class NanoGPTRun:
    """nanoGPT's training loop on the benchmark corpus' train tokens, as one flat stream."""

    def __init__(self, trainer: Trainer, steps: int) -> None:
        cfg = trainer.cfg
        torch.manual_seed(1337)
        m = cfg.model
        self.model = NanoGPT(trainer.corpus.vocab_size, m.context, m.n_layer, m.n_head, m.n_embd)
        decay = [p for p in self.model.parameters() if p.ndim >= 2]
        rest = [p for p in self.model.parameters() if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99))
        self.data = np.concatenate([np.asarray(s.tokens) for s in trainer.corpus.train])
        self.batch, self.context, self.steps, self.step = cfg.batch_seqs, m.context, steps, 0

    def train_step(self) -> float:
        ix = torch.randint(len(self.data) - self.context, (self.batch,)).tolist()
        x = torch.stack([torch.from_numpy(self.data[i : i + self.context].astype(np.int64)) for i in ix])
        y = torch.stack(
            [torch.from_numpy(self.data[i + 1 : i + 1 + self.context].astype(np.int64)) for i in ix]
        )
        for group in self.optimizer.param_groups:
            group["lr"] = nanogpt_lr(self.step, self.steps)
        loss = self.model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return loss.item()

    @torch.no_grad()
    def evaluate(self, val: torch.Tensor, micro_batch: int) -> float:
        self.model.eval()
        total = sum(self.model(r[:, :-1], r[:, 1:]).item() * r.size(0) for r in val.split(micro_batch))
        self.model.train()
        return total / val.size(0)


def time_to_reach(target: float, points: list[tuple[float, float]]) -> float | None:
    """Training seconds at which the (seconds, val loss) curve first reaches `target`, linearly
    interpolated between evaluations."""
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if v1 <= target:
            return t1 if v0 == v1 else t0 + (t1 - t0) * (v0 - target) / (v0 - v1)
    return None


def side_by_side(steps: int, eval_every: int) -> dict[str, Any]:
    cfg = load_config(ROOT / "recipes" / "train_bench.yaml", [f"corpus={CORPUS}", f"max_steps={steps}"])
    grist = Trainer(cfg)
    nano = NanoGPTRun(grist, steps)
    seconds = {"grist": 0.0, "nanogpt": 0.0}
    curve = [
        {
            "step": 0,
            "tokens": 0,
            "grist": grist.evaluate()[0],
            "nanogpt": nano.evaluate(grist.val.windows, 16),
            "grist_seconds": 0.0,
            "nanogpt_seconds": 0.0,
        }
    ]
    for step in range(1, steps + 1):
        for name, run in (("grist", grist), ("nanogpt", nano)):
            t0 = time.perf_counter()
            run.train_step()
            seconds[name] += time.perf_counter() - t0
        if step % eval_every == 0 or step == steps:
            point = {
                "step": step,
                "tokens": step * cfg.batch_tokens,
                "grist": grist.evaluate()[0],
                "nanogpt": nano.evaluate(grist.val.windows, cfg.micro_batch),
                "grist_seconds": seconds["grist"],
                "nanogpt_seconds": seconds["nanogpt"],
            }
            curve.append(point)
            print(
                f"step {step:>4} | tokens {point['tokens']:>9,} | val loss grist {point['grist']:.4f} "
                f"nanoGPT {point['nanogpt']:.4f} | train s grist {seconds['grist']:.1f} "
                f"nanoGPT {seconds['nanogpt']:.1f}",
                flush=True,
            )
    target = curve[-1]["nanogpt"]
    reach = time_to_reach(target, [(p["grist_seconds"], p["grist"]) for p in curve])
    tokens = steps * cfg.batch_tokens
    return {
        "curve": curve,
        "tokens_per_second": {k: tokens / v for k, v in seconds.items()},
        "params": {
            "grist": grist.model.num_params(),
            "nanogpt": sum(p.numel() for p in nano.model.parameters()),
        },
        "target_val_loss": target,
        "seconds_to_target": {"grist": reach, "nanogpt": seconds["nanogpt"]},
        "unigram_entropy": grist.corpus.unigram_entropy(),
        "train_tokens": grist.corpus.train_tokens,
        "val_tokens": grist.val.windows.size(0) * cfg.model.context,
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

    curve = result["curve"][1:]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for name, style in (("grist", "-o"), ("nanogpt", "--s")):
        a.plot([p["tokens"] for p in curve], [p[name] for p in curve], style, ms=3, label=name)
        b.plot([p[f"{name}_seconds"] for p in curve], [p[name] for p in curve], style, ms=3, label=name)
    for ax, xlabel in ((a, "tokens seen"), (b, "training seconds")):
        ax.axhline(result["target_val_loss"], color="grey", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("grist vs nanoGPT at the reference config (CPU, float32)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--skip-default", action="store_true", help="skip the 5-minute default run")
    args = parser.parse_args()
    build_corpus()
    result = side_by_side(args.steps, args.eval_every)
    if not args.skip_default:
        result["default_run"] = default_run()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, RESULTS / "train_curves.png")

    tps, reach, final = result["tokens_per_second"], result["seconds_to_target"], result["curve"][-1]
    ratio = tps["grist"] / tps["nanogpt"]
    after_warmup = [p for p in result["curve"] if p["step"] >= 50]
    lower = all(p["grist"] < p["nanogpt"] for p in after_warmup)
    time_ratio = reach["grist"] / reach["nanogpt"] if reach["grist"] is not None else math.inf
    print(
        f"\ncorpus {result['train_tokens']:,} train / {result['val_tokens']:,} val tokens; "
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
        f"(reported {NANOGPT_REPORTED['val_loss_at_200']}); lower at every eval from step 50: "
        f"{floor('val loss lower than nanoGPT at every eval (1 = yes)', float(lower), at_least=1)}"
    )
    grist_reach = "never" if reach["grist"] is None else f"{reach['grist']:.1f} s"
    print(
        f"time to nanoGPT's final val loss {result['target_val_loss']:.4f}: grist {grist_reach}, "
        f"nanoGPT {reach['nanogpt']:.1f} s: {time_ratio:.2f}x  "
        f"{floor('time to nanoGPT loss ratio', time_ratio, at_most=0.7)}"
    )
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
