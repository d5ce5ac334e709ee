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
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .pretraining import (
    Pretrained,
    course_checkpoint,
    load_or_pretrain,
    load_pretrained,
    new_encoder,
    pretrain,
    pretraining_meta,
    save_pretrained,
)
from .recipe import PROFILES, Config, config, with_encoder_of, with_overrides

__all__ = [
    "ARMS", "Config", "Pretrained", "Row", "add_parser", "config", "course_checkpoint",
    "format_table", "load_or_pretrain", "load_pretrained", "pretrain", "pretraining_meta", "run",
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
LSA_DIMENSIONS = 100


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


def classifier_steps(n: int, cfg: Config) -> int:
    """Training steps of a run on n labelled articles: cfg.cls_epochs passes over them, but
    no fewer than cfg.cls_min_steps and no more than cfg.cls_max_steps."""
    return int(min(cfg.cls_max_steps, max(cfg.cls_min_steps,
                                          math.ceil(cfg.cls_epochs * n / cfg.cls_batch))))


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
    import keras

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
    neural = [a for a in arms if a in ("scratch", "finetune")]
    if pretrained is not None:
        vocab = pretrained.vocab
    elif neural:
        from .pretraining import build_vocab

        vocab = build_vocab(split.unlabeled, cfg)
    if neural:
        w_pool, own_pool, c_pool = article_windows(split.pool_texts, vocab, cfg)
        # Training reads a few windows per article; predicting reads as many as the probe.
        w_test, own_test, c_test = article_windows(
            split.test_texts, vocab, with_overrides(cfg, max_windows=cfg.probe_windows))
        # where each pool article's windows start in w_pool, and how many it has
        n_win = np.bincount(own_pool, minlength=len(y_pool))
        first_win = np.concatenate([[0], np.cumsum(n_win)[:-1]])
    if {"probe", "finetune"} & set(arms):
        start = time.perf_counter()
        f_pool, f_test, probe_tokens = probe_features(pretrained.encoder, vocab, split, cfg)
        probe_setup = time.perf_counter() - start
        probe_flops = forward * probe_tokens

    # ---- one compiled classifier serves both trained arms ----------------------------------
    if neural:
        tm.seed_all(cfg.split_seed)
        dtype = tm.precision_for("transformer", cfg.profile)

        def fresh_classifier():
            return tm.classifier(new_encoder(len(vocab), cfg, dtype), n_classes,
                                 dropout=cfg.dropout, dtype=dtype, normalize=True)

        model = fresh_classifier()
        model.compile(optimizer=keras.optimizers.AdamW(cfg.lr_scratch, weight_decay=0.01,
                                                       clipnorm=1.0),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=tm.jit_for(cfg.profile))
        if pretrained is not None:
            assert len(model.get_weights()) == len(pretrained.encoder.get_weights()) + 2
        pretrained_weights = pretrained.encoder.get_weights() if pretrained else None
        # Dropout draws its masks from seed states that advance with every step and that
        # set_weights leaves alone; each run restarts them, so a run's result does not depend
        # on which runs came before it (1 seed in the notebook, 5 on the command line).
        seed_states = [v for v in model.variables if "seed_generator" in v.path]
        initial_seed_states = [keras.ops.convert_to_numpy(v) for v in seed_states]

    scratch_weights: dict[int, list] = {}

    def probe(idx):
        """The linear probe on these labelled examples: logistic regression on the articles'
        pooled, length-normalised vectors. Returns the fitted classifier."""
        return linear_readout(f_pool[idx], y_pool[idx])

    def initial_weights(arm, seed, idx):
        """Starting weights of a run: random for scratch (built once per seed and reused for
        every budget); for fine-tuning, the pretrained encoder and the linear probe's head."""
        if arm == "scratch":
            if seed not in scratch_weights:
                tm.seed_all(10_000 + seed)
                scratch_weights[seed] = fresh_classifier().get_weights()
            return scratch_weights[seed]
        # LP-FT (Kumar et al., 2022): start the head where the linear probe ended, so the first
        # fine-tuning steps do not send a random head's large gradients into the encoder.
        return [*pretrained_weights, *probe_as_head(probe(idx))]

    def fit_and_score(arm, idx, seed):
        gen = np.random.default_rng(1000 + seed)
        model.set_weights(initial_weights(arm, seed, idx))
        for variable, state in zip(seed_states, initial_seed_states):
            variable.assign(state)
        tm.reset_optimizer(model.optimizer,
                           cfg.lr_scratch if arm == "scratch" else cfg.lr_finetune)
        steps = classifier_steps(len(idx), cfg)
        batch = gen.choice(idx, size=(steps, cfg.cls_batch), replace=True)
        # each chosen article contributes one of its windows, drawn at random
        windows = first_win[batch] + (gen.random(batch.shape) * n_win[batch]).astype(np.int64)
        start = time.perf_counter()
        # One compiled step per call: no data pipeline to build for a few dozen steps.
        for rows, wins in zip(batch, windows):
            model.train_on_batch(w_pool[wins], y_pool[rows])
        seconds = time.perf_counter() - start
        logits = predict_fixed(model, w_test, cfg.predict_batch)
        # The head is linear in the normalised pooled vector, so the token-weighted mean of the
        # windows' logits is the logit of the article's mean vector (as in the probe).
        prob = _softmax(by_article(np.asarray(logits, np.float64), own_test, c_test,
                                   len(y_test)))
        flops = 3.0 * forward * steps * cfg.cls_batch * cfg.seq_len
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


def probe_features(encoder, vocab, split, cfg: Config) -> tuple[np.ndarray, np.ndarray, int]:
    """The linear probe's features: each article's windows (up to ``cfg.probe_windows``) through
    the frozen encoder, mean-pooled, each window's vector scaled to length 1, then averaged
    over the article weighted by its windows' tokens. Returns (pool (N, width), test (M,
    width), tokens read)."""
    from . import text_models as tm

    probe_cfg = with_overrides(cfg, max_windows=cfg.probe_windows)
    w_pool, own_pool, c_pool = article_windows(split.pool_texts, vocab, probe_cfg)
    w_test, own_test, c_test = article_windows(split.test_texts, vocab, probe_cfg)
    feats = unit_rows(tm.pooled_features(encoder, np.concatenate([w_pool, w_test]),
                                          batch_size=cfg.predict_batch))
    f_pool = by_article(feats[: len(w_pool)], own_pool, c_pool, len(split.pool_texts))
    f_test = by_article(feats[len(w_pool):], own_test, c_test, len(split.test_texts))
    return f_pool, f_test, int((len(w_pool) + len(w_test)) * cfg.seq_len)


def unit_rows(x: np.ndarray) -> np.ndarray:
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


def predict_fixed(model, x: np.ndarray, batch: int) -> np.ndarray:
    """``model`` on every row of x in batches of one fixed shape (the last one padded), so a
    compiled prediction step is reused instead of being compiled again for a new shape."""
    out = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - n, x.shape[1]), x.dtype)])
        out.append(np.asarray(model.predict_on_batch(chunk))[:n])
    return np.concatenate(out)


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


# ---------------------------------------------------------------------------------------------
# Command line: course experiment pretraining ...
# ---------------------------------------------------------------------------------------------

def add_parser(subparsers) -> None:
    """Add ``experiment pretraining`` and ``experiment pretrain`` to the ``course`` command."""
    p = subparsers.add_parser("experiment", help="reproduce a notebook's experiment from a shell")
    inner = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    q = inner.add_parser(
        "pretraining",
        help="notebook 10: TF-IDF, LSA, scratch, probe and fine-tuned across label budgets",
        description="Take the course's pretrained encoder (or pretrain one), then train each arm "
                    "on k labelled articles per class and write test accuracy per arm, budget "
                    "and seed as CSV. Test articles come from the corpus-wide test reserve, "
                    "which no pretraining ever reads.")
    q.add_argument("--categories", nargs="+", default=["entertainment", "tech"],
                   help="two or more of: business entertainment politics sport(s) tech")
    q.add_argument("--budgets", nargs="+", default=["2", "4", "8", "16", "all"],
                   help="labels per class; 'all' = the whole labelled pool")
    q.add_argument("--seeds", type=int, default=None,
                   help="seeds per budget (default: the profile's)")
    q.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    q.add_argument("--profile", choices=PROFILES, default=None,
                   help="sizes of the classifiers (and of a fresh pretraining run): quick (CPU) "
                        "or full (GPU); default: chosen by hardware")
    how = q.add_mutually_exclusive_group()
    how.add_argument("--pretrain", action="store_true",
                     help="pretrain an encoder afresh with the profile's recipe, instead of "
                          "using the course checkpoint")
    how.add_argument("--weights", default=None,
                     help="a folder with an encoder (e.g. one notebook 09 saved, or made by "
                          "`course experiment pretrain`); pretrained and saved there if empty")
    q.add_argument("--out", required=True, help="CSV file to write")
    q.set_defaults(func=cmd_pretraining)

    r = inner.add_parser(
        "pretrain", help="pretrain an encoder with the course's recipe (makes the checkpoint)",
        description="Pretrain the masked-LM encoder on the unlabeled BBC News articles (never "
                    "the test reserve) and save it with a provenance file. With --profile "
                    "checkpoint this is the command that made the course checkpoint.")
    r.add_argument("--profile", choices=PROFILES, default="checkpoint")
    r.add_argument("--epochs", type=int, default=None, help="override the profile's")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True, help="folder to write the encoder into")
    r.set_defaults(func=cmd_pretrain)


def cmd_pretraining(args) -> int:
    """Handler of ``course experiment pretraining``; returns the exit status."""
    from . import bbc
    from .pretraining import CheckpointError

    try:
        budgets = [parse_budget(b) for b in args.budgets]
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    cfg = config(args.profile)
    try:
        split = bbc.split(args.categories, seed=cfg.split_seed)
    except (bbc.CorpusError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    small = min(np.bincount(split.pool_labels))
    too_big = [k for k in budgets if k is not None and k > small]
    if too_big:
        print(f"error: budget(s) {too_big} exceed the {small} labelled articles of the smallest "
              "class in the pool.")
        return 2
    print(f"Categories {', '.join(split.categories)}: {len(split.pool_texts)} labelled, "
          f"{len(split.test_texts)} test, {len(split.unlabeled)} unlabeled articles; "
          f"profile {cfg.profile}.", flush=True)
    pretrained = None
    if {"probe", "finetune"} & set(args.arms):
        if getattr(args, "weights", None):
            pretrained = load_or_pretrain(args.weights, split.unlabeled, cfg)
        elif getattr(args, "pretrain", False):
            pretrained = pretrain(split.unlabeled, cfg, meta=pretraining_meta())
        else:
            try:
                pretrained = course_checkpoint()
            except CheckpointError as exc:
                print(f"error: {exc}")
                return 2
            print("Using the course checkpoint (pass --pretrain to pretrain afresh).")
        print(f"Pretraining: {pretrained.seconds:.1f} s, {pretrained.tokens:,} tokens, "
              f"{pretrained.flops:.2e} FLOPs.")

    def progress(row):
        print(f"  {row.arm:<9} k={row.budget:<4} seed {row.seed}: {100 * row.accuracy:5.1f} % "
              f"({row.seconds:.1f} s)", flush=True)

    seeds = args.seeds if args.seeds is not None else cfg.seeds
    result = run(split, pretrained, cfg, budgets=budgets, seeds=seeds, arms=args.arms,
                 progress=progress)
    path = write_csv(result.rows, args.out)
    print()
    print(format_table(result.rows))
    print(f"\nWrote {len(result.rows)} rows to {path}.")
    return 0


def cmd_pretrain(args) -> int:
    """Handler of ``course experiment pretrain``: pretrain, save, write the provenance."""
    from . import bbc, device
    from .pretraining import save_pretrained, write_provenance

    overrides = {"epochs": args.epochs} if args.epochs else {}
    cfg = config(args.profile, **overrides)
    split = bbc.split(("entertainment", "tech"))  # every split has the same unlabeled texts
    print(f"Pretraining on {len(split.unlabeled)} unlabeled articles, profile {cfg.profile}, "
          f"{cfg.epochs} epochs, seed {args.seed}.", flush=True)
    p = pretrain(split.unlabeled, cfg, seed=args.seed, meta=pretraining_meta())
    save_pretrained(p, args.out)
    gpus = device.gpus()
    where = ", ".join(g.name for g in gpus) if gpus else f"CPU ({os.cpu_count()} cores)"
    command = (f"course experiment pretrain --profile {args.profile} --seed {args.seed}"
               + (f" --epochs {args.epochs}" if args.epochs else "") + " --out DIR")
    path = write_provenance(p, args.out, where, command, seed=args.seed)
    print(f"Saved the encoder and {path} ({p.seconds / 60:.1f} min, {p.tokens:,} tokens).")
    return 0
