"""Gradient checking by centred differences.

An analytic gradient (worked out by hand, or by a backward pass) is easy to get subtly
wrong: a missing factor of 1/N, a flipped sign, a transposed matrix. The centred difference

    dL/dx_i  ~  (L(x + h e_i) - L(x - h e_i)) / (2h)

needs nothing but the loss itself, and its error shrinks like h**2. Comparing the two
catches almost every slip. It costs two loss evaluations per entry, so it is a test, not a
way to train.

Two entry points:

- :func:`numeric_grad` for one array: ``numeric_grad(f, x)`` where ``f(x)`` is a scalar.
- :func:`check_gradients` for a model with named parameters: it perturbs each array *in
  place* (so a loss that reads the arrays through a closure or an object sees the change),
  restores it, and returns a :class:`GradReport` with one row per parameter.

Example::

    W = rng.normal(size=(3, 2)); b = np.zeros(2)
    loss = lambda: np.sum((X @ W + b - Y) ** 2) / len(X)
    report = check_gradients(loss, {"W": W, "b": b}, {"W": dW, "b": db})
    print(report)        # a table: name, shape, relative error, verdict
    report.check()       # raises checks.CheckFailed with a hint when a gradient is wrong

Everything is float64: in float32 the round-off in ``L(x + h) - L(x - h)`` swamps the
difference for any useful h.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GradReport", "ParamResult", "check_gradients", "numeric_grad", "relative_error"]

TINY = 1e-300


def _require_float64(x, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} must be a NumPy array (it is perturbed in place), got {type(x).__name__}. "
            f"Wrap it once with np.asarray(..., dtype=np.float64) and keep using that array."
        )
    if x.dtype != np.float64:
        raise TypeError(
            f"{name} has dtype {x.dtype}; gradient checking needs float64. In float32 the "
            f"round-off in L(x+h) - L(x-h) is larger than the difference itself. "
            f"Convert it with {name} = {name}.astype(np.float64) before building the loss."
        )
    if not x.flags.writeable:
        raise TypeError(f"{name} is read-only; gradient checking perturbs it in place.")
    return x


def _scalar(value, what: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(
            f"{what} must return a single number (the loss), got an array of shape {arr.shape}. "
            "Reduce it first, e.g. with .mean() or .sum()."
        )
    return float(arr.reshape(()))


def _perturbed_difference(f: Callable[[], float], x: np.ndarray, index, h: float) -> float:
    """(f() at x[index] + h  -  f() at x[index] - h) / 2h, with x restored afterwards."""
    old = x[index]
    try:
        x[index] = old + h
        plus = _scalar(f(), "The loss function")
        x[index] = old - h
        minus = _scalar(f(), "The loss function")
    finally:
        x[index] = old
    return (plus - minus) / (2.0 * h)


def numeric_grad(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """The centred-difference gradient of a scalar function at x.

    f: callable taking an array shaped like x and returning a scalar.
    x: float64 array of any shape. Each entry is nudged by +h and -h in place and restored,
       so x is unchanged afterwards (also if f raises).
    h: the step; 1e-5 balances truncation error (~h**2) and round-off (~1e-16 / h).
    Returns: float64 array of x's shape, entry i approximating df/dx_i.
    """
    x = _require_float64(x, "x")
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        grad[index] = _perturbed_difference(lambda: f(x), x, index, h)
    return grad


def relative_error(analytic, numeric) -> float:
    """max |a - n| / max(|a| + |n|): 0 when equal, about 1 when unrelated or opposite in sign.

    Scale-free, so the same tolerance serves a loss of size 1e-3 and one of size 1e3. When
    both are exactly zero everywhere the error is 0.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a) + np.abs(n))), TINY)
    return float(np.max(np.abs(a - n))) / scale


@dataclass
class ParamResult:
    """The verdict on one parameter's gradient.

    name, shape: the parameter. error: :func:`relative_error` over the checked entries.
    worst_index: the entry with the largest |analytic - numeric| (a tuple, () for a scalar).
    analytic, numeric: the two gradients at worst_index. checked: how many entries were
    compared (all of them, or a sample). hint: a guess at the bug when the check fails.
    """

    name: str
    shape: tuple[int, ...]
    error: float
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    checked: int
    passed: bool
    hint: str = ""


def _diagnose(a: np.ndarray, n: np.ndarray) -> str:
    """A short guess at what is wrong, from the pattern of the two gradients."""
    if not np.all(np.isfinite(a)):
        return "The analytic gradient contains NaN or inf."
    n_norm = float(np.linalg.norm(n))
    a_norm = float(np.linalg.norm(a))
    if a_norm == 0.0 and n_norm > 0.0:
        return "The analytic gradient is all zeros: is it ever written to?"
    if n_norm == 0.0:
        return "The numeric gradient is zero: does the loss depend on this parameter at all?"
    ratio = float(a.ravel() @ n.ravel()) / n_norm**2
    if np.linalg.norm(a - ratio * n) <= 1e-4 * a_norm:
        if abs(ratio + 1.0) < 1e-3:
            return "The analytic gradient has the wrong sign everywhere."
        return (
            f"The analytic gradient is {ratio:.4g} times the numeric one everywhere: "
            "a constant factor is wrong (a missing 1/N for a mean, or a stray 2?)."
        )
    return "The two disagree in pattern, not just by a factor: re-derive this gradient."


@dataclass
class GradReport:
    """The outcome of :func:`check_gradients`: one :class:`ParamResult` per parameter.

    ``report.passed`` is True when every parameter's relative error is at most ``tol``.
    Printing gives a table; in Jupyter it renders as an HTML table. :meth:`check` raises
    :class:`course_lib.checks.CheckFailed` with a hint when a gradient is wrong.
    """

    results: list[ParamResult]
    tol: float
    h: float
    rows: dict[str, ParamResult] = field(init=False, repr=False)

    def __post_init__(self):
        self.rows = {r.name: r for r in self.results}

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def max_error(self) -> float:
        return max((r.error for r in self.results), default=0.0)

    def __bool__(self) -> bool:
        return self.passed

    def __getitem__(self, name: str) -> ParamResult:
        return self.rows[name]

    def _table(self) -> list[tuple[str, ...]]:
        return [
            (
                r.name,
                "x".join(map(str, r.shape)) or "scalar",
                f"{r.error:.2e}",
                "ok" if r.passed else "WRONG",
            )
            for r in self.results
        ]

    def __str__(self) -> str:
        head = ("parameter", "shape", "rel. error", "verdict")
        rows = self._table()
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*row) for row in rows]
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"Gradient check {verdict} (tolerance {self.tol:g}, h = {self.h:g}).")
        lines += [f"  {r.name}: {r.hint}" for r in self.results if not r.passed and r.hint]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = []
        for (name, shape, err, verdict), r in zip(self._table(), self.results):
            colour = "#1a7f37" if r.passed else "#cf222e"
            cells.append(
                f"<tr><td><code>{html.escape(name)}</code></td><td>{shape}</td>"
                f"<td>{err}</td><td style='color:{colour}'><b>{verdict}</b></td></tr>"
            )
        verdict = "passed" if self.passed else "FAILED"
        hints = "".join(
            f"<li><code>{html.escape(r.name)}</code>: {html.escape(r.hint)}</li>"
            for r in self.results
            if not r.passed and r.hint
        )
        return (
            "<table><thead><tr><th>parameter</th><th>shape</th><th>relative error</th>"
            f"<th>verdict</th></tr></thead><tbody>{''.join(cells)}</tbody></table>"
            f"<p>Gradient check <b>{verdict}</b> (tolerance {self.tol:g}, h = {self.h:g}).</p>"
            + (f"<ul>{hints}</ul>" if hints else "")
        )

    def check(self, *, see: str | None = None, quiet: bool = False) -> GradReport:
        """Raise ``checks.CheckFailed`` naming each wrong gradient; print a line when all pass."""
        from course_lib import checks

        wrong = [r for r in self.results if not r.passed]
        if wrong:
            details = []
            for r in wrong:
                details += [
                    f"d/d{r.name}: relative error {r.error:.2e} > tolerance {self.tol:g}.",
                    (
                        f"  Worst at index {r.worst_index}: yours {r.analytic:.6g}, "
                        f"centred difference {r.numeric:.6g}."
                    ),
                    f"  {r.hint}",
                ]
            names = ", ".join(r.name for r in wrong)
            raise checks.CheckFailed(
                f"The gradient with respect to {names} is wrong.", details, see
            )
        if not quiet:
            checks.passed(
                f"gradient check: {len(self.results)} parameter(s) agree with centred "
                f"differences (largest relative error {self.max_error:.1e})"
            )
        return self


def check_gradients(
    f: Callable[[], float],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    *,
    tol: float = 1e-7,
    h: float = 1e-5,
    samples: int | None = None,
    seed: int = 0,
) -> GradReport:
    """Compare analytic gradients with centred differences, parameter by parameter.

    f: callable with no arguments returning the scalar loss; it must read the arrays in
       ``params`` (through a closure or an object), because they are perturbed in place.
    params: name -> float64 array, the parameters (restored exactly afterwards).
    grads: name -> array of the same shape, the analytic dLoss/dparam to check.
    tol: a parameter passes when its :func:`relative_error` is at most tol. For smooth
       float64 losses a correct gradient scores about 1e-9 or less; a wrong one about 1e-2
       or more. Kinks (ReLU at 0, max, abs) can fail a correct gradient.
    samples: if given, check only this many randomly chosen entries per parameter (for
       large layers); ``seed`` fixes which.
    Returns: a :class:`GradReport`.
    """
    missing = [name for name in params if name not in grads]
    if missing:
        raise KeyError(f"No gradient given for parameter(s) {missing}; grads has {list(grads)}.")
    rng = np.random.default_rng(seed)
    results = []
    for name, x in params.items():
        x = _require_float64(x, f"params[{name!r}]")
        analytic = np.asarray(grads[name], dtype=np.float64)
        if analytic.shape != x.shape:
            raise ValueError(
                f"The gradient for {name!r} has shape {analytic.shape}, but the parameter has "
                f"shape {x.shape}. A gradient always has its parameter's shape."
            )
        indices = list(np.ndindex(x.shape))
        if samples is not None and samples < len(indices):
            chosen = rng.choice(len(indices), size=samples, replace=False)
            indices = [indices[i] for i in sorted(chosen)]
        a = np.array([analytic[i] for i in indices], dtype=np.float64)
        n = np.array([_perturbed_difference(f, x, i, h) for i in indices], dtype=np.float64)
        if a.size:
            error = relative_error(a, n) if np.all(np.isfinite(a)) else float("inf")
            k = int(np.argmax(np.where(np.isfinite(a), np.abs(a - n), np.inf)))
            worst, worst_a, worst_n = tuple(int(v) for v in indices[k]), float(a[k]), float(n[k])
        else:
            error, worst, worst_a, worst_n = 0.0, (), 0.0, 0.0
        ok = bool(error <= tol)
        results.append(ParamResult(
            name=name, shape=tuple(x.shape), error=error, worst_index=worst,
            analytic=worst_a, numeric=worst_n, checked=len(indices), passed=ok,
            hint="" if ok else _diagnose(a, n),
        ))
    return GradReport(results=results, tol=tol, h=h)
