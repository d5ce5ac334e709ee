"""course_lib.text_models: the encoder's layers and shapes, the classifier and the LSTM language
model, on tiny synthetic inputs."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from course_lib import keras_runtime, mlm  # noqa: E402
from course_lib import text_models as tm  # noqa: E402


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_position_embedding_adds_a_trained_table_and_serialises():
    layer = tm.PositionEmbedding(10)
    x = np.zeros((2, 4, 3), dtype="float32")
    out = _np(layer(x))
    table = _np(layer.table)
    assert out.shape == (2, 4, 3)
    np.testing.assert_allclose(out[1], table[:4], rtol=1e-6)
    assert len(layer.trainable_weights) == 1
    again = tm.PositionEmbedding.from_config(layer.get_config())
    assert again.max_length == 10


def test_encoder_shapes_and_padding_is_ignored():
    keras_runtime.seed_all(0)
    enc = tm.transformer_encoder(50, 12, width=16, depth=2, heads=2, dropout=0.0)
    short = np.array([[5, 6, 7, 0, 0]], dtype="int32")
    long = np.array([[5, 6, 7, 0, 0, 0, 0, 0]], dtype="int32")
    a, b = _np(enc(short)), _np(enc(long))
    assert a.shape == (1, 5, 16) and b.shape == (1, 8, 16)
    np.testing.assert_allclose(a[0, :3], b[0, :3], atol=1e-5)  # more padding changes nothing
    cfg = tm.encoder_config(enc)
    assert cfg["width"] == 16 and cfg["depth"] == 2 and cfg["heads"] == 2
    assert cfg["vocab_size"] == 50 and cfg["max_length"] == 12


def test_masked_lm_classifier_and_lstm_shapes():
    keras_runtime.seed_all(0)
    enc = tm.transformer_encoder(30, 8, width=8, depth=1, heads=2)
    model = mlm.masked_lm(enc, 30)
    ids = np.array([[4, 5, 6, 0], [7, 8, 0, 0]], dtype="int32")
    out = model([ids, np.array([[0, 2], [1, 0]], dtype="int32")])
    assert tuple(out.shape) == (2, 2, 30)
    clf = tm.classifier(enc, 3)
    assert tuple(clf(ids).shape) == (2, 3)
    feats = tm.pooled_features(enc, ids)
    assert feats.shape == (2, 8) and feats.dtype == np.float32
    lm = tm.lstm_language_model(30, embedding_dim=4, units=6)
    x, y = tm.next_word_targets(ids)
    assert x.tolist() == [[4, 5, 6], [7, 8, 0]] and y.tolist() == [[5, 6, 0], [8, 0, 0]]
    assert tuple(lm(x).shape) == (2, 3, 30)


def test_mixed_precision_keeps_logits_float32():
    enc = tm.transformer_encoder(20, 6, width=8, depth=1, heads=2, dtype="mixed_bfloat16")
    ids = np.array([[3, 4, 5, 0]], dtype="int32")
    clf = tm.classifier(enc, 2, dtype="mixed_bfloat16")
    model = mlm.masked_lm(enc, 20, dtype="mixed_bfloat16")
    assert keras.backend.standardize_dtype(clf(ids).dtype) == "float32"
    assert keras.backend.standardize_dtype(
        model([ids, np.array([[1]], dtype="int32")]).dtype) == "float32"
    assert enc.get_layer("block1_ff1").compute_dtype == "bfloat16"
    assert enc.get_layer("token_embedding").embeddings.dtype == "float32"
