"""Probes: questions put to the live objects that a student's function builds.

Most exercises return numbers and arrays, which a check compares directly. A few return a
Keras model or layer graph, which a check cannot compare: it has to be *questioned* (what
does it output on this input? how many layers of each kind? what learning rate at step
40?). A probe builds the object with the student's function, asks its questions, and
returns the answers as plain data: arrays, numbers, strings, tuples. The test cell then
checks those answers::

    y, kinds = checks.in_kernel(probes.encoder_block_facts, encoder_block, x, ids)

In a notebook this is just a function call. When an assignment is autograded, the test's
code runs in a process of the grader's own, apart from the student's kernel, and
``checks.in_kernel`` runs the probe in the kernel, where the student's code lives; only its
answers cross. That is why probes live here, in the course's package, and take everything
they use as arguments: the grader sends the kernel a probe's name and data, never a test's
code. Each probe answers questions only; what the answers should be stays in the test.
"""

from __future__ import annotations

from collections import Counter

import numpy as np


def _keras():
    import keras

    return keras


def _numpy(tensor) -> np.ndarray:
    return np.asarray(_keras().ops.convert_to_numpy(tensor))


def _block_model(block_fn, width: int, heads: int, ff_dim: int, name: str,
                 dropout: float = 0.0):
    """A model around one encoder block: inputs (vectors, token ids), output the block's."""
    from course_lib import checks, text_models

    keras = _keras()
    x_in = keras.Input(shape=(None, width))
    ids_in = keras.Input(shape=(None,), dtype="int32")
    out = checks.call(block_fn, x_in, text_models.key_mask(ids_in), heads, ff_dim, dropout,
                      None, name)
    return keras.Model([x_in, ids_in], out)


def encoder_block_facts(block_fn, x: np.ndarray, ids: np.ndarray, heads: int = 2,
                        ff_dim: int = 16, name: str = "t"):
    """Build ``block_fn``'s block for vectors of width ``x.shape[-1]`` and apply it to
    ``(x, ids)``. Returns (output, (number of MultiHeadAttention, LayerNormalization and
    Dense layers)). x: float32 (batch, length, width); ids: int32 (batch, length), 0 = pad."""
    model = _block_model(block_fn, x.shape[-1], heads, ff_dim, name)
    kinds = Counter(type(layer).__name__ for layer in model.layers)
    return (_numpy(model([x, ids])),
            (kinds["MultiHeadAttention"], kinds["LayerNormalization"], kinds["Dense"]))


def encoder_block_behaviour(block_fn, x: np.ndarray, ids: np.ndarray, extra_padding: int,
                            heads: int = 2, ff_dim: int = 16, name: str = "t"):
    """The block's output on ``(x, ids)``; on the same batch with ``extra_padding`` padding
    positions appended; and with every attention and dense weight set to zero. Also whether
    every layer after the inputs has a name starting with ``name``.
    Returns (y, y_padded, y_zero_weights, names_ok)."""
    model = _block_model(block_fn, x.shape[-1], heads, ff_dim, name)
    y = _numpy(model([x, ids]))
    x_long = np.concatenate([x, np.zeros((x.shape[0], extra_padding, x.shape[2]), x.dtype)],
                            axis=1)
    ids_long = np.concatenate([ids, np.zeros((ids.shape[0], extra_padding), ids.dtype)], axis=1)
    y_long = _numpy(model([x_long, ids_long]))
    for layer in model.layers:
        if type(layer).__name__ in ("Dense", "MultiHeadAttention"):
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    y_zero = _numpy(model([x, ids]))
    names_ok = all(layer.name.startswith(name) for layer in model.layers[2:])
    return y, y_long, y_zero, names_ok


_WEIGHTED_KINDS = ("LayerNormalization", "MultiHeadAttention", "Dense")


def _layers_by_kind(model) -> dict[str, list]:
    """The model's layers with weights, per kind, in the model's (topological) order."""
    return {kind: [layer for layer in model.layers if type(layer).__name__ == kind]
            for kind in _WEIGHTED_KINDS}


def encoder_block_against_reference(block_fn, x: np.ndarray, ids: np.ndarray,
                                    dropout: float = 0.5, seed: int = 0, heads: int = 2,
                                    ff_dim: int = 16, name: str = "t"):
    """Build ``block_fn``'s block (with ``dropout``) and the course's reference block,
    :func:`course_lib.text_models.encoder_block`, for vectors of width ``x.shape[-1]``; give
    both the same random weights, pairing their layers by kind (LayerNormalization,
    MultiHeadAttention, Dense) and order; and apply both to ``(x, ids)``.

    x: float32 (batch, length, width); ids: int32 (batch, length), 0 = padding.
    Returns (comparable, y, y_reference, y_training). comparable is False when the layers do
    not pair up (other kinds or counts of layers with weights, other weight shapes, or a
    layer with weights of another kind); the three arrays are then zeros of x's shape. y and
    y_reference are the two blocks' outputs at inference; y_training is the output of
    ``block_fn``'s block called with ``training=True``, where its dropout acts.
    """
    from course_lib import text_models

    width = x.shape[-1]
    model = _block_model(block_fn, width, heads, ff_dim, name, dropout)
    reference = _block_model(text_models.encoder_block, width, heads, ff_dim, "reference",
                             dropout)
    zeros = np.zeros(x.shape, np.float32)
    mine, theirs = _layers_by_kind(model), _layers_by_kind(reference)
    others = [layer for layer in model.layers
              if layer.weights and type(layer).__name__ not in _WEIGHTED_KINDS]
    if others or any(len(mine[k]) != len(theirs[k]) for k in _WEIGHTED_KINDS):
        return False, zeros, zeros, zeros
    rng = np.random.default_rng(seed)
    for kind in _WEIGHTED_KINDS:
        for a, b in zip(mine[kind], theirs[kind]):
            shapes = [w.shape for w in b.get_weights()]
            if [w.shape for w in a.get_weights()] != shapes:
                return False, zeros, zeros, zeros
            if kind == "LayerNormalization":  # gamma near 1, beta near 0
                new = [1.0 + 0.3 * rng.normal(size=shapes[0]), 0.3 * rng.normal(size=shapes[1])]
            else:
                new = [0.3 * rng.normal(size=s) for s in shapes]
            new = [w.astype(np.float32) for w in new]
            a.set_weights(new)
            b.set_weights(new)
    return (True, _numpy(model([x, ids], training=False)),
            _numpy(reference([x, ids], training=False)),
            _numpy(model([x, ids], training=True)))


def _tiny_masked_lm(compile_fn, peak_lr: float, total_steps: int, warmup_steps: int):
    from course_lib import checks, mlm, text_models

    tiny = mlm.masked_lm(text_models.transformer_encoder(12, 6, width=8, depth=1,
                                                                 heads=2), 12)
    return tiny, checks.call(compile_fn, tiny, peak_lr, total_steps, warmup_steps)


def _lr_at(optimizer, step: int) -> float:
    optimizer.iterations.assign(step)
    return float(_numpy(optimizer.learning_rate))


def compiled_masked_lm_facts(compile_fn, peak_lr: float, total_steps: int, warmup_steps: int,
                             steps: list[int]):
    """Compile a tiny masked LM with ``compile_fn(model, peak_lr, total_steps, warmup_steps)``.
    Returns (whether it returned the model it was given, the optimizer's class name, the
    learning rate at each of ``steps``)."""
    tiny, got = _tiny_masked_lm(compile_fn, peak_lr, total_steps, warmup_steps)
    optimizer = tiny.optimizer
    return (got is tiny, type(optimizer).__name__,
            [_lr_at(optimizer, s) for s in steps])


def compiled_masked_lm_settings(compile_fn, peak_lr: float, total_steps: int, warmup_steps: int,
                                step: int, targets: np.ndarray, logits: np.ndarray):
    """The same tiny model, compiled: the learning rate at ``step``, the optimizer's clipnorm
    and weight decay, the compiled loss on (``targets``, ``logits``), and whether a
    ``mlm.MaskedAccuracy`` is among the metrics it was given.
    Returns (lr, clipnorm, weight_decay, loss, has_masked_accuracy)."""
    from course_lib import mlm

    tiny, _ = _tiny_masked_lm(compile_fn, peak_lr, total_steps, warmup_steps)
    optimizer = tiny.optimizer
    lr = _lr_at(optimizer, step)
    optimizer.iterations.assign(0)
    loss_value = float(_numpy(tiny.loss(targets, logits)))
    # Read from what compile() was given: get_compile_config() imports TensorFlow under JAX.
    given = getattr(getattr(tiny, "_compile_config", None), "config", {}).get("metrics") or []
    return (lr, float(optimizer.clipnorm or 0.0), float(optimizer.weight_decay), loss_value,
            any(isinstance(m, mlm.MaskedAccuracy) for m in given))


def _classifier(build_fn, n_classes: int):
    from course_lib import checks, text_models

    encoder = text_models.transformer_encoder(20, 8, width=8, depth=1, heads=2, dropout=0.0)
    return encoder, checks.call(build_fn, encoder, n_classes, 0.0)


def classifier_facts(build_fn, ids: np.ndarray, n_classes: int):
    """Build a classifier with ``build_fn(encoder, n_classes, dropout)`` on a tiny encoder.
    Returns (its logits on ``ids``, whether the encoder itself is one of its layers)."""
    encoder, model = _classifier(build_fn, n_classes)
    return _numpy(model(ids)), any(layer is encoder for layer in model.layers)


def classifier_details(build_fn, ids: np.ndarray, extra_padding: int, n_classes: int):
    """The same classifier: logits on ``ids`` and on ``ids`` with ``extra_padding`` padding
    positions appended, its parameter count, the encoder's, and the units of its layer named
    "head". Returns (logits, logits_padded, n_params, n_encoder_params, head_units)."""
    encoder, model = _classifier(build_fn, n_classes)
    padded = np.concatenate([ids, np.zeros((ids.shape[0], extra_padding), ids.dtype)], axis=1)
    return (_numpy(model(ids)), _numpy(model(padded)), model.count_params(),
            encoder.count_params(), model.get_layer("head").units)
