"""The training loop: steps, evaluation, early stopping, checkpoints, logs, on 1 or N processes.

One `Trainer` per process. Under `torchrun` each process holds a DDP replica, reads its own part
of every global batch and all-reduces gradients (NCCL on GPUs, gloo on CPUs); only rank 0 writes
files and logs. What the loop guarantees:

* Determinism: the seed fixes the initial weights and the data order; a checkpoint holds the
  data position and RNG states, so a killed run resumed with `--resume` continues with the very
  batches and updates an uninterrupted run would have made (bit for bit on CPU in float32).
* A non-finite loss or gradient norm skips the update (the step and its batch still count) and
  is logged; `max_bad_steps` in a row stop the run with an error, the last checkpoint untouched.
* Evaluation every `eval.every` steps on a fixed validation set: loss and bits per byte, the best
  model kept in best.pt, patience early stopping, and a flag when validation rises while
  training loss falls (overfitting).
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from pipeline.atomic import atomic_path, crash_point
from pipeline.tokenizer import SEPARATOR, Encoder
from train.checkpoint import BEST, LAST, CheckpointError, config_differences, load_checkpoint, save_checkpoint
from train.config import TrainConfig
from train.data import Corpus, CorpusError, TrainWindows, val_set
from train.model import GPT
from train.optim import build_optimizer, build_scheduler
from train.plots import plot_curves, print_summary

METRICS = "metrics.jsonl"
CURVES = "loss_curves.png"
# Keys a resumed run must share with its checkpoint: they decide the weights, the data order and
# the updates (max_steps too: the learning-rate schedule is laid out over it, so a changed one
# would make the rate jump). Anything else (eval cadence, patience, logging, device) may change.
RESUME_KEYS = (
    "seed",
    "model",
    "optim",
    "batch_tokens",
    "bos_aligned",
    "max_train_tokens",
    "max_steps",
    "spike_sigma",
    "spike_window",
)
SPIKE_MIN_HISTORY = 32  # steps of loss history before a spike can be called

# Dense bf16 peak FLOP/s by GPU name, for MFU. A name not listed reports MFU as n/a, never a guess.
GPU_PEAK_BF16 = {
    "H100 SXM": 989e12,
    "H100 NVL": 835e12,
    "H100 PCIe": 756e12,
    "H200": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
}


class TrainError(Exception):
    """A run cannot start or continue; the message is complete (print it, no traceback)."""


class Diverged(TrainError):
    """`max_bad_steps` steps in a row were skipped: an outcome of the settings (a learning-rate
    sweep expects it at its top end), not a mistake in them, so experiments record it as a result."""


def gpu_peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    if device.type != "cuda" or dtype != torch.bfloat16:
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in GPU_PEAK_BF16.items() if key in name), None)


def _fmt_duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


class Trainer:
    def __init__(self, cfg: TrainConfig, *, resume: bool = False) -> None:
        self.cfg = cfg
        self.device = self._device()
        self.rank, self.world = self._init_distributed()
        self.main = self.rank == 0
        self.dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}.get(
            cfg.dtype, torch.bfloat16 if self.device.type == "cuda" else torch.float32
        )
        self.grad_accum = cfg.grad_accum(self.world)
        self.out_dir = Path(cfg.out_dir)

        self.corpus = Corpus(cfg.corpus)
        if cfg.model.vocab_size not in (None, self.corpus.vocab_size):
            raise CorpusError(
                f"{cfg.corpus}: the corpus' vocabulary has {self.corpus.vocab_size} tokens, the model "
                f"(model.vocab_size) {cfg.model.vocab_size}: train on the corpus the model was made for"
            )
        model_cfg = cfg.model.model_copy(update={"vocab_size": self.corpus.vocab_size})
        torch.manual_seed(cfg.seed)
        self.model = GPT(model_cfg).to(self.device)
        self.optimizer = build_optimizer(self.model, cfg.optim, self.device.type)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, cfg.max_steps)
        self.windows = TrainWindows(
            self.corpus.train, model_cfg.context, cfg.bos_aligned, cfg.seed, cfg.max_train_tokens
        )
        self.val = val_set(self.corpus.val, model_cfg.context, cfg.eval.val_tokens)
        self.token_bytes = self.corpus.token_bytes().to(self.device)
        self.encoder = Encoder(self.corpus.tokenizer) if self.main and cfg.eval.sample_tokens else None

        self.step = 0  # optimizer steps taken (skipped ones included)
        self.position = 0  # training windows consumed, all processes together
        self.best_val = math.inf
        self.best_step = -1
        self.evals_since_best = 0
        self.bad_steps = 0  # skipped steps in a row (non-finite or spikes): max_bad_steps stops the run
        self.skipped = {"non_finite": 0, "spike": 0}
        self.recent_losses: list[float] = []  # the last spike_window finite losses
        # The log's running means, part of the checkpoint so a resumed run logs what an
        # uninterrupted one would: losses since the last log line and since the last evaluation.
        self.interval_losses: list[float] = []
        self.interval_steps = 0
        self.interval_seconds = 0.0
        self.eval_losses: list[float] = []
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        if self.main:  # a checkpoint write killed half way leaves its temporary file
            for stale in self.out_dir.glob(".tmp-*"):
                stale.unlink(missing_ok=True)
        if resume:
            self._resume()
        elif self.main and (self.out_dir / LAST).exists():
            raise TrainError(
                f"{self.out_dir} already holds a run ({LAST}): pass --resume to continue it, "
                "or choose another out_dir"
            )

        self.compiled = cfg.compile if isinstance(cfg.compile, bool) else self.device.type == "cuda"
        net: nn.Module = torch.compile(self.model) if self.compiled else self.model
        self.net = (
            DDP(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if (self.world > 1)
            else net
        )
        self.tb = self._tensorboard() if self.main and cfg.tensorboard else None

    # -- setup -------------------------------------------------------------------------------

    def _init_distributed(self) -> tuple[int, int]:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        cores = len(os.sched_getaffinity(0))
        torch.set_num_threads(
            self.cfg.threads or max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        )
        return (dist.get_rank(), world) if world > 1 else (0, 1)

    def _device(self) -> torch.device:
        if self.cfg.device == "cuda" and not torch.cuda.is_available():
            raise TrainError("device: cuda was asked for, but torch sees no CUDA GPU")
        if self.cfg.device == "cpu" or not torch.cuda.is_available():
            return torch.device("cpu")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        torch.backends.cuda.matmul.allow_tf32 = True
        return torch.device("cuda", local)

    def _tensorboard(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise TrainError(
                "tensorboard: true needs the tensorboard package (pip install tensorboard)"
            ) from None
        return SummaryWriter(str(self.out_dir / "tensorboard"))

    def _resume(self) -> None:
        try:
            state = load_checkpoint(self.out_dir / LAST)
        except CheckpointError as e:
            raise TrainError(f"--resume: {e}") from None
        changed = config_differences(state["config"], self.cfg.model_dump(mode="json"), RESUME_KEYS)
        if changed:
            raise TrainError(f"--resume: the config differs from the checkpoint's: {'; '.join(changed)}")
        if state["corpus"] != self.corpus.fingerprint:
            raise TrainError(
                f"--resume: {self.cfg.corpus} is not the corpus this run started on "
                f"(fingerprint {self.corpus.fingerprint}, checkpoint {state['corpus']})"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["cpu"])
        if self.device.type == "cuda" and state["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        for key, value in state["trainer"].items():
            setattr(self, key, value)
        # The log keeps what happened up to the checkpoint; lines a killed run wrote after it
        # are dropped, so the resumed log reads as one uninterrupted run.
        metrics = self.out_dir / METRICS
        rows = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
        self.history = [r for r in rows if r["step"] <= self.step]
        if self.main:
            self._rewrite_metrics()
            print(
                f"resuming {self.out_dir} at step {self.step} of {self.cfg.max_steps} (from {LAST})",
                flush=True,
            )

    # -- checkpoints and logs ----------------------------------------------------------------

    def _state(self, full: bool) -> dict[str, Any]:
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "config": self.cfg.model_dump(mode="json"),
            "vocab_size": self.corpus.vocab_size,
            "corpus": self.corpus.fingerprint,
            "tokenizer": self.corpus.tokenizer_json,
            "step": self.step,
        }
        if full:
            cuda_rng = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
            state |= {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": {"cpu": torch.get_rng_state(), "cuda": cuda_rng},
                "trainer": {
                    "step": self.step,
                    "position": self.position,
                    "best_val": self.best_val,
                    "best_step": self.best_step,
                    "evals_since_best": self.evals_since_best,
                    "bad_steps": self.bad_steps,
                    "skipped": dict(self.skipped),
                    "recent_losses": list(self.recent_losses),
                    "interval_losses": list(self.interval_losses),
                    "interval_steps": self.interval_steps,
                    "interval_seconds": self.interval_seconds,
                    "eval_losses": list(self.eval_losses),
                    "train_seconds": self.train_seconds,
                },
            }
        return state

    def save(self, name: str) -> None:
        if self.main:
            save_checkpoint(self.out_dir / name, self._state(full=name == LAST))

    def _log(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        if not self.main:
            return
        with open(self.out_dir / METRICS, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for key, value in row.items():
                scalars = value.items() if isinstance(value, dict) else [("", value)]
                for sub, number in scalars:
                    if isinstance(number, float):
                        tag = f"{row['kind']}/{key}" + (f"/{sub}" if sub else "")
                        self.tb.add_scalar(tag, number, row["tokens"])

    def _rewrite_metrics(self) -> None:
        with atomic_path(self.out_dir / METRICS) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in self.history), encoding="utf-8")

    def _print(self, text: str) -> None:
        if self.main:
            tqdm.write(text)

    # -- one step ----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean loss of one micro-batch (a seam for tests to inject failures)."""
        return self.net(x, y)

    def train_step(self) -> tuple[float, float]:
        """One optimizer step over the global batch; returns (loss, grad norm), both all-reduced."""
        per_rank = self.cfg.batch_seqs // self.world
        batch = self.windows.batch(self.position + self.rank * per_rank, per_rank)
        self.position += self.cfg.batch_seqs
        batch = batch.to(self.device, non_blocking=True)
        total = torch.zeros((), device=self.device)
        for i, micro in enumerate(batch.split(self.cfg.micro_batch)):
            last = i == self.grad_accum - 1
            sync = self.net.no_sync() if isinstance(self.net, DDP) and not last else nullcontext()
            with sync:
                with self._autocast():
                    loss = self.forward(micro[:, :-1], micro[:, 1:])
                (loss / self.grad_accum).backward()
            total += loss.detach()
        clip = self.cfg.optim.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        total /= self.grad_accum
        if self.world > 1:
            dist.all_reduce(total, op=dist.ReduceOp.AVG)
        loss_value, norm_value = total.item(), grad_norm.item()
        why = self._skip_reason(loss_value, norm_value)
        if math.isfinite(loss_value):
            self.recent_losses = [*self.recent_losses, loss_value][-self.cfg.spike_window :]
        if why is None:
            self.optimizer.step()
            self.bad_steps = 0
        else:
            kind, text = why
            self.bad_steps += 1
            self.skipped[kind] += 1
            self._print(f"step {self.step + 1}: skipped, {text}")
            self._log(
                {
                    "kind": "skip",
                    "step": self.step + 1,
                    "tokens": self.tokens_at(self.step + 1),
                    "reason": kind,
                    "loss": loss_value,
                    "grad_norm": norm_value,
                }
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        if self.bad_steps >= self.cfg.max_bad_steps:
            raise Diverged(
                f"stopped at step {self.step}: {self.bad_steps} steps in a row were skipped (non-finite "
                f"or spiking loss); the last good checkpoint is {self.out_dir / LAST} (lower optim.lr?)"
            )
        return loss_value, norm_value

    def _skip_reason(self, loss: float, grad_norm: float) -> tuple[str, str] | None:
        """Why this step's update must not be applied: a non-finite loss or gradient, or (as
        OLMo 2 does) a loss more than `spike_sigma` standard deviations above the mean of the
        last `spike_window` steps. The loss is all-reduced, so every process decides alike."""
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            return "non_finite", f"non-finite loss {loss} / grad norm {grad_norm}"
        recent = self.recent_losses
        if self.cfg.spike_sigma is None or len(recent) < SPIKE_MIN_HISTORY:
            return None
        mean = sum(recent) / len(recent)
        std = math.sqrt(sum((x - mean) ** 2 for x in recent) / len(recent))
        if loss > mean + self.cfg.spike_sigma * std:
            return (
                "spike",
                f"loss spike {loss:.4f} > mean {mean:.4f} + {self.cfg.spike_sigma:g} x std {std:.4f}",
            )
        return None

    def _autocast(self) -> torch.autocast:
        """bf16 autocast when the run's dtype is bf16 (matmuls in bf16, softmax and norms in fp32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16)

    def tokens_at(self, step: int) -> int:
        return step * self.cfg.batch_tokens

    # -- evaluation --------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, dict[str, float]]:
        """(loss, bits per byte, loss of each source) on the fixed validation set, split across
        processes."""
        self.model.eval()
        n_sources = len(self.val.sources)
        # Per source: loss, targets, loss on tokens with bytes, bytes (rows of one tensor, so a
        # single all-reduce sums them over processes).
        sums = torch.zeros(n_sources, 4, dtype=torch.float64, device=self.device)
        rows_of_rank = self.val.windows[self.rank :: self.world].split(self.cfg.micro_batch)
        sources_of_rank = self.val.source_of_target[self.rank :: self.world].split(self.cfg.micro_batch)
        for rows, sources in zip(rows_of_rank, sources_of_rank, strict=True):
            rows, sources = rows.to(self.device), sources.to(self.device).flatten()
            with self._autocast():
                losses = self.model.token_losses(rows[:, :-1], rows[:, 1:]).double().flatten()
            nbytes = self.token_bytes[rows[:, 1:]].flatten().double()
            columns = torch.stack(
                [losses, torch.ones_like(losses), torch.where(nbytes > 0, losses, 0.0), nbytes], 1
            )
            sums.index_add_(0, sources, columns)
        if self.world > 1:
            dist.all_reduce(sums)
        self.model.train()
        total = sums.sum(0)
        by_source = {
            name: (row[0] / row[1]).item()
            for name, row in zip(self.val.sources, sums, strict=True)
            if row[1] > 0
        }
        return (total[0] / total[1]).item(), (total[2] / (math.log(2) * total[3])).item(), by_source

    @torch.no_grad()
    def samples(self) -> list[str]:
        """Continuations of the fixed prompts, each from a document start, with a fixed seed."""
        if self.encoder is None:
            return []
        self.model.eval()
        out = []
        sep = self.encoder.tokenizer.token_to_id(SEPARATOR)
        for prompt in self.cfg.eval.prompts:
            generator = torch.Generator().manual_seed(self.cfg.seed)
            ids = torch.tensor([[sep, *self.encoder.encode(prompt).tolist()]], device=self.device)
            ids = self.model.generate(
                ids, self.cfg.eval.sample_tokens, self.cfg.eval.temperature, self.cfg.eval.top_k, generator
            )
            out.append(self.encoder.decode(ids[0, 1:].tolist()))
        self.model.train()
        return out

    def eval_and_checkpoint(self, train_loss: float | None) -> str | None:
        """Evaluate, log, keep the best model, save last.pt; return why to stop, if it is time."""
        val_loss, bpb, by_source = self.evaluate()
        samples = self.samples()
        previous = next((r for r in reversed(self.history) if r["kind"] == "eval"), None)
        overfitting = (
            previous is not None
            and train_loss is not None
            and previous["train_loss"] is not None
            and val_loss > previous["val_loss"]
            and train_loss < previous["train_loss"]
        )
        improved = val_loss < self.best_val - self.cfg.eval.min_delta
        if improved:
            self.best_val, self.best_step, self.evals_since_best = val_loss, self.step, 0
        else:
            self.evals_since_best += 1
        row = {
            "kind": "eval",
            "step": self.step,
            "tokens": self.tokens_at(self.step),
            "val_loss": val_loss,
            "val_bpb": bpb,
            "val_loss_by_source": by_source,
            "train_loss": train_loss,
            "lr": self.scheduler.get_last_lr()[0],
            "best": improved,
            "overfitting": overfitting,
            "samples": samples,
        }
        self._log(row)
        train_text = "" if train_loss is None else f" | train {train_loss:.4f}"
        self._print(
            f"eval step {self.step}: val loss {val_loss:.4f} | {bpb:.4f} bits/byte{train_text}"
            + (" | best" if improved else f" | best {self.best_val:.4f} at step {self.best_step}")
        )
        if len(by_source) > 1:
            self._print("  val loss by source: " + ", ".join(f"{k} {v:.3f}" for k, v in by_source.items()))
        if overfitting:
            self._print(
                f"  overfitting: validation loss rose {previous['val_loss']:.4f} -> {val_loss:.4f} "
                f"while training loss fell {previous['train_loss']:.4f} -> {train_loss:.4f}"
            )
        for prompt, text in zip(self.cfg.eval.prompts, samples, strict=False):
            self._print(
                f"  sample: {text!r}" if text.startswith(prompt) else f"  sample [{prompt}]: {text!r}"
            )
        if improved:
            self.save(BEST)
        self.save(LAST)
        if self.main:
            plot_curves(self.history, self.out_dir / CURVES, title=self.cfg.name)
        if self.evals_since_best >= self.cfg.eval.patience:
            return self._early_stop_reason()
        return None

    def _early_stop_reason(self) -> str:
        return (
            f"early stop: validation loss has not improved by {self.cfg.eval.min_delta} for "
            f"{self.cfg.eval.patience} evaluations (best {self.best_val:.4f} at step {self.best_step})"
        )

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Train until max_steps or early stopping; return the summary (also printed)."""
        cfg = self.cfg
        finished = self._finished_summary()
        if finished is not None:
            self._print(
                f"{self.out_dir}: this run already finished at step {self.step} ({finished['stop_reason']}); "
                f"its results are in summary.json. To train again: rm -r {self.out_dir}, or set out_dir=..."
            )
            return finished
        if self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        flops = self.model.flops_per_token()
        peak = gpu_peak_flops(self.device, self.dtype)
        self._print(
            f"grist train {cfg.name}: {self.model.num_params():,} parameters, {flops:,} FLOPs/token "
            f"(6N + attention), {len(self.windows) * cfg.model.context:,} train tokens, "
            f"{self.val.windows.size(0) * cfg.model.context:,} val tokens, "
            f"{self.world} process(es) x {self.grad_accum} micro-steps of {cfg.micro_batch} x "
            f"{cfg.model.context} on {self.device} {str(self.dtype).removeprefix('torch.')}"
            f"{' compiled' if self.compiled else ''}"
        )
        stop = None
        if self.step == 0:
            stop = self.eval_and_checkpoint(None)
        elif self.evals_since_best >= cfg.eval.patience:  # resumed after its early stop
            stop = self._early_stop_reason()
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.step,
            disable=None if self.main else True,
            unit="step",
            dynamic_ncols=True,
            leave=False,
        )
        while stop is None and self.step < cfg.max_steps:
            lr = self.scheduler.get_last_lr()[0]
            t0 = time.perf_counter()
            loss, grad_norm = self.train_step()
            crash_point("train/step")
            dt = time.perf_counter() - t0
            self.train_seconds += dt
            self.interval_seconds += dt
            self.interval_steps += 1  # skipped steps did the work too: they count in tokens/s
            bar.update()
            if math.isfinite(loss):
                self.interval_losses.append(loss)
                self.eval_losses.append(loss)
            if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                steps, interval = self.interval_steps, self.interval_losses
                tok_s = steps * cfg.batch_tokens / max(self.interval_seconds, 1e-9)
                mfu = f"{flops * tok_s / peak:.1%}" if peak else "n/a"
                eta = (cfg.max_steps - self.step) * self.interval_seconds / steps
                mean_loss = sum(interval) / len(interval) if interval else math.nan
                self._print(
                    f"step {self.step:>6}/{cfg.max_steps} | loss {mean_loss:.4f} | lr {lr:.2e} | "
                    f"grad norm {grad_norm:.3f} | {tok_s:,.0f} tok/s | MFU {mfu} | ETA {_fmt_duration(eta)}"
                )
                self._log(
                    {
                        "kind": "train",
                        "step": self.step,
                        "tokens": self.tokens_at(self.step),
                        "loss": mean_loss,
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "tok_per_s": tok_s,
                    }
                )
                self.interval_losses, self.interval_steps, self.interval_seconds = [], 0, 0.0
            if self.step % cfg.eval.every == 0 or self.step == cfg.max_steps:
                since = self.eval_losses
                self.eval_losses = []  # before the checkpoint the evaluation writes
                stop = self.eval_and_checkpoint(sum(since) / len(since) if since else None)
            elif cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                self.save(LAST)
        bar.close()
        return self._finish(stop or f"reached max_steps ({cfg.max_steps})")

    def _finished_summary(self) -> dict[str, Any] | None:
        """The summary of a run resumed after it had finished, else None."""
        path = self.out_dir / "summary.json"
        if self.step == 0 or not path.exists():
            return None
        summary = json.loads(path.read_text(encoding="utf-8"))
        return summary if summary.get("steps") == self.step else None

    def _finish(self, reason: str) -> dict[str, Any]:
        evals = [r for r in self.history if r["kind"] == "eval"]
        final = evals[-1]
        summary = {
            "name": self.cfg.name,
            "stop_reason": reason,
            "steps": self.step,
            "tokens": self.tokens_at(self.step),
            "epochs": self.position / len(self.windows),
            "train_seconds": self.train_seconds,
            "tokens_per_second": self.tokens_at(self.step) / max(self.train_seconds, 1e-9),
            "params": self.model.num_params(),
            "flops_per_token": self.model.flops_per_token(),
            "final_val_loss": final["val_loss"],
            "final_val_bpb": final["val_bpb"],
            "final_val_loss_by_source": final["val_loss_by_source"],
            "best_val_loss": self.best_val,
            "skipped_steps": dict(self.skipped),
            "best_step": self.best_step,
            "unigram_entropy": self.corpus.unigram_entropy(),
            "out_dir": str(self.out_dir),
        }
        if self.main:
            with atomic_path(self.out_dir / "summary.json") as tmp:
                tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            print_summary(summary)
        if self.tb is not None:
            self.tb.close()
        return summary

    def close(self) -> None:
        """Leave the process group together: a rank that tears its gloo connections down while
        another still writes its last checkpoint can make that one abort (a SIGABRT, seen once
        in a few runs of the two-process test), so all ranks meet at a barrier first."""
        if self.world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
