"""course_lib.distillation: soft targets, the loss and its gradient, the linear student, the
hashed bag of words, and a teacher that is notebook 10's fine-tuned arm to the last bit.

The teacher test uses a synthetic two-topic corpus (made-up words), never article text.
"""

import numpy as np
import pytest
import scipy.sparse
from conftest import synthetic_split

from course_lib import distillation as dist
from course_lib import experiment as ex
from course_lib import gradcheck
from course_lib.window_classifier import classifier_steps


def test_softened_softmax_is_stable_and_checks_its_input():
    z = np.array([[1000.0, 999.0, -1000.0], [3.0, 3.0, 3.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        cold = dist.softened_softmax(z, 0.05)
    assert np.isfinite(cold).all()
    np.testing.assert_allclose(cold[0, :2], [1 / (1 + np.exp(-20)), 1 - 1 / (1 + np.exp(-20))])
    np.testing.assert_allclose(cold[1], np.full(3, 1 / 3))
    np.testing.assert_allclose(dist.softened_softmax(z, 1e12), np.full((2, 3), 1 / 3), rtol=1e-6)
    for bad in (np.ones(3), np.ones((1, 2, 3))):
        with pytest.raises(ValueError, match="2-D"):
            dist.softened_softmax(bad)
    for T in (0, -1, np.nan):
        with pytest.raises(ValueError, match="temperature"):
            dist.softened_softmax(z, T)


def test_loss_is_zero_for_a_perfect_imitator_and_its_gradient_is_right():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(6, 3)) * 3, rng.normal(size=(6, 3)) * 3
    y = np.array([0, -1, 2, 1, -1, -1])
    assert dist.distillation_loss(t, t, np.full(6, -1), 2.0, 1.0) == pytest.approx(0, abs=1e-12)
    # alpha = 0 is the plain cross-entropy of the labelled rows, averaged over all rows
    z = s[y >= 0] - s[y >= 0].max(1, keepdims=True)
    ce = -(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(3), y[y >= 0]]
    assert dist.distillation_loss(s, t, y, 3.0, 0.0) == pytest.approx(ce.sum() / 6)
    for T, alpha in ((0.5, 0.3), (2.0, 0.7), (8.0, 1.0)):
        z = s.copy()
        loss = lambda z=z, T=T, alpha=alpha: dist.distillation_loss(z, t, y, T, alpha)  # noqa: E731
        report = gradcheck.check_gradients(loss, {"z": z},
                                           {"z": dist.distillation_grad(z, t, y, T, alpha)})
        assert report.passed, str(report)
    np.testing.assert_allclose(dist.distillation_grad(s, t, y, 2.0, 0.7).sum(1), 0, atol=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        dist.distillation_loss(s, t[:, :2], y, 1.0, 0.5)
    with pytest.raises(ValueError, match="labels"):
        dist.distillation_grad(s, t, y[:3], 1.0, 0.5)
    with pytest.raises(ValueError, match="class indices"):
        dist.distillation_loss(s, t, np.full(6, 3), 1.0, 0.5)


def test_high_temperature_is_logit_matching():
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    centred = (s - s.mean(1, keepdims=True)) - (t - t.mean(1, keepdims=True))
    g = dist.distillation_grad(s, t, np.full(4, -1), 1000.0, 1.0)
    assert gradcheck.relative_error(g, centred / 12) < 1e-3


def test_fit_student_imitates_the_teacher_and_takes_sparse_features():
    t = np.array([[2.0, -1.0], [0.5, 0.0], [-1.0, 1.5]])
    W, b = dist.fit_student(np.eye(3), t, np.full(3, -1), 1.0, 1.0, 2.0, 500)
    np.testing.assert_allclose(dist.softened_softmax(np.eye(3) @ W + b),
                               dist.softened_softmax(t), atol=0.01)
    rng = np.random.default_rng(2)
    X = rng.random((8, 5)) * (rng.random((8, 5)) < 0.4)
    t, y = rng.normal(size=(8, 2)), np.array([0, 1, -1, -1, 0, -1, 1, -1])
    dense = dist.fit_student(X, t, y, 2.0, 0.5, 0.5, 30)
    sparse = dist.fit_student(scipy.sparse.csr_matrix(X), t, y, 2.0, 0.5, 0.5, 30)
    for a, c in zip(dense, sparse):
        assert isinstance(c, np.ndarray)
        np.testing.assert_allclose(a, c, rtol=1e-12)
    losses = [dist.distillation_loss(X @ W + b, t, y, 2.0, 0.5)
              for W, b in (dist.fit_student(X, t, y, 2.0, 0.5, 0.5, n) for n in (0, 10, 100))]
    assert losses[0] > losses[1] > losses[2]


def test_hashed_features_are_the_hashing_trick():
    from sklearn.utils import murmurhash3_32

    x = dist.hashed_features(["Film stars, film STARS and 3 robots_"], 64)
    assert x.shape == (1, 64)
    words = ["film", "stars", "film", "stars", "and"]  # digits, "_" and 1-letter words dropped
    want = np.zeros(64)
    for w in words:
        want[abs(murmurhash3_32(w, seed=0)) % 64] += 1
    np.testing.assert_allclose(x.toarray()[0], want / np.linalg.norm(want))


def test_costs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(b"12345")
    (tmp_path / "y.bin").write_bytes(b"123")
    assert dist.folder_bytes(tmp_path) == 8 and dist.folder_bytes(tmp_path / "y.bin") == 3
    calls = []
    assert dist.seconds_per_call(calls.append, [1, 2], repeats=2) >= 0
    assert calls == [1, 1, 2, 1, 2]  # one warm-up call, then every item per round


def test_the_teacher_is_the_finetune_arm_of_experiment_run():
    pytest.importorskip("keras")
    cfg = ex.config("quick", vocab_size=80, seq_len=16, width=16, depth=1, heads=2, ff_width=32,
                    batch_size=16, epochs=1, cls_batch=8, val_fraction=0.2, cls_min_steps=2,
                    cls_max_steps=3, min_freq=1, probe_windows=3)
    split = synthetic_split()
    pre = ex.pretrain(split.unlabeled, cfg, verbose=False, meta={"texts": "synthetic"})
    result = ex.run(split, pre, cfg, budgets=[3], seeds=[1], arms=["finetune"])
    teacher = dist.Teacher(split, pre, cfg)
    teacher.fit(ex.sample_budget(split.pool_labels, 3, 1), 1)
    logits = teacher.logits(split.test_texts)
    np.testing.assert_allclose(dist.softened_softmax(logits),
                               result.probabilities[("finetune", "3", 1)], atol=1e-6)
    assert teacher.steps == classifier_steps(6, cfg)
    assert teacher.train_flops > teacher.probe_flops > 0
    assert teacher.predict_one(split.test_texts[0]) == int(logits[0].argmax())
    assert teacher.parameters() == pre.encoder.count_params() + 16 * 2 + 2
