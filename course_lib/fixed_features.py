"""Features that no label trains, and the one linear read-out the course fits on them.

Three of notebook 10's arms (TF-IDF, LSA and the linear probe) and every feature set of
:mod:`course_lib.representations` turn an article into a fixed vector and fit logistic
regression on a few labelled vectors. This module makes those vectors and fits that read-out:

- :func:`count_features`: TF-IDF, and its projection on the unlabeled texts' SVD (LSA).
- :func:`encoder_features` / :func:`probe_features`: a frozen encoder's mean-pooled vectors.
- :func:`linear_readout`, :func:`probe_as_head`: the classifier, and the same weights as a
  Keras head (the fine-tuned arm starts from them).

An article longer than one window is cut into windows (:func:`article_windows`); per-window
rows are averaged back to one row per article, weighted by real tokens (:func:`by_article`).
Keras and scikit-learn are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from .recipe import Config, with_overrides

__all__ = [
    "LSA_DIMENSIONS", "article_windows", "by_article", "count_features", "encoder_features",
    "linear_readout", "probe_as_head", "probe_features", "unit_rows",
]

LSA_DIMENSIONS = 100


def linear_readout(x, y):
    """The one linear classifier of the course's fixed-feature arms (TF-IDF, LSA, the probe):
    logistic regression with C = 10 on features x (n, d), dense or sparse, and labels y (n,).
    Returns the fitted scikit-learn model."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=10.0, max_iter=3000).fit(x, y)


def probe_as_head(clf) -> list:
    """A fitted linear read-out as the Keras head's [kernel (D, C), bias (C,)], float32. The
    classifier normalises each window's pooled vector as the probe's features do, so the same
    weights serve; a binary read-out's one logit z becomes the pair (0, z), since
    softmax([0, z]) = sigmoid(z)."""
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    return [coef.T.astype("float32"), intercept.astype("float32")]


def count_features(split, with_lsa: bool = True) -> dict:
    """TF-IDF (and LSA) features of the pool and test articles, learnt from the unlabeled texts
    only. Returns arm -> (pool features, test features, seconds to compute them)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    start = time.perf_counter()
    vec = TfidfVectorizer(sublinear_tf=True, min_df=2).fit(split.unlabeled)
    tf_pool, tf_test = vec.transform(split.pool_texts), vec.transform(split.test_texts)
    out = {"tfidf": (tf_pool, tf_test, time.perf_counter() - start)}
    if with_lsa:
        unlabeled = vec.transform(split.unlabeled)
        dims = min(LSA_DIMENSIONS, unlabeled.shape[1] - 1)  # a tiny corpus has fewer words
        svd = TruncatedSVD(dims, random_state=0).fit(unlabeled)
        lsa_pool, lsa_test = (unit_rows(svd.transform(x)) for x in (tf_pool, tf_test))
        out["lsa"] = (lsa_pool, lsa_test, time.perf_counter() - start)
    return out


def encoder_features(encoder, vocab, cfg: Config,
                     *text_lists: Sequence[str]) -> tuple[list[np.ndarray], int]:
    """The linear probe's features of each list of texts: each article's windows (up to
    ``cfg.probe_windows``) through the frozen encoder, mean-pooled, each window's vector scaled
    to length 1, then averaged over the article weighted by its windows' tokens.

    Returns ([(N_i, width) per list], tokens read). All windows go through the encoder in one
    pass, so its prediction step is compiled once."""
    from . import text_models as tm

    probe_cfg = with_overrides(cfg, max_windows=cfg.probe_windows)
    cut = [article_windows(texts, vocab, probe_cfg) for texts in text_lists]
    windows = np.concatenate([w for w, _, _ in cut])
    feats = unit_rows(tm.pooled_features(encoder, windows, batch_size=cfg.predict_batch))
    out, start = [], 0
    for texts, (w, owner, weight) in zip(text_lists, cut):
        out.append(by_article(feats[start:start + len(w)], owner, weight, len(texts)))
        start += len(w)
    return out, int(len(windows) * cfg.seq_len)


def probe_features(encoder, vocab, split, cfg: Config) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`encoder_features` of a split's pool and test articles: (pool (N, width), test
    (M, width), tokens read)."""
    (f_pool, f_test), tokens = encoder_features(encoder, vocab, cfg, split.pool_texts,
                                                split.test_texts)
    return f_pool, f_test, tokens


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row of x (N, D) scaled to length 1 (a zero row stays zero); float64."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def article_windows(texts: Sequence[str], vocab, cfg: Config):
    """Each article as up to ``cfg.max_windows`` windows of ``cfg.seq_len`` token ids.

    Returns (windows int32 (W, seq_len), owner int64 (W,): the article of each window,
    weight float64 (W,): its number of real tokens, at least 1). An empty article gets one
    window of padding. Windows of one article are consecutive, in reading order.
    """
    from . import text

    rows, owner = [], []
    for i, doc in enumerate(text.tokenize_all(texts)):
        w = text.windows([vocab.encode(doc)], cfg.seq_len, min_tokens=1)[: cfg.max_windows]
        if len(w) == 0:
            w = np.zeros((1, cfg.seq_len), dtype=np.int32)
        rows.append(w)
        owner.extend([i] * len(w))
    windows = np.concatenate(rows)
    weight = np.maximum((windows != 0).sum(axis=1), 1).astype(np.float64)
    return windows, np.asarray(owner, dtype=np.int64), weight


def by_article(values: np.ndarray, owner: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """Weighted mean of per-window rows for each article: (W, D) -> (n, D)."""
    values = np.asarray(values, dtype=np.float64)
    total = np.zeros((n, values.shape[1]))
    np.add.at(total, owner, values * weight[:, None])
    norm = np.bincount(owner, weights=weight, minlength=n)[:, None]
    return total / np.maximum(norm, 1e-12)
