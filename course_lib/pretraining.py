"""Pretraining a Transformer encoder as a masked language model, and the course checkpoint.

- :func:`pretrain`: BERT's task (Devlin et al., 2019) on the unlabeled BBC articles, with the
  recipe of :mod:`course_lib.recipe`. Notebook 09 runs it live for a minute.
- :func:`save_pretrained`, :func:`load_pretrained`, :func:`load_or_pretrain`: an encoder with its
  vocabulary and record, in a folder.
- :func:`course_checkpoint`: the encoder the course ships, pretrained with the same recipe a
  hundred times longer (like d2l's small BERT or ULMFiT's downloaded language model). Its
  files are checked against the hashes in its ``provenance.json`` before use, and against the
  corpus's test reserve, so that it can never have read an article some split tests on.
  ``course experiment pretrain --profile checkpoint --out DIR`` makes it again.

Every encoder records which unlabeled texts it read (:func:`pretraining_meta`): the corpus-wide
test reserve's fingerprint. Since no split's unlabeled texts contain a reserve article, an
encoder made on this corpus can serve every category pair.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .recipe import Config, encoder_fields, from_dict

WEIGHTS = "encoder.weights.h5"
META = "encoder.json"
PROVENANCE = "provenance.json"
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoint"
REPRODUCE = "course experiment pretrain --profile checkpoint --out DIR"


class CheckpointError(RuntimeError):
    """The course checkpoint is missing, changed, or was made for another corpus."""


@dataclass
class Pretrained:
    """A pretrained encoder and what it needs: its vocabulary, sizes and training record."""

    encoder: object  # keras.Model
    vocab: object  # text.Vocabulary
    config: Config
    history: dict = field(default_factory=dict)
    seconds: float = 0.0
    tokens: int = 0  # token positions processed in training
    targets: int = 0  # masked positions predicted in training
    params: int = 0  # trainable parameters of the masked LM
    meta: dict = field(default_factory=dict)  # which texts it read
    mlm: object = None  # the masked LM (encoder + head) after pretraining; None when loaded
    windows: object = None  # int32 (N, seq_len) training windows; None when loaded
    held_out: object = None  # int32 (M, seq_len) windows held out from training; None when loaded

    @property
    def flops(self) -> float:
        """Training compute: the encoder's matrix work for every token and the head's at the
        masked positions, forward and backward (see mlm.masked_lm_training_flops)."""
        from .mlm import masked_lm_training_flops

        c = self.config
        return masked_lm_training_flops(c.width, c.depth, c.ff_width, c.seq_len,
                                        len(self.vocab), self.tokens, self.targets)


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


def pretraining_meta() -> dict:
    """What identifies the texts an encoder pretrained on this corpus read: the unlabeled
    articles, that is every article outside the corpus-wide test reserve."""
    from . import bbc

    return {"texts": "bbc unlabeled (every article outside the test reserve)",
            "corpus_sha256": bbc.EXPECTED_SHA256, "reserve": bbc.reserve_digest()}


def word_counts(vocab, windows: np.ndarray) -> np.ndarray:
    """How often each vocabulary id occurs in ``windows`` (padding and specials: 0)."""
    counts = np.bincount(np.asarray(windows).ravel(), minlength=len(vocab)).astype(np.float64)
    counts[: vocab.n_special] = 0
    return counts


def pretrain(texts: Sequence[str], cfg: Config, seed: int = 0, verbose: bool = True,
             mask_fn: Callable | None = None, compile_fn: Callable | None = None,
             block_fn: Callable | None = None, meta: dict | None = None,
             on_epoch: Callable[[int, dict], None] | None = None) -> Pretrained:
    """Pretrain a Transformer encoder as a masked language model on unlabeled texts.

    texts: the unlabeled articles (only the first ``cfg.pretrain_articles`` are used if set).
    A share ``cfg.val_fraction`` of the windows is held out to show over-fitting; the masks
    are redrawn every ``cfg.mask_every`` epochs. The head's output bias starts at the log word
    frequencies (:func:`mlm.frequency_bias`), so the loss starts at the word-frequency
    baseline. mask_fn, compile_fn: replacements for :func:`mlm.mask_tokens` and
    :func:`mlm.compile_masked_lm` (notebook 09 passes the student's); block_fn: a
    replacement for :func:`text_models.encoder_block`. on_epoch(epoch, history): called after
    every epoch. Returns a :class:`Pretrained` with the per-epoch history.
    """
    from . import keras_runtime, mlm, text

    mask_fn = mask_fn or mlm.mask_tokens
    compile_fn = compile_fn or mlm.compile_masked_lm
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
    max_pred = mlm.max_predictions_for(cfg.seq_len, cfg.mask_rate)

    def batches(data, generator, shuffle=True):
        n = (len(data) // cfg.batch_size) * cfg.batch_size
        order = generator.permutation(len(data))[:n] if shuffle else np.arange(n)
        inputs, targets = mask_fn(data[order], generator, vocab.mask_id, len(vocab),
                                  vocab.n_special, rate=cfg.mask_rate)
        positions, labels = mlm.gather_targets(targets, max_pred)
        return [np.asarray(inputs, np.int32), positions], labels

    keras_runtime.seed_all(seed)
    dtype = keras_runtime.precision_for("transformer", cfg.profile)
    encoder = new_encoder(len(vocab), cfg, dtype, block=block_fn)
    model = mlm.masked_lm(encoder, len(vocab), dtype=dtype,
                         output_bias=mlm.frequency_bias(word_counts(vocab, train)))
    steps_per_epoch = len(train) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    compile_fn(model, cfg.learning_rate, total, int(cfg.warmup_fraction * total),
               jit_compile=keras_runtime.jit_for(cfg.profile))
    # Several steps per call to the compiled function: less Python between GPU kernels.
    model.steps_per_execution = cfg.steps_per_execution
    val_data = batches(val, np.random.default_rng(seed + 1), shuffle=False) if n_val else None
    history: dict[str, list[float]] = {}
    targets = 0
    start = time.perf_counter()
    epoch = 0
    while epoch < cfg.epochs:
        rounds = min(cfg.mask_every, cfg.epochs - epoch)
        x, y = batches(train, rng)
        targets += int(np.count_nonzero(y)) * rounds
        h = model.fit(x, y, batch_size=cfg.batch_size, epochs=epoch + rounds,
                      initial_epoch=epoch, shuffle=True, validation_data=val_data, verbose=0)
        for key, values in h.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        epoch += rounds
        if verbose:
            shown = ", ".join(f"{k} {v[-1]:.3f}" for k, v in history.items())
            print(f"epoch {epoch:>3}/{cfg.epochs}  {shown}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
        if on_epoch is not None:
            on_epoch(epoch, history)
    seconds = time.perf_counter() - start
    params = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    return Pretrained(encoder=encoder, vocab=vocab, config=cfg, history=history,
                      seconds=seconds, tokens=steps_per_epoch * cfg.batch_size * cfg.seq_len
                      * cfg.epochs, targets=targets, params=params, meta=dict(meta or {}),
                      mlm=model, windows=train, held_out=val)


# ---------------------------------------------------------------------------------------------
# Saving and loading
# ---------------------------------------------------------------------------------------------

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
        "config": asdict(p.config), "encoder": encoder_fields(p.config),
        "vocab": p.vocab.to_dict(), "history": p.history, "seconds": p.seconds,
        "tokens": p.tokens, "targets": p.targets, "params": p.params, "meta": p.meta,
    }
    meta_tmp = folder / f"{META}{tag}"
    meta_tmp.write_text(json.dumps(meta), encoding="utf-8")
    os.replace(meta_tmp, folder / META)
    return folder / WEIGHTS


def load_pretrained(folder: str | Path, cfg: Config | None = None,
                    expect_meta: dict | None = None) -> Pretrained | None:
    """The encoder saved in ``folder``, or None when it is missing or does not fit.

    cfg: when given, the saved encoder must have the same sizes (vocabulary, width, ...).
    expect_meta: when given, the saved record must match it (e.g. the test reserve, so that
    no test article was among the pretraining texts).
    """
    from . import keras_runtime, text

    folder = Path(folder)
    if not (folder / META).exists() or not (folder / WEIGHTS).exists():
        return None
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        saved_cfg = from_dict(meta["config"])
    except (ValueError, KeyError, TypeError):
        return None
    if cfg is not None and meta.get("encoder") != encoder_fields(cfg):
        return None
    if expect_meta and any(meta.get("meta", {}).get(k) != v for k, v in expect_meta.items()):
        return None
    vocab = text.Vocabulary.from_dict(meta["vocab"])
    dtype = keras_runtime.precision_for("transformer", (cfg or saved_cfg).profile)
    encoder = new_encoder(len(vocab), saved_cfg, dtype)
    try:
        encoder.load_weights(folder / WEIGHTS)
    except Exception:  # saved by a differently built encoder (e.g. a student's block)
        return None
    return Pretrained(encoder=encoder, vocab=vocab, config=saved_cfg,
                      history=meta.get("history", {}), seconds=meta.get("seconds", 0.0),
                      tokens=meta.get("tokens", 0), targets=meta.get("targets", 0),
                      params=meta.get("params", 0), meta=meta.get("meta", {}))


def load_or_pretrain(folder: str | Path, texts: Sequence[str], cfg: Config, seed: int = 0,
                     verbose: bool = True) -> Pretrained:
    """Load the encoder saved in ``folder`` (by notebook 09), or pretrain (and save) one like it.

    An encoder saved for other texts (another test reserve) or other sizes is not used, and
    never overwritten.
    """
    meta = pretraining_meta()
    found = load_pretrained(folder, cfg, expect_meta=meta)
    if found is not None:
        if verbose:
            print(f"Loaded the pretrained encoder from {Path(folder) / WEIGHTS}.")
        return found
    if verbose:
        print(f"No matching pretrained encoder in {folder}: pretraining one now "
              f"({cfg.profile} profile).")
    p = pretrain(texts, cfg, seed=seed, verbose=verbose, meta=meta)
    if (Path(folder) / META).exists():
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
# The course checkpoint
# ---------------------------------------------------------------------------------------------

def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def frequency_baseline(vocab, windows: np.ndarray) -> tuple[float, float]:
    """What a model that ignores the context scores on masked words of ``windows``: the
    cross-entropy of always predicting each word's frequency (nats), and the accuracy of
    always guessing the commonest word. A masked LM has learned from context only once it
    beats both."""
    counts = word_counts(vocab, windows)
    share = counts[counts > 0] / counts.sum()
    return float(-(share * np.log(share)).sum()), float(share.max())


def write_provenance(p: Pretrained, folder: str | Path, where: str, command: str,
                     seed: int = 0) -> Path:
    """Record how ``folder``'s encoder was made, with the hash of each of its files."""
    import keras

    folder = Path(folder)
    baseline_loss, baseline_accuracy = frequency_baseline(p.vocab, p.windows)
    provenance = {
        "what": "masked-LM Transformer encoder pretrained on the unlabeled BBC News articles",
        "recipe": asdict(p.config), "seed": seed, "texts": p.meta,
        "tokens_seen": p.tokens, "masked_predictions": p.targets, "parameters": p.params,
        "training_flops": p.flops, "seconds": round(p.seconds, 1), "trained_on": where,
        "software": {"keras": keras.__version__, "backend": keras.config.backend(),
                     "python": platform.python_version()},
        "tokens_per_epoch": p.tokens // max(1, p.config.epochs),
        "word_frequency_loss": baseline_loss, "commonest_word_accuracy": baseline_accuracy,
        "loss_curve": p.history.get("loss", []),
        "masked_accuracy_curve": p.history.get("masked_accuracy", []),
        "val_loss_curve": p.history.get("val_loss", []),
        "val_masked_accuracy_curve": p.history.get("val_masked_accuracy", []),
        "command": command,
        "files": {name: sha256_of(folder / name) for name in (WEIGHTS, META)},
    }
    path = folder / PROVENANCE
    path.write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
    return path


def course_checkpoint(folder: str | Path | None = None) -> Pretrained:
    """The course's pretrained encoder, after checking it.

    folder: where it is (default: the copy inside this package). Raises
    :class:`CheckpointError`, saying what to do, when a file is missing or its hash differs
    from ``provenance.json``, or when it was pretrained for another corpus or test reserve.
    """
    folder = Path(folder) if folder is not None else CHECKPOINT_DIR
    fix = (f"Reinstall the course package (pip install --force-reinstall course-lib), or make "
           f"the checkpoint again with `{REPRODUCE}` (about an hour on a laptop) and pass that "
           "folder.")
    try:
        provenance = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))
        files = provenance["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"No readable course checkpoint in {folder} ({PROVENANCE} is "
                              f"missing or damaged). {fix}") from None
    for name, expected in files.items():
        path = folder / name
        if not path.exists():
            raise CheckpointError(f"The course checkpoint lacks {name} in {folder}. {fix}")
        if sha256_of(path) != expected:
            raise CheckpointError(f"{path} is not the file the course checkpoint was made "
                                  f"with (its hash differs from {PROVENANCE}). {fix}")
    expected_meta = pretraining_meta()
    if provenance.get("texts") != expected_meta:
        raise CheckpointError(
            "The course checkpoint was pretrained on another version of the corpus or another "
            "test reserve, so it may have read articles that are test articles here. Make one "
            f"for this corpus with `{REPRODUCE}` and pass that folder.")
    loaded = load_pretrained(folder, expect_meta=expected_meta)
    if loaded is None:
        raise CheckpointError(f"The course checkpoint in {folder} could not be loaded into a "
                              f"fresh encoder. {fix}")
    loaded.meta["provenance"] = provenance
    return loaded
