"""The masked language model (MLM): BERT's pretraining task (Devlin et al., 2019), in Keras 3.

An encoder from :func:`course_lib.text_models.transformer_encoder` reads a batch of text in which
about 15 % of the words have been hidden, and learns by predicting them from their context. The
pieces, in the order a batch meets them:

- :func:`mask_tokens`: BERT's corruption of a batch (NumPy), and the targets it leaves.
- :func:`gather_targets`, :func:`max_predictions_for`: where the targets are, so that the output
  layer runs only there.
- :func:`masked_lm`, :class:`GatherPositions`, :func:`frequency_bias`: the encoder with the
  prediction head, started from the word frequencies.
- :func:`masked_lm_loss`, :class:`MaskedAccuracy`: loss and accuracy over the targets only.
- :func:`pretraining_optimizer`, :func:`compile_masked_lm`: AdamW with warm-up and cosine decay.
- :func:`masked_lm_training_flops`: what one training run costs.

Like :mod:`course_lib.text_models`, it imports Keras when imported and nothing from TensorFlow.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .text_models import PAD_ID, encoder_forward_flops

__all__ = [
    "GatherPositions", "MaskedAccuracy", "compile_masked_lm", "frequency_bias", "gather_targets",
    "mask_tokens", "masked_lm", "masked_lm_loss", "masked_lm_training_flops",
    "max_predictions_for", "pretraining_optimizer",
]


# ---------------------------------------------------------------------------------------------
# Corrupting a batch
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


def max_predictions_for(length: int, rate: float = 0.15) -> int:
    """Room for the targets of a window of ``length`` tokens: the mean plus four standard
    deviations of a Binomial(length, rate), so that almost never is a target dropped."""
    mean = length * rate
    return int(min(length, np.ceil(mean + 4 * np.sqrt(mean * (1 - rate)))))


# ---------------------------------------------------------------------------------------------
# The prediction head
# ---------------------------------------------------------------------------------------------

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
# Loss, accuracy, optimizer
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Compute
# ---------------------------------------------------------------------------------------------

def masked_lm_training_flops(width: int, depth: int, ff_width: int, seq_len: int,
                             vocab_size: int, tokens: int, targets: int) -> float:
    """Training FLOPs of :func:`masked_lm`: every token through the encoder, and the head
    (Dense(width) then Dense(vocab)) only at the ``targets`` positions it predicts; forward
    and backward (3 x forward)."""
    encoder = encoder_forward_flops(width, depth, ff_width, seq_len) * tokens
    head = 2.0 * (width * width + width * vocab_size) * targets
    return 3.0 * (encoder + head)
