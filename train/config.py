"""Training configs: YAML in, a validated `TrainConfig` out, or one `RecipeError` naming the key.

Train configs live beside corpus recipes in recipes/ and behave the same way: dotted overrides on
the command line (`optim.lr=1e-3 model.n_layer=6`), unknown keys and wrong types reported as
`recipes/train_default.yaml:12: optim.lr: Input should be a valid number (got 'fast')`. The
parsing and error helpers are the corpus recipe's own (`pipeline.config`), so both read alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from pipeline.config import Loaded, RecipeError, Strict, load_yaml, validate


class ModelConfig(Strict):
    """The transformer's shape. `vocab_size` is the corpus' unless given (then it must match)."""

    n_layer: int = Field(4, ge=1)
    n_head: int = Field(4, ge=1)
    n_embd: int = Field(256, ge=8)
    context: int = Field(256, ge=2)  # tokens a window feeds the model (the targets are shifted by one)
    vocab_size: int | None = Field(None, ge=2)
    mlp: Literal["relu2", "swiglu"] = "relu2"
    mlp_ratio: float = Field(4.0, gt=0)  # hidden width / n_embd (swiglu: 2/3 of it, same parameters)
    tie_embeddings: bool = True  # small models learn faster tied (nanoGPT's choice); big ones untie
    softcap: float | None = Field(15.0, gt=0)  # logits -> softcap * tanh(logits / softcap); None: off
    dropout: float = Field(0.0, ge=0, lt=1)
    rope_base: float = Field(10000.0, gt=1)

    @field_validator("n_embd")
    @classmethod
    def _heads_divide_width(cls, n_embd: int, info: ValidationInfo) -> int:
        n_head = info.data.get("n_head", 1)
        if n_embd % n_head or (n_embd // n_head) % 2:
            raise ValueError(
                f"{n_embd} does not split into {n_head} heads of an even size (RoPE rotates pairs)"
            )
        return n_embd


class OptimConfig(Strict):
    """AdamW and the learning-rate schedule (a multiplier of `lr` as a function of the step)."""

    lr: float = Field(3e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.1, ge=0)  # on >= 2-D weights only
    grad_clip: float = Field(1.0, ge=0)  # max global grad norm; 0: no clipping
    schedule: Literal["cosine", "wsd"] = "cosine"
    warmup_steps: int = Field(50, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)  # the final lr as a fraction of lr
    decay_fraction: float = Field(0.2, gt=0, le=1)  # wsd: the share of steps spent decaying


class EvalConfig(Strict):
    every: int = Field(100, ge=1)  # steps between evaluations (also at step 0 and at the end)
    val_tokens: int = Field(65536, ge=1)  # the fixed validation set: this many target tokens
    patience: int = Field(5, ge=1)  # stop after this many evals without improving by min_delta
    min_delta: float = Field(0.0, ge=0)
    prompts: list[str] = ["The meaning of life is", "In 1905, Einstein", "def fibonacci(n):"]
    sample_tokens: int = Field(40, ge=0)
    temperature: float = Field(0.8, ge=0)  # 0: greedy
    top_k: int = Field(50, ge=1)


class TrainConfig(Strict):
    name: str = "train"
    corpus: str  # a grist corpus directory (what `make corpus` writes)
    out_dir: str
    seed: int = 0
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    eval: EvalConfig = EvalConfig()
    batch_tokens: int = Field(4096, ge=1)  # the global batch, all processes and micro-steps together
    micro_batch: int = Field(16, ge=1)  # sequences per forward/backward on one device
    max_steps: int = Field(1000, ge=1)
    bos_aligned: bool = False  # windows start at document starts instead of anywhere
    # Train on a fixed seeded sample of this many tokens of the train split (whole windows from all
    # over it); None: all of it. Less data overfits sooner: the default run uses it to show that.
    max_train_tokens: int | None = Field(None, ge=1)
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(0, ge=0)  # steps between last.pt saves besides each eval; 0: evals only
    max_bad_steps: int = Field(5, ge=1)  # consecutive skipped steps (non-finite or spikes) that stop the run
    # Skip the update of a step whose loss is more than spike_sigma standard deviations above the
    # mean of the last spike_window steps (OLMo 2's rule); None: only non-finite steps are skipped.
    spike_sigma: float | None = Field(6.0, gt=0)
    spike_window: int = Field(128, ge=8)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bfloat16 on CUDA, float32 on CPU
    compile: Literal["auto"] | bool = "auto"  # auto: on for CUDA, off on CPU
    threads: int = Field(0, ge=0)  # CPU threads per process; 0: the cores / local processes
    tensorboard: bool = False

    @field_validator("batch_tokens")
    @classmethod
    def _batch_is_whole_sequences(cls, batch_tokens: int, info: ValidationInfo) -> int:
        model = info.data.get("model")
        if model is not None and batch_tokens % model.context:
            raise ValueError(f"{batch_tokens} is not a multiple of model.context ({model.context})")
        return batch_tokens

    @property
    def batch_seqs(self) -> int:
        return self.batch_tokens // self.model.context

    def grad_accum(self, world_size: int) -> int:
        """Micro-steps per optimizer step on each process, so the global batch stays `batch_tokens`."""
        per_rank, rest = divmod(self.batch_seqs, world_size * self.micro_batch)
        if rest or not per_rank:
            raise RecipeError(
                f"batch_tokens {self.batch_tokens} = {self.batch_seqs} sequences of {self.model.context} "
                f"does not split into {world_size} process(es) x micro_batch {self.micro_batch} x a whole "
                "number of accumulation steps"
            )
        return per_rank


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    loaded = load_yaml(Path(path), overrides, "train config", "corpus, out_dir, model, optim, ...")
    return validate(TrainConfig, loaded)


def config_from_dict(data: dict[str, Any], where: str) -> TrainConfig:
    """A config from a mapping (a checkpoint's, a test's); errors name `where`."""
    return validate(TrainConfig, Loaded(where, data))
