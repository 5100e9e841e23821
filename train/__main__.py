"""Command line: train a model on a grist corpus, or sample from a checkpoint.

python -m train [train] CONFIG [key=value ...] [--resume[=auto]]
python -m train sample CKPT "prompt" [--tokens N] [--temperature T] [--top-k K] [--seed S]
python -m train sweep CONFIG key=v1,v2,... [key=value ...] [--name N] [--parallel P] [--restart]
python -m train scaling CONFIG [key=value ...] [--preset cpu|gpu] [--irreducible] [--name N] ...
python -m train ablate RECIPE [key=value ...] [--config CONFIG] [--train key=value ...] [--seeds 0,1,2] ...
torchrun --nproc_per_node=N -m train CONFIG ...       (DDP: NCCL on GPUs, gloo on CPUs)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from pipeline.config import RecipeError, parse_any_order
from pipeline.tokenizer import SEPARATOR, Encoder
from train.ablate import EVAL_BYTES, run_ablation
from train.checkpoint import LAST, CheckpointError, load_checkpoint
from train.config import config_from_dict, load_config
from train.data import CorpusError
from train.experiment import ROOT, ExperimentError
from train.loop import Trainer, TrainError
from train.model import GPT
from train.scaling import PRESETS, run_scaling
from train.sweep import NEAR, run_sweep


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    resume = args.resume == "yes" or (args.resume == "auto" and (Path(cfg.out_dir) / LAST).exists())
    trainer = Trainer(cfg, resume=resume)
    try:
        trainer.run()
    finally:
        trainer.close()
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    state = load_checkpoint(args.checkpoint)
    cfg = config_from_dict(state["config"], args.checkpoint)
    model = GPT(cfg.model.model_copy(update={"vocab_size": state["vocab_size"]}))
    model.load_state_dict(state["model"])
    model.eval()
    encoder = Encoder(Tokenizer.from_str(state["tokenizer"]))
    sep = encoder.tokenizer.token_to_id(SEPARATOR)
    ids = torch.tensor([[sep, *encoder.encode(args.prompt).tolist()]])
    generator = torch.Generator().manual_seed(args.seed)
    out = model.generate(ids, args.tokens, args.temperature, args.top_k, generator)
    print(encoder.decode(out[0, 1:].tolist()))
    return 0


def _runner(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment runner's options every experiment command passes on."""
    return {"root": Path(args.root), "parallel": args.parallel, "restart": args.restart}


def _cmd_sweep(args: argparse.Namespace) -> int:
    run_sweep(Path(args.config), args.items, name=args.name, near=args.near, **_runner(args))
    return 0


def _cmd_scaling(args: argparse.Namespace) -> int:
    name = args.name or f"scaling-{args.preset}"
    run_scaling(
        Path(args.config),
        args.overrides,
        preset=args.preset,
        name=name,
        irreducible=args.irreducible,
        **_runner(args),
    )
    return 0


def _cmd_ablate(args: argparse.Namespace) -> int:
    run_ablation(
        Path(args.recipe),
        args.overrides,
        config=Path(args.config),
        train_overrides=args.train,
        seeds=[int(s) for s in args.seeds.split(",")],
        name=args.name,
        eval_bytes=args.eval_bytes,
        **_runner(args),
    )
    return 0


def _experiment_options(p: argparse.ArgumentParser) -> None:
    """What every experiment command takes: where it goes, how many runs at once, starting over."""
    p.add_argument("--name", help="the experiment's directory under --root (default: from the command)")
    p.add_argument("--root", default=str(ROOT), help="where experiments go")
    p.add_argument(
        "--parallel",
        type=int,
        default=0,
        help="runs at once, each in its own process (default: one per GPU, or 1 without GPUs)",
    )
    p.add_argument("--restart", action="store_true", help="discard the experiment's previous runs first")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in ("train", "sample", "sweep", "scaling", "ablate", "-h", "--help"):
        argv.insert(0, "train")  # `python -m train CONFIG` means `python -m train train CONFIG`
    parser = argparse.ArgumentParser(prog="python -m train", description="Train a GPT on a grist corpus.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train (or --resume) a model from a YAML config")
    p.add_argument("config", help="e.g. recipes/train_default.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-3 max_steps=500")
    p.add_argument(
        "--resume",
        action="store_const",
        const="yes",
        help="continue the run in out_dir from its last.pt; --resume=auto: continue one if there is one, "
        "else start (what `make train` does)",
    )
    p.add_argument("--resume=auto", dest="resume", action="store_const", const="auto", help=argparse.SUPPRESS)
    p.set_defaults(fn=_cmd_train)
    p = sub.add_parser("sample", help="continue a prompt with a trained checkpoint")
    p.add_argument("checkpoint", help="e.g. out/train/default/best.pt")
    p.add_argument("prompt")
    p.add_argument("--tokens", type=int, default=100)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=_cmd_sample)
    p = sub.add_parser(
        "sweep",
        help="one short training per value of a config key (or per combination of several keys)",
        description="Arguments with commas are the swept keys (optim.lr=1e-3,3e-3,1e-2); the others "
        "override every run. Writes out/experiments/NAME/: results.md, results.json, curves.png, sweep.png.",
    )
    p.add_argument("config", help="a train config, e.g. recipes/train_small.yaml")
    p.add_argument("items", nargs="+", help="key=v1,v2,... to sweep, key=value to set for every run")
    p.add_argument(
        "--near", type=float, default=NEAR, help="nats/token from the best that count as near best"
    )
    _experiment_options(p)
    p.set_defaults(fn=_cmd_sweep)
    p = sub.add_parser(
        "scaling",
        help="train a preset's model sizes at growing compute, fit L(C) = A·C^-α, predict 4x and check it",
    )
    p.add_argument("config", help="a train config, e.g. recipes/train_small.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides for every run, e.g. optim.lr=3e-3")
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS), help="the sizes and budgets")
    p.add_argument("--irreducible", action="store_true", help="fit L(C) = E + A·C^-α (E: irreducible loss)")
    _experiment_options(p)
    p.set_defaults(fn=_cmd_scaling)
    p = sub.add_parser(
        "ablate",
        help="corpus variants of a recipe (raw, full, each step group left out), one model each, "
        "compared in bits per byte on a fixed held-out eval set",
    )
    p.add_argument("recipe", help="a corpus recipe, e.g. recipes/default.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides of the recipe, e.g. steps.2.threshold=0.5")
    p.add_argument("--config", default="recipes/train_small.yaml", help="the train config of every run")
    p.add_argument("--train", nargs="*", default=[], help="overrides of the train config, e.g. max_steps=30")
    p.add_argument(
        "--seeds", default="0,1,2", help="comma-separated seeds, each variant trained once per seed"
    )
    p.add_argument("--eval-bytes", type=int, default=EVAL_BYTES, help="bytes of eval text per kind of source")
    _experiment_options(p)
    p.set_defaults(fn=_cmd_ablate)
    argv = ["--resume" if a == "--resume=yes" else a for a in argv]
    args = parse_any_order(parser, sub, argv)
    try:
        return args.fn(args)
    except (RecipeError, CorpusError, CheckpointError, TrainError, ExperimentError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
