"""Knowledge distillation (notebook 13): soft targets, the distillation loss, a live teacher.

A large classifier (the *teacher*) is imitated by a small one (the *student*), which learns
from the teacher's probabilities softened by a temperature T (Hinton, Vinyals & Dean, 2015).
The pieces:

- :func:`softened_softmax`, :func:`distillation_loss`, :func:`distillation_grad`,
  :func:`fit_student`: the NumPy references for notebook 13's exercises. The released notebook
  falls back on them while an exercise is still open (as notebook 05 relies on :mod:`nn`).
- :class:`Teacher`: notebook 10's fine-tuned classifier, trained step for step as the
  ``finetune`` arm of :func:`course_lib.experiment.run` trains it (same windows, same linear
  probe as the starting head, same seeds), but kept alive afterwards, so that it can label
  texts it was never trained on and be timed.
- :func:`hashed_features`: a bag of words hashed into a fixed number of buckets (no vocabulary).
- :func:`seconds_per_call`, :func:`folder_bytes`: what a model costs to run and to store.

Keras and scikit-learn are imported inside the functions that use them, so importing this
module is cheap.

Shapes: logits are (N, C) for N examples and C classes; labels are int (N,) with -1 for an
example that has no label (an article of the unlabeled pool).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "Teacher", "WORD_PATTERN", "distillation_grad", "distillation_loss", "fit_student",
    "folder_bytes", "hashed_features", "log_softened_softmax", "seconds_per_call",
    "softened_softmax",
]

NO_LABEL = -1
# A word, for the hashed bag of words: two or more letters (digits and "_" excluded).
WORD_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"


# ---------------------------------------------------------------------------------------------
# Soft targets and the loss (the references for the notebook's exercises)
# ---------------------------------------------------------------------------------------------

def _logits_2d(logits, name: str = "logits") -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (examples, classes), got shape {z.shape}; "
                         "for a single example pass z[None, :].")
    return z


def _temperature(T) -> float:
    T = float(T)
    if not np.isfinite(T) or T <= 0:
        raise ValueError(f"The temperature T must be a positive number, got {T}.")
    return T


def log_softened_softmax(logits, T: float = 1.0) -> np.ndarray:
    """log softmax(logits / T) row by row, without overflow: (N, C) -> float64 (N, C)."""
    z = _logits_2d(logits) / _temperature(T)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softened_softmax(logits, T: float = 1.0) -> np.ndarray:
    """softmax(logits / T) row by row: (N, C) -> float64 (N, C), rows summing to 1.

    Stable for any finite logits and any T > 0 (the row maximum is subtracted after dividing
    by T, so exp only sees values <= 0). Raises ValueError for a T that is not positive or
    logits that are not 2-D.
    """
    return np.exp(log_softened_softmax(logits, T))


def _check_batch(student_logits, teacher_logits, labels):
    s = _logits_2d(student_logits, "student_logits")
    t = _logits_2d(teacher_logits, "teacher_logits")
    if s.shape != t.shape:
        raise ValueError(f"student_logits {s.shape} and teacher_logits {t.shape} must have the "
                         "same shape (examples, classes).")
    y = np.asarray(labels)
    if y.shape != (s.shape[0],):
        raise ValueError(f"labels must have shape ({s.shape[0]},), one per example, got "
                         f"{y.shape}.")
    y = y.astype(np.int64)
    if np.any((y < NO_LABEL) | (y >= s.shape[1])):
        raise ValueError(f"labels must be class indices 0..{s.shape[1] - 1}, or -1 for "
                         "no label.")
    return s, t, y


def distillation_loss(student_logits, teacher_logits, labels, T: float, alpha: float) -> float:
    """The mean distillation loss of a batch (a Python float).

    Per example: alpha * T**2 * KL(q || p_T) + (1 - alpha) * CE(y, p_1), where q is the
    teacher's softened_softmax at T, p_T the student's at T, and p_1 the student's at T = 1.
    The cross-entropy term is 0 for an example whose label is -1. Averaged over all N.
    """
    s, t, y = _check_batch(student_logits, teacher_logits, labels)
    T = _temperature(T)
    log_q, log_p = log_softened_softmax(t, T), log_softened_softmax(s, T)
    kl = np.sum(np.exp(log_q) * (log_q - log_p), axis=1)
    has = y >= 0
    ce = np.zeros(len(y))
    ce[has] = -log_softened_softmax(s[has], 1.0)[np.arange(has.sum()), y[has]]
    return float(np.mean(alpha * T * T * kl + (1.0 - alpha) * ce))


def distillation_grad(student_logits, teacher_logits, labels, T: float,
                      alpha: float) -> np.ndarray:
    """Gradient of :func:`distillation_loss` with respect to the student's logits, (N, C):

    (1/N) * [alpha * T * (p_T - q) + (1 - alpha) * (p_1 - onehot(y))], the second term only
    for labelled examples.
    """
    s, t, y = _check_batch(student_logits, teacher_logits, labels)
    T = _temperature(T)
    g = alpha * T * (softened_softmax(s, T) - softened_softmax(t, T))
    has = np.flatnonzero(y >= 0)
    hard = softened_softmax(s[has], 1.0)
    hard[np.arange(len(has)), y[has]] -= 1.0
    g[has] += (1.0 - alpha) * hard
    return g / len(y)


def fit_student(X, teacher_logits, labels, T: float, alpha: float, lr: float,
                steps: int) -> tuple[np.ndarray, np.ndarray]:
    """A linear student z = X W + b trained on the distillation loss by gradient descent.

    X: (N, D) features (a NumPy array or a SciPy sparse matrix). W (D, C) and b (C,) start at 0;
    each of ``steps`` full-batch steps subtracts lr times the gradient, obtained from
    :func:`distillation_grad` by the chain rule (dW = X^T G, db = column sums of G).
    Returns (W, b) as float64 arrays.
    """
    t = _logits_2d(teacher_logits, "teacher_logits")
    W = np.zeros((X.shape[1], t.shape[1]))
    b = np.zeros(t.shape[1])
    for _ in range(int(steps)):
        G = distillation_grad(np.asarray(X @ W) + b, t, labels, T, alpha)
        W -= lr * np.asarray(X.T @ G)
        b -= lr * G.sum(axis=0)
    return W, b


# ---------------------------------------------------------------------------------------------
# The teacher: notebook 10's fine-tuned classifier, kept alive
# ---------------------------------------------------------------------------------------------

class Teacher:
    """The pretrained encoder fine-tuned into a classifier, as ``experiment.run`` does it.

    split: a :class:`bbc.BBCSplit`; pretrained: a :class:`pretraining.Pretrained`; cfg: the
    recipe (its encoder sizes are replaced by the pretrained encoder's). Building it computes
    the windows of the labelled pool and the linear probe's features of the pool, and
    compiles one classifier; :meth:`fit` then trains it on chosen pool articles exactly as the
    ``finetune`` arm of :func:`course_lib.experiment.run` does for the same indices and seed.
    """

    def __init__(self, split, pretrained, cfg):
        from .fixed_features import encoder_features
        from .recipe import with_encoder_of
        from .window_classifier import WindowClassifier

        cfg = with_encoder_of(cfg, pretrained.config)
        self.cfg, self.vocab, self.pretrained = cfg, pretrained.vocab, pretrained
        self.n_classes = len(split.categories)
        self.y_pool = np.asarray(split.pool_labels)
        # The linear probe's features of the pool articles only: here the probe serves as the
        # fine-tuning's starting head, and is never scored on its own.
        start = time.perf_counter()
        (self.f_pool,), probe_tokens = encoder_features(pretrained.encoder, self.vocab, cfg,
                                                        split.pool_texts)
        self.probe_seconds = time.perf_counter() - start
        self.classifier = WindowClassifier(self.vocab, split.pool_texts, self.y_pool,
                                           self.n_classes, cfg)
        self.model = self.classifier.model
        self.forward_flops = self.classifier.forward_flops  # FLOPs per token, one forward pass
        self.probe_flops = self.forward_flops * probe_tokens
        self._encoder_weights = pretrained.encoder.get_weights()
        self.steps = 0
        self.train_seconds = 0.0
        self.train_flops = 0.0

    def fit(self, idx, seed: int) -> Teacher:
        """Fine-tune from the pretrained encoder and the probe's head on pool articles ``idx``.

        Records the steps, seconds and FLOPs of this run (the probe's share included, as in
        ``experiment.run``). Returns self.
        """
        from .fixed_features import linear_readout, probe_as_head

        idx = np.asarray(idx, dtype=np.int64)
        head = probe_as_head(linear_readout(self.f_pool[idx], self.y_pool[idx]))
        self.steps, seconds, flops = self.classifier.fit([*self._encoder_weights, *head], idx,
                                                         seed, self.cfg.lr_finetune)
        self.train_seconds = seconds + self.probe_seconds
        self.train_flops = flops + self.probe_flops
        return self

    def windows_of(self, texts: Sequence[str], max_windows: int | None = None):
        """(windows, owner, weight) of ``texts``, up to ``max_windows`` per article (default:
        as many as the probe reads, ``cfg.probe_windows``)."""
        return self.classifier.windows_of(texts, max_windows)

    def logits_of(self, windows) -> np.ndarray:
        """Article logits (N, C) from :meth:`windows_of`'s triple: the token-weighted mean of
        the windows' logits (the logit of the article's mean vector, as in experiment.run)."""
        return self.classifier.logits_of(windows)

    def logits(self, texts: Sequence[str], max_windows: int | None = None) -> np.ndarray:
        """Article logits (N, C) of ``texts``; see :meth:`windows_of` and :meth:`logits_of`."""
        return self.logits_of(self.windows_of(texts, max_windows))

    def predict_one(self, text: str) -> int:
        """The class of one article, from text to label, as a deployed model would do it: its
        windows padded to one fixed batch shape (so nothing is compiled again per article)."""
        from .fixed_features import by_article

        w, owner, weight = self.windows_of([text])
        batch = np.zeros((self.cfg.probe_windows, self.cfg.seq_len), np.int32)
        batch[: len(w)] = w
        out = np.asarray(self.model.predict_on_batch(batch))[: len(w)]
        return int(by_article(out, owner, weight, 1).argmax())

    def parameters(self) -> int:
        return int(self.model.count_params())

    def save(self, folder: str | Path) -> Path:
        """Write what the teacher needs to run: its weights and its vocabulary."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(folder / "teacher.weights.h5")
        self.vocab.save(folder / "vocabulary.json")
        return folder


# ---------------------------------------------------------------------------------------------
# Students' inputs, and what a model costs
# ---------------------------------------------------------------------------------------------

def hashed_features(texts: Sequence[str], n_features: int = 2 ** 14):
    """A bag of words hashed into ``n_features`` buckets (the hashing trick, Weinberger et
    al., 2009): CSR (N, n_features), float64, each row scaled to length 1. A word is a match of
    :data:`WORD_PATTERN` in the lower-cased text; its bucket is ``abs(murmurhash3_32(word))
    % n_features``, so no vocabulary is stored, and two words may share a bucket."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(n_features=n_features, alternate_sign=False, norm="l2",
                            token_pattern=WORD_PATTERN)
    return vec.transform(texts)


def seconds_per_call(fn: Callable, items: Sequence, repeats: int = 3) -> float:
    """Median over ``repeats`` rounds of the mean seconds of ``fn(item)`` over ``items``
    (called one at a time, after one warm-up call)."""
    fn(items[0])
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        rounds.append((time.perf_counter() - start) / len(items))
    return float(np.median(rounds))


def folder_bytes(path: str | Path) -> int:
    """Bytes on disk of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
