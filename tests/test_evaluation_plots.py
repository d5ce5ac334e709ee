"""Unit tests for course_lib.evaluation_plots (headless: the Agg backend, no display needed)."""

import subprocess
import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_lib import evaluation_plots

matplotlib.use("Agg")  # switching is allowed while no figure is open

# A small sweep with a tie: the step from (1/3, 1/3) to (2/3, 2/3) is diagonal.
FPR = np.array([0.0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0])
TPR = np.array([0.0, 0.0, 1 / 3, 2 / 3, 1.0, 1.0])
RECALL = np.array([0.0, 0.0, 1 / 3, 2 / 3, 1.0, 1.0])  # sweep from the highest threshold down
PRECISION = np.array([1.0, 0.0, 0.5, 0.5, 0.6, 0.5])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _line(ax, label):
    return next(line for line in ax.get_lines() if line.get_label() == label)


def test_import_does_not_load_matplotlib():
    code = "import sys, course_lib.evaluation_plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_roc_draws_the_curve_the_chance_line_and_the_auc_in_the_legend():
    _, ax = plt.subplots()
    returned = evaluation_plots.roc(ax, FPR, TPR, label="model", auc=0.5)
    assert returned is ax
    curve = _line(ax, "model (AUC 0.500)")
    np.testing.assert_allclose(curve.get_xdata(), FPR)
    np.testing.assert_allclose(curve.get_ydata(), TPR)
    chance = _line(ax, "chance (random scores)")
    assert list(chance.get_xdata()) == [0.0, 1.0] and list(chance.get_ydata()) == [0.0, 1.0]
    assert "false-positive rate" in ax.get_xlabel() and "true-positive rate" in ax.get_ylabel()


def test_roc_without_chance_line_and_with_an_operating_point():
    _, ax = plt.subplots()
    evaluation_plots.roc(ax, FPR, TPR, chance=False, point=(1 / 3, 1 / 3), point_label="t=0.4")
    labels = [line.get_label() for line in ax.get_lines()]
    assert "chance (random scores)" not in labels
    marker = _line(ax, "t=0.4")
    assert marker.get_marker() == "o"
    np.testing.assert_allclose(marker.get_xydata(), [[1 / 3, 1 / 3]])


def test_roc_accepts_lists_and_an_auc_without_a_label():
    _, ax = plt.subplots()
    evaluation_plots.roc(ax, [0.0, 1.0], [0.0, 1.0], auc=0.25, chance=False)
    assert ax.get_legend().get_texts()[0].get_text() == "AUC 0.250"


@pytest.mark.parametrize(
    ("fpr", "tpr", "match"),
    [
        (FPR, TPR[:-1], "same length"),
        (FPR.reshape(2, 3), TPR.reshape(2, 3), "1-D"),
        ([], [], "empty"),
        (FPR, np.full(FPR.shape, np.nan), "one class only"),
        (FPR * 2, TPR, r"\[0, 1\]"),
    ],
)
def test_roc_rejects_what_is_not_a_roc_curve(fpr, tpr, match):
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match=match):
        evaluation_plots.roc(ax, fpr, tpr)


def test_precision_recall_draws_a_staircase_in_sweep_order():
    _, ax = plt.subplots()
    returned = evaluation_plots.precision_recall(ax, RECALL, PRECISION, label="model",
                                                 average_precision=0.53, prevalence=0.5)
    assert returned is ax
    curve = _line(ax, "model (AP 0.530)")
    assert curve.get_drawstyle() == "steps-pre"
    np.testing.assert_allclose(curve.get_xdata(), RECALL)
    chance = _line(ax, "chance (prevalence 0.50)")
    assert list(chance.get_ydata()) == [0.5, 0.5]


def test_precision_recall_in_scikit_learn_order_steps_the_other_way():
    _, ax = plt.subplots()
    evaluation_plots.precision_recall(ax, RECALL[::-1], PRECISION[::-1], label="sk")
    assert _line(ax, "sk").get_drawstyle() == "steps-post"


def test_staircase_area_is_the_average_precision():
    # The path matplotlib draws for steps-pre encloses sum_k (R_k - R_(k-1)) P_k.
    _, ax = plt.subplots()
    evaluation_plots.precision_recall(ax, RECALL, PRECISION, label="m")
    path = _line(ax, "m").get_path().vertices  # the step path, drawstyle applied
    xs, ys = path[:, 0], path[:, 1]
    area = np.sum(np.diff(xs) * ys[1:])  # horizontal segments only carry area
    expected = np.sum(np.diff(RECALL) * PRECISION[1:])
    assert area == pytest.approx(expected)


def test_precision_recall_rejects_a_recall_that_goes_up_and_down():
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="monotonic"):
        evaluation_plots.precision_recall(ax, [0.0, 0.5, 0.2, 1.0], [1.0, 0.8, 0.9, 0.5])
    with pytest.raises(ValueError, match="prevalence"):
        evaluation_plots.precision_recall(ax, RECALL, PRECISION, prevalence=1.5)


def test_confusion_shows_counts_with_rows_as_truth():
    matrix = np.array([[5, 1], [2, 7]])
    _, ax = plt.subplots()
    returned = evaluation_plots.confusion(ax, matrix, ["ent", "tech"])
    assert returned is ax
    np.testing.assert_array_equal(ax.images[0].get_array(), matrix)
    texts = {(t.get_position(), t.get_text()) for t in ax.texts}
    assert ((1, 0), "1") in texts  # x = predicted column 1, y = true row 0
    assert ((0, 1), "2") in texts
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ent", "tech"]
    assert ax.get_ylabel() == "true class" and ax.get_xlabel() == "predicted class"


def test_confusion_normalized_by_row_and_by_column_with_an_empty_row():
    matrix = np.array([[0, 0, 0], [1, 3, 0], [0, 1, 1]])
    _, ax = plt.subplots()
    evaluation_plots.confusion(ax, matrix, list("abc"), normalize="true")
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(shown, [[0, 0, 0], [0.25, 0.75, 0], [0, 0.5, 0.5]])
    assert "0.75\n(3)" in [t.get_text() for t in ax.texts]
    _, ax = plt.subplots()
    evaluation_plots.confusion(ax, matrix, list("abc"), normalize="pred", title="by column")
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(shown, [[0, 0, 0], [1, 0.75, 0], [0, 0.25, 1]])
    assert ax.get_title() == "by column"


@pytest.mark.parametrize(
    ("matrix", "labels", "kwargs", "match"),
    [
        (np.ones((2, 3)), ["a", "b"], {}, "square"),
        (np.ones((2, 2)), ["a", "b", "c"], {}, "labels"),
        (-np.ones((2, 2)), ["a", "b"], {}, "non-negative"),
        (np.ones((2, 2)), ["a", "b"], {"normalize": "all"}, "normalize"),
    ],
)
def test_confusion_rejects_bad_input(matrix, labels, kwargs, match):
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match=match):
        evaluation_plots.confusion(ax, matrix, labels, **kwargs)
