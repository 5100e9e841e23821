"""The quality classifier: a fastText model telling curated text from random web text.

`python -m pipeline train-quality RECIPE` trains one (`train_from_recipe`). The recipe names
positive sources (encyclopedic, books, curated) and negative ones (random web), read with the
corpus readers. The larger class is downsampled to the smaller one and each class split into
training and held-out documents, both seeded; the classifier uses word bigrams. The command
prints precision, recall, F1 and ROC-AUC on the held-out documents and writes
`<output_dir>/model.bin` with `card.json` and `card.md` (sources, counts, metrics, settings).

The `quality_score` step scores with `QualityModel`. Training and scoring both see text through
`prepare`, so a model is never applied to text shaped differently from what it learned on.
The default model, `DEFAULT_MODEL`, is built by `recipes/quality.yaml` from data/sample; its
card says what it was trained on and how little that is.
"""

from __future__ import annotations

import ctypes
import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from pipeline.atomic import atomic_path, write_json
from pipeline.config import RecipeError, Strict, load_yaml, validate
from pipeline.document import Document
from pipeline.langid import load_fasttext
from pipeline.readers import BadRecord, expand_paths, read_source
from pipeline.recipe import SourceSpec, check_inputs

DEFAULT_MODEL = Path(__file__).resolve().parent / "assets" / "quality" / "model.bin"
# Upper case: `prepare` lowercases text, so no word of a document can pass for a label.
LABEL_PREFIX = "__LABEL__"
HIGH, LOW = f"{LABEL_PREFIX}high", f"{LABEL_PREFIX}low"
PREPROCESSING = "lowercased; newlines become spaces; fastText splits words on whitespace"
_M_PERTURB = -6  # glibc mallopt parameter


def prepare(text: str) -> str:
    """A text as the classifier sees it, in training and in scoring alike: lowercased (the
    sample is far too small to learn case variants separately) and on one line (fastText
    ends a training example at a newline and refuses one in `predict`). fastText splits words
    on whitespace itself; doing more here (splitting off punctuation, say) tripled the scoring
    time for AUC differences within noise."""
    return text.lower().replace("\n", " ")


class ClassifierSettings(Strict):
    """fastText `train_supervised` arguments, under its own keyword names. Training runs on one
    thread so that a model is reproducible from its recipe.

    The model is saved unquantized: fastText's quantization (pruned rows behind a hash map,
    product-quantized vectors) scored about 40 % slower on the sample. Its size is kept down
    instead by `min_count` (the vocabulary) and `bucket` (the hashed bigram rows): about
    (words + bucket) x dim x 4 bytes."""

    word_ngrams: int = Field(2, ge=1)
    dim: int = Field(16, ge=1)
    epoch: int = Field(50, ge=1)
    lr: float = Field(0.1, gt=0)
    min_count: int = Field(3, ge=1)
    bucket: int = Field(10_000, ge=1)


class QualityRecipe(Strict):
    """A train-quality recipe; `recipes/quality.yaml` is the example."""

    name: str = "quality"
    output_dir: str
    seed: int = 0
    held_out_fraction: float = Field(0.2, gt=0, lt=1)
    positive: list[SourceSpec] = Field(min_length=1)
    negative: list[SourceSpec] = Field(min_length=1)
    classifier: ClassifierSettings = ClassifierSettings()


def load_quality_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> QualityRecipe:
    """The recipe, validated; user mistakes raise RecipeError naming the file and the field."""
    loaded = load_yaml(Path(path), overrides, "train-quality recipe", "output_dir, positive, negative, ...")
    recipe: QualityRecipe = validate(QualityRecipe, loaded)
    check_inputs(loaded, "positive", recipe.positive)
    check_inputs(loaded, "negative", recipe.negative)
    return recipe


@contextmanager
def zeroed_allocations() -> Iterator[None]:
    """Inside, every block glibc's malloc hands out is zeroed (M_PERTURB 0xFF: freed memory is
    filled with 0xFF, new memory with 0x00). Outside glibc it does nothing.

    Why: fastText's DenseMatrix::uniform (in the fasttext-numpy2-wheel build) initialises only
    `thread` tenths of the input matrix, one tenth per training thread, and leaves the rest as
    malloc returned it. In a fresh process that is zero pages; after anything has been freed it
    may be old bytes, and training then stops with "Encountered NaN" or, worse, silently gives a
    different model on every call (seen: five trainings in one process, four different models).
    With zeroed memory those rows start at 0 every time and a model depends on its recipe only."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_PERTURB, 0xFF)
    try:
        yield
    finally:
        if mallopt is not None:
            mallopt(_M_PERTURB, 0)


class QualityModel:
    """A trained classifier. `scores(texts)`: the probability of the high-quality label."""

    def __init__(self, model: Any) -> None:  # a fasttext model; the library has no type stubs
        labels = set(model.get_labels())
        if labels != {HIGH, LOW}:
            raise ValueError(f"not a grist quality model: its labels are {sorted(labels)}, not {HIGH}, {LOW}")
        self.model = model

    @classmethod
    def load(cls, path: str | Path) -> QualityModel:
        return cls(load_fasttext(str(path)))

    def scores(self, texts: list[str]) -> np.ndarray:
        # One C++ call for the whole list. fastText reports a probability p as p + 1e-5.
        labels, probs = self.model.predict([prepare(t) for t in texts], k=2)
        high = [p[0] if lab[0] == HIGH else p[1] for lab, p in zip(labels, probs, strict=True)]
        return np.minimum(np.asarray(high, dtype=np.float64), 1.0)


def train_classifier(
    positives: list[str], negatives: list[str], settings: ClassifierSettings, seed: int
) -> QualityModel:
    """A classifier trained on these texts, in a seeded random order."""
    import fasttext

    rng = np.random.default_rng(seed)
    examples = [(HIGH, t) for t in positives] + [(LOW, t) for t in negatives]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.txt"
        with path.open("w", encoding="utf-8", newline="\n") as f:
            for i in rng.permutation(len(examples)):
                label, text = examples[i]
                f.write(f"{label} {prepare(text)}\n")
        with zeroed_allocations():
            model = fasttext.train_supervised(
                str(path),
                label=LABEL_PREFIX,
                loss="softmax",
                thread=1,
                seed=seed,
                verbose=0,
                **settings.model_dump(),
            )
    return QualityModel(model)


def roc_auc(labels: np.ndarray | list[int], scores: np.ndarray | list[float]) -> float:
    """The probability that a random positive scores above a random negative, ties counting
    half: the Mann-Whitney rank formula, (sum of positives' ranks - n_pos(n_pos+1)/2) / (n_pos n_neg)."""
    y = np.asarray(labels, dtype=bool)
    _, inverse, counts = np.unique(
        np.asarray(scores, dtype=np.float64), return_inverse=True, return_counts=True
    )
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based, tied scores share their mean rank
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs both positives and negatives")
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Precision, recall and F1 of the high-quality class at `threshold`, and ROC-AUC."""
    y = np.asarray(labels, dtype=bool)
    predicted = np.asarray(scores) >= threshold
    tp = int((predicted & y).sum())
    precision = tp / max(int(predicted.sum()), 1)
    recall = tp / max(int(y.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": threshold,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "roc_auc": round(roc_auc(y, scores), 4),
    }


def read_documents(specs: list[SourceSpec]) -> tuple[list[Document], int]:
    """The documents of all these sources, and how many bad records were skipped."""
    docs, bad = [], 0
    for spec in specs:
        for path in expand_paths(spec.path, spec.format):
            for rec in read_source(
                path,
                source=spec.name,
                format=spec.format,
                text_field=spec.text_field,
                id_field=spec.id_field,
                html_extractor=spec.html_extractor,
            ):
                if isinstance(rec, BadRecord):
                    bad += 1
                else:
                    docs.append(rec)
    return docs, bad


def _read_side(specs: list[SourceSpec]) -> tuple[list[str], list[str], int]:
    """Texts of all these sources, the source name of each, and how many bad records were skipped."""
    docs, bad = read_documents(specs)
    return [d.text for d in docs], [d.source for d in docs], bad


def balanced_split(
    n_pos: int, n_neg: int, held_out: float, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per class, (training indices, held-out indices): the larger class downsampled to the
    smaller, then `held_out` of each class set aside (at least one document, never all)."""
    n = min(n_pos, n_neg)
    n_held = min(max(1, round(n * held_out)), n - 1)
    rng = np.random.default_rng(seed)
    out = {}
    for side, total in (("positive", n_pos), ("negative", n_neg)):
        pick = rng.permutation(total)[:n]
        out[side] = (np.sort(pick[n_held:]), np.sort(pick[:n_held]))
    return out


def train_from_recipe(recipe: QualityRecipe, where: str) -> dict[str, Any]:
    """Train, evaluate on the held-out documents, write model.bin, card.json and card.md; return the card."""
    read = {side: _read_side(getattr(recipe, side)) for side in ("positive", "negative")}
    for side, (texts, _, _) in read.items():
        if len(texts) < 2:
            raise RecipeError(f"{where}: {side}: {len(texts)} documents read, training needs at least 2")
    split = balanced_split(
        len(read["positive"][0]), len(read["negative"][0]), recipe.held_out_fraction, recipe.seed
    )
    pos, neg = read["positive"][0], read["negative"][0]
    model = train_classifier(
        [pos[i] for i in split["positive"][0]],
        [neg[i] for i in split["negative"][0]],
        recipe.classifier,
        recipe.seed,
    )
    held_pos, held_neg = split["positive"][1], split["negative"][1]
    scores = model.scores([pos[i] for i in held_pos] + [neg[i] for i in held_neg])
    labels = np.r_[np.ones(len(held_pos), bool), np.zeros(len(held_neg), bool)]
    # How far apart the two classes' scores lie, which precision, recall and AUC do not show.
    metrics = binary_metrics(labels, scores) | {
        "median_score_positive": round(float(np.median(scores[labels])), 4),
        "median_score_negative": round(float(np.median(scores[~labels])), 4),
    }

    out = Path(recipe.output_dir)
    model_path = out / "model.bin"
    with atomic_path(model_path) as tmp:
        model.model.save_model(str(tmp))
    sources = []
    for side, (_, names, _) in read.items():
        train_idx, held_idx = split[side]
        for spec in getattr(recipe, side):
            sources.append(
                {
                    "class": side,
                    "name": spec.name,
                    "path": spec.path,
                    "format": spec.format,
                    "documents": names.count(spec.name),
                    "train": sum(names[i] == spec.name for i in train_idx),
                    "held_out": sum(names[i] == spec.name for i in held_idx),
                }
            )
    card = {
        "name": recipe.name,
        "model": {
            "file": model_path.name,
            "bytes": model_path.stat().st_size,
            "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
            "labels": {"high": HIGH, "low": LOW},
            "score": f"probability of {HIGH}",
        },
        "sources": sources,
        "counts": {
            "positive_read": len(pos),
            "negative_read": len(neg),
            "bad_records_skipped": read["positive"][2] + read["negative"][2],
            "per_class": len(split["positive"][0]) + len(held_pos),
            "train_per_class": len(split["positive"][0]),
            "held_out_per_class": len(held_pos),
        },
        "held_out": metrics,
        "settings": {
            **recipe.classifier.model_dump(),
            "loss": "softmax",
            "thread": 1,
            "seed": recipe.seed,
            "held_out_fraction": recipe.held_out_fraction,
            "balance": "larger class downsampled to the smaller, seeded",
            "preprocessing": PREPROCESSING,
            "fasttext": version("fasttext-numpy2-wheel"),
        },
        "recipe": where,
    }
    write_json(out / "card.json", card)
    with atomic_path(out / "card.md") as tmp:
        tmp.write_text(card_markdown(card), encoding="utf-8")
    return card


def card_markdown(card: dict[str, Any]) -> str:
    m, c, s = card["held_out"], card["counts"], card["settings"]
    lines = [
        f"# Quality classifier: {card['name']}",
        "",
        f"`{card['model']['file']}` ({card['model']['bytes']:,} bytes, "
        f"sha256 `{card['model']['sha256'][:16]}…`), fastText {s['fasttext']}. "
        f"Score: {card['model']['score']}. Built by `python -m pipeline train-quality {card['recipe']}`.",
        "",
        "## Data",
        "",
        f"{c['per_class']:,} documents per class ({s['balance']}): {c['train_per_class']:,} to train, "
        f"{c['held_out_per_class']:,} held out; {c['bad_records_skipped']} bad input records skipped.",
        "",
        "| class | source | path | documents read | train | held out |",
        "|---|---|---|---:|---:|---:|",
    ]
    for src in card["sources"]:
        lines.append(
            f"| {src['class']} | {src['name']} | `{src['path']}` | {src['documents']:,} | "
            f"{src['train']:,} | {src['held_out']:,} |"
        )
    lines += [
        "",
        "## Held-out metrics",
        "",
        f"High-quality class at score >= {m['threshold']}: precision {m['precision']:.3f}, "
        f"recall {m['recall']:.3f}, F1 {m['f1']:.3f}; ROC-AUC {m['roc_auc']:.3f}. Median score: "
        f"{m['median_score_positive']:.3f} (positive), {m['median_score_negative']:.3f} (negative).",
        "",
        "## Settings",
        "",
        *(f"- {k}: {v}" for k, v in s.items()),
        "",
    ]
    return "\n".join(lines)
