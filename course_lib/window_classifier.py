"""One compiled Transformer classifier, trained again and again on a few labelled articles.

Notebook 10's two trained arms (from scratch, and fine-tuned from the pretrained encoder) and
notebook 13's teacher all train the same network: the encoder, mean pooling over real
tokens, the pooled vector scaled to length 1, a dropout and a linear head
(:func:`course_lib.text_models.classifier`). Compiling its training step costs seconds, while
a run on 8 articles is a few dozen steps, so :class:`WindowClassifier` compiles it once and
:meth:`WindowClassifier.fit` restarts it from given weights for each run: optimizer state,
dropout's random stream and the steps' batches are all set from the run's seed, so a run's
result does not depend on which runs came before it.

An article is read as windows of ``cfg.seq_len`` tokens (:func:`fixed_features.article_windows`).
Training draws one window of each chosen article per batch row; predicting reads up to
``cfg.probe_windows`` windows and averages their logits, weighted by real tokens. Because the
head is linear in the normalised pooled vector, that average is the logit of the article's
mean vector, as in the linear probe.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from .fixed_features import article_windows, by_article
from .recipe import Config, with_overrides

__all__ = ["WindowClassifier", "classifier_steps", "predict_fixed"]


def classifier_steps(n: int, cfg: Config) -> int:
    """Training steps of a run on n labelled articles: cfg.cls_epochs passes over them, but
    no fewer than cfg.cls_min_steps and no more than cfg.cls_max_steps."""
    return int(min(cfg.cls_max_steps, max(cfg.cls_min_steps,
                                          math.ceil(cfg.cls_epochs * n / cfg.cls_batch))))


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


class WindowClassifier:
    """The classifier over a vocabulary, compiled once, with the labelled pool cut into windows.

    vocab: the :class:`course_lib.text.Vocabulary` the encoder reads; pool_texts, pool_labels
    (N,): the labelled pool that :meth:`fit` draws its articles from; cfg: the encoder's sizes
    and the classifier's recipe (dropout, batch, steps, learning rates, precision).
    """

    def __init__(self, vocab, pool_texts: Sequence[str], pool_labels, n_classes: int,
                 cfg: Config):
        import keras

        from . import keras_runtime
        from . import text_models as tm

        self.cfg, self.vocab, self.n_classes = cfg, vocab, int(n_classes)
        self.y_pool = np.asarray(pool_labels)
        self.w_pool, own_pool, _ = article_windows(pool_texts, vocab, cfg)
        # where each pool article's windows start in w_pool, and how many it has
        self.n_win = np.bincount(own_pool, minlength=len(self.y_pool))
        self.first_win = np.concatenate([[0], np.cumsum(self.n_win)[:-1]])
        self.forward_flops = tm.encoder_forward_flops(cfg.width, cfg.depth, cfg.ff_width,
                                                      cfg.seq_len)
        self.dtype = keras_runtime.precision_for("transformer", cfg.profile)
        keras_runtime.seed_all(cfg.split_seed)
        self.model = self._fresh()
        self.model.compile(optimizer=keras.optimizers.AdamW(cfg.lr_scratch, weight_decay=0.01,
                                                            clipnorm=1.0),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                           jit_compile=keras_runtime.jit_for(cfg.profile))
        # Dropout draws its masks from seed states that advance with every step and that
        # set_weights leaves alone; each run restarts them.
        self._seed_states = [v for v in self.model.variables if "seed_generator" in v.path]
        self._initial_seed_states = [keras.ops.convert_to_numpy(v) for v in self._seed_states]

    def _fresh(self):
        from . import text_models as tm
        from .pretraining import new_encoder

        encoder = new_encoder(len(self.vocab), self.cfg, self.dtype)
        return tm.classifier(encoder, self.n_classes, dropout=self.cfg.dropout,
                             dtype=self.dtype, normalize=True)

    def random_weights(self, seed: int) -> list:
        """The weights of a new classifier drawn with ``seed``: the from-scratch start."""
        from . import keras_runtime

        keras_runtime.seed_all(10_000 + seed)
        return self._fresh().get_weights()

    def fit(self, weights: list, idx, seed: int, learning_rate: float) -> tuple[int, float, float]:
        """Train from ``weights`` (encoder's, then the head's kernel and bias) on pool articles
        ``idx`` for :func:`classifier_steps` steps, batches drawn with ``seed``.

        Returns (steps, seconds spent training, training FLOPs: 3 x forward per token read)."""
        from . import keras_runtime

        cfg = self.cfg
        idx = np.asarray(idx, dtype=np.int64)
        gen = np.random.default_rng(1000 + seed)
        self.model.set_weights(weights)
        for variable, state in zip(self._seed_states, self._initial_seed_states):
            variable.assign(state)
        keras_runtime.reset_optimizer(self.model.optimizer, learning_rate)
        steps = classifier_steps(len(idx), cfg)
        batch = gen.choice(idx, size=(steps, cfg.cls_batch), replace=True)
        # each chosen article contributes one of its windows, drawn at random
        windows = (self.first_win[batch]
                   + (gen.random(batch.shape) * self.n_win[batch]).astype(np.int64))
        start = time.perf_counter()
        # One compiled step per call: no data pipeline to build for a few dozen steps.
        for rows, wins in zip(batch, windows):
            self.model.train_on_batch(self.w_pool[wins], self.y_pool[rows])
        seconds = time.perf_counter() - start
        return steps, seconds, 3.0 * self.forward_flops * steps * cfg.cls_batch * cfg.seq_len

    def windows_of(self, texts: Sequence[str], max_windows: int | None = None):
        """(windows, owner, weight) of ``texts`` (:func:`fixed_features.article_windows`), up
        to ``max_windows`` per article (default: as many as the probe reads)."""
        n = self.cfg.probe_windows if max_windows is None else max_windows
        return article_windows(texts, self.vocab, with_overrides(self.cfg, max_windows=n))

    def logits_of(self, windows) -> np.ndarray:
        """Article logits (N, C), float64, from :meth:`windows_of`'s triple: the token-weighted
        mean of the windows' logits."""
        w, owner, weight = windows
        out = predict_fixed(self.model, w, self.cfg.predict_batch)
        return by_article(np.asarray(out, np.float64), owner, weight, int(owner.max()) + 1)
