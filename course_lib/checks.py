"""The assertions behind the notebooks' test cells.

A check that fails should teach: it says what was expected, what came back, on which
input, and which part of the notebook to re-read. Three problems get their own
message because a bare traceback hides them: a wrong shape, a wrong dtype and a NaN
(or infinity). A function that still raises ``NotImplementedError`` is reported as
"not written yet", not as a crash.

A failure is raised as :class:`CheckFailed`, a subclass of ``AssertionError`` so that
nbgrader scores the cell 0. In Jupyter it renders as the message alone (through
IPython's ``_render_traceback_`` hook): the student sees the lesson, not a stack of
``course_lib`` frames.

Typical use in a test cell::

    from course_lib import checks
    z = np.array([-2.0, 0.0, 2.0])
    got = checks.call(sigmoid, z)
    checks.close(got, [0.1192, 0.5, 0.8808], name="sigmoid(z)", inputs={"z": z},
                 rtol=1e-3, see="section 2, equation (1)")
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = [
    "CheckFailed",
    "call",
    "array",
    "close",
    "equal",
    "derivative",
    "no_warnings",
    "in_kernel",
    "needs_your_code",
    "passed",
]


class CheckFailed(AssertionError):
    """A visible or hidden check failed; the message says why and what to re-read."""

    def __init__(self, title: str, details: list[str] | None = None, see: str | None = None):
        self.title = title
        self.details = list(details or [])
        self.see = see
        super().__init__(self._text())

    def _text(self) -> str:
        lines = [f"✗ {self.title}"]
        lines += [f"  {line}" for detail in self.details for line in detail.splitlines()]
        if self.see:
            lines.append(f"  Re-read: {self.see}")
        return "\n".join(lines)

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback; the frames inside
        # course_lib would only distract from the message.
        return ["CheckFailed:", *self._text().splitlines()]


def _short(value: Any, limit: int = 12, one_line: bool = False) -> str:
    """A bounded description of a value for a message; arrays keep their shape (rows on their
    own lines) unless ``one_line``, and large ones show their corners only."""
    if isinstance(value, np.ndarray):
        head = f"array shape {value.shape} dtype {value.dtype}:"
        if one_line or value.ndim < 2:
            body = np.array2string(value.ravel()[:limit], precision=4, separator=", ")
            if value.size > limit:
                body = body[:-1] + ", ...]"
            return f"{head} {body}"
        body = np.array2string(value, precision=4, separator=", ", threshold=limit,
                               edgeitems=2, max_line_width=88)
        return head + "\n" + "\n".join("  " + row for row in body.splitlines())
    if isinstance(value, (list, tuple)) and len(value) > limit:
        return f"{type(value).__name__} of length {len(value)}: {value[:limit]!r}..."
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _item(value: Any) -> str:
    """A NumPy scalar as a plain number (NumPy 2 would print ``np.float64(0.5)``)."""
    return repr(value.item()) if isinstance(value, np.generic) else repr(value)


def _describe_inputs(inputs: Mapping[str, Any] | None) -> list[str]:
    if not inputs:
        return []
    return [f"Input {key} = {_short(val)}" for key, val in inputs.items()]


def _name_of(fn: Callable) -> str:
    return getattr(fn, "__name__", repr(fn))


def _raising_function(exc: BaseException) -> str:
    """Name of the function in which ``exc`` was raised: the innermost traceback frame."""
    # Set by the grader when the error was raised in the student's kernel and crossed as data.
    culprit = getattr(exc, "course_culprit", None)
    if isinstance(culprit, str):
        return culprit
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_name


def call(fn: Callable, *args, **kwargs):
    """Call a student's function and turn "not written yet" into a clear message.

    Returns whatever ``fn(*args, **kwargs)`` returns. A ``NotImplementedError`` becomes a
    :class:`CheckFailed` that says which function to write. Any other exception is re-raised
    unchanged (the student needs its traceback), with a note naming the input that caused it.
    """
    name = _name_of(fn)
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        # The function that still has the stub may be one that ``fn`` calls
        # (sigmoid_grad calling an unwritten sigmoid).
        culprit = _raising_function(exc)
        title = f"`{name}` is not written yet."
        if culprit not in (name, "<module>") and culprit.isidentifier():
            title = f"`{name}` calls `{culprit}`, which is not written yet."
        raise CheckFailed(
            title,
            [
                "Replace `raise NotImplementedError()` in its cell with your code,",
                "run that cell, then run this check again.",
            ],
        ) from None
    except Exception as exc:
        if hasattr(exc, "add_note"):  # Python 3.11+
            shown = ", ".join(_short(a, one_line=True) for a in args)
            exc.add_note(f"(raised by your `{name}` while it was being checked, on input {shown})")
        raise


def array(
    got: Any,
    *,
    name: str,
    shape: tuple[int, ...] | None = None,
    dtype: Any = None,
    finite: bool = True,
    inputs: Mapping[str, Any] | None = None,
    see: str | None = None,
) -> np.ndarray:
    """Check that ``got`` is a NumPy array of the given shape and dtype, with no NaN or inf.

    ``dtype`` may be an exact dtype (``np.float32``) or a kind letter (``"f"`` for any float,
    ``"i"`` for any signed integer). Returns ``got`` as an array so a caller can go on.
    """
    where = _describe_inputs(inputs)
    if got is None:
        raise CheckFailed(
            f"{name} is None.",
            ["Your function returned nothing: is a `return` statement missing?", *where],
            see,
        )
    if not isinstance(got, (np.ndarray, np.generic, float, int, list, tuple)):
        raise CheckFailed(
            f"{name} should be a NumPy array, got {type(got).__name__}.", where, see
        )
    arr = np.asarray(got)
    if arr.dtype == object:
        raise CheckFailed(
            f"{name} is an array of Python objects, not numbers.",
            ["This usually means a list of arrays of different lengths.", *where],
            see,
        )
    if shape is not None and arr.shape != tuple(shape):
        hint = []
        if arr.ndim < len(shape):
            hint = ["Fewer dimensions than expected: was an axis summed away? Try keepdims=True."]
        elif arr.ndim > len(shape):
            hint = ["More dimensions than expected: did broadcasting make a matrix out of two "
                    "vectors, e.g. shape (n, 1) against (n,)?"]
        elif arr.size == math.prod(shape):
            hint = ["Same number of values, different arrangement: check axis= and reshape."]
        raise CheckFailed(
            f"{name} has the wrong shape.",
            [f"Expected shape {tuple(shape)}, got {arr.shape}.", *hint, *where],
            see,
        )
    if dtype is not None:
        ok = arr.dtype.kind == dtype if isinstance(dtype, str) else arr.dtype == np.dtype(dtype)
        if not ok:
            wanted = {"f": "a floating-point dtype", "i": "an integer dtype"}.get(
                dtype, str(np.dtype(dtype)) if not isinstance(dtype, str) else dtype
            )
            raise CheckFailed(
                f"{name} has the wrong dtype.",
                [f"Expected {wanted}, got {arr.dtype}.", *where],
                see,
            )
    if finite and arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        first = tuple(int(i) for i in bad[0]) if arr.ndim else ()
        kind = "NaN" if np.isnan(arr).any() else "infinity"
        raise CheckFailed(
            f"{name} contains {kind} ({len(bad)} of {arr.size} values).",
            [
                f"First one at index {first}.",
                "NaN and inf usually come from exp() overflowing, log(0) or 0/0:",
                "rewrite the formula so that no intermediate value can overflow.",
                *where,
            ],
            see,
        )
    return arr


def close(
    got: Any,
    expected: Any,
    *,
    name: str,
    inputs: Mapping[str, Any] | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    dtype: Any = None,
    see: str | None = None,
    quiet: bool = False,
) -> None:
    """Check ``got`` against ``expected`` element-wise: ``|got - expected| <= atol + rtol*|want|``.

    The shape must match ``expected``'s exactly (no broadcasting). On failure the message names
    how many entries are wrong, the worst one, and the input value at that position when an input
    has the same shape. Prints a one-line confirmation on success unless ``quiet``.

    Returns None on purpose: nbgrader reads a number left as a test cell's last value as a
    partial score, so checks never leave one.
    """
    want = np.asarray(expected)
    arr = array(got, name=name, shape=want.shape, dtype=dtype, inputs=inputs, see=see)
    if arr.dtype.kind not in "biuf":
        raise CheckFailed(
            f"{name} should hold numbers, but it holds {arr.dtype} values.",
            [f"Got {_short(arr)}.",
             "Return numbers (floats or integers), not text such as '0.5' or 'nan': "
             "convert with float() or .astype(float) if you built strings.",
             *_describe_inputs(inputs)],
            see,
        )
    diff = np.abs(arr.astype(np.float64) - want.astype(np.float64))
    # Written so that a NaN anywhere counts as wrong: NaN compares False with everything.
    bad = ~(diff <= atol + rtol * np.abs(want.astype(np.float64)))
    if np.any(bad):
        worst = np.unravel_index(int(np.argmax(np.where(bad, diff, -1.0))), want.shape)
        worst = tuple(int(i) for i in worst)
        details = [
            f"{int(bad.sum())} of {want.size} values are wrong "
            f"(tolerance: atol={atol:g}, rtol={rtol:g}).",
            f"Worst at index {worst}: expected {_item(want[worst])}, got {_item(arr[worst])}.",
        ]
        for key, val in (inputs or {}).items():
            val = np.asarray(val)
            if val.shape == want.shape and val.ndim:
                details.append(f"There the input {key} is {_item(val[worst])}.")
        details += _describe_inputs(inputs)
        raise CheckFailed(f"{name} has wrong values.", details, see)
    if not quiet:
        passed(f"{name}: {want.size} value(s) match (largest difference {diff.max(initial=0):.2g})")


def equal(got: Any, expected: Any, *, name: str, inputs=None, see=None, quiet=False) -> None:
    """Exact equality for integers, labels, booleans and small Python values (returns None)."""
    if isinstance(expected, np.ndarray) or isinstance(got, np.ndarray):
        want = np.asarray(expected)
        arr = array(got, name=name, shape=want.shape, finite=False, inputs=inputs, see=see)
        if not np.array_equal(arr, want):
            wrong = np.argwhere(arr != want)
            first = tuple(int(i) for i in wrong[0]) if arr.ndim else ()
            raise CheckFailed(
                f"{name} has wrong values.",
                [
                    f"{len(wrong)} of {want.size} entries differ; first at index {first}: "
                    f"expected {_item(want[first])}, got {_item(arr[first])}.",
                    *_describe_inputs(inputs),
                ],
                see,
            )
    elif got != expected:
        raise CheckFailed(
            f"{name} is wrong.",
            [f"Expected {_short(expected)}, got {_short(got)}.", *_describe_inputs(inputs)],
            see,
        )
    if not quiet:
        passed(f"{name}: as expected")


def no_warnings(fn: Callable, *args, name: str | None = None, see: str | None = None, **kwargs):
    """Call ``fn`` and fail if NumPy overflows, divides by zero or warns along the way.

    The naive formulas for sigmoid, softmax and cross-entropy give the right answer for small
    inputs but overflow for large ones; this is how a check catches that. Returns fn's result.
    """
    label = name or f"{_name_of(fn)}(...)"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            # Underflow to 0 (exp(-1000)) is harmless and expected; overflow, 0/0 and
            # division by zero are the real problems.
            with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
                return call(fn, *args, **kwargs)
        except (FloatingPointError, RuntimeWarning) as exc:
            if "log" in str(exc) or "divide" in str(exc):
                advice = ["A log() or a division met 0: clip probabilities away from 0 and 1,",
                          "or compute the loss from logits, where no log(0) can occur."]
            else:
                advice = ["For large inputs an intermediate value overflows, even if the final",
                          "answer looks right. Rearrange the formula so that exp() only ever",
                          "sees values <= 0."]
            raise CheckFailed(
                f"{label} is not numerically stable.",
                [f"NumPy reported: {exc}.", *advice, *[f"Input {_short(a)}" for a in args]],
                see,
            ) from None


def derivative(
    fprime: Callable,
    f: Callable,
    x: np.ndarray,
    *,
    name: str,
    h: float = 1e-5,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    see: str | None = None,
    quiet: bool = False,
) -> np.ndarray:
    """Check an element-wise derivative ``fprime(x)`` against the centred difference of ``f``.

    ``(f(x + h) - f(x - h)) / (2h)`` is accurate to about ``h**2``; x should avoid kinks
    (e.g. 0 for ReLU), where the two sides disagree. x: float64 array of any shape.
    """
    x = np.asarray(x, dtype=np.float64)
    numeric = (call(f, x + h) - call(f, x - h)) / (2 * h)
    got = call(fprime, x)
    close(got, numeric, name=name, inputs={"x": x}, rtol=rtol, atol=atol, see=see, quiet=quiet)
    return np.asarray(got)


# Set by the grader's test process (course_lib.grading.test_runner), where a test's code runs
# apart from the student's kernel: then a probe is sent to run in that kernel. This module
# never imports the grading side; the grading side plugs itself in here.
_kernel_call = None


def in_kernel(probe: Callable, *args, **kwargs):
    """Run ``probe(*args, **kwargs)`` where the student's code lives; return its result.

    For a test about live objects (a Keras model built by a student's function): the probe
    builds and questions them and returns plain data (numbers, arrays, strings, lists, dicts),
    which the test then checks. Probes are functions of :mod:`course_lib.probes`. In a
    notebook this is just ``probe(*args, **kwargs)``. When the grader grades, the test's code
    runs in a process of the grader's own, and the probe runs in the student's kernel.
    """
    if _kernel_call is None:
        return probe(*args, **kwargs)
    return _kernel_call(probe, args, kwargs)


@contextmanager
def needs_your_code():
    """For demonstration cells that use the student's functions.

    In the student version those functions are still stubs; instead of a crash, the cell prints
    which one to write and goes on, so the notebook still runs top to bottom::

        with checks.needs_your_code():
            plot_losses(bce, mse)
    """
    try:
        yield
    except NotImplementedError as exc:
        name = _raising_function(exc)
        print(f"⏳ This cell uses `{name}`, which is not written yet. "
              "Write it, run its cell, then run this cell again.")


def passed(message: str) -> None:
    """Print a one-line confirmation that a check passed."""
    print(f"✓ {message}")
