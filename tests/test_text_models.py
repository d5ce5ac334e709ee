"""course_lib.text_models: shapes, masking rules, losses and layers, on tiny synthetic inputs."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

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
    tm.seed_all(0)
    enc = tm.transformer_encoder(50, 12, width=16, depth=2, heads=2, dropout=0.0)
    short = np.array([[5, 6, 7, 0, 0]], dtype="int32")
    long = np.array([[5, 6, 7, 0, 0, 0, 0, 0]], dtype="int32")
    a, b = _np(enc(short)), _np(enc(long))
    assert a.shape == (1, 5, 16) and b.shape == (1, 8, 16)
    np.testing.assert_allclose(a[0, :3], b[0, :3], atol=1e-5)  # more padding changes nothing
    cfg = tm.encoder_config(enc)
    assert cfg["width"] == 16 and cfg["depth"] == 2 and cfg["heads"] == 2
    assert cfg["vocab_size"] == 50 and cfg["max_length"] == 12


def test_mask_tokens_follows_bert_rules():
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 100, size=(400, 50)).astype("int32")
    ids[:, 40:] = 0  # padding
    inputs, targets = tm.mask_tokens(ids, rng, mask_id=2, vocab_size=100, n_special=3)
    chosen = targets != 0
    assert inputs.dtype == np.int32 and targets.dtype == np.int32
    assert not chosen[:, 40:].any() and (inputs[:, 40:] == 0).all()
    assert abs(chosen[:, :40].mean() - 0.15) < 0.01
    np.testing.assert_array_equal(targets[chosen], ids[chosen])
    masked = (inputs == 2) & chosen
    same = (inputs == ids) & chosen
    assert abs(masked.sum() / chosen.sum() - 0.8) < 0.03
    assert abs(same.sum() / chosen.sum() - 0.1 - 0.1 / 97) < 0.03
    np.testing.assert_array_equal(inputs[~chosen], ids[~chosen])
    assert inputs.min() >= 0 and inputs[chosen].max() < 100


def test_gather_targets_and_max_predictions():
    targets = np.array([[0, 7, 0, 9], [4, 0, 0, 0], [0, 0, 0, 0]])
    pos, lab = tm.gather_targets(targets, 3)
    assert pos.tolist() == [[1, 3, 0], [0, 0, 0], [0, 0, 0]]
    assert lab.tolist() == [[7, 9, 0], [4, 0, 0], [0, 0, 0]]
    pos, lab = tm.gather_targets(np.array([[1, 2, 3]]), 2)  # overflow dropped
    assert lab.tolist() == [[1, 2]]
    assert 10 < tm.max_predictions_for(64) <= 64 and tm.max_predictions_for(4) <= 4


def test_masked_lm_loss_matches_keras_ignore_class_and_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 5, 7)).astype("float32")
    y = rng.integers(1, 7, size=(3, 5))
    y[:, 3:] = 0
    got = float(_np(tm.masked_lm_loss(y, logits)))
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, y[..., None], -1)[..., 0]
    want = -picked[:, :3].mean()
    assert got == pytest.approx(want, rel=1e-5)
    ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    assert got == pytest.approx(float(_np(ref(y, logits))), rel=1e-5)
    assert float(_np(tm.masked_lm_loss(np.zeros((2, 2), "int32"),
                                       np.zeros((2, 2, 3), "float32")))) == 0.0


def test_masked_accuracy_counts_only_targets():
    m = tm.MaskedAccuracy()
    logits = np.eye(4, dtype="float32")[None, [1, 2, 3, 1]]  # predicts 1, 2, 3, 1
    m.update_state(np.array([[1, 2, 0, 3]]), logits)
    assert float(_np(m.result())) == pytest.approx(2 / 3)
    m.reset_state()
    assert float(_np(m.result())) == 0.0


def test_masked_lm_classifier_and_lstm_shapes():
    tm.seed_all(0)
    enc = tm.transformer_encoder(30, 8, width=8, depth=1, heads=2)
    mlm = tm.masked_lm(enc, 30)
    ids = np.array([[4, 5, 6, 0], [7, 8, 0, 0]], dtype="int32")
    out = mlm([ids, np.array([[0, 2], [1, 0]], dtype="int32")])
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
    mlm = tm.masked_lm(enc, 20, dtype="mixed_bfloat16")
    assert keras.backend.standardize_dtype(clf(ids).dtype) == "float32"
    assert keras.backend.standardize_dtype(
        mlm([ids, np.array([[1]], dtype="int32")]).dtype) == "float32"
    assert enc.get_layer("block1_ff1").compute_dtype == "bfloat16"
    assert enc.get_layer("token_embedding").embeddings.dtype == "float32"


def test_precision_and_jit_choices(monkeypatch):
    monkeypatch.setattr(tm, "_on_gpu", lambda: True)
    assert tm.precision_for("transformer", "full") == "mixed_bfloat16"
    assert tm.precision_for("lstm", "full") == "float32"
    assert tm.precision_for("transformer", "quick") == "float32"
    monkeypatch.setattr(tm, "_on_gpu", lambda: False)
    assert tm.precision_for("transformer", "full") == "float32"
    backend = keras.config.backend()
    assert tm.jit_for("quick") == {"jax": True, "torch": False}.get(backend, "auto")


def test_compile_masked_lm_schedule_loss_and_metric():
    enc = tm.transformer_encoder(12, 6, width=8, depth=1, heads=2)
    mlm = tm.compile_masked_lm(tm.masked_lm(enc, 12), 1e-2, total_steps=40, warmup_steps=4)
    opt = mlm.optimizer

    def lr_at(step):
        opt.iterations.assign(step)
        return float(_np(opt.learning_rate))

    assert lr_at(0) == 0.0 and lr_at(4) == pytest.approx(1e-2) and lr_at(40) == pytest.approx(1e-3)
    assert type(opt).__name__ == "AdamW" and opt.clipnorm == 1.0
    assert mlm.loss is tm.masked_lm_loss
    given = mlm._compile_config.config["metrics"]  # get_compile_config() imports TF under JAX
    assert any(isinstance(m, tm.MaskedAccuracy) for m in given)


def test_reset_optimizer_forgets_history_and_sets_the_rate():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    opt = keras.optimizers.AdamW(1e-3)
    model.compile(optimizer=opt, loss="mse")
    model.train_on_batch(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"))
    assert int(_np(opt.iterations)) == 1
    tm.reset_optimizer(opt, 5e-4)
    assert int(_np(opt.iterations)) == 0
    assert float(_np(opt.learning_rate)) == pytest.approx(5e-4)
    assert all(not _np(v).any() for v in opt.variables if "momentum" in v.path)


def test_seed_all_makes_weights_repeatable():
    def weights():
        tm.seed_all(3)
        return tm.transformer_encoder(10, 4, width=8, depth=1, heads=2).get_weights()

    for a, b in zip(weights(), weights()):
        np.testing.assert_array_equal(a, b)


def test_flops_count_matrix_work_and_the_head_only_where_it_predicts():
    per_token = tm.encoder_forward_flops(64, 2, 256, 32)
    assert per_token == 2 * 2 * (4 * 64 * 64 + 2 * 64 * 256 + 2 * 32 * 64)
    total = tm.masked_lm_training_flops(64, 2, 256, 32, 4000, tokens=1000, targets=150)
    assert total == 3 * (per_token * 1000 + 2 * (64 * 64 + 64 * 4000) * 150)


def test_the_head_starts_at_the_word_frequencies():
    counts = np.array([0, 0, 0, 50, 30, 15, 5])
    encoder = tm.transformer_encoder(7, 8, width=8, depth=1, heads=2, dropout=0.0)
    model = tm.masked_lm(encoder, 7, output_bias=tm.frequency_bias(counts))
    # near-zero weights at the start: the predicted distribution is close to the frequencies
    model.get_layer("mlm_logits").set_weights(
        [np.zeros((8, 7), "float32"), model.get_layer("mlm_logits").get_weights()[1]])
    logits = np.asarray(model([np.array([[3, 4, 2, 5]]), np.array([[2]])]))[0, 0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    share = np.maximum(counts, 0.5) / np.maximum(counts, 0.5).sum()  # specials: half a count
    np.testing.assert_allclose(p, share, rtol=1e-4)
