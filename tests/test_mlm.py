"""course_lib.mlm: BERT's masking rules, the targets' positions, the loss and accuracy over targets
only, the head's starting bias, the optimizer schedule and the FLOP count."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from course_lib import mlm  # noqa: E402
from course_lib import text_models as tm  # noqa: E402


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_mask_tokens_follows_bert_rules():
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 100, size=(400, 50)).astype("int32")
    ids[:, 40:] = 0  # padding
    inputs, targets = mlm.mask_tokens(ids, rng, mask_id=2, vocab_size=100, n_special=3)
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
    pos, lab = mlm.gather_targets(targets, 3)
    assert pos.tolist() == [[1, 3, 0], [0, 0, 0], [0, 0, 0]]
    assert lab.tolist() == [[7, 9, 0], [4, 0, 0], [0, 0, 0]]
    pos, lab = mlm.gather_targets(np.array([[1, 2, 3]]), 2)  # overflow dropped
    assert lab.tolist() == [[1, 2]]
    assert 10 < mlm.max_predictions_for(64) <= 64 and mlm.max_predictions_for(4) <= 4


def test_masked_lm_loss_matches_keras_ignore_class_and_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 5, 7)).astype("float32")
    y = rng.integers(1, 7, size=(3, 5))
    y[:, 3:] = 0
    got = float(_np(mlm.masked_lm_loss(y, logits)))
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, y[..., None], -1)[..., 0]
    want = -picked[:, :3].mean()
    assert got == pytest.approx(want, rel=1e-5)
    ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    assert got == pytest.approx(float(_np(ref(y, logits))), rel=1e-5)
    assert float(_np(mlm.masked_lm_loss(np.zeros((2, 2), "int32"),
                                       np.zeros((2, 2, 3), "float32")))) == 0.0


def test_masked_accuracy_counts_only_targets():
    m = mlm.MaskedAccuracy()
    logits = np.eye(4, dtype="float32")[None, [1, 2, 3, 1]]  # predicts 1, 2, 3, 1
    m.update_state(np.array([[1, 2, 0, 3]]), logits)
    assert float(_np(m.result())) == pytest.approx(2 / 3)
    m.reset_state()
    assert float(_np(m.result())) == 0.0


def test_compile_masked_lm_schedule_loss_and_metric():
    enc = tm.transformer_encoder(12, 6, width=8, depth=1, heads=2)
    model = mlm.compile_masked_lm(mlm.masked_lm(enc, 12), 1e-2, total_steps=40, warmup_steps=4)
    opt = model.optimizer

    def lr_at(step):
        opt.iterations.assign(step)
        return float(_np(opt.learning_rate))

    assert lr_at(0) == 0.0 and lr_at(4) == pytest.approx(1e-2) and lr_at(40) == pytest.approx(1e-3)
    assert type(opt).__name__ == "AdamW" and opt.clipnorm == 1.0
    assert model.loss is mlm.masked_lm_loss
    given = model._compile_config.config["metrics"]  # get_compile_config() imports TF under JAX
    assert any(isinstance(m, mlm.MaskedAccuracy) for m in given)


def test_flops_count_matrix_work_and_the_head_only_where_it_predicts():
    per_token = tm.encoder_forward_flops(64, 2, 256, 32)
    assert per_token == 2 * 2 * (4 * 64 * 64 + 2 * 64 * 256 + 2 * 32 * 64)
    total = mlm.masked_lm_training_flops(64, 2, 256, 32, 4000, tokens=1000, targets=150)
    assert total == 3 * (per_token * 1000 + 2 * (64 * 64 + 64 * 4000) * 150)


def test_the_head_starts_at_the_word_frequencies():
    counts = np.array([0, 0, 0, 50, 30, 15, 5])
    encoder = tm.transformer_encoder(7, 8, width=8, depth=1, heads=2, dropout=0.0)
    model = mlm.masked_lm(encoder, 7, output_bias=mlm.frequency_bias(counts))
    # near-zero weights at the start: the predicted distribution is close to the frequencies
    model.get_layer("mlm_logits").set_weights(
        [np.zeros((8, 7), "float32"), model.get_layer("mlm_logits").get_weights()[1]])
    logits = np.asarray(model([np.array([[3, 4, 2, 5]]), np.array([[2]])]))[0, 0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    share = np.maximum(counts, 0.5) / np.maximum(counts, 0.5).sum()  # specials: half a count
    np.testing.assert_allclose(p, share, rtol=1e-4)
