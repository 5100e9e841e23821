"""Command line: `python -m pipeline {run,plan,verify,train-quality,train-junk-scorer} ...`."""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from pipeline.config import RecipeError, parse_any_order
from pipeline.recipe import load_recipe

# Storage that refuses a write: the run stops with one line and resumes once it is fixed.
STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline.report import print_summary, write_outputs
    from pipeline.run import RunError, run
    from pipeline.units import list_units

    recipe = load_recipe(args.recipe, args.overrides)
    try:
        result = run(recipe, restart=args.restart)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno not in STORAGE_ERRORS:
            raise
        print(
            f"error: cannot write {e.filename or recipe.output_dir}: {e.strerror}. Everything committed "
            "before it is kept: make room (or make the directory writable) and run the same command "
            "again to resume",
            file=sys.stderr,
        )
        return 1
    manifest = write_outputs(recipe, result, list_units(recipe))
    result.publish()
    print_summary(manifest)
    print(f"wrote {recipe.output_dir}/ (report.md, funnel.png, manifest.json, shards/)")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from pipeline.plan import estimate, print_plan

    recipe = load_recipe(args.recipe, args.overrides)
    print_plan(estimate(recipe, sample_docs=args.sample_docs))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from pipeline.shards import ShardError, verify_dir

    try:
        report = verify_dir(args.output_dir.rstrip("/") + "/shards")
    except (ShardError, FileNotFoundError) as e:
        print(f"verify failed: {e}", file=sys.stderr)
        return 1
    print(report.describe() if hasattr(report, "describe") else report)
    if args.no_leaks:
        return 0
    from pipeline.leaks import audit

    tokenizer = Path(args.output_dir) / "tokenizer.json"
    if not tokenizer.is_file():
        print(
            f"verify failed: {tokenizer} not found: the leak audit decodes the shards with the corpus' "
            "tokenizer (--no-leaks checks the shards alone)",
            file=sys.stderr,
        )
        return 1
    leaks = audit(args.output_dir)
    print(leaks.describe())
    return 0 if leaks.clean else 1


def _cmd_train_quality(args: argparse.Namespace) -> int:
    from pipeline.quality import load_quality_recipe, train_from_recipe

    recipe = load_quality_recipe(args.recipe, args.overrides)
    card = train_from_recipe(recipe, args.recipe)
    c, m = card["counts"], card["held_out"]
    print(
        f"trained on {c['train_per_class']:,} documents per class, evaluated on {c['held_out_per_class']:,} "
        f"held out per class"
    )
    print(
        f"held out: precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}  "
        f"ROC-AUC {m['roc_auc']:.3f}  (high-quality class, score >= {m['threshold']})"
    )
    print(f"wrote {recipe.output_dir}/ (model.bin {card['model']['bytes']:,} bytes, card.json, card.md)")
    return 0


def _cmd_train_junk_scorer(args: argparse.Namespace) -> int:
    from pipeline.ngram_lm import load_junk_recipe, train_junk_model

    recipe = load_junk_recipe(args.recipe, args.overrides)
    train_junk_model(recipe, args.recipe)
    card = Path(recipe.output_dir) / "card.md"
    print(card.read_text(encoding="utf-8").strip().splitlines()[-1])  # the held-out figures
    print(f"wrote {recipe.output_dir}/ (model.npz, card.json, card.md)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="grist corpus builder")
    sub = parser.add_subparsers(dest="command", required=True)
    overrides_help = "dotted overrides of recipe values, e.g. output_dir=out/x steps.4.min_doc_words=30"

    p = sub.add_parser("run", help="build the corpus a recipe describes (resumes an interrupted run)")
    p.add_argument("recipe", help="path to a recipe YAML file")
    p.add_argument("overrides", nargs="*", help=overrides_help)
    p.add_argument("--restart", action="store_true", help="discard the output directory and start over")
    p.set_defaults(fn=_cmd_run)

    p = sub.add_parser(
        "plan", help="validate a recipe and estimate documents, bytes, disk and memory per stage"
    )
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", help=overrides_help)
    p.add_argument(
        "--sample-docs", type=int, default=200, help="documents per input sampled to estimate keep rates"
    )
    p.set_defaults(fn=_cmd_plan)

    p = sub.add_parser(
        "verify",
        help="check every shard of a built corpus (header, checksum, index, split) and that val is leak-free",
    )
    p.add_argument("output_dir", help="a corpus output directory (holds shards/)")
    p.add_argument(
        "--no-leaks",
        action="store_true",
        help="skip the leak audit (val near-duplicates of train, benchmark n-grams in val)",
    )
    p.set_defaults(fn=_cmd_verify)

    for name, what, example, overrides, fn in (
        (
            "train-quality",
            "a quality classifier (fastText) from a recipe's positive and negative sources",
            "recipes/quality.yaml",
            "output_dir=out/q classifier.epoch=10",
            _cmd_train_quality,
        ),
        (
            "train-junk-scorer",
            "the junk scorer's reference language model from a recipe's curated sources",
            "recipes/junk_scorer.yaml",
            "output_dir=out/j min_bigram_count=3",
            _cmd_train_junk_scorer,
        ),
    ):
        p = sub.add_parser(name, help=f"train {what}")
        p.add_argument("recipe", help=f"path to a {name} recipe, e.g. {example}")
        p.add_argument("overrides", nargs="*", help=f"dotted overrides, e.g. {overrides}")
        p.set_defaults(fn=fn)

    args = parse_any_order(parser, sub, list(sys.argv[1:] if argv is None else argv))
    try:
        return args.fn(args)
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
