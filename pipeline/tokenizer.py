"""Tokenizer training (HF `tokenizers`) and fast, exactly equivalent encoding (`tiktoken`).

Why two libraries: HF `tokenizers` trains byte-level BPE quickly, but its encoder runs at about
3 MB/s on two cores, which makes tokenization the slowest stage of the pipeline. `tiktoken`
encodes the same BPE several times faster. nanochat does the same: train in one library,
encode with tiktoken.

Why the two give identical ids (for tokenizers built by `train_bpe`):

* Pre-tokenization is one explicit regex (`SPLIT_PATTERN`) in both: HF runs it as a `Split`
  pre-tokenizer followed by `ByteLevel(use_regex=False)` (a pure byte -> character mapping),
  tiktoken runs it as its `pat_str`. The pattern uses only constructs that mean the same in
  Oniguruma (HF) and fancy-regex (tiktoken), and every character matches some branch, so both
  cut text into the same pieces.
* BPE then runs per piece. HF applies the lowest-ranked *merge* among adjacent pairs; tiktoken
  merges the adjacent pair whose *concatenation* has the lowest token id. The trainer gives
  every merge result a new id in merge order, so for every pair in the merge list the two
  ranks agree. They could still differ if tiktoken found two adjacent tokens whose
  concatenation is a vocabulary token that training built from a different split, or if a
  whole piece is a token that HF would not rebuild (tiktoken returns such a piece directly).
  Training builds each token by the same lowest-rank-first procedure that encoding replays,
  which makes both rare, but it does not rule them out for every vocabulary. So `Encoder`
  proves the cheap half exhaustively (every vocabulary token must encode to itself under HF)
  and checks the rest empirically on probe texts and on any sample it is given; on any
  difference it warns and encodes with HF instead. Measured identical on all 13.4 MB of the
  shipped sample at vocab sizes 300 to 32,768 (see bench/tokenize_speed.py).
* Special tokens: the separator must only ever appear *between* documents, so text that
  happens to contain "<|endoftext|>" is encoded as ordinary text. tiktoken does that with
  `disallowed_special=()`; HF needs `encode_special_tokens = True` (not saved in
  tokenizer.json, so `Encoder` sets it). Without that flag HF would emit the separator id for
  such text; on text without that literal the flag changes nothing.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np
import tiktoken
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from pipeline.atomic import atomic_path

SEPARATOR = "<|endoftext|>"

# GPT-4's (cl100k) split pattern with digits grouped by at most two instead of three, as nanochat
# does for small vocabularies: fewer ids spent on numbers. Contractions, words with one leading
# non-letter, digit groups, punctuation runs with their newlines, newline runs, and whitespace
# runs that leave their last space to the following word.
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]"""
    r"""|\s+(?!\S)|\s+"""
)

# Texts that exercise the places where two implementations could disagree: contractions in both
# cases, whitespace runs before words and at ends, CRLF, digit runs, scripts without spaces,
# combining marks, emoji sequences, repeated characters, code, exotic whitespace and digits (where
# two regex engines' Unicode classes could differ), and the separator's literal text.
PROBE_TEXTS = (
    "I'm sure they'll say it's fine; WE'VE heard THEY'RE ready, don't you think? O'Neil's.",
    "a  b   c    d\n\n\n  e\t\tf  \n \n   \r\n\r\nend   ",
    "def f(x):\n    if x:\n        return [x ** 2 for x in range(10)]  # comment\n\treturn None\n",
    "Pi is 3.14159265358979, 1,000,000 and 2024-05-20 or 0x7fff_ffff; 12345678901234567890.",
    "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。",
    "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق. सभी मनुष्यों को गौरव और अधिकारों के मामले में",
    "Всі люди народжуються вільними. Ελληνικά κείμενα. 모든 인간은 태어날 때부터 자유로우며",
    "e\u0301te\u0301 cafe\u0301 — “quotes” ‘single’ … ½ ™ 👩‍👩‍👧‍👦 🎉🎉🎉 🇫🇷",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ================================== ..........",
    "nel\u0085nbsp\u00a0\u00a0ideo\u3000\u3000ls\u2028ps\u2029vt\vff\f zwsp\u200bbom\ufeff nul\x00",
    "١٢٣٤ ①② ¹²³ Ⅻ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚 ǅ ﬁ İstanbul Straße",
    "<|endoftext|> text after a literal separator <|endoftext|><|endoftext|>",
    "",
    " ",
    "\n",
)


@cache
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which HF's ByteLevel uses to store bytes."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    shifted = (b for b in range(256) if b not in table)
    table.update({b: chr(256 + n) for n, b in enumerate(shifted)})
    return table


def train_bpe(
    texts: Iterable[str], vocab_size: int, special_tokens: Sequence[str] = (SEPARATOR,)
) -> Tokenizer:
    """Train a byte-level BPE whose first special token (the separator) gets id 0.

    All 256 bytes are in the vocabulary whatever the training text, so any input encodes."""
    if not special_tokens:
        raise ValueError("at least one special token (the separator) is required")
    if vocab_size < 256 + len(special_tokens):
        raise ValueError(f"vocab_size {vocab_size} is below 256 bytes + {len(special_tokens)} special tokens")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: str | os.PathLike[str]) -> None:
    """Write tokenizer.json atomically (a worker may be reading the previous one)."""
    with atomic_path(path) as tmp:
        tmp.write_text(tokenizer.to_str(), encoding="utf-8")


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    return Tokenizer.from_file(str(path))


class IncompatibleTokenizer(ValueError):
    """The tokenizer is not one tiktoken can reproduce (reason in the message)."""


def tiktoken_encoding(tokenizer: Tokenizer) -> tiktoken.Encoding:
    """The tiktoken Encoding equivalent to a byte-level BPE of `train_bpe`'s shape.

    Raises IncompatibleTokenizer for any other shape (normalizers, other pre-tokenizers,
    dropout, merges whose ids are not in merge order...): those would silently diverge."""
    spec: dict[str, Any] = json.loads(tokenizer.to_str())
    model = spec["model"]
    pre = spec.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [])
    if spec.get("normalizer") is not None:
        raise IncompatibleTokenizer("it has a normalizer")
    if [s.get("type") for s in steps] != ["Split", "ByteLevel"]:
        raise IncompatibleTokenizer("the pre-tokenizer is not Sequence[Split(regex), ByteLevel]")
    split, byte_level = steps
    if "Regex" not in split["pattern"] or split["behavior"] != "Isolated" or split["invert"]:
        raise IncompatibleTokenizer("the Split pre-tokenizer is not an isolated, non-inverted regex")
    if byte_level["use_regex"] or byte_level["add_prefix_space"]:
        raise IncompatibleTokenizer("ByteLevel must have use_regex=False and add_prefix_space=False")
    if model["type"] != "BPE" or model.get("dropout") or model.get("byte_fallback"):
        raise IncompatibleTokenizer("the model is not a plain BPE (no dropout, no byte fallback)")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise IncompatibleTokenizer("the BPE uses subword prefixes or suffixes")

    vocab: dict[str, int] = model["vocab"]
    specials = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
    if any(not t["special"] for t in spec.get("added_tokens", [])):
        raise IncompatibleTokenizer("it has non-special added tokens")
    unicode_to_byte = {c: b for b, c in byte_to_unicode().items()}
    if any(c not in vocab for c in unicode_to_byte):
        raise IncompatibleTokenizer("not all 256 bytes are in the vocabulary")
    previous = -1
    for merge in model["merges"]:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        token_id = vocab.get(left + right)
        if token_id is None or token_id <= previous:
            raise IncompatibleTokenizer(f"merge {left!r} + {right!r} does not create a new id in merge order")
        previous = token_id
    if len(vocab) != 256 + len(model["merges"]) + sum(s in vocab for s in specials):
        raise IncompatibleTokenizer("the vocabulary has tokens that no merge creates")
    try:
        ranks = {
            bytes(unicode_to_byte[c] for c in token): i for token, i in vocab.items() if token not in specials
        }
    except KeyError as e:
        raise IncompatibleTokenizer(f"token with a character outside the byte alphabet: {e}") from e
    if set(specials.values()) & set(ranks.values()):
        raise IncompatibleTokenizer("a special token shares its id with a vocabulary token")
    return tiktoken.Encoding(
        name="grist-bpe",
        pat_str=split["pattern"]["Regex"],
        mergeable_ranks=ranks,
        special_tokens=specials,
    )


class Encoder:
    """Encodes texts to the same ids as HF `Tokenizer.encode_batch(texts, add_special_tokens=False)`
    (with `encode_special_tokens=True`, see the module docstring), using tiktoken when it is
    proven equivalent for this tokenizer and HF otherwise.

    `check_texts` are compared id for id at construction (in addition to PROBE_TEXTS); pass
    `fast=False` to force HF, e.g. in workers when the planner's check found a difference.
    Texts must be valid Unicode (no lone surrogates), as for HF.
    """

    def __init__(
        self,
        tokenizer: Tokenizer | str | os.PathLike[str],
        *,
        check_texts: Sequence[str] = (),
        fast: bool = True,
        num_threads: int | None = None,
    ) -> None:
        source = tokenizer if isinstance(tokenizer, Tokenizer) else load_tokenizer(tokenizer)
        self.tokenizer = Tokenizer.from_str(source.to_str())  # a copy: we change a setting
        self.tokenizer.encode_special_tokens = True
        self.vocab_size = self.tokenizer.get_vocab_size()
        self.num_threads = num_threads or len(os.sched_getaffinity(0))
        self.fallback_reason: str | None = "fast=False was requested"
        self._tiktoken: tiktoken.Encoding | None = None
        if fast:
            self.fallback_reason = self._try_fast([*PROBE_TEXTS, *check_texts])
            if self.fallback_reason:
                warnings.warn(
                    f"tokenizer is not reproducible by tiktoken ({self.fallback_reason}); "
                    "encoding with HF tokenizers, several times slower",
                    RuntimeWarning,
                    stacklevel=2,
                )

    @property
    def fast(self) -> bool:
        """Whether encoding goes through tiktoken."""
        return self._tiktoken is not None

    def _try_fast(self, texts: Sequence[str]) -> str | None:
        """Enable tiktoken if it provably matches; otherwise return why not."""
        try:
            encoding = tiktoken_encoding(self.tokenizer)
        except IncompatibleTokenizer as e:
            return str(e)
        for token, token_id in self.tokenizer.get_vocab(with_added_tokens=False).items():
            # tiktoken returns a piece that is a whole token as-is; HF must rebuild it by merges.
            if token in encoding.special_tokens_set:
                continue
            if [t.id for t in self.tokenizer.model.tokenize(token)] != [token_id]:
                return f"HF does not rebuild vocabulary token {token!r} from its bytes"
        self._tiktoken = encoding
        fast, hf = self.encode_batch(texts), self._encode_hf(texts)
        for text, fast_ids, hf_ids in zip(texts, fast, hf, strict=True):
            if not np.array_equal(fast_ids, hf_ids):
                self._tiktoken = None
                return f"ids differ on text starting {text[:80]!r}"
        return None

    def _encode_hf(self, texts: Sequence[str]) -> list[np.ndarray]:
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.uint32) for e in encodings]

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One uint32 id array per text, no separator added. tiktoken releases the GIL, so
        threads use every core."""
        encoding = self._tiktoken
        if encoding is None:
            return self._encode_hf(texts)

        def encode(text: str) -> np.ndarray:
            return encoding.encode_to_numpy(text, disallowed_special=())

        if self.num_threads == 1 or len(texts) < 2:
            return [encode(t) for t in texts]
        with ThreadPoolExecutor(self.num_threads) as pool:
            return list(pool.map(encode, texts))

    def encode(self, text: str) -> np.ndarray:
        return self.encode_batch([text])[0]

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Text of `ids`; invalid UTF-8 (a sequence cut mid-character) becomes U+FFFD."""
        ids = [int(i) for i in ids]
        if self._tiktoken is not None:
            return self._tiktoken.decode(ids)
        return self.tokenizer.decode(ids, skip_special_tokens=False)
