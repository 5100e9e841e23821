"""The training loop on a tiny model: loss falls, accumulation, early stopping, NaN skips,
checkpoints (weights_only), the CLI and its errors, the bf16 and compile paths a GPU takes."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_train_corpus import tiny_config, tiny_corpus  # noqa: F401 - a fixture

from pipeline.config import RecipeError
from train.__main__ import main
from train.checkpoint import BEST, LAST, load_checkpoint
from train.config import config_from_dict, load_config
from train.data import CorpusError
from train.loop import Diverged, Trainer, TrainError

ROOT = Path(__file__).resolve().parents[1]


def run(cfg: dict, resume: bool = False) -> tuple[Trainer, dict]:
    trainer = Trainer(config_from_dict(cfg, "test"), resume=resume)
    return trainer, trainer.run()


LossChange = Callable[[Trainer, torch.Tensor], torch.Tensor]


def change_loss(monkeypatch: pytest.MonkeyPatch, change: LossChange) -> None:
    """Every micro-batch's loss becomes change(trainer, loss), through the seam Trainer.forward
    leaves for tests: failures injected at chosen steps."""
    original = Trainer.forward

    def forward(self: Trainer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return change(self, original(self, x, y))

    monkeypatch.setattr(Trainer, "forward", forward)


def metrics(out_dir: Path, kind: str) -> list[dict]:
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == kind]


def test_short_run_learns_and_writes_its_outputs(tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    cfg = tiny_config(tiny_corpus, tmp_path, max_steps=60, **{"eval.every": 20, "eval.sample_tokens": 8})
    _, summary = run(cfg)
    train = metrics(tmp_path, "train")
    evals = metrics(tmp_path, "eval")
    assert [r["step"] for r in train] == list(range(1, 61))
    assert [r["step"] for r in evals] == [0, 20, 40, 60]
    assert evals[0]["val_loss"] == pytest.approx(math.log(512), abs=1e-3)  # zero-initialised head
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 1.0
    assert sum(r["loss"] for r in train[-10:]) / 10 < sum(r["loss"] for r in train[:10]) / 10 - 0.7
    assert 0 < evals[-1]["val_bpb"] < evals[0]["val_bpb"]
    by_source = evals[-1]["val_loss_by_source"]
    assert set(by_source) == {"books", "web", "wiki"} == set(summary["final_val_loss_by_source"])
    assert min(by_source.values()) < evals[-1]["val_loss"] < max(by_source.values())
    assert len(evals[-1]["samples"]) == 3 and evals[-1]["samples"][0].startswith("The meaning of life is")
    assert summary["final_val_loss"] == evals[-1]["val_loss"] < summary["unigram_entropy"]
    for name in (BEST, LAST, "loss_curves.png", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0


def test_checkpoint_holds_everything_and_loads_weights_only(tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    trainer, _ = run(tiny_config(tiny_corpus, tmp_path, max_steps=12))
    state = torch.load(tmp_path / LAST, weights_only=True)
    assert state["step"] == 12 and state["trainer"]["position"] == 12 * 32
    assert set(state) >= {"model", "optimizer", "scheduler", "rng", "config", "corpus", "tokenizer"}
    assert state["corpus"] == trainer.corpus.fingerprint and set(state["corpus"]) == {"tokenizer", "shards"}
    assert state["scheduler"]["last_epoch"] == 12
    best = load_checkpoint(tmp_path / BEST)
    assert "optimizer" not in best and best["step"] in (10, 12)
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(state["model"][key], value)


def test_gradient_accumulation_equals_the_big_batch(tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    params = []
    for micro in (32, 8):  # one micro-step of 32 sequences, or four of 8
        cfg = tiny_config(tiny_corpus, tmp_path / str(micro), max_steps=3, micro_batch=micro)
        trainer, _ = run(cfg)
        assert trainer.grad_accum == 32 // micro
        params.append(trainer.model.state_dict())
        losses = [r["loss"] for r in metrics(tmp_path / str(micro), "train")]
        params.append(losses)
    for key in params[0]:
        torch.testing.assert_close(params[0][key], params[2][key], rtol=1e-4, atol=1e-5)
    assert params[1] == pytest.approx(params[3], rel=1e-5)


def test_early_stopping_fires_and_flags_overfitting(tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    # a model many times bigger than a 3-document train split memorises it within a few evals
    cfg = tiny_config(
        tiny_corpus,
        tmp_path,
        max_steps=400,
        **{
            "model.n_embd": 64,
            "optim.lr": 1e-2,
            "optim.warmup_steps": 0,
            "eval.every": 10,
            "eval.patience": 2,
        },
    )
    trainer = Trainer(config_from_dict(cfg, "test"))
    trainer.windows.starts = trainer.windows.starts[:24]  # 3 batches of windows: memorised quickly
    summary = trainer.run()
    evals = metrics(tmp_path, "eval")
    assert summary["stop_reason"].startswith("early stop") and summary["steps"] < 400
    assert not evals[-1]["best"] and not evals[-2]["best"]
    assert any(r["overfitting"] for r in evals)
    assert load_checkpoint(tmp_path / BEST)["step"] == summary["best_step"] < summary["steps"]


def test_non_finite_steps_are_skipped_then_stop_the_run(
    tiny_corpus: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    poisoned = {4, 5, 12, 13, 14, 15, 16, 17, 18, 19}  # steps whose loss is NaN
    change_loss(monkeypatch, lambda t, loss: loss * math.nan if t.step + 1 in poisoned else loss)
    cfg = tiny_config(tiny_corpus, tmp_path, max_steps=30, max_bad_steps=3)
    trainer = Trainer(config_from_dict(cfg, "test"))
    weights_at_3: dict = {}
    with pytest.raises(Diverged, match="3 steps in a row were skipped"):
        for _ in range(30):
            trainer.train_step()
            if trainer.step == 3:
                weights_at_3 = {k: v.clone() for k, v in trainer.model.state_dict().items()}
            if trainer.step == 5:  # two skipped steps left the weights as they were
                assert all(torch.equal(weights_at_3[k], v) for k, v in trainer.model.state_dict().items())
            if trainer.step == 10:
                trainer.save(LAST)
    assert trainer.step == 14
    assert [r["step"] for r in trainer.history if r["kind"] == "skip"] == [4, 5, 12, 13, 14]
    assert load_checkpoint(tmp_path / LAST)["step"] == 10  # the last good checkpoint is intact


def test_refuses_a_corpus_with_another_vocabulary(tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(CorpusError, match="vocabulary has 512 tokens, the model .* 8192"):
        Trainer(config_from_dict(tiny_config(tiny_corpus, tmp_path, **{"model.vocab_size": 8192}), "test"))


def test_resume_refuses_a_changed_config_and_a_fresh_run_an_existing_one(
    tiny_corpus: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    run(tiny_config(tiny_corpus, tmp_path, max_steps=10))
    with pytest.raises(TrainError, match="already holds a run"):
        Trainer(config_from_dict(tiny_config(tiny_corpus, tmp_path), "test"))
    changed = tiny_config(tiny_corpus, tmp_path, max_steps=10, **{"optim.lr": 1e-3})
    with pytest.raises(TrainError, match=r"config differs from the checkpoint's: optim.lr: 0.01 -> 0.001$"):
        Trainer(config_from_dict(changed, "test"), resume=True)
    with pytest.raises(TrainError, match="no checkpoint"):
        Trainer(config_from_dict(tiny_config(tiny_corpus, tmp_path / "new"), "test"), resume=True)
    longer = tiny_config(tiny_corpus, tmp_path, max_steps=20)  # the LR schedule is laid out over max_steps
    with pytest.raises(TrainError, match=r"config differs from the checkpoint's: max_steps: 10 -> 20$"):
        Trainer(config_from_dict(longer, "test"), resume=True)


def test_a_loss_spike_is_skipped_and_counted_without_lowering_throughput(
    tiny_corpus: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # finite, but far above the recent losses
    change_loss(monkeypatch, lambda t, loss: loss * 20 if t.step + 1 == 40 else loss)
    clock = iter(range(10**6))  # every step takes exactly one second
    monkeypatch.setattr("train.loop.time.perf_counter", lambda: float(next(clock)))
    cfg = tiny_config(tiny_corpus, tmp_path, max_steps=45, log_every=5, **{"eval.every": 45})
    trainer = Trainer(config_from_dict(cfg, "test"))
    weights: dict = {}
    original_step = Trainer.train_step

    def train_step(self: Trainer) -> tuple[float, float]:
        if self.step == 39:
            weights.update({k: v.clone() for k, v in self.model.state_dict().items()})
        result = original_step(self)
        if self.step == 40:  # the spike's update was not applied
            assert all(torch.equal(weights[k], v) for k, v in self.model.state_dict().items())
        return result

    monkeypatch.setattr(Trainer, "train_step", train_step)
    summary = trainer.run()
    assert summary["skipped_steps"] == {"non_finite": 0, "spike": 1} and weights
    skips = [r for r in trainer.history if r["kind"] == "skip"]
    assert [(r["step"], r["reason"]) for r in skips] == [(40, "spike")]
    logged = [r for r in trainer.history if r["kind"] == "train"]
    assert {r["tok_per_s"] for r in logged} == {1024.0}  # the interval holding the skip included


def test_a_resumed_run_logs_every_row_as_an_uninterrupted_one(
    tiny_corpus: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stopped at a checkpoint between two log lines and two evaluations, the running means the
    next rows report (train loss, overfitting) must still cover the steps before the stop."""
    clock = iter(range(10**6))
    monkeypatch.setattr("train.loop.time.perf_counter", lambda: float(next(clock)))
    options = {"max_steps": 24, "log_every": 4, "checkpoint_every": 6, "eval.every": 8}
    _, whole = run(tiny_config(tiny_corpus, tmp_path / "whole", **options))
    first = Trainer(config_from_dict(tiny_config(tiny_corpus, tmp_path / "cut", **options), "test"))
    original_step = Trainer.train_step

    def stop_after_checkpoint(self: Trainer) -> tuple[float, float]:
        if self.step == 18:
            raise KeyboardInterrupt  # as a kill right after step 18's checkpoint
        return original_step(self)

    monkeypatch.setattr(Trainer, "train_step", stop_after_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        first.run()
    monkeypatch.setattr(Trainer, "train_step", original_step)
    resumed = Trainer(
        config_from_dict(tiny_config(tiny_corpus, tmp_path / "cut", **options), "test"), resume=True
    )
    resumed.run()
    rows = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    reference = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert rows == reference


@pytest.mark.parametrize(("options", "tolerance"), [({"dtype": "bfloat16"}, 0.03), ({"compile": True}, 1e-4)])
def test_the_gpu_paths_run_on_cpu(tiny_corpus: Path, tmp_path: Path, options: dict, tolerance: float) -> None:  # noqa: F811
    """bf16 autocast and torch.compile are a GPU's defaults; the same code runs here and learns
    what float32 eager learns: the same losses, to bf16's precision or to rounding."""
    shape = {"model.n_layer": 1, "eval.every": 4}
    _, reference = run(tiny_config(tiny_corpus, tmp_path / "eager", max_steps=4, **shape))
    trainer, summary = run(tiny_config(tiny_corpus, tmp_path / "gpu-path", max_steps=4, **shape, **options))
    assert trainer.dtype == (torch.bfloat16 if "dtype" in options else torch.float32)
    assert trainer.compiled == ("compile" in options)
    assert summary["final_val_loss"] < math.log(512) - 0.1  # it learned
    assert summary["final_val_loss"] == pytest.approx(reference["final_val_loss"], abs=tolerance)
    train = [r["loss"] for r in metrics(tmp_path / "gpu-path", "train")]
    assert train == pytest.approx([r["loss"] for r in metrics(tmp_path / "eager", "train")], abs=tolerance)


def test_tensorboard_logs_the_metrics_by_tokens(tiny_corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(
        tiny_config(tiny_corpus, tmp_path, max_steps=4, tensorboard=True, **{"eval.every": 2, "log_every": 2})
    )
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/lr", "eval/val_loss", "eval/val_loss_by_source/wiki"} <= set(tags)
    assert [e.step for e in events.Scalars("eval/val_loss")] == [0, 2 * 1024, 4 * 1024]
    logged = [r["val_loss"] for r in metrics(tmp_path, "eval")]
    assert [e.value for e in events.Scalars("eval/val_loss")] == pytest.approx(logged)


def test_cli_trains_samples_and_reports_errors(
    tiny_corpus: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(tiny_config(tiny_corpus, tmp_path / "run", max_steps=10)))
    assert main([str(config), "log_every=5"]) == 0
    assert "step     10/10" in capsys.readouterr().out
    assert main(["sample", str(tmp_path / "run" / BEST), "The", "--tokens", "5", "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("The")
    assert main([str(config), "optim.lr=fast"]) == 2
    assert "optim.lr: Input should be a valid number" in capsys.readouterr().err
    assert main([str(config)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "missing.pt"), "x"]) == 2
    assert "no checkpoint here" in capsys.readouterr().err


def test_shipped_train_configs_are_valid() -> None:
    default = load_config(ROOT / "recipes" / "train_default.yaml")
    assert default.corpus == "out/default" and default.grad_accum(1) == 1
    bench = load_config(ROOT / "recipes" / "train_bench.yaml")
    assert (bench.model.n_layer, bench.model.n_head, bench.model.n_embd, bench.model.context) == (
        4,
        4,
        256,
        256,
    )
    assert bench.batch_tokens == 4096
    with pytest.raises(RecipeError, match="model.n_layr: unknown key"):
        load_config(ROOT / "recipes" / "train_default.yaml", ["model.n_layr=3"])
    with pytest.raises(
        RecipeError, match="batch_tokens: Value error, 1000 is not a multiple of model.context"
    ):
        load_config(ROOT / "recipes" / "train_default.yaml", ["batch_tokens=1000"])


def test_make_train_twice_resumes_or_says_the_run_is_finished(
    tiny_corpus: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(tiny_config(tiny_corpus, tmp_path / "out", max_steps=6)))
    assert main(["train", str(config), "--resume=auto"]) == 0  # nothing to resume: starts
    before = (tmp_path / "out" / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert main(["train", str(config), "--resume=auto"]) == 0
    said = capsys.readouterr().out
    assert "this run already finished at step 6 (reached max_steps (6))" in said and "rm -r" in said
    assert (tmp_path / "out" / "metrics.jsonl").read_text() == before  # nothing trained twice
