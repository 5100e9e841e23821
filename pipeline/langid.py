"""fastText language identification, computed exactly as fastText does but about 20x faster.

fastText's `predict` spends its time recomputing character n-grams for every word of every
document (lid.176 uses 2-4-grams). The model itself is tiny: a document's hidden vector is the
mean of its words' input rows (each word contributing its id row and n-gram rows) plus the
end-of-line row, and the label comes from a hierarchical softmax over 176 labels. So we ask
fastText once per distinct word for that word's row sum (`get_word_vector` x row count), cache
it, and do the rest in numpy for a whole batch: per-document sums by `bincount`, then every
leaf's path score at once. The result equals fastText's `predict(text, k=1)` up to float
rounding; `tests/test_language.py` checks labels and scores against the library on real text.

The output matrix of a quantized model is not exposed by the Python API, so it is read from
the end of the .ftz file, where fastText stores it unquantized when `qout` is off.
"""

from __future__ import annotations

import re
import struct
from itertools import chain
from pathlib import Path

import numpy as np

# fastText's readWord splits on these bytes; "\n" would end the line, so it counts as a space
# here exactly as in the reference call predict(text.replace("\n", " ")).
_FASTTEXT_SPACE = re.compile(r"[ \n\r\t\v\f\x00]+")
# Characters str.split() splits on but fastText does not: when absent, str.split() is exact.
_OTHER_SPACE = re.compile(r"[\x00\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_MAX_CACHED_WORDS = 2_000_000  # ~150 MB of cached rows; the cache restarts beyond it


def _fasttext_split(text: str) -> list[str]:
    return [t for t in _FASTTEXT_SPACE.split(text) if t]


def load_fasttext(path: str):  # noqa: ANN201 - fasttext has no type stubs
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None  # its load-time warning is noise here
    return fasttext.load_model(path)


class FastLanguageID:
    """`predict(texts) -> (labels, probabilities)` for a supervised fastText model with a
    hierarchical-softmax output and an unquantized output matrix (lid.176.ftz / .bin)."""

    def __init__(self, model_path: str) -> None:
        self.model = load_fasttext(model_path)
        args = self.model.f.getArgs()
        if str(args.loss) != "loss_name.hs" or args.qout or args.wordNgrams > 1:
            raise ValueError(f"{model_path}: fast path needs hs loss, qout off and word unigrams")
        labels, counts = self.model.get_labels(include_freq=True)
        self.labels = [label.removeprefix("__label__") for label in labels]
        self.dim = int(args.dim)
        self.w_out = self._read_output_matrix(Path(model_path), len(labels), self.dim)
        self.right, self.left = self._leaf_paths(np.asarray(counts, dtype=np.int64))
        self.eos = self._word_sum("</s>")[0]
        self._index: dict[str, int] = {}
        self._sums = np.zeros((1024, self.dim))
        self._counts = np.zeros(1024)

    @staticmethod
    def _read_output_matrix(path: Path, rows: int, dim: int) -> np.ndarray:
        size = rows * dim * 4
        with path.open("rb") as f:
            f.seek(-(size + 17), 2)
            tail = f.read()
        qout = tail[0]
        m, n = struct.unpack("<qq", tail[1:17])
        if qout != 0 or (m, n) != (rows, dim):
            raise ValueError(f"{path}: unexpected output matrix layout (qout={qout}, shape={m}x{n})")
        return np.frombuffer(tail[17:], dtype="<f4").reshape(rows, dim).astype(np.float64)

    @staticmethod
    def _leaf_paths(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """fastText's Huffman tree (HierarchicalSoftmaxLoss::buildTree) as two 0/1 matrices:
        right[leaf, node] / left[leaf, node] when the leaf's path turns that way at `node`."""
        osz = len(counts)
        count = np.full(2 * osz - 1, 1e15)
        count[:osz] = counts
        parent = np.full(2 * osz - 1, -1)
        is_right = np.zeros(2 * osz - 1, dtype=bool)
        leaf, node = osz - 1, osz
        for i in range(osz, 2 * osz - 1):
            pick = []
            for _ in range(2):
                if leaf >= 0 and count[leaf] < count[node]:
                    pick.append(leaf)
                    leaf -= 1
                else:
                    pick.append(node)
                    node += 1
            count[i] = count[pick[0]] + count[pick[1]]
            parent[pick[0]] = parent[pick[1]] = i
            is_right[pick[1]] = True
        right = np.zeros((osz, osz - 1))
        left = np.zeros((osz, osz - 1))
        for leaf_id in range(osz):
            child = leaf_id
            while parent[child] != -1:
                (right if is_right[child] else left)[leaf_id, parent[child] - osz] = 1.0
                child = parent[child]
        return right, left

    def _word_sum(self, word: str) -> tuple[np.ndarray, int]:
        n = len(self.model.get_subwords(word)[1])
        return self.model.get_word_vector(word).astype(np.float64) * n, n

    def _add_words(self, words: list[str]) -> None:
        if len(self._index) + len(words) > _MAX_CACHED_WORDS:
            self._index.clear()
        start = len(self._index)
        need = start + len(words)
        if need > len(self._sums):
            grow = max(need, 2 * len(self._sums))
            self._sums = np.resize(self._sums, (grow, self.dim))
            self._counts = np.resize(self._counts, grow)
        for i, w in enumerate(words, start):
            self._index[w] = i
            self._sums[i], self._counts[i] = self._word_sum(w)

    def hidden(self, texts: list[str]) -> np.ndarray:
        """Each text's hidden vector: mean of all its input rows, end-of-line row included."""
        token_lists = [_fasttext_split(t) if _OTHER_SPACE.search(t) else t.split() for t in texts]
        unseen = set(chain.from_iterable(token_lists)) - self._index.keys()
        if unseen:
            self._add_words(sorted(unseen))
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(texts))
        rows = np.fromiter(
            map(self._index.__getitem__, chain.from_iterable(token_lists)),
            dtype=np.int64,
            count=int(lengths.sum()),
        )
        sums = np.zeros((len(texts), self.dim))
        counts = np.ones(len(texts))  # the end-of-line token
        nonempty = lengths > 0
        if nonempty.any():
            starts = (np.cumsum(lengths) - lengths)[nonempty]
            sums[nonempty] = np.add.reduceat(self._sums[rows], starts, axis=0)
            counts[nonempty] += np.add.reduceat(self._counts[rows], starts)
        return (sums + self.eos) / counts[:, None]

    def predict(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """Top label and its probability per text, as fastText's predict(k=1) reports them."""
        if not texts:
            return [], np.zeros(0)
        f = 1.0 / (1.0 + np.exp(-(self.hidden(texts) @ self.w_out[: len(self.labels) - 1].T)))
        scores = np.log(f + 1e-5) @ self.right.T + np.log(1.0 - f + 1e-5) @ self.left.T
        best = scores.argmax(axis=1)
        return [self.labels[i] for i in best], np.exp(scores[np.arange(len(texts)), best])


class LibraryLanguageID:
    """fastText's own `predict`, one document per line: the reference the fast path must equal,
    and the fallback for models outside the fast path (softmax loss, quantized output)."""

    def __init__(self, model_path: str) -> None:
        self.model = load_fasttext(model_path)

    def predict(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        labels, scores = self.model.predict([t.replace("\n", " ") for t in texts], k=1)
        names = [lab[0].removeprefix("__label__") if len(lab) else "unknown" for lab in labels]
        return names, np.array([s[0] if len(s) else 0.0 for s in scores], dtype=np.float64)


def language_predictor(model_path: str) -> FastLanguageID | LibraryLanguageID:
    try:
        return FastLanguageID(model_path)
    except ValueError:
        return LibraryLanguageID(model_path)
