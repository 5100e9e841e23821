"""The fast language-ID path equals fastText's own predict on real text in many languages."""

from __future__ import annotations

import numpy as np

from pipeline.langid import FastLanguageID, LibraryLanguageID
from pipeline.steps.language import DEFAULT_MODEL
from tests.conftest import load_sample


def test_fast_path_equals_fasttext_predict() -> None:
    docs = (
        load_sample("multilingual_udhr.jsonl.gz")
        + load_sample("web_html_extracted.jsonl.gz")
        + load_sample("code_python_stdlib.jsonl.gz", 20)
        + load_sample("web_dclm_quality_labeled.jsonl.gz", 150)
    )
    texts = [d.text for d in docs] + ["", "\x00", "word\u3000word\xa0x", "  \n\t ", "Hello world"]
    fast, ref = FastLanguageID(str(DEFAULT_MODEL)), LibraryLanguageID(str(DEFAULT_MODEL))
    want_labels, want_scores = ref.predict(texts)
    got_labels, got_scores = fast.predict(texts)
    assert got_labels == want_labels
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-4)
    assert len(set(want_labels)) > 40  # the UDHR really covers many languages
    # the word cache gives the same answers on a second, warm pass and in other batchings
    again = [fast.predict(texts[i : i + 7]) for i in range(0, len(texts), 7)]
    assert [lab for labels, _ in again for lab in labels] == want_labels
