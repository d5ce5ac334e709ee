"""Unit tests for course_lib.plots (headless: the Agg backend, no display needed)."""

import subprocess
import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_lib import plots

matplotlib.use("Agg")  # switching is allowed while no figure is open

GRID = np.linspace(-4.0, 4.0, 81)


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def sigmoid_grad(z):
    s = sigmoid(z)
    return s * (1.0 - s)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_import_does_not_load_matplotlib():
    code = "import sys, course_lib.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_below_threshold_marks_small_slopes_of_either_sign():
    mask = plots.below_threshold(np.array([-0.5, -0.01, 0.0, 0.02, 0.3]), 0.05)
    assert mask.tolist() == [False, True, True, True, False]


def test_function_and_derivative_draws_both_curves():
    _, ax = plt.subplots()
    returned = plots.function_and_derivative(ax, GRID, sigmoid, sigmoid_grad, name="sigmoid")
    assert returned is ax
    labels = [line.get_label() for line in ax.get_lines()]
    assert "sigmoid(x)" in labels and "sigmoid'(x)" in labels
    curve = next(line for line in ax.get_lines() if line.get_label() == "sigmoid'(x)")
    np.testing.assert_allclose(curve.get_ydata(), sigmoid_grad(GRID))
    assert not ax.collections  # no threshold, no shading


def test_function_and_derivative_shades_flat_regions_only_when_asked():
    _, ax = plt.subplots()
    plots.function_and_derivative(ax, GRID, sigmoid, sigmoid_grad, threshold=0.1)
    assert len(ax.collections) == 1
    _, ax = plt.subplots()
    plots.function_and_derivative(ax, GRID, sigmoid, sigmoid_grad, threshold=1e-9)
    assert not ax.collections  # nothing on this grid is that flat


def test_function_and_derivative_rejects_bad_shapes():
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="1-D"):
        plots.function_and_derivative(ax, GRID.reshape(9, 9), sigmoid, sigmoid_grad)
    with pytest.raises(ValueError, match="element-wise"):
        plots.function_and_derivative(ax, GRID, lambda z: z.sum(), sigmoid_grad)


def test_activation_gallery_one_visible_panel_per_function():
    functions = {
        "sigmoid": (sigmoid, sigmoid_grad),
        "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
        "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
        "identity": (lambda z: z, np.ones_like),
    }
    fig = plots.activation_gallery(GRID, functions, ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in visible] == list(functions)


def test_activation_gallery_needs_functions():
    with pytest.raises(ValueError, match="empty"):
        plots.activation_gallery(GRID, {})


def test_per_layer_plots_layers_from_one_on_a_log_scale():
    ax = plots.per_layer({"a": [1e-3, 1e-2, 1e-1], "b": np.array([0.5, 0.5])}, ylabel="grad")
    assert ax.get_yscale() == "log"
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["a", "b"]
    assert lines[0].get_xdata().tolist() == [1, 2, 3]
    assert ax.get_ylabel() == "grad"


def test_per_layer_refuses_non_positive_values_on_a_log_scale():
    with pytest.raises(ValueError, match="log scale"):
        plots.per_layer({"a": [1.0, 0.0]})
    ax = plots.per_layer({"a": [1.0, 0.0, -1.0]}, log=False)
    assert ax.get_yscale() == "linear"
