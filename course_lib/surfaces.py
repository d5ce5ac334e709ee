"""Two-dimensional test surfaces for optimisers, a runner, and a contour plot.

Real losses have millions of parameters, but the ways an optimiser fails already show in
two: a long narrow valley (ill-conditioning) makes gradient descent zig-zag across it and
crawl along it; a curved valley (Rosenbrock's banana) punishes methods that cannot turn.

- :class:`Surface` bundles a function, its gradient, its minimum and a plotting window.
- :func:`quadratic` and :func:`rosenbrock` build the two classic surfaces.
- :func:`run` applies an update rule with the course's interface
  ``update(params, grads, state, **hyper) -> (params, state)`` for a number of steps and
  returns a :class:`Trajectory`.
- :func:`plot_contours` draws a surface with one or more trajectories on it.

Matplotlib is imported inside :func:`plot_contours` only, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Surface", "Trajectory", "plot_contours", "quadratic", "rosenbrock", "run"]


@dataclass(frozen=True)
class Surface:
    """A differentiable function of two variables, ready to optimise and to plot.

    value: points (..., 2) -> values (...). Works on a single point (2,) -> scalar and on a
        grid of points, which is how the contour plot evaluates it.
    grad: points (..., 2) -> gradients (..., 2).
    minimum: the minimiser, shape (2,). start: a suggested starting point, shape (2,).
    xlim, ylim: the plotting window. log_levels: contour levels spaced on a log scale
        (for surfaces whose values span many orders of magnitude).
    """

    name: str
    value: Callable[[np.ndarray], Any]
    grad: Callable[[np.ndarray], np.ndarray]
    minimum: np.ndarray
    start: np.ndarray
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    log_levels: bool = False
    info: str = ""


def quadratic(condition: float = 20.0, angle: float = 0.0) -> Surface:
    """f(p) = 1/2 p^T A p with eigenvalues 1 and ``condition``; minimum 0 at the origin.

    condition: ratio of the largest to the smallest curvature (the condition number kappa).
        Gradient descent is stable only for learning rates below 2 / kappa, and then needs
        on the order of kappa steps along the flat direction.
    angle: rotation of the valley in radians. At 0 the valley lies along the x axis, which
        favours per-coordinate methods (RMSProp, Adam); a rotated valley does not.
    The Hessian A is :func:`hessian` ``(condition, angle)``.
    """
    A = hessian(condition, angle)

    def value(p):
        p = np.asarray(p, dtype=np.float64)
        return 0.5 * np.einsum("...i,ij,...j->...", p, A, p)

    def grad(p):
        p = np.asarray(p, dtype=np.float64)
        return p @ A.T

    return Surface(
        name=f"quadratic (condition number {condition:g})",
        value=value, grad=grad,
        minimum=np.zeros(2), start=np.array([-4.0, 1.5]),
        xlim=(-4.5, 4.5), ylim=(-2.0, 2.0),
        info=f"f(x, y) = (x^2 + {condition:g} y^2) / 2 rotated by {angle:g} rad",
    )


def hessian(condition: float = 20.0, angle: float = 0.0) -> np.ndarray:
    """The (2, 2) matrix A of :func:`quadratic`: R diag(1, condition) R^T, R a rotation."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s], [s, c]])
    return R @ np.diag([1.0, float(condition)]) @ R.T


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """f(x, y) = (a - x)^2 + b (y - x^2)^2; minimum 0 at (a, a^2), in a curved, flat valley.

    The gradient is (-2 (a - x) - 4 b x (y - x^2),  2 b (y - x^2)).
    """

    def value(p):
        p = np.asarray(p, dtype=np.float64)
        x, y = p[..., 0], p[..., 1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    def grad(p):
        p = np.asarray(p, dtype=np.float64)
        x, y = p[..., 0], p[..., 1]
        dx = -2.0 * (a - x) - 4.0 * b * x * (y - x**2)
        dy = 2.0 * b * (y - x**2)
        return np.stack([dx, dy], axis=-1)

    return Surface(
        name="Rosenbrock",
        value=value, grad=grad,
        minimum=np.array([a, a * a]), start=np.array([-1.5, 2.0]),
        xlim=(-2.0, 2.0), ylim=(-1.0, 3.0), log_levels=True,
        info=f"f(x, y) = ({a:g} - x)^2 + {b:g} (y - x^2)^2",
    )


@dataclass
class Trajectory:
    """The path of one optimisation run.

    points: (n + 1, 2), the start and the point after each step. values: (n + 1,), the
    surface's value there. diverged: True when the run left ``bound`` or produced NaN/inf;
    it then stops early, so n can be smaller than the number of steps asked for.
    """

    points: np.ndarray
    values: np.ndarray
    diverged: bool

    @property
    def steps(self) -> int:
        return len(self.points) - 1

    @property
    def final(self) -> np.ndarray:
        return self.points[-1]


def run(
    update: Callable,
    surface: Surface,
    start=None,
    steps: int = 100,
    *,
    noise: float = 0.0,
    seed: int = 0,
    bound: float = 1e6,
    **hyper: Any,
) -> Trajectory:
    """Apply ``update`` for ``steps`` steps from ``start`` and record where it goes.

    update: ``update(params, grads, state, **hyper) -> (params, state)``; params and grads
        are float64 arrays of shape (2,), state starts as an empty dict.
    start: shape (2,); defaults to ``surface.start``.
    noise: standard deviation of Gaussian noise added to each gradient, to imitate the
        noisy gradients of mini-batches (``seed`` fixes it).
    bound: the run counts as diverged, and stops, once |params| exceeds it or is not finite.
    hyper: passed to ``update`` each step. A callable value is a schedule: it is called with
        the step number t = 0, 1, ... and its result is passed, e.g. ``lr=lambda t: 0.1 * 0.99**t``.
    Returns: a :class:`Trajectory`.
    """
    params = np.array(surface.start if start is None else start, dtype=np.float64)
    rng = np.random.default_rng(seed)
    state: dict = {}
    points = [params.copy()]
    diverged = False
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            grads = surface.grad(params)
            if noise:
                grads = grads + noise * rng.standard_normal(grads.shape)
            values = {k: (v(t) if callable(v) else v) for k, v in hyper.items()}
            params, state = update(params, grads, state, **values)
            params = np.asarray(params, dtype=np.float64)
            if not np.all(np.isfinite(params)) or np.max(np.abs(params)) > bound:
                diverged = True
                points.append(params.copy())
                break
            points.append(params.copy())
        pts = np.array(points)
        vals = np.asarray(surface.value(pts), dtype=np.float64)
    return Trajectory(points=pts, values=vals, diverged=diverged)


def plot_contours(
    surface: Surface,
    trajectories: Mapping[str, Trajectory | np.ndarray] | None = None,
    *,
    ax=None,
    levels: int = 30,
    title: str | None = None,
):
    """Contours of ``surface`` in its window, with each trajectory drawn as a line of dots.

    trajectories: label -> :class:`Trajectory` or an array of points (n, 2). Points outside
        the window are clipped by the axes (a diverging run leaves the picture).
    ax: a matplotlib Axes to draw into; a new figure is made when None.
    Returns: the Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    xs = np.linspace(*surface.xlim, 240)
    ys = np.linspace(*surface.ylim, 200)
    X, Y = np.meshgrid(xs, ys)
    Z = surface.value(np.stack([X, Y], axis=-1))
    if surface.log_levels:
        low = max(float(Z.min()), 1e-3)
        lv = np.logspace(np.log10(low), np.log10(float(Z.max())), levels)
        ax.contour(X, Y, Z, levels=lv, norm=LogNorm(), cmap="viridis", linewidths=0.7)
    else:
        lv = np.linspace(0.0, float(Z.max()), levels) ** 2 / float(Z.max())
        ax.contour(X, Y, Z, levels=np.unique(lv), cmap="viridis", linewidths=0.7)
    ax.plot(*surface.minimum, marker="*", color="k", markersize=12, linestyle="none",
            label="minimum")
    for label, path in (trajectories or {}).items():
        pts = path.points if isinstance(path, Trajectory) else np.asarray(path)
        diverged = getattr(path, "diverged", False)
        ax.plot(pts[:, 0], pts[:, 1], marker="o", markersize=2.5, linewidth=1.0,
                label=label + (" (diverged)" if diverged else ""))
    ax.set_xlim(*surface.xlim)
    ax.set_ylim(*surface.ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title or surface.name)
    ax.legend(loc="upper right", fontsize=8)
    return ax
