"""Turning text into integer tensors: a tokenizer and a vocabulary in plain Python and NumPy.

Nothing here imports Keras or TensorFlow. ``keras.layers.TextVectorization`` would do the same
job, but it needs TensorFlow even under the JAX or torch backend; this module gives every
backend the same arrays, and its rules are short enough to read in one sitting.

The pipeline, one function per step::

    tokens = tokenize("Apple's new phone: 2 cameras!")   # ["apple's", "new", "phone", "2", ...]
    vocab = Vocabulary.build(tokenize_all(texts), min_freq=2, max_size=20_000)
    ids = vocab.encode(tokens)                           # int32, unknown words -> vocab.oov_id
    batch = pad([ids, ...], maxlen=128)                  # int32 (N, 128), 0 = padding
    vocab.decode(batch[0])                               # back to tokens, padding dropped

Id 0 is always the padding token and id 1 the out-of-vocabulary token; further special tokens
(``<mask>`` for a masked language model) come next, then words from most to least frequent.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "MASK", "OOV", "PAD", "Vocabulary", "encode_texts", "pad", "tokenize", "tokenize_all",
    "windows",
]

PAD = "<pad>"
OOV = "<oov>"
MASK = "<mask>"

# A word is a run of letters or digits, possibly joined by inner apostrophes ("don't", "o'neill").
# [^\W_] is "a word character other than the underscore", so Unicode letters count too.
_WORD = r"[^\W_]+(?:['\u2019][^\W_]+)*"
_WORD_RE = re.compile(_WORD)
# With punctuation kept, every other visible character becomes a token of its own.
_WORD_OR_MARK_RE = re.compile(_WORD + r"|[^\w\s]|_")


def tokenize(text: str, lowercase: bool = True, punctuation: bool = False) -> list[str]:
    """Split a text into word tokens.

    lowercase: fold case first, so "Apple" and "apple" are one token.
    punctuation: keep each punctuation mark as a token of its own ("!", ",", "£");
        by default punctuation is dropped.
    Returns a list of strings, in reading order. Curly apostrophes become straight ones.
    """
    if lowercase:
        text = text.lower()
    pattern = _WORD_OR_MARK_RE if punctuation else _WORD_RE
    return [t.replace("\u2019", "'") for t in pattern.findall(text)]


def tokenize_all(texts: Iterable[str], lowercase: bool = True,
                 punctuation: bool = False) -> list[list[str]]:
    """:func:`tokenize` applied to every text; returns one token list per text."""
    pattern = _WORD_OR_MARK_RE if punctuation else _WORD_RE
    out = []
    for text in texts:
        if lowercase:
            text = text.lower()
        tokens = pattern.findall(text)
        if "\u2019" in text:
            tokens = [t.replace("\u2019", "'") for t in tokens]
        out.append(tokens)
    return out


class Vocabulary:
    """A two-way map between tokens and integer ids.

    Build one with :meth:`build`. ``tokens[i]`` is the token with id i. Id 0 is :data:`PAD`,
    id 1 is :data:`OOV`; any further special tokens follow, then the words by falling frequency
    (ties in alphabetical order, so a vocabulary is the same on every machine).
    """

    def __init__(self, tokens: Sequence[str], counts: dict[str, int] | None = None):
        tokens = list(tokens)
        if len(tokens) < 2 or tokens[0] != PAD or tokens[1] != OOV:
            raise ValueError(f"A vocabulary starts with {PAD!r} (id 0) and {OOV!r} (id 1); "
                             f"got {tokens[:2]!r}.")
        if len(set(tokens)) != len(tokens):
            raise ValueError("A vocabulary cannot list the same token twice.")
        self.tokens = tokens
        self.counts = dict(counts or {})
        self.index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, docs: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None,
              specials: Sequence[str] = (PAD, OOV)) -> Vocabulary:
        """Count tokens over tokenized documents and keep the frequent ones.

        docs: an iterable of token lists (e.g. from :func:`tokenize_all`).
        min_freq: keep a token only if it occurs at least this often in all docs together.
        max_size: the largest vocabulary, special tokens included (None: no limit).
        specials: special tokens, starting with PAD and OOV (add MASK for a masked LM).
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}.")
        specials = list(specials)
        if max_size is not None and max_size < len(specials):
            raise ValueError(f"max_size={max_size} leaves no room for the {len(specials)} "
                             "special tokens.")
        counts: Counter[str] = Counter()
        for doc in docs:
            counts.update(doc)
        for s in specials:
            counts.pop(s, None)
        kept = sorted((t for t, c in counts.items() if c >= min_freq),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - len(specials)]
        return cls(specials + kept, {t: counts[t] for t in kept})

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens: {self.tokens[:6]!r}...)"

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def oov_id(self) -> int:
        return 1

    @property
    def mask_id(self) -> int | None:
        """Id of :data:`MASK`, or None if this vocabulary has no mask token."""
        return self.index.get(MASK)

    @property
    def n_special(self) -> int:
        """How many ids at the start are special tokens such as ``<pad>`` (words follow)."""
        n = 0
        for t in self.tokens:
            if not (len(t) > 2 and t[0] == "<" and t[-1] == ">"):
                break
            n += 1
        return n

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Token list -> int32 array of ids, shape (len(tokens),); unknown tokens get OOV (1)."""
        get = self.index.get
        return np.fromiter((get(t, 1) for t in tokens), dtype=np.int32, count=len(tokens))

    def decode(self, ids: Iterable[int], keep_pad: bool = False) -> list[str]:
        """Ids -> tokens; padding (id 0) is dropped unless ``keep_pad``."""
        return [self.tokens[int(i)] for i in np.asarray(ids).ravel() if keep_pad or int(i) != 0]

    def to_dict(self) -> dict:
        return {"tokens": self.tokens, "counts": [self.counts.get(t, 0) for t in self.tokens]}

    @classmethod
    def from_dict(cls, d: dict) -> Vocabulary:
        counts = {t: c for t, c in zip(d["tokens"], d.get("counts", [])) if c}
        return cls(d["tokens"], counts)

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON (tokens in id order, and their counts)."""
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def pad(sequences: Sequence[Sequence[int]], maxlen: int, value: int = 0,
        padding: str = "post", truncating: str = "post") -> np.ndarray:
    """Make sequences of different lengths into one int32 matrix of shape (N, maxlen).

    padding: "post" puts the filler ``value`` after the tokens, "pre" before them.
    truncating: "post" keeps the first ``maxlen`` tokens of a longer sequence, "pre" the last.
    """
    if maxlen < 1:
        raise ValueError(f"maxlen must be at least 1, got {maxlen}.")
    for name, choice in (("padding", padding), ("truncating", truncating)):
        if choice not in ("pre", "post"):
            raise ValueError(f"{name} must be 'pre' or 'post', got {choice!r}.")
    out = np.full((len(sequences), maxlen), value, dtype=np.int32)
    for row, seq in enumerate(sequences):
        seq = np.asarray(seq, dtype=np.int32)
        seq = seq[:maxlen] if truncating == "post" else seq[max(0, len(seq) - maxlen):]
        if len(seq) == 0:
            continue
        if padding == "post":
            out[row, : len(seq)] = seq
        else:
            out[row, maxlen - len(seq):] = seq
    return out


def encode_texts(texts: Iterable[str], vocab: Vocabulary, maxlen: int, lowercase: bool = True,
                 punctuation: bool = False) -> np.ndarray:
    """Tokenize, encode and pad (post) in one go: int32 array of shape (len(texts), maxlen)."""
    docs = tokenize_all(texts, lowercase=lowercase, punctuation=punctuation)
    return pad([vocab.encode(d) for d in docs], maxlen)


def windows(sequences: Iterable[np.ndarray], length: int, min_tokens: int = 8) -> np.ndarray:
    """Cut each id sequence into consecutive, non-overlapping windows of ``length`` ids.

    This is how a long article becomes several pretraining examples instead of one truncated
    one. The last window of a sequence is padded with 0; a window with fewer than ``min_tokens``
    real tokens is dropped. Returns int32 (number of windows, length).
    """
    rows = []
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int32)
        for start in range(0, len(seq), length):
            piece = seq[start:start + length]
            if len(piece) >= min_tokens:
                rows.append(piece)
    return pad(rows, length) if rows else np.zeros((0, length), dtype=np.int32)
