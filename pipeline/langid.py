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
from itertools import chain, repeat
from pathlib import Path

import numpy as np

# fastText's readWord splits on these bytes; "\n" would end the line, so it counts as a space
# here exactly as in the reference call predict(text.replace("\n", " ")).
_FASTTEXT_SPACE = re.compile(r"[ \n\r\t\v\f\x00]+")
# Characters str.split() splits on but fastText does not: when absent, str.split() is exact.
_OTHER_SPACE = re.compile(r"[\x00\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_MAX_CACHED_WORDS = 2_000_000  # ~150 MB of cached rows; the cache restarts beyond it
_ROWS_PER_CHUNK = 1 << 15  # tokens whose rows are summed in one go (fits in cache)


def _fasttext_split(text: str) -> list[str]:
    return [t for t in _FASTTEXT_SPACE.split(text) if t]


def load_fasttext(path: str):  # noqa: ANN201 - fasttext has no type stubs
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None  # its load-time warning is noise here
    return fasttext.load_model(path)


_FNV_OFFSET, _FNV_PRIME = 2166136261, 16777619
_FASTTEXT_MAGIC = 793712314


class SubwordRows:
    """fastText's input rows for words, computed for a whole batch of new words at once.

    A word contributes its own row (when in the dictionary) and one row per character n-gram
    (minn..maxn UTF-8 characters of "<word>"), hashed with 32-bit FNV-1a into `bucket` slots
    and, in a pruned (.ftz) model, mapped through the dictionary's prune index. This mirrors
    fastText's Dictionary::computeSubwords and ::hash (including the sign extension of bytes
    >= 0x80), vectorised over every n-gram of the batch; asking fastText word by word through
    its Python API was 75 % of language-ID time on real text."""

    def __init__(self, model, path: Path) -> None:  # noqa: ANN001 - fasttext has no type stubs
        args = model.f.getArgs()
        self.minn, self.maxn, self.bucket = int(args.minn), int(args.maxn), int(args.bucket)
        nwords, prune = self._read_dictionary(path)
        if nwords != len(model.words):
            raise ValueError(f"{path}: dictionary has {nwords} words, fastText reports {len(model.words)}")
        self.word_ids = {w: i for i, w in enumerate(model.words)}
        self.bucket_row = np.full(self.bucket, -1, dtype=np.int64)  # -1: bucket pruned away
        if prune is None:
            self.bucket_row[:] = nwords + np.arange(self.bucket)
        else:
            self.bucket_row[prune[:, 0]] = nwords + prune[:, 1]
        n_rows = int(self.bucket_row.max()) + 1
        self.rows = np.stack([model.get_input_vector(i) for i in range(n_rows)]).astype(np.float64)

    @staticmethod
    def _read_dictionary(path: Path) -> tuple[int, np.ndarray | None]:
        """(nwords, the prune index as (bucket, slot) pairs, or None) from a fastText model file."""
        data = path.read_bytes()
        magic, _version = struct.unpack_from("<ii", data, 0)
        if magic != _FASTTEXT_MAGIC:
            raise ValueError(f"{path}: not a fastText model file")
        pos = 8 + 12 * 4 + 8  # after the args: twelve int32 and one double
        size, nwords, _nlabels, _ntokens, prune_size = struct.unpack_from("<iiiqq", data, pos)
        pos += 3 * 4 + 2 * 8
        for _ in range(size):
            pos = data.index(b"\0", pos) + 1 + 8 + 1  # word, its count (int64), its type (int8)
        if prune_size < 0:
            return nwords, None
        pairs = np.frombuffer(data, dtype="<i4", count=2 * prune_size, offset=pos).reshape(-1, 2)
        return nwords, pairs.astype(np.int64)

    def word_rows(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every input row of every word, and the index of the word each row belongs to."""
        is_ascii = np.fromiter(map(str.isascii, words), dtype=bool, count=len(words))
        ids = np.array([self.word_ids.get(w, -1) for w in words], dtype=np.int64)
        in_vocab = np.flatnonzero(ids >= 0)
        rows_out, owners_out = [ids[in_vocab]], [in_vocab]
        for pick, ngrams in (
            (np.flatnonzero(is_ascii), self._ascii_ngrams),
            (np.flatnonzero(~is_ascii), self._utf8_ngrams),
        ):
            if len(pick):
                rows, owners = ngrams([words[i] for i in pick])
                rows_out.append(rows)
                owners_out.append(pick[owners])
        return np.concatenate(rows_out), np.concatenate(owners_out)

    def _keep(self, hashes: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = self.bucket_row[hashes % self.bucket]
        kept = rows >= 0
        return rows[kept], owners[kept]

    def _ascii_ngrams(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """ASCII words (most of them): one byte per character, so the n-gram hashes at every
        position come from shifted slices, n steps for all words at once."""
        buf = np.frombuffer(("".join(f"<{w}>" for w in words)).encode("ascii"), dtype=np.uint8).astype(
            np.int64
        )
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words)) + 2
        owner = np.repeat(np.arange(len(words)), lengths)
        first = np.cumsum(lengths) - lengths
        h = ((_FNV_OFFSET ^ buf) * _FNV_PRIME) & 0xFFFFFFFF  # the 1-gram at every position
        rows_out, owners_out = [], []
        for n in range(1, self.maxn + 1):
            if n > 1:
                h = ((h[:-1] ^ buf[n - 1 :]) * _FNV_PRIME) & 0xFFFFFFFF
            if n < self.minn or len(h) == 0:
                continue
            start = np.arange(len(h))
            valid = owner[start] == owner[start + n - 1]  # the n-gram stays inside its word
            if n == 1:  # fastText skips "<" and ">" alone
                valid &= (start != first[owner[start]]) & (start + 1 != (first + lengths)[owner[start]])
            rows, owners = self._keep(h[valid], owner[start[valid]])
            rows_out.append(rows)
            owners_out.append(owners)
        return np.concatenate(rows_out), np.concatenate(owners_out)

    def _utf8_ngrams(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Words with multi-byte characters: n-grams are n characters, of 1-4 bytes each."""
        encoded = [f"<{w}>".encode("utf-8", "surrogatepass") for w in words]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(words))
        buf = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        word_end = np.cumsum(lengths)
        starts = np.flatnonzero((buf & 0xC0) != 0x80)  # the first byte of every character
        owner = np.repeat(np.arange(len(words)), lengths)[starts]
        n_chars = np.bincount(owner, minlength=len(words))
        k = np.arange(len(starts))
        j = k - (np.cumsum(n_chars) - n_chars)[owner]  # character position inside its word
        c = n_chars[owner]
        signed = buf.astype(np.int8).astype(np.int64) & 0xFFFFFFFF  # fastText hashes int8 bytes

        # FNV-1a is a running hash, so one pass from every character start yields the hash of
        # its 1..maxn-gram at each character boundary: hash every byte up to the maxn-gram's end.
        def char_end(n: int) -> np.ndarray:
            return np.where(j + n < c, starts[np.minimum(k + n, len(starts) - 1)], word_end[owner])

        ends = {n: char_end(n) for n in range(self.minn, self.maxn + 1)}
        stop = np.where(j + self.maxn <= c, ends[self.maxn], word_end[owner])
        hashes = {n: np.zeros(len(starts), dtype=np.int64) for n in ends}
        act = np.arange(len(starts))  # n-grams still being hashed; most are done after 4 bytes
        h = np.full(len(starts), _FNV_OFFSET, dtype=np.int64)
        for t in range(int((stop - starts).max(initial=0))):
            pos = starts[act] + t
            live = pos < stop[act]
            act, pos, h = act[live], pos[live], h[live]
            h = ((h ^ signed[pos]) * _FNV_PRIME) & 0xFFFFFFFF
            for n, end in ends.items():
                done = pos + 1 == end[act]
                hashes[n][act[done]] = h[done]
        rows_out, owners_out = [], []
        for n in range(self.minn, self.maxn + 1):
            valid = j + n <= c
            if n == 1:
                valid &= (j > 0) & (j + 1 < c)
            rows, owners = self._keep(hashes[n][valid], owner[valid])
            rows_out.append(rows)
            owners_out.append(owners)
        return np.concatenate(rows_out), np.concatenate(owners_out)

    def sums(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per word: the sum of its input rows and how many rows it has."""
        rows, owners = self.word_rows(words)
        order = np.argsort(owners, kind="stable")
        counts = np.bincount(owners, minlength=len(words))
        sums = np.zeros((len(words), self.rows.shape[1]))
        has = counts > 0
        if has.any():
            sums[has] = np.add.reduceat(self.rows[rows[order]], (np.cumsum(counts) - counts)[has], axis=0)
        return sums, counts.astype(np.float64)


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
        self.subwords = SubwordRows(self.model, Path(model_path))
        self.eos = self.subwords.rows[self.subwords.word_ids["</s>"]]  # EOS has no n-grams
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

    def _rows(self, tokens: list[str]) -> np.ndarray:
        """Cache rows of `tokens`, computing the words never seen before in one batch."""
        get = self._index.get
        rows = np.fromiter(map(get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
        missing = np.flatnonzero(rows < 0)
        if len(missing) == 0:
            return rows
        words = list({tokens[i] for i in missing})
        if len(self._index) + len(words) > _MAX_CACHED_WORDS:  # start the cache afresh
            self._index.clear()
            words = list(set(tokens))
        start, need = len(self._index), len(self._index) + len(words)
        if need > len(self._sums):
            grow = max(need, 2 * len(self._sums))
            self._sums = np.resize(self._sums, (grow, self.dim))
            self._counts = np.resize(self._counts, grow)
        self._sums[start:need], self._counts[start:need] = self.subwords.sums(words)
        self._index.update(zip(words, range(start, need), strict=True))
        if start == 0:  # the cache restarted: every row is new
            return np.fromiter(map(self._index.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        rows[missing] = [self._index[tokens[i]] for i in missing.tolist()]
        return rows

    def hidden(self, texts: list[str]) -> np.ndarray:
        """Each text's hidden vector: mean of all its input rows, end-of-line row included."""
        token_lists = [_fasttext_split(t) if _OTHER_SPACE.search(t) else t.split() for t in texts]
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(texts))
        rows = self._rows(list(chain.from_iterable(token_lists)))
        sums = np.zeros((len(texts), self.dim))
        counts = np.ones(len(texts))  # the end-of-line token
        ends = np.cumsum(lengths)
        nonempty = np.flatnonzero(lengths > 0)
        counts[nonempty] += np.add.reduceat(self._counts[rows], (ends - lengths)[nonempty])
        # Sum rows a few thousand documents' tokens at a time: gathering every token's row at
        # once would stream a temporary array of 128 bytes per token through memory.
        for chunk in np.array_split(nonempty, max(1, int(ends[-1]) // _ROWS_PER_CHUNK)):
            if len(chunk):
                lo, hi = ends[chunk[0]] - lengths[chunk[0]], ends[chunk[-1]]
                sums[chunk] = np.add.reduceat(self._sums[rows[lo:hi]], (ends - lengths)[chunk] - lo, axis=0)
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
