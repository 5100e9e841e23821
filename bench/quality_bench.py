"""Quality classifier against human labels, and its scoring speed: `python -m bench.quality_bench`.

The labels: 499 Common Crawl pages (DCLM pool) that people judged high (1) or low (0) quality,
in `meta.quality_label` (../shared/data/raw/web_dclm_quality_labeled.jsonl.gz, or the identical
copy in data/sample).

* (a) the default classifier, `pipeline/assets/quality/model.bin`, trained by
  `recipes/quality.yaml` on other sources only (data/sample's wiki and books against its random
  web pages): ROC-AUC of its scores on all 499 pages.
* (b) 5-fold stratified cross-validation on the labelled pages themselves, each fold trained
  with the classifier settings of `recipes/quality.yaml` (`train_classifier`, quantization
  included): ROC-AUC of the 499 out-of-fold scores, and of each fold.

Speed: CPU time (`time.process_time`, best of `--repeat`) of `QualityModel.scores`, text
preparation included, over every document of data/sample in batches of 1,000 (as the step
scores them), in MB of UTF-8 per second on one core.

Writes bench/results/quality.json. Floors (AUC (b) >= 0.80, >= 20 MB/s per core) are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np

from bench.floors import finish, floor
from pipeline.atomic import write_json
from pipeline.quality import DEFAULT_MODEL, QualityModel, load_quality_recipe, roc_auc, train_classifier

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
LABELLED = "web_dclm_quality_labeled.jsonl.gz"
RESULTS = ROOT / "bench" / "results"
BATCH = 1000


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def labelled_pages() -> tuple[list[str], np.ndarray, Path]:
    shared = ROOT.parent / "shared" / "data" / "raw" / LABELLED
    path = shared if shared.exists() else SAMPLE / LABELLED
    rows = read_jsonl(path)
    return [r["text"] for r in rows], np.array([r["meta"]["quality_label"] for r in rows], dtype=bool), path


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number of each example; each class is spread evenly over the folds (seeded)."""
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(labels), dtype=np.int64)
    for cls in (False, True):
        members = rng.permutation(np.flatnonzero(labels == cls))
        folds[members] = np.arange(len(members)) % k
    return folds


def cross_validate(texts: list[str], labels: np.ndarray, k: int, recipe_path: Path) -> dict:
    recipe = load_quality_recipe(recipe_path)
    folds = stratified_folds(labels, k, recipe.seed)
    scores = np.zeros(len(texts))
    per_fold = []
    for fold in range(k):
        train, test = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        model = train_classifier(
            [texts[i] for i in train if labels[i]],
            [texts[i] for i in train if not labels[i]],
            recipe.classifier,
            recipe.seed,
        )
        scores[test] = model.scores([texts[i] for i in test])
        per_fold.append(round(roc_auc(labels[test], scores[test]), 4))
    return {"auc": round(roc_auc(labels, scores), 4), "per_fold": per_fold, "folds": k}


def scoring_speed(model: QualityModel, repeat: int) -> dict:
    texts = [r["text"] for path in sorted(SAMPLE.glob("*.jsonl.gz")) for r in read_jsonl(path)]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    model.scores(texts[:8])  # warm up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for i in range(0, len(texts), BATCH):
            model.scores(texts[i : i + BATCH])
        best = min(best, time.process_time() - t0)
    return {
        "mb": round(mb, 2),
        "documents": len(texts),
        "cpu_seconds": round(best, 3),
        "mb_s_per_core": mb / best,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "quality.yaml")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    texts, labels, path = labelled_pages()
    print(f"{len(texts)} labelled pages ({labels.sum()} high, {(~labels).sum()} low) from {path}")
    model = QualityModel.load(DEFAULT_MODEL)
    auc_a = round(roc_auc(labels, model.scores(texts)), 4)
    print(f"(a) default classifier, trained on other sources: ROC-AUC {auc_a:.3f}")
    cv = cross_validate(texts, labels, args.folds, args.recipe)
    print(
        f"(b) {args.folds}-fold cross-validation on the labelled pages: ROC-AUC {cv['auc']:.3f} "
        f"(folds {', '.join(f'{a:.3f}' for a in cv['per_fold'])})   "
        f"{floor('quality CV ROC-AUC', cv['auc'], at_least=0.8)}"
    )
    speed = scoring_speed(model, args.repeat)
    print(
        f"speed: {speed['mb']:.1f} MB ({speed['documents']:,} documents) in {speed['cpu_seconds']:.2f} s "
        f"CPU = {speed['mb_s_per_core']:.1f} MB/s per core   "
        f"{floor('quality scoring MB/s per core', speed['mb_s_per_core'], at_least=20)}"
    )
    size = DEFAULT_MODEL.stat().st_size
    print(f"default model: {size:,} bytes")
    write_json(
        RESULTS / "quality.json",
        {
            "labelled": str(path.relative_to(ROOT.parent) if path.is_relative_to(ROOT.parent) else path),
            "auc_default_model": auc_a,
            "cross_validation": cv,
            "speed": speed,
            "model_bytes": size,
        },
    )
    finish()


if __name__ == "__main__":
    main()
