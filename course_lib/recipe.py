"""The course's recipe: every size of pretraining and of the fine-tuning experiment, by profile.

One frozen :class:`Config` holds them all; :func:`config` gives a profile's, with overrides.

- ``quick``: a CPU in about a minute. Notebook 09's live pretraining run (one pass over the
  unlabeled articles) and notebook 10's classifiers.
- ``checkpoint``: the recipe of the course checkpoint (:mod:`course_lib.pretraining`): the
  same texts and task as ``quick``, a twice wider encoder, trained fifty times longer, once,
  and shipped with the course, as d2l ships its small BERT.
- ``full``: the real lesson on a GPU: a larger encoder pretrained live for longer.

Both are small on purpose: notebook 09 sets its own one-minute run beside the checkpoint's
curve, and notebook 10 fine-tunes the checkpoint on a CPU in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

DEFAULT_BUDGETS = (2, 4, 8, 16, None)  # None = every labelled article of the pool


@dataclass(frozen=True)
class Config:
    """Every size of pretraining and of the experiment; :func:`config` gives the profiles."""

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
    max_windows: int  # a trained classifier reads up to this many windows per article
    probe_windows: int  # the linear probe reads up to this many (one forward pass each)
    predict_batch: int
    seeds: int
    budgets: tuple = DEFAULT_BUDGETS
    split_seed: int = 0


_SMALL_ENCODER = dict(vocab_size=8000, min_freq=2, seq_len=64, width=128, depth=2, heads=4,
                      ff_width=512, dropout=0.1)
# The live run's encoder: the checkpoint's, half as wide and with half the vocabulary, so that
# two passes over the texts take well under a minute on two CPU cores.
_LIVE_ENCODER = {**_SMALL_ENCODER, "vocab_size": 4000, "width": 64, "ff_width": 256}
_CPU_CLASSIFIERS = dict(cls_batch=16, cls_epochs=2.0, cls_min_steps=16, cls_max_steps=64,
                        lr_finetune=3e-4, lr_scratch=1e-3, max_windows=2, probe_windows=12,
                        predict_batch=256)

_PROFILES = {
    "quick": dict(
        pretrain_articles=None, **_LIVE_ENCODER,
        batch_size=64, epochs=2, learning_rate=2e-3, warmup_fraction=0.1, mask_rate=0.15,
        mask_every=1, val_fraction=0.05, steps_per_execution=8, **_CPU_CLASSIFIERS, seeds=2,
    ),
    "checkpoint": dict(
        pretrain_articles=None, **_SMALL_ENCODER,
        batch_size=64, epochs=60, learning_rate=1e-3, warmup_fraction=0.02, mask_rate=0.15,
        mask_every=1, val_fraction=0.05, steps_per_execution=8, **_CPU_CLASSIFIERS, seeds=5,
    ),
    "full": dict(
        pretrain_articles=None, vocab_size=20000, min_freq=2, seq_len=256,
        width=256, depth=4, heads=4, ff_width=1024, dropout=0.1,
        batch_size=128, epochs=200, learning_rate=6e-4, warmup_fraction=0.05, mask_rate=0.15,
        mask_every=5, val_fraction=0.05, steps_per_execution=4,
        cls_batch=32, cls_epochs=4.0, cls_min_steps=60, cls_max_steps=400,
        lr_finetune=2e-4, lr_scratch=5e-4, max_windows=4, probe_windows=8, predict_batch=256,
        seeds=5,
    ),
}
PROFILES = tuple(_PROFILES)


def config(profile: str | None = None, **overrides) -> Config:
    """The sizes for a profile (default: ``device.profile()``, quick or full), with overrides."""
    from . import device

    profile = profile or device.profile()
    if profile not in _PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; use one of {', '.join(_PROFILES)}.")
    known = {f.name for f in fields(Config)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"Unknown Config field(s): {', '.join(sorted(unknown))}.")
    return Config(profile=profile, **{**_PROFILES[profile], **overrides})


def from_dict(raw: dict) -> Config:
    """A Config read back from JSON: fields it lacks take its profile's values."""
    profile = raw.get("profile") if raw.get("profile") in _PROFILES else "quick"
    known = {f.name for f in fields(Config)}
    values = {**_PROFILES[profile], "profile": profile,
              **{k: v for k, v in raw.items() if k in known}}
    values["budgets"] = tuple(values.get("budgets", DEFAULT_BUDGETS))
    return Config(**values)


ENCODER_FIELDS = ("vocab_size", "min_freq", "seq_len", "width", "depth", "heads", "ff_width",
                  "dropout")


def encoder_fields(cfg: Config) -> dict:
    """The fields that decide an encoder's shape: two encoders with equal ones can swap weights."""
    return {k: getattr(cfg, k) for k in ENCODER_FIELDS}


def with_encoder_of(cfg: Config, encoder_cfg: Config) -> Config:
    """``cfg`` with the encoder sizes of ``encoder_cfg`` (to train classifiers on its encoder)."""
    return replace(cfg, **encoder_fields(encoder_cfg))


def with_overrides(cfg: Config, **changes) -> Config:
    """A copy of ``cfg`` with some fields changed (a thin wrapper over dataclasses.replace)."""
    return replace(cfg, **changes)
