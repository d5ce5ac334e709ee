"""Keras 3 models for the text notebooks (08, 09), written once for every backend.

Everything is built from ``keras.layers`` and ``keras.ops``, so the same code runs with
``KERAS_BACKEND`` set to tensorflow, jax or torch; nothing imports TensorFlow. This module imports
Keras when it is imported, so ``course_lib/__init__`` never imports it: load it where a model is
needed (``from course_lib import text_models``).

The pieces:

- :class:`PositionEmbedding`: learned position vectors, a real layer with a weight (a position
  table built as a constant outside the model's graph breaks the torch backend).
- :func:`transformer_encoder`: token ids (B, T) -> contextual vectors (B, T, width); pre-layer-norm
  blocks of self-attention and a feed-forward network; padding (id 0) is never attended to.
- :func:`masked_lm`, :func:`mask_tokens`, :func:`masked_lm_loss`, :class:`MaskedAccuracy`: the
  BERT-style pretraining task (Devlin et al., 2019) on top of an encoder.
- :func:`lstm_language_model`, :func:`next_word_targets`: the alternative, a next-word LSTM
  language model (Dai & Le, 2015; Howard & Ruder, 2018).
- :func:`classifier`: a classification head over an encoder (masked mean pooling + dense).
- :func:`precision_for`, :func:`jit_for`, :func:`seed_all`: mixed precision, compilation and
  seeding choices that are correct for the current backend and layer.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

__all__ = [
    "GatherPositions", "MaskedAccuracy", "MaskedMeanPooling", "PositionEmbedding", "classifier",
    "compile_masked_lm", "encoder_block", "gather_targets", "jit_for", "key_mask",
    "lstm_language_model", "mask_tokens", "masked_lm", "masked_lm_loss", "max_predictions_for",
    "next_word_targets", "pooled_features", "precision_for", "pretraining_optimizer",
    "reset_optimizer", "seed_all", "transformer_encoder",
]

PAD_ID = 0


# ---------------------------------------------------------------------------------------------
# Backend-aware choices
# ---------------------------------------------------------------------------------------------

def _on_gpu() -> bool:
    from . import device

    return bool(device.gpus())


def precision_for(kind: str = "transformer", profile: str | None = None) -> str:
    """The dtype policy to give a model's layers: ``"mixed_bfloat16"`` or ``"float32"``.

    Mixed precision (bfloat16 arithmetic, float32 weights) is used only where it is correct and
    pays: in the full profile, on a GPU, for the Transformer. On a CPU bfloat16 is slower, and
    an LSTM in ``mixed_bfloat16`` fails under JAX ("Unknown output type bfloat16"), so the LSTM
    always runs in float32. The output layer of every model is float32 whatever this says.
    """
    from . import device

    profile = profile or device.profile()
    if kind == "transformer" and profile == "full" and _on_gpu():
        return "mixed_bfloat16"
    return "float32"


def jit_for(profile: str | None = None) -> bool | str:
    """What to pass as ``jit_compile`` to ``model.compile``.

    JAX always compiles (True). TensorFlow's default ("auto") resolves to no XLA on a CPU;
    forcing XLA made masked-LM epochs about 25 % faster there once compiled, but compiling costs
    seconds, which the quick profile cannot spare: True in the full and checkpoint profiles
    (long runs), "auto" in quick.
    The torch backend gets False (its compiler is a separate, slower-to-start path).
    """
    from . import device

    backend = keras.config.backend()
    if backend == "jax":
        return True
    if backend == "torch":
        return False
    profile = profile or device.profile()
    return True if profile in ("full", "checkpoint") else "auto"


def seed_all(seed: int) -> None:
    """Make the next model's initial weights, dropout and shuffling repeatable.

    Clears Keras' global state (names, the global seed generator), then seeds Python, NumPy and
    the backend through :func:`course_lib.device.seed_everything` (which leaves TensorFlow alone
    under JAX).
    """
    from . import device

    keras.utils.clear_session(free_memory=False)
    device.seed_everything(seed, keras=True)


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
    layer (``"mixed_bfloat16"`` on a GPU; see :func:`precision_for`). block: a function with
    :func:`encoder_block`'s signature to use instead of it (notebook 09 passes the student's).
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


# ---------------------------------------------------------------------------------------------
# Masked language modelling
# ---------------------------------------------------------------------------------------------

def mask_tokens(ids: np.ndarray, rng: np.random.Generator, mask_id: int, vocab_size: int,
                n_special: int, rate: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """BERT's corruption of a batch of token ids, in NumPy.

    Each real token (id >= n_special; padding and other special tokens never) is chosen with
    probability ``rate``. A chosen token is replaced by ``mask_id`` with probability 0.8, by a
    random word id (uniform in [n_special, vocab_size)) with probability 0.1, and left as it is
    with probability 0.1.
    ids: int array (B, T). Returns (inputs, targets), both int32 (B, T): inputs is the corrupted
    batch; targets holds the original id at chosen positions and 0 everywhere else (0 means
    "no prediction here").
    """
    ids = np.asarray(ids)
    chosen = (ids >= n_special) & (rng.random(ids.shape) < rate)
    action = rng.random(ids.shape)
    inputs = ids.astype(np.int32, copy=True)
    inputs[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swap] = rng.integers(n_special, vocab_size, size=int(swap.sum()), dtype=np.int32)
    targets = np.where(chosen, ids, 0).astype(np.int32)
    return inputs, targets


def masked_lm_loss(y_true, logits):
    """Cross-entropy averaged over the positions with a target (y_true != 0) only.

    y_true: int (B, T), 0 = no prediction; logits: (B, T, V). Returns a scalar. A plain mean over
    all B*T positions would shrink the loss by the share of masked tokens (about 15 %) and make
    it depend on how much padding a batch has. ``keras.losses.SparseCategoricalCrossentropy(
    from_logits=True, ignore_class=0)`` computes the same number.
    """
    y_true = ops.cast(y_true, "int32")
    per_token = ops.sparse_categorical_crossentropy(y_true, ops.cast(logits, "float32"),
                                                    from_logits=True)
    weight = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
    return ops.sum(per_token * weight) / ops.maximum(ops.sum(weight), 1.0)


@keras.saving.register_keras_serializable(package="course_lib")
class MaskedAccuracy(keras.metrics.Metric):
    """Share of target positions (y_true != 0) where the top logit is the right token.

    Counts over the whole epoch (not an average of batch averages), so batches with more
    targets weigh more, as they should.
    """

    def __init__(self, name="masked_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        valid = ops.not_equal(y_true, PAD_ID)
        hit = ops.logical_and(valid, ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"),
                                               y_true))
        self.correct.assign_add(ops.sum(ops.cast(hit, "float32")))
        self.total.assign_add(ops.sum(ops.cast(valid, "float32")))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


def gather_targets(targets: np.ndarray, max_predictions: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the predictions are: the positions and ids of a batch's targets, in NumPy.

    targets: int (B, T) from :func:`mask_tokens` (0 = no prediction). Returns (positions, labels),
    both int32 (B, max_predictions): the first ``max_predictions`` target positions of each row,
    left to right, and their ids; unused slots hold position 0 and label 0 (ignored by the loss).
    Predicting at these positions only, instead of at all T, is BERT's "max predictions per
    sequence": the output layer, the costliest part of a small model, then does ~15 % of the work.
    """
    targets = np.asarray(targets)
    rows, cols = np.nonzero(targets)
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)  # k-th target of its row
    keep = rank < max_predictions
    positions = np.zeros((targets.shape[0], max_predictions), dtype=np.int32)
    labels = np.zeros((targets.shape[0], max_predictions), dtype=np.int32)
    positions[rows[keep], rank[keep]] = cols[keep]
    labels[rows[keep], rank[keep]] = targets[rows[keep], cols[keep]]
    return positions, labels


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


def masked_lm_training_flops(width: int, depth: int, ff_width: int, seq_len: int,
                             vocab_size: int, tokens: int, targets: int) -> float:
    """Training FLOPs of :func:`masked_lm`: every token through the encoder, and the head
    (Dense(width) then Dense(vocab)) only at the ``targets`` positions it predicts; forward
    and backward (3 x forward)."""
    encoder = encoder_forward_flops(width, depth, ff_width, seq_len) * tokens
    head = 2.0 * (width * width + width * vocab_size) * targets
    return 3.0 * (encoder + head)


def max_predictions_for(length: int, rate: float = 0.15) -> int:
    """Room for the targets of a window of ``length`` tokens: the mean plus four standard
    deviations of a Binomial(length, rate), so that almost never is a target dropped."""
    mean = length * rate
    return int(min(length, np.ceil(mean + 4 * np.sqrt(mean * (1 - rate)))))


def frequency_bias(counts: np.ndarray) -> np.ndarray:
    """Log word frequencies, to start the masked-LM head's output bias from (float32 (V,)).

    With this bias and near-zero weights, the untrained model already predicts every masked
    word with its frequency in the corpus: its loss starts at the word-frequency baseline
    instead of above it, and every step it takes is spent on learning from the context.
    counts: how often each vocabulary id occurs (special tokens 0); each gets at least 1/2.
    """
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 0.5)
    return np.log(counts / counts.sum()).astype(np.float32)


def masked_lm(encoder: keras.Model, vocab_size: int, dtype: str | None = None,
              output_bias: np.ndarray | None = None) -> keras.Model:
    """An encoder with the masked-LM head.

    Inputs: ``[ids, positions]``, ids (B, T) int and positions (B, P) int (from
    :func:`gather_targets`). Output: logits (B, P, vocab_size), float32, one row of vocabulary
    scores for each position asked about. Head: Dense(width, gelu) -> LayerNorm ->
    Dense(vocab_size); the last layer is float32 even under mixed precision, so the softmax
    over the vocabulary is computed accurately. output_bias: the last layer's starting bias
    (see :func:`frequency_bias`); default zeros.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    positions = keras.Input(shape=(None,), dtype="int32", name="positions")
    h = encoder(ids)
    h = GatherPositions(dtype=dtype, name="gather")([h, positions])
    width = h.shape[-1]
    h = layers.Dense(width, activation="gelu", dtype=dtype, name="mlm_dense")(h)
    h = layers.LayerNormalization(epsilon=1e-6, dtype=dtype, name="mlm_ln")(h)
    bias = "zeros" if output_bias is None else keras.initializers.Constant(output_bias)
    logits = layers.Dense(vocab_size, dtype="float32", bias_initializer=bias,
                          name="mlm_logits")(h)
    return keras.Model([ids, positions], logits, name="masked_lm")


@keras.saving.register_keras_serializable(package="course_lib")
class GatherPositions(layers.Layer):
    """Inputs ``[h, positions]``, h (B, T, D) and positions (B, P) int: returns (B, P, D) with
    row p of example b equal to ``h[b, positions[b, p]]``."""

    def call(self, inputs):
        h, positions = inputs
        index = ops.expand_dims(ops.cast(positions, "int32"), -1)
        return ops.take_along_axis(h, index, axis=1)

    def compute_output_shape(self, input_shapes):
        h_shape, p_shape = input_shapes
        return (h_shape[0], p_shape[1], h_shape[2])


# ---------------------------------------------------------------------------------------------
# Next-word LSTM language model
# ---------------------------------------------------------------------------------------------

def next_word_targets(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets of a next-word language model: (ids[:, :-1], ids[:, 1:]).

    At position t the model has read tokens 0..t and must predict token t+1. Padding targets are
    0 and are ignored by :func:`masked_lm_loss`. ids: int (B, T); returns two int32 (B, T-1).
    """
    ids = np.asarray(ids, dtype=np.int32)
    return ids[:, :-1], ids[:, 1:]


def lstm_language_model(vocab_size: int, embedding_dim: int = 64, units: int = 128,
                        name: str = "lstm_lm") -> keras.Model:
    """The article's Embedding -> LSTM stack, turned into a next-word language model.

    ids (B, T) -> logits (B, T, vocab_size). Always float32 (see :func:`precision_for`).
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


# ---------------------------------------------------------------------------------------------
# Training helpers
# ---------------------------------------------------------------------------------------------

def pretraining_optimizer(learning_rate: float, total_steps: int, warmup_steps: int,
                          weight_decay: float = 0.01) -> keras.optimizers.Optimizer:
    """AdamW with a linear warm-up to ``learning_rate`` and a cosine decay to a tenth of it.

    Warm-up matters for Transformers: in the first steps Adam's second-moment estimates rest
    on few gradients and the steps are erratic; a small learning rate then keeps them harmless.
    Biases and layer-norm parameters are not decayed. Gradients are clipped to norm 1.
    """
    warmup_steps = max(1, min(int(warmup_steps), int(total_steps) - 1))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, int(total_steps) - warmup_steps),
        alpha=0.1, warmup_target=float(learning_rate), warmup_steps=warmup_steps)
    opt = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay,
                                 clipnorm=1.0)
    opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt


def compile_masked_lm(model: keras.Model, learning_rate: float, total_steps: int,
                      warmup_steps: int, jit_compile="auto") -> keras.Model:
    """Compile a :func:`masked_lm` for training: the reference for notebook 09's exercise.

    Optimizer from :func:`pretraining_optimizer`; loss :func:`masked_lm_loss` (targets 0 are
    ignored); metric :class:`MaskedAccuracy`. Returns the same model.
    """
    model.compile(optimizer=pretraining_optimizer(learning_rate, total_steps, warmup_steps),
                  loss=masked_lm_loss, metrics=[MaskedAccuracy()], jit_compile=jit_compile)
    return model


def reset_optimizer(optimizer: keras.optimizers.Optimizer, learning_rate: float) -> None:
    """Forget an optimizer's history (step count, moment estimates) and set its learning rate.

    This lets one compiled model train many times from different starting weights without
    compiling (and tracing) its training step again. Works on every backend.
    """
    for v in optimizer.variables:
        if not v.path.endswith("learning_rate"):
            v.assign(ops.zeros(v.shape, dtype=v.dtype))
    optimizer.learning_rate = learning_rate
