"""A decoder-only transformer (GPT), the modern way, in one file.

Against GPT-2 / nanoGPT, each change is one that the speedrun records (modded-nanogpt) and
nanochat adopted because it learns more per token or per second:

* RMSNorm without a learned gain (pre-norm, on the embeddings and before the head too), and no
  biases anywhere: fewer tensors, same quality.
* Rotary position embeddings (RoPE) instead of a learned position table.
* QK-norm: queries and keys are RMS-normalised per head before RoPE, which bounds the attention
  logits and lets the learning rate be several times higher without spikes.
* ReLU² MLP (or SwiGLU, configurable), cheaper than GELU and at least as good.
* Output projections of attention and MLP start at zero, so every block starts as the
  identity (and an untied head too, so the initial loss is exactly ln(vocab)). Tied or untied
  input and output embeddings, configurable.
* Optional logit softcap, `softcap * tanh(logits / softcap)`.
* The head and its cross-entropy are fused and chunked (`linear_cross_entropy`): at width 256
  and vocab 8192 they are most of the FLOPs and, materialised whole, most of the memory traffic.

Attention runs through F.scaled_dot_product_attention: flash kernels on a GPU, fused C++ on CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from train.config import ModelConfig

CE_CHUNK = 1024  # rows of logits materialised at once by linear_cross_entropy (chunk x vocab floats)


class _RMSNorm(torch.autograd.Function):
    """x / rms(x) over the last dimension, without a gain. Written out because on CPU the
    built-in F.rms_norm is a composite of six kernels forward and more backward; this is two
    passes forward and three backward, and keeps the normalised output for the backward."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        acc = torch.promote_types(x.dtype, torch.float32)  # bfloat16 inputs are summed in float32
        ms = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=acc).square_().div_(x.size(-1))
        r = ms.add_(torch.finfo(acc).eps).rsqrt_().to(x.dtype)
        y = x * r
        ctx.save_for_backward(y, r)
        return y

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, dy: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y, r = ctx.saved_tensors  # dx = r * (dy - y * mean(dy * y))
        s = torch.linalg.vecdot(dy, y, dim=-1).unsqueeze(-1).div_(y.size(-1))
        return torch.addcmul(dy, y, s, value=-1).mul_(r)


class _ReLUSquared(torch.autograd.Function):
    """relu(x)^2 whose backward is one product, 2 * relu(x) * dy, instead of autograd's four."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        r = torch.relu(x)
        ctx.save_for_backward(r)
        return r.square()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, dy: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (r,) = ctx.saved_tensors
        return dy.mul(r).mul_(2)


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return _RMSNorm.apply(x)


def rope_table(context: int, head_dim: int, base: float) -> torch.Tensor:
    """exp(i * position * frequency) for each position and pair, (context, head_dim / 2), complex."""
    freqs = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(context, dtype=torch.float32), freqs)
    return torch.polar(torch.ones_like(angles), angles)


def apply_rope(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x[2i], x[2i+1]) of every head by its position's angle. x: (B, T, ...,
    head_dim); rope: (T, head_dim/2) reshaped by the caller to broadcast over the middle dims.

    Eager, as a complex product: one vectorised kernel each way, 8x faster on CPU than the
    real-valued form. Under torch.compile, which generates no code for complex numbers, as the
    real-valued form, which it fuses into one kernel. Both compute the same rotation."""
    pairs = x.float().unflatten(-1, (-1, 2))
    if torch.compiler.is_compiling():
        re, im = pairs.unbind(-1)
        cos, sin = rope.real, rope.imag
        return torch.stack((re * cos - im * sin, re * sin + im * cos), dim=-1).flatten(-2).type_as(x)
    return torch.view_as_real(torch.view_as_complex(pairs) * rope).flatten(-2).type_as(x)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.head_dim = cfg.n_embd // cfg.n_head
        self.dropout = cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim)
        q, k = apply_rope(rms_norm(qkv[:, :, :2]), rope).unbind(2)  # queries and keys together
        v = qkv[:, :, 2]
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            is_causal=True,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.swiglu = cfg.mlp == "swiglu"
        hidden = int(cfg.mlp_ratio * cfg.n_embd)
        if self.swiglu:  # two input matrices: 2/3 of the width keeps the parameter count of relu2
            hidden = 64 * math.ceil(2 * hidden / 3 / 64)
        self.fc = nn.Linear(cfg.n_embd, 2 * hidden if self.swiglu else hidden, bias=False)
        self.proj = nn.Linear(hidden, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.swiglu:
            gate, up = h.chunk(2, dim=-1)
            return self.proj(F.silu(gate) * up)
        return self.proj(_ReLUSquared.apply(h))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn = CausalSelfAttention(cfg)
        self.mlp = MLP(cfg)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(rms_norm(x), rope))
        return x + self.dropout(self.mlp(rms_norm(x)))


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.vocab_size is None:
            raise ValueError("ModelConfig.vocab_size must be set (the corpus' vocabulary size)")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        rope = rope_table(cfg.context, cfg.n_embd // cfg.n_head, cfg.rope_base)
        self.register_buffer("rope", rope[:, None, None, :], persistent=False)  # from the config: not saved
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Every matrix starts at std 1/sqrt(fan_in), so each input contributes unit variance,
        the embedding included (its rows are n_embd long): with one learning rate for all, Adam
        moves every matrix by the same fraction of its scale per step. (A unit-std embedding, as
        a norm after it would allow, would learn 16x slower at width 256.) Projections back into
        the residual stream and the untied head start at zero."""
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name == "lm_head.weight":  # (absent when tied)
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, std=p.size(1) ** -0.5)

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """The final normalised hidden states, (B, T, n_embd), that the head turns into logits."""
        n = idx.size(1)
        if n > self.cfg.context:
            raise ValueError(f"sequence of {n} tokens is longer than the context ({self.cfg.context})")
        rope = self.rope[:n]
        x = rms_norm(self.wte(idx))
        for block in self.blocks:
            x = block(x, rope)
        return rms_norm(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """With targets: the mean cross-entropy (a scalar). Without: logits of the last position,
        (B, vocab), all that generation needs."""
        h = self.hidden(idx)
        if targets is None:
            return softcapped(self.lm_head(h[:, -1]).float(), self.cfg.softcap)
        return linear_cross_entropy(h.flatten(0, 1), self.lm_head.weight, targets.flatten(), self.cfg.softcap)

    @torch.no_grad()
    def token_losses(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of every target, (B, T), for evaluation (bits per byte weights them)."""
        h = self.hidden(idx).flatten(0, 1)
        return token_losses(h, self.lm_head.weight, targets.flatten(), self.cfg.softcap).view(targets.shape)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self) -> int:
        """Training FLOPs per token: 6 per weight of every matrix multiply (forward 2, backward 4;
        the head's included, the embedding lookup not) plus attention's 12 * layers * width *
        context (q.k and att.v, forward and backward, counting the whole T x T square although
        causal attention only needs half: the convention of the PaLM paper, nanoGPT and nanochat)."""
        matmul = sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))
        return 6 * matmul + 12 * self.cfg.n_layer * self.cfg.n_embd * self.cfg.context

    @torch.no_grad()
    def generate(
        self, idx: torch.Tensor, new_tokens: int, temperature: float, top_k: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Append `new_tokens` sampled tokens to idx (1, T); temperature 0 is greedy. Recomputes
        the (cropped) context each step: simple, and fast enough for the small models here."""
        for _ in range(new_tokens):
            logits = self(idx[:, -self.cfg.context :])
            if temperature == 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                top, where = torch.topk(logits / temperature, min(top_k, logits.size(-1)))
                probs = F.softmax(top, dim=-1)
                nxt = where.gather(-1, torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device))
            idx = torch.cat((idx, nxt), dim=1)
        return idx


def softcapped(logits: torch.Tensor, softcap: float | None) -> torch.Tensor:
    return logits if softcap is None else softcap * torch.tanh(logits / softcap)


def _chunk_losses(
    h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None, need_grad: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Losses of one chunk of rows and, if asked, d(sum of losses)/d(logits before the softcap).

    The loss is -log softmax(logits)[target], from one fused softmax, whose output is also the
    gradient once 1 is subtracted at the targets: three passes over the (rows x vocab) buffer
    instead of logsumexp's and a separate softmax's eight. A probability below float's smallest
    normal (1e-38) is read as that, capping a token's loss at 87 nats, which no trained or
    training model comes near (a uniform guess over 8192 tokens costs 9)."""
    logits = (h @ weight.t()).to(torch.promote_types(h.dtype, torch.float32))
    dcap = None
    if softcap is not None:
        logits.div_(softcap).tanh_()
        dcap = 1 - logits.square() if need_grad else None  # d tanh(x) / dx = 1 - tanh(x)^2
        logits.mul_(softcap)
    probs = torch.softmax(logits, dim=-1)
    del logits
    rows = torch.arange(targets.numel(), device=h.device)
    losses = probs[rows, targets].clamp_min(torch.finfo(probs.dtype).tiny).log().neg()
    if not need_grad:
        return losses, None
    probs[rows, targets] -= 1
    return losses, probs if dcap is None else probs.mul_(dcap)


def _compute_dtype(h: torch.Tensor) -> torch.dtype:
    """The dtype autocast would give the head's matmul (bfloat16 under bf16 autocast)."""
    device = h.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else h.dtype


def token_losses(
    h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None
) -> torch.Tensor:
    """Cross-entropy of every row of softcap(h @ weight.T) against targets, without gradients."""
    dt = _compute_dtype(h)
    w = weight.to(dt)
    chunks = zip(h.split(CE_CHUNK), targets.split(CE_CHUNK), strict=True)
    return torch.cat([_chunk_losses(hc.to(dt), w, t, softcap, need_grad=False)[0] for hc, t in chunks])


class _LinearCrossEntropy(torch.autograd.Function):
    """mean(cross_entropy(h @ weight.T, targets)) whose gradients are computed chunk by chunk in
    the forward pass, so the full (N x vocab) logits and their gradient never exist at once.
    The backward only scales them by the incoming gradient (the loss is a scalar)."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        h: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        softcap: float | None,
    ) -> torch.Tensor:
        n, dt = h.size(0), _compute_dtype(h)
        w = weight.to(dt)
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros_like(w)
        total = torch.zeros((), dtype=torch.promote_types(dt, torch.float32), device=h.device)
        for i in range(0, n, CE_CHUNK):
            hc = h[i : i + CE_CHUNK].to(dt)
            losses, grad = _chunk_losses(hc, w, targets[i : i + CE_CHUNK], softcap, need_grad=True)
            total += losses.sum()
            grad = grad.div_(n).to(dt)
            grad_h[i : i + CE_CHUNK] = grad @ w
            grad_w.addmm_(grad.t(), hc)
        ctx.save_for_backward(grad_h, grad_w.to(weight.dtype))
        return total / n

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_out: torch.Tensor) -> tuple:  # type: ignore[override]
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad_out, grad_w * grad_out, None, None


def linear_cross_entropy(
    h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None
) -> torch.Tensor:
    """Mean cross-entropy of logits softcap(h @ weight.T) against targets; h (N, d), weight (V, d)."""
    if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(h, weight, targets, softcap)
    return token_losses(h, weight, targets, softcap).mean()
