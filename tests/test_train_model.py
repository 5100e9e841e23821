"""The model: shapes, parameter count, FLOPs, the fused head + cross-entropy, init, generation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from train.config import ModelConfig
from train.model import GPT, _ReLUSquared, _RMSNorm, apply_rope, linear_cross_entropy, rope_table

SMALL = {"n_layer": 2, "n_head": 4, "n_embd": 64, "context": 32, "vocab_size": 300}


def randomized(cfg: ModelConfig) -> GPT:
    """A model whose zero-initialised matrices are filled, so every gradient path is exercised."""
    torch.manual_seed(0)
    model = GPT(cfg).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def test_parameter_count_and_flops_follow_the_shape() -> None:
    d, layers, vocab, ctx = 64, 2, 300, 32
    untied = GPT(ModelConfig(**SMALL, tie_embeddings=False))
    per_layer = 3 * d * d + d * d + 2 * 4 * d * d  # qkv, proj, MLP in and out; no biases, no norm gains
    assert untied.num_params() == layers * per_layer + 2 * vocab * d
    tied = GPT(ModelConfig(**SMALL, tie_embeddings=True))
    assert tied.num_params() == layers * per_layer + vocab * d
    matmul = layers * per_layer + vocab * d  # the head's matrix multiplies, the embedding lookup does not
    assert untied.flops_per_token() == tied.flops_per_token() == 6 * matmul + 12 * layers * d * ctx
    swiglu = GPT(ModelConfig(**SMALL, mlp="swiglu"))  # hidden 2/3 * 4d rounded up to 64: 192
    assert swiglu.num_params() == layers * (4 * d * d + 3 * 192 * d) + vocab * d


def test_shapes_and_initial_loss_is_uniform() -> None:
    model = GPT(ModelConfig(**SMALL, tie_embeddings=False))
    idx = torch.randint(0, 300, (3, 32))
    assert model.hidden(idx).shape == (3, 32, 64)
    assert model(idx).shape == (3, 300)  # generation: the last position's logits
    # zero-initialised head: every logit 0, loss exactly ln(vocab)
    assert model(idx, idx).item() == pytest.approx(math.log(300), abs=1e-6)
    assert model.token_losses(idx, idx).shape == (3, 32)
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 33, dtype=torch.long))


@pytest.mark.parametrize("softcap", [None, 15.0])
@pytest.mark.parametrize("tie", [False, True])
def test_fused_head_matches_plain_cross_entropy(softcap: float | None, tie: bool) -> None:
    model = randomized(ModelConfig(**SMALL, softcap=softcap, tie_embeddings=tie))
    idx, tgt = torch.randint(0, 300, (2, 2, 32)).unbind(0)
    loss = model(idx, tgt)
    loss.backward()
    fused = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    logits = model.hidden(idx) @ model.lm_head.weight.t()
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    plain = F.cross_entropy(logits.flatten(0, 1), tgt.flatten())
    plain.backward()
    assert loss.item() == pytest.approx(plain.item(), rel=1e-12)
    for a, p in zip(fused, model.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, rtol=1e-9, atol=1e-12)
    per_token = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), reduction="none").view(2, 32)
    torch.testing.assert_close(model.token_losses(idx, tgt), per_token.detach())


def test_fused_head_over_several_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("train.model.CE_CHUNK", 7)  # 20 rows: 2 full chunks and a ragged one
    h = torch.randn(20, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(12, 6, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 12, (20,))
    assert torch.autograd.gradcheck(lambda h, w: linear_cross_entropy(h, w, t, 5.0), (h, w))
    with torch.no_grad():
        assert linear_cross_entropy(h, w, t, None).item() == pytest.approx(
            F.cross_entropy(h @ w.t(), t).item()
        )


def test_hand_written_gradients() -> None:
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_RMSNorm.apply, (x,))
    assert torch.autograd.gradcheck(_ReLUSquared.apply, (x,))
    torch.testing.assert_close(_RMSNorm.apply(x), F.rms_norm(x, (8,), eps=torch.finfo(torch.float64).eps))


def test_rope_rotates_pairs_and_keeps_relative_positions() -> None:
    rope = rope_table(16, 8, 10000.0)
    q, k = torch.randn(2, 1, 1, 8).unbind(0)

    # the score of a query at position i and a key at j depends on i - j only
    def score(i: int, j: int) -> torch.Tensor:
        return (
            apply_rope(q.expand(16, 1, 8).contiguous(), rope[:, None])[i]
            * apply_rope(k.expand(16, 1, 8).contiguous(), rope[:, None])[j]
        ).sum()

    torch.testing.assert_close(score(5, 2), score(12, 9))
    x = torch.randn(16, 1, 8)
    torch.testing.assert_close(apply_rope(x, rope[:, None]).norm(dim=-1), x.norm(dim=-1))


def test_generation_is_seeded_and_greedy_is_deterministic() -> None:
    model = randomized(ModelConfig(**SMALL)).float()
    prompt = torch.tensor([[0, 5, 6]])
    a = model.generate(prompt, 10, 1.0, 20, torch.Generator().manual_seed(1))
    b = model.generate(prompt, 10, 1.0, 20, torch.Generator().manual_seed(1))
    assert a.shape == (1, 13) and torch.equal(a, b) and torch.equal(a[:, :3], prompt)
    greedy = model.generate(prompt, 40, 0.0, 20, torch.Generator())  # longer than the context: cropped
    assert greedy.shape == (1, 43)
    assert greedy[0, 3].item() == model(prompt).argmax().item()


def test_config_rejects_heads_that_do_not_divide_the_width() -> None:
    with pytest.raises(ValueError, match="does not split into 3 heads"):
        ModelConfig(n_embd=64, n_head=3)


def test_compiled_rope_is_the_same_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    rope = rope_table(16, 8, 10000.0)[:, None]
    x = torch.randn(16, 3, 8)
    eager = apply_rope(x, rope)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    torch.testing.assert_close(apply_rope(x, rope), eager)


@pytest.mark.parametrize("mlp", ["relu2", "swiglu"])
def test_attention_is_causal(mlp: str) -> None:
    """Changing the tokens after position t leaves every output up to t as it was."""
    model = randomized(ModelConfig(**SMALL, mlp=mlp))
    idx = torch.randint(0, 300, (2, 32), generator=torch.Generator().manual_seed(1))
    changed = idx.clone()
    changed[:, 20:] = (changed[:, 20:] + 7) % 300
    with torch.no_grad():
        a, b = model.hidden(idx), model.hidden(changed)
    torch.testing.assert_close(a[:, :20], b[:, :20], rtol=0, atol=0)
    assert not torch.allclose(a[:, 20:], b[:, 20:])
