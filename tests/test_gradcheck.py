"""Unit tests for course_lib.gradcheck: it must pass right gradients and fail wrong ones."""

import numpy as np
import pytest

from course_lib import checks
from course_lib.gradcheck import check_gradients, numeric_grad, relative_error


def _linear_model(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(6, 3))
    Y = rng.normal(size=(6, 2))
    W = rng.normal(size=(3, 2))
    b = rng.normal(size=2)

    def loss():
        return np.mean((X @ W + b - Y) ** 2)

    def grads():
        R = 2 * (X @ W + b - Y) / Y.size
        return {"W": X.T @ R, "b": R.sum(axis=0)}

    return loss, {"W": W, "b": b}, grads()


def test_numeric_grad_matches_known_gradient():
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    got = numeric_grad(lambda v: np.sum(np.sin(v) * v**2), x)
    want = np.cos(x) * x**2 + 2 * x * np.sin(x)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    assert got.shape == x.shape and got.dtype == np.float64


def test_numeric_grad_restores_input_even_when_f_raises():
    x = np.array([1.0, 2.0, 3.0])
    before = x.copy()
    numeric_grad(lambda v: float(v @ v), x)
    np.testing.assert_array_equal(x, before)

    calls = []

    def flaky(v):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return float(v.sum())

    with pytest.raises(RuntimeError):
        numeric_grad(flaky, x)
    np.testing.assert_array_equal(x, before)


def test_numeric_grad_of_scalar_array():
    x = np.array(1.5)
    assert numeric_grad(lambda v: float(v) ** 3, x) == pytest.approx(3 * 1.5**2, rel=1e-8)


def test_non_float64_and_non_array_are_refused():
    with pytest.raises(TypeError, match="float64"):
        numeric_grad(lambda v: v.sum(), np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="NumPy array"):
        numeric_grad(lambda v: v, 1.0)


def test_f_returning_an_array_is_explained():
    with pytest.raises(ValueError, match="single number"):
        numeric_grad(lambda v: v * 2, np.ones(3))


def test_relative_error_scale_free_and_zero_safe():
    a = np.array([1.0, 2.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(a, -a) == pytest.approx(1.0)
    assert relative_error(1e6 * a, 1e6 * (a + 1e-3)) == pytest.approx(
        relative_error(a, a + 1e-3))


def test_correct_gradients_pass_and_params_are_restored():
    loss, params, grads = _linear_model()
    before = {k: v.copy() for k, v in params.items()}
    report = check_gradients(loss, params, grads)
    assert report.passed and bool(report)
    assert report.max_error < 1e-8
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
    assert report["W"].checked == 6 and report["b"].shape == (2,)
    assert report.check(quiet=True) is report


def test_wrong_gradient_is_reported_as_failing():
    loss, params, grads = _linear_model()
    grads["W"] = grads["W"].copy()
    grads["W"][1, 0] += 0.05
    report = check_gradients(loss, params, grads)
    assert not report.passed
    assert not report["W"].passed and report["b"].passed
    assert report["W"].worst_index == (1, 0)
    text = str(report)
    assert "WRONG" in text and "FAILED" in text
    assert "WRONG" in report._repr_html_()
    with pytest.raises(checks.CheckFailed) as info:
        report.check(see="section 4")
    message = str(info.value)
    assert "W" in message and "section 4" in message


@pytest.mark.parametrize(
    "factor, phrase",
    [(-1.0, "wrong sign"), (6.0, "6 times"), (0.0, "all zeros")],
)
def test_hints_name_the_usual_bugs(factor, phrase):
    loss, params, grads = _linear_model()
    grads["b"] = factor * grads["b"]
    report = check_gradients(loss, params, grads)
    assert not report["b"].passed
    assert phrase in report["b"].hint


def test_transposed_pattern_gets_generic_hint():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(3, 3))
    x = rng.normal(size=3)
    report = check_gradients(lambda: x @ A @ x, {"x": x}, {"x": 2 * A @ x})
    assert not report.passed and "pattern" in report["x"].hint


def test_nan_gradient_fails():
    loss, params, grads = _linear_model()
    grads["b"] = np.array([np.nan, 0.0])
    report = check_gradients(loss, params, grads)
    assert not report["b"].passed and "NaN" in report["b"].hint


def test_shape_mismatch_and_missing_gradient_are_explained():
    loss, params, grads = _linear_model()
    with pytest.raises(ValueError, match="shape"):
        check_gradients(loss, params, {"W": grads["W"].T, "b": grads["b"]})
    with pytest.raises(KeyError, match="b"):
        check_gradients(loss, params, {"W": grads["W"]})


def test_sampling_checks_a_subset():
    rng = np.random.default_rng(2)
    W = rng.normal(size=(20, 10))
    report = check_gradients(lambda: np.sum(W**3), {"W": W}, {"W": 3 * W**2}, samples=15)
    assert report.passed and report["W"].checked == 15
