"""course_lib.checks: each failure kind gets its own teaching message, and passes stay quiet."""

import numpy as np
import pytest

from course_lib import checks


def not_written(z):
    raise NotImplementedError()


def test_call_reports_unwritten_function():
    with pytest.raises(checks.CheckFailed, match="`not_written` is not written yet"):
        checks.call(not_written, np.zeros(2))


def test_call_names_the_unwritten_inner_function():
    def outer(z):
        return not_written(z) * 2

    with pytest.raises(checks.CheckFailed, match="`outer` calls `not_written`, which is not"):
        checks.call(outer, np.zeros(2))


def test_call_keeps_other_errors_and_names_the_input():
    def broken(z):
        return z + "a"

    with pytest.raises(TypeError) as info:
        checks.call(broken, np.zeros(2))
    assert any("broken" in note for note in getattr(info.value, "__notes__", ["broken"]))


def test_close_passes_and_prints(capsys):
    checks.close(np.array([1.0, 2.0]), [1.0, 2.0 + 1e-12], name="f(x)")
    assert "✓ f(x): 2 value(s) match" in capsys.readouterr().out


def test_close_names_worst_entry_and_input():
    x = np.array([0.0, 1.0, 2.0])
    with pytest.raises(checks.CheckFailed) as info:
        checks.close(np.array([0.0, 1.0, 5.0]), [0.0, 1.0, 2.0], name="f(x)", inputs={"x": x},
                     see="section 2")
    text = str(info.value)
    assert "1 of 3 values are wrong" in text
    assert "Worst at index (2,): expected 2.0, got 5.0" in text
    assert "There the input x is 2.0" in text
    assert "Re-read: section 2" in text


def test_shape_problem_has_its_own_message():
    with pytest.raises(checks.CheckFailed, match="wrong shape") as info:
        checks.close(np.zeros((3,)), np.zeros((3, 1)), name="p")
    assert "Expected shape (3, 1), got (3,)" in str(info.value)
    assert "keepdims" in str(info.value)


def test_transposed_shape_hint():
    with pytest.raises(checks.CheckFailed, match="different arrangement"):
        checks.array(np.zeros((2, 3)), name="p", shape=(3, 2))


def test_dtype_problem_has_its_own_message():
    with pytest.raises(checks.CheckFailed, match="wrong dtype") as info:
        checks.array(np.zeros(2, dtype=np.float64), name="y", dtype=np.float32)
    assert "Expected float32, got float64" in str(info.value)
    with pytest.raises(checks.CheckFailed, match="a floating-point dtype"):
        checks.array(np.zeros(2, dtype=int), name="y", dtype="f")


def test_nan_and_inf_are_named():
    with pytest.raises(checks.CheckFailed, match="contains NaN"):
        checks.close(np.array([np.nan, 1.0]), [0.0, 1.0], name="y")
    with pytest.raises(checks.CheckFailed, match="contains infinity"):
        checks.array(np.array([np.inf]), name="y")


def test_none_means_missing_return():
    with pytest.raises(checks.CheckFailed, match="is a `return` statement missing"):
        checks.array(None, name="y")


def test_equal_for_labels():
    checks.equal(np.array([1, 2]), np.array([1, 2]), name="labels", quiet=True)
    with pytest.raises(checks.CheckFailed, match="first at index \\(1,\\): expected 2, got 3"):
        checks.equal(np.array([1, 3]), np.array([1, 2]), name="labels")
    with pytest.raises(checks.CheckFailed, match="Expected 4, got 5"):
        checks.equal(5, 4, name="n")


def test_no_warnings_catches_overflow():
    def naive_sigmoid(z):
        return 1 / (1 + np.exp(-z))

    with pytest.raises(checks.CheckFailed, match="not numerically stable"):
        checks.no_warnings(naive_sigmoid, np.array([-1000.0, 0.0]))

    def stable(z):
        return np.exp(-np.logaddexp(0, -z))

    out = checks.no_warnings(stable, np.array([-1000.0, 1000.0]))
    assert np.all(np.isfinite(out))


def test_derivative_against_centred_difference():
    x = np.linspace(-2, 2, 7)
    checks.derivative(np.cos, np.sin, x, name="d/dx sin", quiet=True)
    with pytest.raises(checks.CheckFailed, match="wrong values"):
        checks.derivative(lambda t: -np.cos(t), np.sin, x, name="d/dx sin")


def test_render_traceback_is_the_message_only():
    failure = checks.CheckFailed("title", ["detail"], see="section 1")
    lines = failure._render_traceback_()
    assert lines[0] == "CheckFailed:"
    assert "✗ title" in lines[1] and "Re-read: section 1" in lines[-1]
    assert isinstance(failure, AssertionError)  # nbgrader scores a failing test cell 0


def test_close_refuses_text_that_looks_like_numbers():
    with pytest.raises(checks.CheckFailed, match="should hold numbers"):
        checks.close(np.array(["nan", "nan"]), [1.0, 2.0], name="f(x)")
    with pytest.raises(checks.CheckFailed, match="should hold numbers"):
        checks.close(np.array(["1.0", "2.0"]), [1.0, 2.0], name="f(x)")


def test_a_probe_is_a_plain_call_outside_the_grader():
    assert checks.in_kernel(lambda a, b=1: a + b, 2, b=3) == 5


def test_arrays_in_messages_keep_their_shape_and_stay_bounded():
    small = np.arange(6.0).reshape(2, 3)
    with pytest.raises(checks.CheckFailed) as info:
        checks.close(small + 1, small, name="f(x)", inputs={"x": small})
    text = str(info.value)
    assert "Input x = array shape (2, 3) dtype float64:\n" in text
    assert "[[0., 1., 2.],\n" in text and " [3., 4., 5.]]" in text  # rows, as NumPy prints them
    big = np.zeros((300, 400))
    with pytest.raises(checks.CheckFailed) as info:
        checks.close(big + 1, big, name="f(x)", inputs={"x": big})
    text = str(info.value)
    assert "array shape (300, 400)" in text and "..." in text
    assert len(text) < 1500, "a large input is summarised, not printed whole"
