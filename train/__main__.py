"""Command line: train a model on a grist corpus, or sample from a checkpoint.

python -m train [train] CONFIG [key=value ...] [--resume[=auto]]
python -m train sample CKPT "prompt" [--tokens N] [--temperature T] [--top-k K] [--seed S]
torchrun --nproc_per_node=N -m train CONFIG ...       (DDP: NCCL on GPUs, gloo on CPUs)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer

from pipeline.config import RecipeError
from pipeline.tokenizer import SEPARATOR, Encoder
from train.checkpoint import LAST, CheckpointError, load_checkpoint
from train.config import config_from_dict, load_config
from train.data import CorpusError
from train.loop import Trainer, TrainError
from train.model import GPT


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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in ("train", "sample", "-h", "--help"):
        argv.insert(0, "train")  # `python -m train CONFIG` means `python -m train train CONFIG`
    parser = argparse.ArgumentParser(prog="python -m train", description="Train a GPT on a grist corpus.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train (or --resume) a model from a YAML config")
    p.add_argument("config", help="e.g. recipes/train_default.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=1e-3 max_steps=500")
    p.add_argument(
        "--resume",
        nargs="?",
        const="yes",
        choices=["yes", "auto"],
        help="continue the run in out_dir from its last.pt; --resume=auto: continue one if there is one, "
        "else start (what `make train` does)",
    )
    p.set_defaults(fn=_cmd_train)
    p = sub.add_parser("sample", help="continue a prompt with a trained checkpoint")
    p.add_argument("checkpoint", help="e.g. out/train/default/best.pt")
    p.add_argument("prompt")
    p.add_argument("--tokens", type=int, default=100)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=_cmd_sample)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (RecipeError, CorpusError, CheckpointError, TrainError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
