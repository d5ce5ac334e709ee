"""Does pretraining pay? The experiment of notebook 09 and of ``course experiment pretraining``.

One labelled task (two or more BBC News categories), one encoder architecture, and four ways to
get a classifier from a few labelled articles:

- ``tfidf``: TF-IDF features (inverse document frequencies from the unlabeled texts) and
  logistic regression; no neural network, the baseline to beat.
- ``scratch``: the Transformer classifier trained from random weights on the labels alone.
- ``probe``: the pretrained encoder frozen; logistic regression on its mean-pooled vectors
  (a linear probe: one forward pass over the texts, then a linear model).
- ``finetune``: the pretrained encoder and a head, all trained on the labels; the head starts
  from the linear probe's solution (LP-FT, Kumar et al., 2022), so that the first steps do not
  push a random head's large gradients into the pretrained encoder.

For every label budget (k articles per class, or all of the labelled pool) and every seed, the
same k articles go to every arm; test accuracy and the compute each arm spent form one row.
The notebook and the command call :func:`run` with the same arguments, so the table in the
notebook can be reproduced from a shell. Sizes come from :func:`config` (``quick`` for a CPU,
``full`` for a GPU).

Keras and scikit-learn are imported inside the functions: ``import course_lib.experiment`` is
cheap, which keeps ``course --help`` fast.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

__all__ = [
    "ARMS", "Config", "Pretrained", "Row", "add_parser", "config", "format_table",
    "load_or_pretrain", "load_pretrained", "pretrain", "run", "sample_budget", "save_pretrained",
    "summarise", "write_csv",
]

ARMS = ("tfidf", "scratch", "probe", "finetune")
ARM_NAMES = {
    "tfidf": "TF-IDF + logistic regression",
    "scratch": "Transformer from scratch",
    "probe": "pretrained, frozen (linear probe)",
    "finetune": "pretrained, fine-tuned",
}
DEFAULT_BUDGETS = (2, 4, 8, 16, None)  # None = every labelled article of the pool


@dataclass(frozen=True)
class Config:
    """Every size of the experiment; :func:`config` gives the two profiles."""

    profile: str
    # corpus and text
    pretrain_articles: int | None  # None: all unlabeled articles
    vocab_size: int
    min_freq: int
    seq_len: int
    # encoder
    width: int
    depth: int
    heads: int
    ff_width: int
    dropout: float
    # masked-LM pretraining
    batch_size: int
    epochs: int
    learning_rate: float
    warmup_fraction: float
    mask_rate: float
    mask_every: int  # fresh masks every this many epochs
    val_fraction: float
    steps_per_execution: int
    # classifiers
    cls_batch: int
    cls_epochs: float  # passes over the labelled articles, within [cls_min_steps, cls_max_steps]
    cls_min_steps: int
    cls_max_steps: int
    lr_finetune: float
    lr_scratch: float
    max_windows: int  # a classifier reads up to this many windows of seq_len tokens per article
    predict_batch: int
    seeds: int
    budgets: tuple = DEFAULT_BUDGETS
    split_seed: int = 0
    test_fraction: float = 0.3


_PROFILES = {
    "quick": dict(
        pretrain_articles=160, vocab_size=3000, min_freq=2, seq_len=64,
        width=64, depth=2, heads=4, ff_width=128, dropout=0.1,
        batch_size=64, epochs=2, learning_rate=2e-3, warmup_fraction=0.1, mask_rate=0.15,
        mask_every=1, val_fraction=0.0, steps_per_execution=1,
        cls_batch=16, cls_epochs=2.0, cls_min_steps=16, cls_max_steps=64,
        lr_finetune=3e-4, lr_scratch=1e-3, max_windows=2, predict_batch=256, seeds=1,
    ),
    "full": dict(
        pretrain_articles=None, vocab_size=20000, min_freq=2, seq_len=256,
        width=256, depth=4, heads=4, ff_width=1024, dropout=0.1,
        batch_size=128, epochs=200, learning_rate=6e-4, warmup_fraction=0.05, mask_rate=0.15,
        mask_every=5, val_fraction=0.05, steps_per_execution=4,
        cls_batch=32, cls_epochs=4.0, cls_min_steps=60, cls_max_steps=400,
        lr_finetune=2e-4, lr_scratch=5e-4, max_windows=4, predict_batch=256, seeds=5,
    ),
}


def config(profile: str | None = None, **overrides) -> Config:
    """The experiment's sizes for a profile (default: ``device.profile()``), with overrides."""
    from . import device

    profile = profile or device.profile()
    if profile not in _PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; use one of {', '.join(_PROFILES)}.")
    known = {f.name for f in fields(Config)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"Unknown Config field(s): {', '.join(sorted(unknown))}.")
    return Config(profile=profile, **{**_PROFILES[profile], **overrides})


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
# Pretraining
# ---------------------------------------------------------------------------------------------

@dataclass
class Pretrained:
    """A pretrained encoder and what it needs: its vocabulary, sizes and training record."""

    encoder: object  # keras.Model
    vocab: object  # text.Vocabulary
    config: Config
    history: dict = field(default_factory=dict)
    seconds: float = 0.0
    tokens: int = 0  # token positions processed in training
    params: int = 0  # trainable parameters of the masked LM
    meta: dict = field(default_factory=dict)  # which split the texts came from
    mlm: object = None  # the masked LM (encoder + head) after pretraining; None when loaded
    windows: object = None  # int32 (N, seq_len) training windows; None when loaded
    held_out: object = None  # int32 (M, seq_len) windows held out from training; None when loaded

    @property
    def flops(self) -> float:
        """Training compute estimate: 6 x parameters x tokens (forward + backward)."""
        return 6.0 * self.params * self.tokens


def build_vocab(texts: Sequence[str], cfg: Config):
    """The pretraining vocabulary: words of ``texts`` seen >= min_freq times, plus PAD/OOV/MASK."""
    from . import text

    docs = text.tokenize_all(texts)
    return text.Vocabulary.build(docs, min_freq=cfg.min_freq, max_size=cfg.vocab_size,
                                 specials=(text.PAD, text.OOV, text.MASK))


def new_encoder(vocab_size: int, cfg: Config, dtype: str | None = None, block=None):
    """A fresh :func:`text_models.transformer_encoder` with the sizes of ``cfg``."""
    from . import text_models as tm

    return tm.transformer_encoder(vocab_size, cfg.seq_len, width=cfg.width, depth=cfg.depth,
                                  heads=cfg.heads, ff_width=cfg.ff_width, dropout=cfg.dropout,
                                  dtype=dtype, block=block)


def pretrain(texts: Sequence[str], cfg: Config, seed: int = 0, verbose: bool = True,
             mask_fn: Callable | None = None, compile_fn: Callable | None = None,
             block_fn: Callable | None = None, meta: dict | None = None) -> Pretrained:
    """Pretrain a Transformer encoder as a masked language model on unlabeled texts.

    texts: the unlabeled articles (only the first ``cfg.pretrain_articles`` are used if set).
    A share ``cfg.val_fraction`` of the windows is held out to show over-fitting; the masks
    are redrawn every ``cfg.mask_every`` epochs. mask_fn, compile_fn: replacements for
    :func:`text_models.mask_tokens` and :func:`text_models.compile_masked_lm` (notebook 08
    passes the student's); block_fn: a replacement for :func:`text_models.encoder_block`.
    Returns a :class:`Pretrained` with the per-epoch history.
    """
    from . import text
    from . import text_models as tm

    mask_fn = mask_fn or tm.mask_tokens
    compile_fn = compile_fn or tm.compile_masked_lm
    texts = list(texts)[: cfg.pretrain_articles] if cfg.pretrain_articles else list(texts)
    vocab = build_vocab(texts, cfg)
    docs = text.tokenize_all(texts)
    rng = np.random.default_rng(seed)
    windows = text.windows([vocab.encode(d) for d in docs], cfg.seq_len)
    windows = windows[rng.permutation(len(windows))]
    n_val = int(round(cfg.val_fraction * len(windows)))
    n_val = (n_val // cfg.batch_size) * cfg.batch_size if n_val >= cfg.batch_size else 0
    val, train = windows[:n_val], windows[n_val:]
    if len(train) < cfg.batch_size:
        raise ValueError(f"Only {len(train)} pretraining windows; a batch needs "
                         f"{cfg.batch_size}. Give more texts or a smaller batch_size.")
    max_pred = tm.max_predictions_for(cfg.seq_len, cfg.mask_rate)

    def batches(data, generator, shuffle=True):
        n = (len(data) // cfg.batch_size) * cfg.batch_size
        order = generator.permutation(len(data))[:n] if shuffle else np.arange(n)
        inputs, targets = mask_fn(data[order], generator, vocab.mask_id, len(vocab),
                                  vocab.n_special, rate=cfg.mask_rate)
        positions, labels = tm.gather_targets(targets, max_pred)
        return [np.asarray(inputs, np.int32), positions], labels

    tm.seed_all(seed)
    dtype = tm.precision_for("transformer", cfg.profile)
    encoder = new_encoder(len(vocab), cfg, dtype, block=block_fn)
    model = tm.masked_lm(encoder, len(vocab), dtype=dtype)
    steps_per_epoch = len(train) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    compile_fn(model, cfg.learning_rate, total, int(cfg.warmup_fraction * total),
               jit_compile=tm.jit_for(cfg.profile))
    # Several steps per call to the compiled function: less Python between GPU kernels.
    model.steps_per_execution = cfg.steps_per_execution
    val_data = batches(val, np.random.default_rng(seed + 1), shuffle=False) if n_val else None
    history: dict[str, list[float]] = {}
    start = time.perf_counter()
    epoch = 0
    while epoch < cfg.epochs:
        rounds = min(cfg.mask_every, cfg.epochs - epoch)
        x, y = batches(train, rng)
        h = model.fit(x, y, batch_size=cfg.batch_size, epochs=epoch + rounds,
                      initial_epoch=epoch, shuffle=True, validation_data=val_data, verbose=0)
        for key, values in h.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        epoch += rounds
        if verbose:
            shown = ", ".join(f"{k} {v[-1]:.3f}" for k, v in history.items())
            print(f"epoch {epoch:>3}/{cfg.epochs}  {shown}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    seconds = time.perf_counter() - start
    params = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    return Pretrained(encoder=encoder, vocab=vocab, config=cfg, history=history,
                      seconds=seconds, tokens=steps_per_epoch * cfg.batch_size * cfg.seq_len
                      * cfg.epochs, params=params, meta=dict(meta or {}), mlm=model,
                      windows=train, held_out=val)


# ---------------------------------------------------------------------------------------------
# Saving and loading
# ---------------------------------------------------------------------------------------------

WEIGHTS = "encoder.weights.h5"
META = "encoder.json"


def _encoder_fields(cfg: Config) -> dict:
    keys = ("vocab_size", "min_freq", "seq_len", "width", "depth", "heads", "ff_width",
            "dropout", "pretrain_articles")
    return {k: getattr(cfg, k) for k in keys}


def save_pretrained(p: Pretrained, folder: str | Path) -> Path:
    """Write the encoder's weights, its vocabulary and its record into ``folder``.

    The files are written under temporary names and then renamed, so a notebook that reads the
    folder at the same moment sees either the old files or the new ones, never half a file.
    Returns the weights' path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tag = f".tmp{os.getpid()}"
    weights_tmp = folder / f"encoder{tag}.weights.h5"
    p.encoder.save_weights(weights_tmp)
    os.replace(weights_tmp, folder / WEIGHTS)
    meta = {
        "config": asdict(p.config), "encoder": _encoder_fields(p.config),
        "vocab": p.vocab.to_dict(), "history": p.history, "seconds": p.seconds,
        "tokens": p.tokens, "params": p.params, "meta": p.meta,
    }
    meta_tmp = folder / f"{META}{tag}"
    meta_tmp.write_text(json.dumps(meta), encoding="utf-8")
    os.replace(meta_tmp, folder / META)
    return folder / WEIGHTS


def load_pretrained(folder: str | Path, cfg: Config | None = None,
                    expect_meta: dict | None = None) -> Pretrained | None:
    """The encoder saved in ``folder``, or None when it is missing or does not fit.

    cfg: when given, the saved encoder must have the same sizes (vocabulary, width, ...).
    expect_meta: when given, the saved record must match it (e.g. the categories and split
    seed, so that no test article of this split was in the pretraining texts).
    """
    from . import text
    from . import text_models as tm

    folder = Path(folder)
    if not (folder / META).exists() or not (folder / WEIGHTS).exists():
        return None
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        raw = meta["config"]
        profile = raw.get("profile") if raw.get("profile") in _PROFILES else "quick"
        known = {f.name for f in fields(Config)}
        # fields added since the file was written take the profile's values
        saved_cfg = Config(**{**_PROFILES[profile], "profile": profile,
                              **{k: v for k, v in raw.items() if k in known},
                              "budgets": tuple(raw.get("budgets", DEFAULT_BUDGETS))})
    except (ValueError, KeyError, TypeError):
        return None
    if cfg is not None and meta["encoder"] != _encoder_fields(cfg):
        return None
    if expect_meta and any(meta.get("meta", {}).get(k) != v for k, v in expect_meta.items()):
        return None
    vocab = text.Vocabulary.from_dict(meta["vocab"])
    dtype = tm.precision_for("transformer", (cfg or saved_cfg).profile)
    encoder = new_encoder(len(vocab), saved_cfg, dtype)
    try:
        encoder.load_weights(folder / WEIGHTS)
    except Exception:  # saved by a differently built encoder (e.g. a student's block)
        return None
    return Pretrained(encoder=encoder, vocab=vocab, config=cfg or saved_cfg,
                      history=meta.get("history", {}), seconds=meta.get("seconds", 0.0),
                      tokens=meta.get("tokens", 0), params=meta.get("params", 0),
                      meta=meta.get("meta", {}))


def split_meta(split, cfg: Config) -> dict:
    """What identifies the texts an encoder was pretrained on (JSON-friendly)."""
    return {"categories": list(split.categories), "split_seed": cfg.split_seed,
            "test_fraction": cfg.test_fraction}


def load_or_pretrain(folder: str | Path, split, cfg: Config, seed: int = 0,
                     verbose: bool = True) -> Pretrained:
    """Load the encoder saved by notebook 08, or pretrain (and save) one like it.

    ``split`` must be the :func:`bbc.split` the classifier will be tested on: an encoder saved
    for another split is not used, because its pretraining texts may contain this test set.
    """
    meta = split_meta(split, cfg)
    found = load_pretrained(folder, cfg, expect_meta=meta)
    if found is not None:
        if verbose:
            print(f"Loaded the pretrained encoder from {Path(folder) / WEIGHTS}.")
        return found
    if verbose:
        print(f"No matching pretrained encoder in {folder}: pretraining one now "
              f"({cfg.profile} profile).")
    p = pretrain(split.unlabeled, cfg, seed=seed, verbose=verbose, meta=meta)
    if (Path(folder) / META).exists():
        # An encoder made for other settings (e.g. the other profile) is there: leave it.
        if verbose:
            print(f"Kept the new encoder in memory; the one in {folder} was made for other "
                  "settings and is left as it is.")
        return p
    try:
        save_pretrained(p, folder)
    except OSError as exc:  # read-only folder: carry on with the encoder in memory
        if verbose:
            print(f"(Could not save it: {exc}.)")
    return p


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
    flops: float  # estimated training compute (6 x params x tokens; 2 x for forward only)


@dataclass
class Result:
    """Rows of :func:`run`, plus the test scores of each neural arm (for notebook 10)."""

    rows: list[Row]
    categories: tuple[str, ...]
    test_labels: np.ndarray
    probabilities: dict = field(default_factory=dict)  # (arm, budget, seed) -> (N, C) array
    pretrain_seconds: float = 0.0
    pretrain_flops: float = 0.0


def _steps(n: int, cfg: Config) -> int:
    return int(min(cfg.cls_max_steps, max(cfg.cls_min_steps,
                                          math.ceil(cfg.cls_epochs * n / cfg.cls_batch))))


def run(split, pretrained: Pretrained | None, cfg: Config, budgets: Sequence = None,
        seeds: int | Sequence[int] | None = None, arms: Sequence[str] = ARMS,
        progress: Callable[[Row], None] | None = None,
        sample_fn: Callable | None = None) -> Result:
    """Train every arm on every budget and seed; return the rows and test probabilities.

    split: a :class:`bbc.BBCSplit`; pretrained: the encoder for ``probe`` and ``finetune``
    (may be None when neither arm is asked for). budgets: labels per class, None for all
    (default ``cfg.budgets``). seeds: a count or a list of seeds (default ``cfg.seeds``).
    The same labelled articles go to every arm for a given budget and seed; they are drawn by
    ``sample_fn(labels, k, seed)`` (default :func:`sample_budget`; notebook 09 passes the
    student's), all of them before any training starts.
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
    n_classes = len(split.categories)
    y_pool, y_test = np.asarray(split.pool_labels), np.asarray(split.test_labels)
    sample_fn = sample_fn or sample_budget
    chosen = {(budget_label(k), seed): np.asarray(sample_fn(y_pool, k, seed), dtype=np.int64)
              for k in budgets for seed in seeds}
    result = Result(rows=[], categories=tuple(split.categories), test_labels=y_test)
    if pretrained is not None:
        result.pretrain_seconds, result.pretrain_flops = pretrained.seconds, pretrained.flops

    def emit(row):
        result.rows.append(row)
        if progress:
            progress(row)

    # ---- features that do not depend on the budget: computed once --------------------------
    if "tfidf" in arms:
        from sklearn.feature_extraction.text import TfidfVectorizer

        start = time.perf_counter()
        vec = TfidfVectorizer(sublinear_tf=True, min_df=2).fit(split.unlabeled)
        tf_pool, tf_test = vec.transform(split.pool_texts), vec.transform(split.test_texts)
        tfidf_setup = time.perf_counter() - start
    neural = [a for a in arms if a in ("scratch", "finetune")]
    if pretrained is not None:
        vocab = pretrained.vocab
    elif neural:
        vocab = build_vocab(split.unlabeled, cfg)
    if "probe" in arms or neural:
        w_pool, own_pool, c_pool = article_windows(split.pool_texts, vocab, cfg)
        w_test, own_test, c_test = article_windows(split.test_texts, vocab, cfg)
        # where each pool article's windows start in w_pool, and how many it has
        n_win = np.bincount(own_pool, minlength=len(y_pool))
        first_win = np.concatenate([[0], np.cumsum(n_win)[:-1]])
    if {"probe", "finetune"} & set(arms):
        start = time.perf_counter()
        feats = tm.pooled_features(pretrained.encoder, np.concatenate([w_pool, w_test]))
        f_pool = by_article(feats[: len(w_pool)], own_pool, c_pool, len(y_pool))
        f_test = by_article(feats[len(w_pool):], own_test, c_test, len(y_test))
        probe_setup = time.perf_counter() - start
        enc_params = pretrained.encoder.count_params()
        probe_flops = 2.0 * enc_params * (len(w_pool) + len(w_test)) * cfg.seq_len
        mean, std = f_pool.mean(0), f_pool.std(0) + 1e-6  # no labels used
        f_pool, f_test = (f_pool - mean) / std, (f_test - mean) / std

    # ---- one compiled classifier serves both trained arms ----------------------------------
    if neural:
        tm.seed_all(cfg.split_seed)
        dtype = tm.precision_for("transformer", cfg.profile)
        model = tm.classifier(new_encoder(len(vocab), cfg, dtype), n_classes,
                              dropout=cfg.dropout, dtype=dtype)
        model.compile(optimizer=keras.optimizers.AdamW(cfg.lr_scratch, weight_decay=0.01,
                                                       clipnorm=1.0),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=tm.jit_for(cfg.profile))
        params = int(sum(np.prod(v.shape) for v in model.trainable_weights))
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
        """The linear probe on these labelled examples: logistic regression on standardised
        pooled features. Returns the fitted classifier."""
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, max_iter=2000).fit(f_pool[idx], y_pool[idx])

    def probe_as_head(clf):
        """The probe rewritten as the Keras head's (kernel, bias), acting on raw pooled vectors:
        w . (f - mean) / std + b = (w / std) . f + (b - w . mean / std)."""
        coef, intercept = clf.coef_, clf.intercept_
        if coef.shape[0] == 1:  # binary: sklearn gives one logit; softmax([0, z]) = sigmoid(z)
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.array([0.0, intercept[0]])
        kernel = (coef / std).T
        bias = intercept - (coef * (mean / std)).sum(axis=1)
        return [kernel.astype("float32"), bias.astype("float32")]

    def initial_weights(arm, seed, idx):
        """Starting weights of a run: random for scratch (built once per seed and reused for
        every budget); for fine-tuning, the pretrained encoder and the linear probe's head."""
        if arm == "scratch":
            if seed not in scratch_weights:
                tm.seed_all(10_000 + seed)
                template = tm.classifier(new_encoder(len(vocab), cfg, dtype), n_classes,
                                         dropout=cfg.dropout, dtype=dtype)
                scratch_weights[seed] = template.get_weights()
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
        steps = _steps(len(idx), cfg)
        batch = gen.choice(idx, size=(steps, cfg.cls_batch), replace=True)
        # each chosen article contributes one of its windows, drawn at random
        windows = first_win[batch] + (gen.random(batch.shape) * n_win[batch]).astype(np.int64)
        start = time.perf_counter()
        # One compiled step per call: no data pipeline to build for a few dozen steps.
        for rows, wins in zip(batch, windows):
            model.train_on_batch(w_pool[wins], y_pool[rows])
        seconds = time.perf_counter() - start
        logits = _predict_fixed(model, w_test, cfg.predict_batch)
        # The head is linear in the pooled vector, so the token-weighted mean of the windows'
        # logits is the logit of the whole article's mean vector (as in the probe).
        prob = _softmax(by_article(np.asarray(logits, np.float64), own_test, c_test,
                                   len(y_test)))
        flops = 6.0 * params * steps * cfg.cls_batch * cfg.seq_len
        if arm == "finetune":  # it starts from the probe, so it pays for the probe's forward pass
            seconds, flops = seconds + probe_setup, flops + probe_flops
        return prob, seconds, flops

    for k in budgets:
        for seed in seeds:
            label = budget_label(k)
            idx = chosen[(label, seed)]
            for arm in arms:
                if arm == "tfidf":
                    from sklearn.linear_model import LogisticRegression

                    start = time.perf_counter()
                    clf = LogisticRegression(C=10.0, max_iter=2000).fit(tf_pool[idx], y_pool[idx])
                    prob = clf.predict_proba(tf_test)
                    seconds, flops = time.perf_counter() - start + tfidf_setup, 0.0
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


def _predict_fixed(model, x: np.ndarray, batch: int) -> np.ndarray:
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
    """Add ``experiment pretraining`` to the ``course`` command's subparsers."""
    p = subparsers.add_parser("experiment", help="reproduce a notebook's experiment from a shell")
    inner = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    q = inner.add_parser(
        "pretraining",
        help="notebook 09: scratch vs frozen vs fine-tuned vs TF-IDF across label budgets",
        description="Pretrain a Transformer encoder on the unlabeled BBC News articles (never the "
                    "test articles), then train each arm on k labelled articles per class and "
                    "write test accuracy per arm, budget and seed as CSV.")
    q.add_argument("--categories", nargs="+", default=["entertainment", "tech"],
                   help="two or more of: business entertainment politics sport(s) tech")
    q.add_argument("--budgets", nargs="+", default=["2", "4", "8", "16", "all"],
                   help="labels per class; 'all' = the whole labelled pool")
    q.add_argument("--seeds", type=int, default=None,
                   help="seeds per budget (default: the profile's)")
    q.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    q.add_argument("--profile", choices=sorted(_PROFILES), default=None,
                   help="quick (CPU) or full (GPU); default: chosen by hardware")
    q.add_argument("--weights", default=None,
                   help="folder to load the pretrained encoder from / save it to "
                        "(default: pretrain in memory)")
    q.add_argument("--split-seed", type=int, default=0, help="which articles form the test set")
    q.add_argument("--out", required=True, help="CSV file to write")
    q.set_defaults(func=cmd_pretraining)


def cmd_pretraining(args) -> int:
    """Handler of ``course experiment pretraining``; returns the exit status."""
    from . import bbc

    try:
        budgets = [parse_budget(b) for b in args.budgets]
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    cfg = config(args.profile, split_seed=args.split_seed)
    try:
        split = bbc.split(args.categories, seed=cfg.split_seed, test_fraction=cfg.test_fraction)
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
        if args.weights:
            pretrained = load_or_pretrain(args.weights, split, cfg)
        else:
            pretrained = pretrain(split.unlabeled, cfg, meta=split_meta(split, cfg))
        print(f"Pretraining: {pretrained.seconds:.1f} s, {pretrained.flops:.2e} FLOPs.")

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


def with_overrides(cfg: Config, **changes) -> Config:
    """A copy of ``cfg`` with some fields changed (a thin wrapper over dataclasses.replace)."""
    return replace(cfg, **changes)
