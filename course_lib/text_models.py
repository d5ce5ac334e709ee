"""Keras 3 models for the text notebooks (07-10, 13), written once for every backend.

Everything is built from ``keras.layers`` and ``keras.ops``, so the same code runs with
``KERAS_BACKEND`` set to tensorflow, jax or torch; nothing imports TensorFlow. This module imports
Keras when it is imported, so ``course_lib/__init__`` never imports it: load it where a model is
needed (``from course_lib import text_models``).

The pieces:

- :class:`PositionEmbedding`: learned position vectors, a real layer with a weight (a position
  table built as a constant outside the model's graph breaks the torch backend).
- :func:`transformer_encoder`: token ids (B, T) -> contextual vectors (B, T, width); pre-layer-norm
  blocks of self-attention and a feed-forward network; padding (id 0) is never attended to.
  :func:`encoder_forward_flops` is what one token's pass through it costs.
- :func:`lstm_language_model`, :func:`next_word_targets`: the alternative, a next-word LSTM
  language model (Dai & Le, 2015; Howard & Ruder, 2018).
- :func:`classifier`, :func:`pooled_features`: a classification head over an encoder (masked
  mean pooling + dense), and the pooled vectors alone.

The task an encoder is pretrained on lives in :mod:`course_lib.mlm`; the choices that depend on
the backend and the device (precision, compilation, seeding) in :mod:`course_lib.keras_runtime`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

__all__ = [
    "MaskedMeanPooling", "PositionEmbedding", "classifier", "encoder_block", "encoder_config",
    "encoder_forward_flops", "key_mask", "lstm_language_model", "next_word_targets",
    "pooled_features", "transformer_encoder",
]

PAD_ID = 0


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="course_lib")
class PositionEmbedding(layers.Layer):
    """Adds a learned vector for each position to a sequence of vectors.

    Input (B, T, D) with T <= ``max_length``; output (B, T, D): ``x[:, t] + P[t]``, where the
    table P, shape (max_length, D), is a trained weight of this layer.
    """

    def __init__(self, max_length: int, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.max_length = int(max_length)
        # Small, like the token embedding (BERT uses N(0, 0.02) for both): a larger position
        # signal would drown the word identities at the start of training.
        self.initializer = keras.initializers.get(
            initializer or keras.initializers.RandomNormal(stddev=0.02))

    def build(self, input_shape):
        self.table = self.add_weight(name="table", shape=(self.max_length, input_shape[-1]),
                                     initializer=self.initializer)

    def call(self, x):
        length = ops.shape(x)[1]
        return x + ops.cast(self.table[:length], x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length,
                "initializer": keras.initializers.serialize(self.initializer)}


@keras.saving.register_keras_serializable(package="course_lib")
class MaskedMeanPooling(layers.Layer):
    """Averages a sequence of vectors over its real tokens only.

    Inputs: ``[h, ids]`` with h (B, T, D) and ids (B, T) (0 = padding). Output (B, D):
    ``sum_t h[b, t] * m[b, t] / max(1, sum_t m[b, t])`` with m = (ids != 0).
    """

    def call(self, inputs):
        h, ids = inputs
        m = ops.cast(ops.not_equal(ids, PAD_ID), h.dtype)
        total = ops.sum(h * ops.expand_dims(m, -1), axis=1)
        count = ops.maximum(ops.sum(m, axis=1, keepdims=True), ops.cast(1.0, h.dtype))
        return total / count

    def compute_output_shape(self, input_shapes):
        h_shape = input_shapes[0]
        return (h_shape[0], h_shape[2])


# ---------------------------------------------------------------------------------------------
# The Transformer encoder
# ---------------------------------------------------------------------------------------------

def key_mask(ids):
    """Attention mask (B, 1, T) from token ids (B, T): True where a key is a real token.

    Broadcast over the queries: every position may look at every real token, never at padding.
    """
    return ops.expand_dims(ops.not_equal(ids, PAD_ID), 1)


def encoder_block(x, mask, heads: int, ff_width: int, dropout: float = 0.1, dtype=None,
                  name: str = "block"):
    """One pre-layer-norm Transformer block, in the functional API.

    x: (B, T, D) vectors; mask: (B, 1, T) boolean attention mask (see :func:`key_mask`).
    ``x + Attention(LN(x))``, then ``x + FFN(LN(x))``, FFN = Dense(ff_width, gelu) -> Dense(D).
    Returns (B, T, D). Attention itself has no dropout, so Keras can use the backend's fused
    ``dot_product_attention`` kernel; dropout acts on each branch's output instead.
    """
    width = x.shape[-1]
    if width % heads:
        raise ValueError(f"width {width} is not divisible by heads={heads}.")
    h = layers.LayerNormalization(epsilon=1e-6, dtype=dtype, name=f"{name}_ln1")(x)
    h = layers.MultiHeadAttention(heads, key_dim=width // heads, dtype=dtype,
                                  name=f"{name}_attention")(h, h, attention_mask=mask)
    x = layers.Add(dtype=dtype, name=f"{name}_add1")(
        [x, layers.Dropout(dropout, dtype=dtype, name=f"{name}_drop1")(h)])
    h = layers.LayerNormalization(epsilon=1e-6, dtype=dtype, name=f"{name}_ln2")(x)
    h = layers.Dense(ff_width, activation="gelu", dtype=dtype, name=f"{name}_ff1")(h)
    h = layers.Dense(width, dtype=dtype, name=f"{name}_ff2")(h)
    return layers.Add(dtype=dtype, name=f"{name}_add2")(
        [x, layers.Dropout(dropout, dtype=dtype, name=f"{name}_drop2")(h)])


def transformer_encoder(vocab_size: int, max_length: int, width: int = 64, depth: int = 2,
                        heads: int = 4, ff_width: int | None = None, dropout: float = 0.1,
                        dtype: str | None = None, name: str = "encoder",
                        block=None) -> keras.Model:
    """A small BERT-style encoder: ids (B, T) int -> contextual vectors (B, T, width).

    T may be anything up to ``max_length``. Token embedding + :class:`PositionEmbedding`, then
    ``depth`` :func:`encoder_block`s and a final layer norm. dtype: a dtype policy name for every
    layer (``"mixed_bfloat16"`` on a GPU; see :func:`course_lib.keras_runtime.precision_for`).
    block: a function with :func:`encoder_block`'s signature to use instead of it (notebook 09
    passes the student's).
    """
    block = block or encoder_block
    ff_width = ff_width or 4 * width
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = layers.Embedding(vocab_size, width, dtype=dtype, name="token_embedding")(ids)
    x = PositionEmbedding(max_length, dtype=dtype, name="position_embedding")(x)
    x = layers.Dropout(dropout, dtype=dtype, name="embedding_dropout")(x)
    mask = key_mask(ids)
    for i in range(depth):
        x = block(x, mask, heads, ff_width, dropout, dtype=dtype, name=f"block{i + 1}")
    x = layers.LayerNormalization(epsilon=1e-6, dtype=dtype, name="final_ln")(x)
    return keras.Model(ids, x, name=name)


def encoder_config(encoder: keras.Model) -> dict:
    """The arguments that rebuild ``encoder`` with :func:`transformer_encoder` (no weights)."""
    emb = encoder.get_layer("token_embedding")
    blocks = [layer for layer in encoder.layers if layer.name.endswith("_attention")]
    ff = encoder.get_layer("block1_ff1") if blocks else None
    return {
        "vocab_size": emb.input_dim,
        "max_length": encoder.get_layer("position_embedding").max_length,
        "width": emb.output_dim,
        "depth": len(blocks),
        "heads": blocks[0].num_heads if blocks else 1,
        "ff_width": ff.units if ff else 4 * emb.output_dim,
        "dropout": encoder.get_layer("embedding_dropout").rate,
    }


def encoder_forward_flops(width: int, depth: int, ff_width: int, seq_len: int) -> float:
    """Arithmetic of one token's forward pass through the encoder, in FLOPs.

    Counted as the matrix products do it, two FLOPs per multiply-add: in each block the four
    attention projections (Q, K, V, output: 4 d^2), the feed-forward layer (2 d f), and
    attention itself (scores against T keys and the weighted sum of T values: 2 T d). The
    embedding tables are look-ups and cost no multiplication; layer norms, softmax and
    activations are a few percent and left out. Training costs about 3 times the forward pass
    (the backward pass computes two products for each one of the forward pass).
    """
    return float(depth * 2 * (4 * width * width + 2 * width * ff_width + 2 * seq_len * width))


# ---------------------------------------------------------------------------------------------
# Next-word LSTM language model
# ---------------------------------------------------------------------------------------------

def next_word_targets(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets of a next-word language model: (ids[:, :-1], ids[:, 1:]).

    At position t the model has read tokens 0..t and must predict token t+1. Padding targets are
    0 and are ignored by :func:`course_lib.mlm.masked_lm_loss`. ids: int (B, T); returns two
    int32 (B, T-1).
    """
    ids = np.asarray(ids, dtype=np.int32)
    return ids[:, :-1], ids[:, 1:]


def lstm_language_model(vocab_size: int, embedding_dim: int = 64, units: int = 128,
                        name: str = "lstm_lm") -> keras.Model:
    """The article's Embedding -> LSTM stack, turned into a next-word language model.

    ids (B, T) -> logits (B, T, vocab_size). Always float32 (see
    :func:`course_lib.keras_runtime.precision_for`).
    The layers named ``"embedding"`` and ``"lstm"`` are what a classifier would reuse.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = layers.Embedding(vocab_size, embedding_dim, name="embedding")(ids)
    x = layers.LSTM(units, return_sequences=True, name="lstm")(x)
    logits = layers.Dense(vocab_size, name="next_word_logits")(x)
    return keras.Model(ids, logits, name=name)


# ---------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------

def classifier(encoder: keras.Model, n_classes: int, dropout: float = 0.1,
               dtype: str | None = None, name: str = "classifier",
               normalize: bool = False) -> keras.Model:
    """A classifier over an encoder: ids (B, T) -> class logits (B, n_classes), float32.

    The encoder's vectors are averaged over the real tokens (:class:`MaskedMeanPooling`), then
    a dropout and one Dense layer (the "head") give one logit per class. Freezing the encoder
    (``encoder.trainable = False``) turns this into a linear probe. normalize: scale the pooled
    vector to length 1 first, as the linear probe of ``course_lib.experiment`` does, so that
    the head can start from the probe's solution.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    h = encoder(ids)
    # Pooling sums up to T vectors: done in float32 even under mixed precision.
    pooled = MaskedMeanPooling(dtype="float32", name="mean_pool")([h, ids])
    if normalize:
        pooled = layers.UnitNormalization(dtype="float32", name="unit_norm")(pooled)
    pooled = layers.Dropout(dropout, name="head_dropout")(pooled)
    logits = layers.Dense(n_classes, dtype="float32", name="head")(pooled)
    return keras.Model(ids, logits, name=name)


def pooled_features(encoder: keras.Model, ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Mean-pooled encoder vectors of many sequences: ids (N, T) -> float32 (N, width)."""
    inp = keras.Input(shape=(None,), dtype="int32")
    pool = keras.Model(inp, MaskedMeanPooling(dtype="float32")([encoder(inp), inp]))
    out = pool.predict(np.asarray(ids, dtype=np.int32), batch_size=batch_size, verbose=0)
    return np.asarray(out, dtype=np.float32)
