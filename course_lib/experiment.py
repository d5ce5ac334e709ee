"""Does pretraining pay? The experiment of notebook 10 and of ``course experiment pretraining``.

One labelled task (two or more BBC News categories), one encoder architecture, and five ways
to get a classifier from a few labelled articles:

- ``tfidf``: TF-IDF features (inverse document frequencies from the unlabeled texts) and
  logistic regression; no neural network, the baseline to beat.
- ``lsa``: the same TF-IDF features projected on the 100 directions a truncated SVD finds in
  the unlabeled texts (latent semantic analysis, Deerwester et al., 1990): the count-based
  way to use unlabeled text, and the honest yardstick for what pretraining adds.
- ``scratch``: the Transformer classifier trained from random weights on the labels alone.
- ``probe``: the pretrained encoder frozen; logistic regression on its mean-pooled vectors
  (a linear probe: one forward pass over the texts, then a linear model).
- ``finetune``: the pretrained encoder and a head, all trained on the labels; the head starts
  from the linear probe's solution (LP-FT, Kumar et al., 2022), so that the first steps do not
  push a random head's large gradients into the pretrained encoder.

For every label budget (k articles per class, or all of the labelled pool) and every seed, the
same k articles go to every arm; test accuracy and the compute each arm spent form one row.
The notebook and the command call :func:`run` with the same arguments, so the table in the
notebook can be reproduced from a shell. Sizes come from :mod:`course_lib.recipe`; the
pretrained encoder, by default, is the course checkpoint (:mod:`course_lib.pretraining`).

Keras and scikit-learn are imported inside the functions: ``import course_lib.experiment`` is
cheap, which keeps ``course --help`` fast.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .fixed_features import count_features, linear_readout, probe_as_head, probe_features
from .pretraining import (
    Pretrained,
    course_checkpoint,
    load_or_pretrain,
    load_pretrained,
    pretrain,
    pretraining_meta,
    save_pretrained,
)
from .recipe import Config, config, with_encoder_of, with_overrides
from .window_classifier import WindowClassifier

__all__ = [
    "ARMS", "Config", "Pretrained", "Row", "config", "course_checkpoint", "format_table",
    "load_or_pretrain", "load_pretrained", "pretrain", "pretraining_meta", "run",
    "sample_budget", "save_pretrained", "summarise", "with_encoder_of", "with_overrides",
    "write_csv",
]

ARMS = ("tfidf", "lsa", "scratch", "probe", "finetune")
ARM_NAMES = {
    "tfidf": "TF-IDF + logistic regression",
    "lsa": "LSA (TF-IDF -> SVD of the unlabeled texts)",
    "scratch": "Transformer from scratch",
    "probe": "pretrained, frozen (linear probe)",
    "finetune": "pretrained, fine-tuned",
}


# ---------------------------------------------------------------------------------------------
# Label budgets
# ---------------------------------------------------------------------------------------------

def sample_budget(labels: np.ndarray, k: int | None, seed: int) -> np.ndarray:
    """Indices of k labelled examples of every class (or all examples when k is None).

    labels: int (N,). Draws without replacement, independently per class, from
    ``np.random.default_rng(seed)``; returns int64 indices in a shuffled order.
    Raises ValueError when a class has fewer than k examples.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if k is None:
        return rng.permutation(len(labels)).astype(np.int64)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < k:
            raise ValueError(f"Class {c} has only {len(idx)} examples; cannot take {k}.")
        chosen.append(rng.choice(idx, size=k, replace=False))
    return rng.permutation(np.concatenate(chosen)).astype(np.int64)


def budget_label(k: int | None) -> str:
    return "all" if k is None else str(k)


def parse_budget(value: str) -> int | None:
    """``"8"`` -> 8, ``"all"`` -> None (for the command line)."""
    if value.lower() == "all":
        return None
    k = int(value)
    if k < 1:
        raise ValueError(f"A budget is a positive number of labels per class or 'all', got {k}.")
    return k


# ---------------------------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------------------------

@dataclass
class Row:
    """One arm trained once: its budget, seed, test accuracy and compute."""

    arm: str
    budget: str  # labels per class, or "all"
    n_train: int
    seed: int
    accuracy: float
    seconds: float  # wall-clock time to get this classifier: features (TF-IDF, encoder) + training
    flops: float  # training compute, FLOPs (text_models.encoder_forward_flops; 0 for counts)


@dataclass
class Result:
    """Rows of :func:`run`, plus the test scores of each neural arm (for notebook 11)."""

    rows: list[Row]
    categories: tuple[str, ...]
    test_labels: np.ndarray
    probabilities: dict = field(default_factory=dict)  # (arm, budget, seed) -> (N, C) array
    pretrain_seconds: float = 0.0
    pretrain_flops: float = 0.0
    draws: dict = field(default_factory=dict)  # (budget, seed) -> indices into the pool


def run(split, pretrained: Pretrained | None, cfg: Config, budgets: Sequence = None,
        seeds: int | Sequence[int] | None = None, arms: Sequence[str] = ARMS,
        progress: Callable[[Row], None] | None = None,
        sample_fn: Callable | None = None) -> Result:
    """Train every arm on every budget and seed; return the rows and test probabilities.

    split: a :class:`bbc.BBCSplit`; pretrained: the encoder for ``probe`` and ``finetune``
    (may be None when neither arm is asked for). The neural arms use its sizes (the scratch arm
    too, so that the comparison is between two identical networks); ``cfg`` gives the rest.
    budgets: labels per class, None for all (default ``cfg.budgets``). seeds: a count or a list
    of seeds (default ``cfg.seeds``). The same labelled articles go to every arm for a given
    budget and seed; they are drawn by ``sample_fn(labels, k, seed)`` (default
    :func:`sample_budget`; notebook 10 passes the student's), all of them before any training.
    """
    from . import text_models as tm

    budgets = list(cfg.budgets if budgets is None else budgets)
    seeds = cfg.seeds if seeds is None else seeds
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    unknown = set(arms) - set(ARMS)
    if unknown:
        raise ValueError(f"Unknown arm(s) {sorted(unknown)}; choose from {', '.join(ARMS)}.")
    if pretrained is None and {"probe", "finetune"} & set(arms):
        raise ValueError("The probe and finetune arms need a pretrained encoder.")
    if pretrained is not None:
        cfg = with_encoder_of(cfg, pretrained.config)
    n_classes = len(split.categories)
    y_pool, y_test = np.asarray(split.pool_labels), np.asarray(split.test_labels)
    sample_fn = sample_fn or sample_budget
    chosen = {(budget_label(k), seed): np.asarray(sample_fn(y_pool, k, seed), dtype=np.int64)
              for k in budgets for seed in seeds}
    result = Result(rows=[], categories=tuple(split.categories), test_labels=y_test,
                    draws=chosen)
    if pretrained is not None:
        result.pretrain_seconds, result.pretrain_flops = pretrained.seconds, pretrained.flops
    forward = tm.encoder_forward_flops(cfg.width, cfg.depth, cfg.ff_width, cfg.seq_len)

    def emit(row):
        result.rows.append(row)
        if progress:
            progress(row)

    # ---- features that do not depend on the budget: computed once --------------------------
    counted = {}
    if {"tfidf", "lsa"} & set(arms):
        counted = count_features(split, "lsa" in arms)
    if {"probe", "finetune"} & set(arms):
        start = time.perf_counter()
        f_pool, f_test, probe_tokens = probe_features(pretrained.encoder, pretrained.vocab,
                                                      split, cfg)
        probe_setup = time.perf_counter() - start
        probe_flops = forward * probe_tokens

    # ---- one compiled classifier serves both trained arms ----------------------------------
    if {"scratch", "finetune"} & set(arms):
        if pretrained is not None:
            vocab = pretrained.vocab
        else:
            from .pretraining import build_vocab

            vocab = build_vocab(split.unlabeled, cfg)
        trained = WindowClassifier(vocab, split.pool_texts, y_pool, n_classes, cfg)
        if pretrained is not None:
            assert len(trained.model.get_weights()) == len(pretrained.encoder.get_weights()) + 2
            pretrained_weights = pretrained.encoder.get_weights()
        # Training reads a few windows per article; predicting reads as many as the probe.
        test_windows = trained.windows_of(split.test_texts)

    scratch_weights: dict[int, list] = {}

    def probe(idx):
        """The linear probe on these labelled examples: logistic regression on the articles'
        pooled, length-normalised vectors. Returns the fitted classifier."""
        return linear_readout(f_pool[idx], y_pool[idx])

    def initial_weights(arm, seed, idx):
        """Starting weights of a run: random for scratch (drawn once per seed and reused for
        every budget); for fine-tuning, the pretrained encoder and the linear probe's head."""
        if arm == "scratch":
            if seed not in scratch_weights:
                scratch_weights[seed] = trained.random_weights(seed)
            return scratch_weights[seed]
        # LP-FT (Kumar et al., 2022): start the head where the linear probe ended, so the first
        # fine-tuning steps do not send a random head's large gradients into the encoder.
        return [*pretrained_weights, *probe_as_head(probe(idx))]

    def fit_and_score(arm, idx, seed):
        lr = cfg.lr_scratch if arm == "scratch" else cfg.lr_finetune
        _, seconds, flops = trained.fit(initial_weights(arm, seed, idx), idx, seed, lr)
        prob = _softmax(trained.logits_of(test_windows))
        if arm == "finetune":  # it starts from the probe, so it pays for the probe's forward pass
            seconds, flops = seconds + probe_setup, flops + probe_flops
        return prob, seconds, flops

    for k in budgets:
        for seed in seeds:
            label = budget_label(k)
            idx = chosen[(label, seed)]
            for arm in arms:
                if arm in ("tfidf", "lsa"):
                    x_pool, x_test, setup = counted[arm]
                    start = time.perf_counter()
                    clf = linear_readout(x_pool[idx], y_pool[idx])
                    prob = clf.predict_proba(x_test)
                    seconds, flops = time.perf_counter() - start + setup, 0.0
                elif arm == "probe":
                    start = time.perf_counter()
                    prob = probe(idx).predict_proba(f_test)
                    seconds, flops = time.perf_counter() - start + probe_setup, probe_flops
                else:
                    prob, seconds, flops = fit_and_score(arm, idx, seed)
                result.probabilities[(arm, label, seed)] = prob
                accuracy = float(np.mean(prob.argmax(1) == y_test))
                emit(Row(arm, label, len(idx), seed, accuracy, seconds, flops))
    return result


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Tables and files
# ---------------------------------------------------------------------------------------------

def summarise(rows: Sequence[Row]) -> list[dict]:
    """Mean and standard deviation of accuracy (and mean seconds, flops) per arm and budget."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.arm, r.budget), []).append(r)
    out = []
    for (arm, budget), rs in groups.items():
        acc = np.array([r.accuracy for r in rs])
        out.append({"arm": arm, "budget": budget, "runs": len(rs), "n_train": rs[0].n_train,
                    "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std()),
                    "seconds_mean": float(np.mean([r.seconds for r in rs])),
                    "flops_mean": float(np.mean([r.flops for r in rs]))})
    return out


def pivot(rows: Sequence[Row]) -> tuple[list[str], list[str], np.ndarray]:
    """(arms, budgets, mean accuracy matrix of shape (arms, budgets)) in the order first seen."""
    arms, budgets = [], []
    for r in rows:
        if r.arm not in arms:
            arms.append(r.arm)
        if r.budget not in budgets:
            budgets.append(r.budget)
    table = np.full((len(arms), len(budgets)), np.nan)
    for s in summarise(rows):
        table[arms.index(s["arm"]), budgets.index(s["budget"])] = s["accuracy_mean"]
    return arms, budgets, table


def format_table(rows: Sequence[Row]) -> str:
    """Test accuracy (mean ± std over seeds, in %) per arm and labels per class, as text."""
    stats = {(s["arm"], s["budget"]): s for s in summarise(rows)}
    arms, budgets, _ = pivot(rows)
    name_w = max(len(ARM_NAMES.get(a, a)) for a in arms)
    head = f"{'labels per class':<{name_w}}" + "".join(f"{b:>14}" for b in budgets)
    lines = [head]
    for a in arms:
        cells = []
        for b in budgets:
            s = stats.get((a, b))
            cells.append(f"{100 * s['accuracy_mean']:7.1f} ± {100 * s['accuracy_std']:4.1f}"
                         if s else f"{'-':>14}")
        lines.append(f"{ARM_NAMES.get(a, a):<{name_w}}" + "".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)


def write_csv(rows: Sequence[Row], path: str | Path) -> Path:
    """One line per run: arm, budget, n_train, seed, accuracy, seconds, flops."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in fields(Row)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))
    return path


def read_csv(path: str | Path) -> list[Row]:
    with Path(path).open(encoding="utf-8") as fh:
        return [Row(r["arm"], r["budget"], int(r["n_train"]), int(r["seed"]),
                    float(r["accuracy"]), float(r["seconds"]), float(r["flops"]))
                for r in csv.DictReader(fh)]


