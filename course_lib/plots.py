"""Small matplotlib helpers for the notebooks' figures.

Each helper draws onto axes it is given (or makes its own figure) and returns what it drew on,
so a notebook can add a title or a line afterwards. Matplotlib is imported inside the functions:
``import course_lib.plots`` costs nothing until a figure is actually drawn.

Typical use::

    from course_lib import plots
    z = np.linspace(-6, 6, 401)
    fig = plots.activation_gallery(z, {"tanh": (np.tanh, lambda v: 1 - np.tanh(v) ** 2)})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only for type hints; never imported at run time
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["activation_gallery", "below_threshold", "function_and_derivative", "per_layer"]

ArrayFn = Callable[[np.ndarray], np.ndarray]


def _curve(fn: ArrayFn, x: np.ndarray, what: str) -> np.ndarray:
    """Evaluate ``fn`` on the 1-D grid ``x`` and insist on one value per grid point."""
    y = np.asarray(fn(x), dtype=np.float64)
    if y.shape != x.shape:
        raise ValueError(f"{what} returned shape {y.shape} for a grid of shape {x.shape}; "
                         "it must work element-wise")
    return y


def below_threshold(dy: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask, same shape as ``dy``: True where ``|dy| < threshold`` (a "flat" region)."""
    return np.abs(np.asarray(dy)) < threshold


def function_and_derivative(
    ax: Axes,
    x: np.ndarray,
    f: ArrayFn,
    df: ArrayFn,
    *,
    name: str = "f",
    threshold: float | None = None,
) -> Axes:
    """Plot ``f(x)`` and ``df(x)`` on one pair of axes, optionally shading where ``df`` is small.

    ax: matplotlib Axes to draw on.
    x: 1-D grid, shape (n,), e.g. ``np.linspace(-6, 6, 401)``.
    f, df: element-wise functions mapping an array of shape (n,) to shape (n,);
        ``df`` is the derivative of ``f`` (analytic or numerical, the plot does not care).
    name: label used in the legend ("f" gives "f(x)" and "f'(x)").
    threshold: if given, shade every stretch of x where ``|df(x)| < threshold``; these are the
        inputs at which almost no gradient flows back through the function.
    Returns ``ax``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be a 1-D grid, got shape {x.shape}")
    y = _curve(f, x, name)
    dy = _curve(df, x, f"the derivative of {name}")
    ax.axhline(0.0, color="0.8", linewidth=0.8, zorder=0)
    ax.axvline(0.0, color="0.8", linewidth=0.8, zorder=0)
    ax.plot(x, y, color="C0", linewidth=2, label=f"{name}(x)")
    ax.plot(x, dy, color="C1", linewidth=2, linestyle="--", label=f"{name}'(x)")
    if threshold is not None:
        flat = below_threshold(dy, threshold)
        if flat.any():
            ax.fill_between(x, 0, 1, where=flat, transform=ax.get_xaxis_transform(),
                            color="C3", alpha=0.12, linewidth=0,
                            label=f"|{name}'| < {threshold:g}")
    ax.set_xlabel("x")
    ax.set_title(name)
    ax.legend(loc="best", fontsize="small")
    return ax


def activation_gallery(
    x: np.ndarray,
    functions: Mapping[str, tuple[ArrayFn, ArrayFn]],
    *,
    ncols: int = 3,
    threshold: float | None = None,
    panel_size: tuple[float, float] = (4.0, 3.0),
) -> Figure:
    """One panel per activation, each showing the function and its derivative.

    x: 1-D grid, shape (n,), shared by every panel.
    functions: name -> ``(f, df)``, each an element-wise map from shape (n,) to shape (n,).
    ncols: panels per row; the number of rows follows from ``len(functions)``.
    threshold: passed to :func:`function_and_derivative` for every panel.
    panel_size: (width, height) of one panel in inches.
    Returns the new Figure; unused panels in the last row are hidden.
    """
    import matplotlib.pyplot as plt

    if not functions:
        raise ValueError("functions is empty: give at least one name -> (f, df)")
    count = len(functions)
    ncols = max(1, min(ncols, count))
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(panel_size[0] * ncols, panel_size[1] * nrows))
    flat_axes = axes.ravel()
    for ax, (name, (f, df)) in zip(flat_axes, functions.items()):
        function_and_derivative(ax, x, f, df, name=name, threshold=threshold)
    for ax in flat_axes[count:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def per_layer(
    values: Mapping[str, Sequence[float] | np.ndarray],
    *,
    ax: Axes | None = None,
    ylabel: str = "value",
    log: bool = True,
    title: str | None = None,
) -> Axes:
    """One line per series against layer number 1..L, e.g. gradient magnitude per layer.

    values: series name -> L values, shape (L,) (layer 1 first); series may differ in length.
        With ``log=True`` every value must be positive.
    ax: axes to draw on; a new 6 x 4 inch figure is made when None.
    ylabel, title: axis label and optional title.
    Returns the axes drawn on.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.0, 4.0))
    for name, series in values.items():
        y = np.asarray(series, dtype=np.float64)
        if y.ndim != 1:
            raise ValueError(f"series {name!r} must be 1-D (one value per layer), got {y.shape}")
        if log and np.any(y <= 0):
            raise ValueError(f"series {name!r} has values <= 0, which a log scale cannot show")
        ax.plot(np.arange(1, y.size + 1), y, marker="o", markersize=3, label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer (1 = closest to the input)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    return ax
