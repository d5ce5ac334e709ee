"""The course's small data sets, each reproducible from a seed and available offline.

- :func:`two_moons` and :func:`spirals`: synthetic 2-D classification sets, small enough to
  plot a decision boundary.
- :func:`digits`: scikit-learn's 8 x 8 handwritten digits (1,797 images, bundled with
  scikit-learn, so no download), scaled to [0, 1].
- :func:`split`: a seeded, stratified train / validation / test split.
- :func:`per_class`: k labelled examples per class, for few-label experiments.

These are small numeric sets; the BBC News text corpus of notebooks 07-10 has its own module,
:mod:`course_lib.bbc`. scikit-learn is imported inside the functions that need it, so
``import course_lib.data`` stays cheap.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Split", "digits", "per_class", "spirals", "split", "two_moons"]


def two_moons(n: int = 400, noise: float = 0.15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, one per class; not separable by a straight line.

    n: number of points (classes differ by at most one). noise: std of Gaussian jitter.
    Returns X: float64 (n, 2) and y: int64 (n,) in {0, 1}, in a shuffled order.
    """
    rng = np.random.default_rng(seed)
    n0 = (n + 1) // 2
    t = rng.uniform(0.0, np.pi, size=n)
    upper = np.column_stack([np.cos(t[:n0]), np.sin(t[:n0])])
    lower = np.column_stack([1.0 - np.cos(t[n0:]), 0.5 - np.sin(t[n0:])])
    X = np.vstack([upper, lower]) + rng.normal(0.0, noise, size=(n, 2))
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n0, n - n0])
    order = rng.permutation(n)
    return X[order], y[order]


def spirals(n: int = 300, classes: int = 3, noise: float = 0.2, turns: float = 1.0,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class, in the square [-1, 1]^2 (roughly).

    n: total number of points, shared as evenly as possible among ``classes`` arms.
    noise: std of the jitter added to each point's angle (in radians / (2 pi turns)).
    turns: how many times each arm winds around the centre.
    Returns X: float64 (n, 2) and y: int64 (n,) in 0..classes-1, shuffled.
    """
    if classes < 2:
        raise ValueError(f"spirals needs at least 2 classes, got {classes}.")
    rng = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int64) % classes
    radius = rng.uniform(0.05, 1.0, size=n)
    angle = (2 * np.pi * turns * radius + 2 * np.pi * y / classes
             + rng.normal(0.0, noise, size=n))
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    order = rng.permutation(n)
    return X[order], y[order]


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8 x 8 digit images from ``sklearn.datasets.load_digits`` (offline).

    Returns X: float64 (1797, 64), each row an image read row by row, pixels scaled from
    0..16 to [0, 1]; y: int64 (1797,) in 0..9. Reshape a row with ``x.reshape(8, 8)`` to show it.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float64) / 16.0, bunch.target.astype(np.int64)


class Split(NamedTuple):
    """A train / validation / test split; unpack it or use the fields by name."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def split(X, y, *, val: float = 0.15, test: float = 0.15, seed: int = 0) -> Split:
    """A stratified, seeded split: every class keeps about the same share in each part.

    X: (N, ...) examples; y: (N,) class labels. val, test: fractions of N (each in [0, 1),
    together below 1; val may be 0). Each class is shuffled on its own and cut in these
    proportions, so a class with few examples is not lost from a part by chance.
    Returns a :class:`Split`; within each part the examples are shuffled.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} examples but y has {len(y)} labels.")
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val and test must be fractions with val + test < 1, got {val}, {test}.")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(test * len(idx)))
        n_val = int(round(val * len(idx)))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    out = []
    for chunks in parts:
        idx = rng.permutation(np.concatenate(chunks))
        out += [X[idx], y[idx]]
    return Split(*out)


def per_class(y, k: int, seed: int = 0) -> np.ndarray:
    """Indices of k examples of every class in y, chosen at random (seeded).

    y: (N,) labels. k: examples per class, at least 1. Returns an int64 array of
    k * (number of classes) indices into y, sorted by class, then by position.
    Raises ValueError when a class has fewer than k examples.
    """
    y = np.asarray(y)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if len(idx) < k:
            raise ValueError(f"Class {label} has only {len(idx)} examples; cannot take k={k}.")
        chosen.append(np.sort(rng.choice(idx, size=k, replace=False)))
    return np.concatenate(chosen).astype(np.int64)
