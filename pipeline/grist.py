"""`grist`: one command for the whole path, installed as a console script.

`grist corpus RECIPE` builds a corpus, `grist train CONFIG` trains on it, and so on. Each
command is the same as its `python -m pipeline` / `python -m train` form, which keep working;
this only routes. A console script runs from the virtualenv's bin/, so a `train.py` or
`pipeline.py` in the working directory cannot shadow grist's packages as it can under `python -m`.
"""

from __future__ import annotations

import sys

# grist command -> (package, its command)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "corpus": ("pipeline", "run", "build the corpus a recipe describes (resumes an interrupted run)"),
    "plan": ("pipeline", "plan", "validate a recipe and estimate documents, disk and memory per stage"),
    "verify": ("pipeline", "verify", "check a built corpus' shards and that its val split is leak-free"),
    "train-quality": ("pipeline", "train-quality", "train the fastText quality classifier"),
    "train-junk-scorer": ("pipeline", "train-junk-scorer", "train the junk scorer's reference model"),
    "train": ("train", "train", "train (or --resume) a model from a YAML config"),
    "sample": ("train", "sample", "continue a prompt with a trained checkpoint"),
    "sweep": ("train", "sweep", "one short training per value of a config key"),
    "scaling": ("train", "scaling", "fit L(C) = A·C^-α over model sizes, predict 4x and check it"),
    "ablate": ("train", "ablate", "what each step of a recipe is worth, in bits per byte"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {what}" for name, (_, _, what) in COMMANDS.items()]
    return (
        "usage: grist COMMAND [ARGS...]   (grist COMMAND --help for its arguments)\n\n"
        "Raw text in, a pretraining corpus out, and a language model trained on it.\n\ncommands:\n"
        + "\n".join(lines)
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"grist: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    package, command, _ = COMMANDS[argv[0]]
    if package == "pipeline":
        from pipeline.__main__ import main as run
    else:
        from train.__main__ import main as run
    return run([command, *argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
