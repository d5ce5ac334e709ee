"""What a representation knows: one linear probe, read over several fixed feature sets.

A linear probe can only find what its features already hold, so probing several feature sets
on the same labelled draws asks where the knowledge came from. Notebook 10 compares three,
all from the encoder that :func:`course_lib.experiment.run` probes:

- the same architecture with **random weights** (no objective at all): what pooling a random
  network's vectors of the words gives, with no training;
- the pretrained encoder's **embedding table alone** (each window's mean word vector, before any
  attention): what masked-word prediction put into single words;
- the pretrained encoder's **final layer**, which is the experiment's own probe arm.

Every feature set goes through :func:`course_lib.fixed_features.probe_features`' pipeline (windows,
mean-pooling over real tokens, each window scaled to length 1, the article's token-weighted
mean) and :func:`course_lib.fixed_features.linear_readout`, so the feature set is the only thing
that differs. Keras is imported inside the functions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from .experiment import Row
from .fixed_features import linear_readout, probe_features
from .pretraining import Pretrained, new_encoder
from .recipe import Config

__all__ = ["embedding_layer", "probe_rows", "random_like", "feature_sets"]


def embedding_layer(encoder):
    """The encoder cut after its token embedding: ids (B, T) -> word vectors (B, T, width),
    with no position embedding and no attention (a bag of the encoder's word vectors)."""
    import keras

    return keras.Model(encoder.input, encoder.get_layer("token_embedding").output,
                       name="embedding_only")


def random_like(pretrained: Pretrained, seed: int = 0):
    """A fresh encoder with the sizes of ``pretrained`` and random weights drawn with ``seed``
    (as the from-scratch arm's are): the architecture with no objective behind it."""
    from . import keras_runtime

    keras_runtime.seed_all(seed)
    return new_encoder(len(pretrained.vocab), pretrained.config)


def feature_sets(pretrained: Pretrained, split, cfg: Config, seed: int = 0) -> dict:
    """Probe features of the pool and test articles from the random-weights encoder and from the
    pretrained embedding table. Returns name -> (pool (N, width), test (M, width), seconds);
    the names are ``"random"`` and ``"embeddings"``."""
    out = {}
    for name, encoder in (("random", random_like(pretrained, seed)),
                          ("embeddings", embedding_layer(pretrained.encoder))):
        start = time.perf_counter()
        f_pool, f_test, _ = probe_features(encoder, pretrained.vocab, split, cfg)
        out[name] = (f_pool, f_test, time.perf_counter() - start)
    return out


def probe_rows(features: Mapping[str, tuple], split, draws: Mapping[tuple, np.ndarray]) -> list:
    """The linear probe of every feature set on every draw.

    features: name -> (pool features (N, D), test features (M, D), seconds), as from
    :func:`feature_sets`. draws: (budget label, seed) -> int indices into the pool, as in
    ``Result.draws`` (the experiment's own draws, so that the comparison is paired).
    Returns one :class:`course_lib.experiment.Row` per feature set, budget and seed, with the
    feature set's name as its arm; its seconds include computing the features, its FLOPs are 0.
    """
    y_pool, y_test = np.asarray(split.pool_labels), np.asarray(split.test_labels)
    rows = []
    for name, (f_pool, f_test, setup) in features.items():
        for (budget, seed), idx in draws.items():
            start = time.perf_counter()
            clf = linear_readout(f_pool[idx], y_pool[idx])
            accuracy = float(np.mean(clf.predict(f_test) == y_test))
            seconds = time.perf_counter() - start + setup
            rows.append(Row(name, budget, len(idx), seed, accuracy, seconds, 0.0))
    return rows
