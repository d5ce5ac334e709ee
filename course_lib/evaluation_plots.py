"""Figures for evaluating a classifier: a ROC curve, a precision-recall curve, a confusion matrix.

Each function draws onto matplotlib axes it is given and returns them, so a notebook can put
several curves on one pair of axes or add a title afterwards. The functions only draw: they take
curves and counts that were computed elsewhere (by the student's code or by scikit-learn) and
never compute a metric themselves. Matplotlib is imported inside the functions, so
``import course_lib.evaluation_plots`` costs nothing until a figure is drawn.

Typical use::

    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve
    from course_lib import evaluation_plots

    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(12, 3.8))
    fpr, tpr, _ = roc_curve(y, scores, drop_intermediate=False)
    evaluation_plots.roc(a1, fpr, tpr, label="model", auc=0.93)
    precision, recall, _ = precision_recall_curve(y, scores)
    evaluation_plots.precision_recall(a2, recall, precision, prevalence=y.mean())
    evaluation_plots.confusion(a3, confusion_matrix(y, scores >= 0.5), ["neg", "pos"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only for type hints; never imported at run time
    from matplotlib.axes import Axes

__all__ = ["confusion", "precision_recall", "roc"]


def _curve_pair(x, y, x_name: str, y_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D float arrays of one length, every value finite and inside [0, 1]."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"{x_name} and {y_name} must be 1-D arrays of the same length (one value per "
            f"threshold), got shapes {x.shape} and {y.shape}"
        )
    if x.size == 0:
        raise ValueError(f"{x_name} and {y_name} are empty: a curve needs at least one point")
    for name, values in ((x_name, x), (y_name, y)):
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"{name} contains NaN or infinity. A rate is NaN when its class is missing "
                "(no positives for a true-positive rate or a recall, no negatives for a "
                "false-positive rate): the curve is undefined on data with one class only"
            )
        if values.min() < 0.0 or values.max() > 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got values from {values.min():g} "
                             f"to {values.max():g}")
    return x, y


def _mark(ax: Axes, point: tuple[float, float] | None, label: str | None) -> None:
    if point is not None:
        ax.plot([point[0]], [point[1]], marker="o", markersize=7, color="black",
                linestyle="none", label=label, zorder=5)


def roc(
    ax: Axes,
    fpr: Sequence[float] | np.ndarray,
    tpr: Sequence[float] | np.ndarray,
    *,
    label: str | None = None,
    auc: float | None = None,
    chance: bool = True,
    point: tuple[float, float] | None = None,
    point_label: str | None = None,
) -> Axes:
    """Draw a ROC curve: true-positive rate against false-positive rate as the threshold moves.

    ax: matplotlib Axes to draw on.
    fpr, tpr: shape (M,) each, one point per threshold in the order of the sweep (as returned
        by a ROC routine, starting at (0, 0)). Consecutive points are joined by straight
        segments: a vertical one where only positives crossed the threshold, a horizontal one
        where only negatives did, a diagonal one where tied scores moved both together.
    label: legend entry of the curve; ``auc`` (a float), if given, is appended as "(AUC 0.930)".
    chance: also draw the diagonal tpr = fpr, where a classifier that scores at random lies.
    point: optional (fpr, tpr) to mark, e.g. the operating point of the threshold in use;
        ``point_label`` is its legend entry.
    Returns ``ax``. Raises ValueError for mismatched shapes, NaN (a class is missing from the
    labels) or values outside [0, 1].
    """
    fpr, tpr = _curve_pair(fpr, tpr, "fpr", "tpr")
    text = label
    if auc is not None:
        text = f"{label} (AUC {auc:.3f})" if label else f"AUC {auc:.3f}"
    if chance:
        ax.plot([0.0, 1.0], [0.0, 1.0], color="0.6", linestyle=":", linewidth=1,
                label="chance (random scores)")
    ax.plot(fpr, tpr, linewidth=2, label=text)
    _mark(ax, point, point_label)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("false-positive rate  FP / (FP + TN)")
    ax.set_ylabel("true-positive rate  TP / (TP + FN)")
    ax.set_title("ROC curve")
    if text or chance or point_label:
        ax.legend(loc="lower right", fontsize="small")
    return ax


def precision_recall(
    ax: Axes,
    recall: Sequence[float] | np.ndarray,
    precision: Sequence[float] | np.ndarray,
    *,
    label: str | None = None,
    average_precision: float | None = None,
    prevalence: float | None = None,
    point: tuple[float, float] | None = None,
    point_label: str | None = None,
) -> Axes:
    """Draw a precision-recall curve as a staircase whose area is the average precision.

    ax: matplotlib Axes to draw on.
    recall, precision: shape (M,) each, one point per threshold in the order of a threshold
        sweep, in either direction (recall non-decreasing, as a sweep from the highest threshold
        down gives, or non-increasing, as scikit-learn returns it). Each step keeps the precision
        reached at the larger recall across the recall gained there, so the area under the
        staircase is sum_k (R_k - R_(k-1)) P_k, the average precision. Straight lines between
        points would overstate that area.
    label: legend entry; ``average_precision`` (a float), if given, is appended as "(AP 0.870)".
    prevalence: the fraction of positives in the data, drawn as a horizontal line: the precision
        of a classifier that scores at random, whatever its recall.
    point: optional (recall, precision) to mark; ``point_label`` is its legend entry.
    Returns ``ax``. Raises ValueError for mismatched shapes, NaN, values outside [0, 1], or a
    recall that goes up and down (not in the order of a threshold sweep).
    """
    recall, precision = _curve_pair(recall, precision, "recall", "precision")
    steps = np.diff(recall)
    if np.all(steps >= 0):
        drawstyle = "steps-pre"  # recall rising: the segment up to point k has height P_k
    elif np.all(steps <= 0):
        drawstyle = "steps-post"  # recall falling: the segment after point k has height P_k
    else:
        raise ValueError("recall must be monotonic (the order of a threshold sweep); sorting "
                         "the points would break the curve's vertical steps")
    text = label
    if average_precision is not None:
        text = (f"{label} (AP {average_precision:.3f})" if label
                else f"AP {average_precision:.3f}")
    if prevalence is not None:
        if not 0.0 <= prevalence <= 1.0:
            raise ValueError(f"prevalence is a fraction in [0, 1], got {prevalence!r}")
        ax.axhline(prevalence, color="0.6", linestyle=":", linewidth=1,
                   label=f"chance (prevalence {prevalence:.2f})")
    ax.plot(recall, precision, drawstyle=drawstyle, linewidth=2, label=text)
    _mark(ax, point, point_label)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("recall  TP / (TP + FN)")
    ax.set_ylabel("precision  TP / (TP + FP)")
    ax.set_title("Precision-recall curve")
    if text or prevalence is not None or point_label:
        ax.legend(loc="lower left", fontsize="small")
    return ax


def confusion(
    ax: Axes,
    matrix: Sequence[Sequence[int]] | np.ndarray,
    labels: Sequence[str],
    *,
    normalize: str | None = None,
    cmap: str = "Blues",
    title: str | None = None,
) -> Axes:
    """Draw a confusion matrix as a shaded grid with every cell annotated.

    ax: matplotlib Axes to draw on.
    matrix: shape (K, K) of non-negative counts; entry [i, j] counts the examples of true class
        i predicted as class j (rows are the truth, columns the prediction, as in scikit-learn).
    labels: K class names, in the order of the rows (and columns).
    normalize: None shades and prints the counts; "true" divides each row by its total, so the
        diagonal holds each class's recall; "pred" divides each column by its total, so the
        diagonal holds each class's precision. An empty row or column shows 0, not NaN. With a
        normalization each cell prints the fraction and, below it, the count.
    cmap: matplotlib colormap name for the shading.
    title: axes title; defaults to "Confusion matrix".
    Returns ``ax``. Raises ValueError for a matrix that is not square, has negative or
    non-finite entries, or does not match the number of labels.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"matrix must be square, shape (K, K), got {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("matrix must hold counts: finite and non-negative")
    k = counts.shape[0]
    if len(labels) != k:
        raise ValueError(f"{k} classes in the matrix but {len(labels)} labels")
    if normalize is None:
        shown = counts
    elif normalize in ("true", "pred"):
        axis = 1 if normalize == "true" else 0
        totals = counts.sum(axis=axis, keepdims=True)
        shown = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    else:
        raise ValueError(f"normalize must be None, 'true' or 'pred', got {normalize!r}")
    top = shown.max() if shown.size and shown.max() > 0 else 1.0
    ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=top)
    for i in range(k):
        for j in range(k):
            count = int(round(counts[i, j]))
            text = f"{count}" if normalize is None else f"{shown[i, j]:.2f}\n({count})"
            dark = shown[i, j] > 0.6 * top
            ax.text(j, i, text, ha="center", va="center", fontsize="medium",
                    color="white" if dark else "black")
    ax.set_xticks(range(k), [str(lab) for lab in labels])
    ax.set_yticks(range(k), [str(lab) for lab in labels])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "Confusion matrix")
    return ax
