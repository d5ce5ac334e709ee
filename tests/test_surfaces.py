"""Unit tests for course_lib.surfaces: correct gradients, a runner that behaves, a plot."""

import numpy as np
import pytest

from course_lib import surfaces
from course_lib.gradcheck import numeric_grad


def gd(params, grads, state, lr=0.1):
    return params - lr * grads, state


def counting_gd(params, grads, state, lr=0.1):
    state = dict(state)
    state["t"] = state.get("t", 0) + 1
    return params - lr * grads, state


@pytest.mark.parametrize("surface", [
    surfaces.quadratic(20.0), surfaces.quadratic(5.0, angle=0.6), surfaces.rosenbrock(),
    surfaces.rosenbrock(a=0.5, b=10.0),
])
def test_gradient_matches_centred_differences(surface):
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = rng.uniform(-1.5, 1.5, size=2)
        want = numeric_grad(lambda q: float(surface.value(q)), p)
        np.testing.assert_allclose(surface.grad(p), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("surface", [surfaces.quadratic(), surfaces.rosenbrock()])
def test_minimum_is_a_stationary_zero(surface):
    assert float(surface.value(surface.minimum)) == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(surface.grad(surface.minimum), 0.0, atol=1e-12)
    assert float(surface.value(surface.start)) > 1.0


def test_value_and_grad_work_on_grids():
    s = surfaces.rosenbrock()
    grid = np.zeros((4, 5, 2))
    assert s.value(grid).shape == (4, 5)
    assert s.grad(grid).shape == (4, 5, 2)


def test_quadratic_hessian_has_the_requested_condition_number():
    A = surfaces.hessian(30.0, angle=0.4)
    eig = np.linalg.eigvalsh(A)
    assert eig.max() / eig.min() == pytest.approx(30.0)
    np.testing.assert_allclose(A, A.T)


def test_run_converges_with_a_stable_learning_rate():
    s = surfaces.quadratic(10.0)
    traj = surfaces.run(gd, s, steps=300, lr=0.15)
    assert traj.points.shape == (301, 2) and traj.values.shape == (301,)
    assert not traj.diverged
    np.testing.assert_array_equal(traj.points[0], s.start)
    assert traj.values[-1] < 1e-8 < traj.values[0]


def test_run_reports_divergence_above_two_over_lambda_max():
    s = surfaces.quadratic(10.0)
    stable = surfaces.run(gd, s, steps=200, lr=0.19)
    unstable = surfaces.run(gd, s, steps=2000, lr=0.21)
    assert not stable.diverged
    assert unstable.diverged and unstable.steps < 2000


def test_run_passes_state_and_schedules():
    s = surfaces.quadratic()
    seen = []

    def spy(params, grads, state, lr):
        seen.append((state.get("t", 0), lr))
        return counting_gd(params, grads, state, lr)

    surfaces.run(spy, s, steps=4, lr=lambda t: 0.1 / (t + 1))
    assert [t for t, _ in seen] == [0, 1, 2, 3]
    assert [lr for _, lr in seen] == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])


def test_run_does_not_touch_the_surface_start_and_noise_is_seeded():
    s = surfaces.quadratic()
    start = s.start.copy()
    a = surfaces.run(gd, s, steps=20, lr=0.01, noise=0.5, seed=3)
    b = surfaces.run(gd, s, steps=20, lr=0.01, noise=0.5, seed=3)
    c = surfaces.run(gd, s, steps=20, lr=0.01)
    np.testing.assert_array_equal(s.start, start)
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.array_equal(a.points, c.points)


def test_plot_contours_draws_every_trajectory():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for s in (surfaces.quadratic(), surfaces.rosenbrock()):
        trajs = {"gd": surfaces.run(gd, s, steps=10, lr=0.001), "raw": np.zeros((3, 2))}
        ax = surfaces.plot_contours(s, trajs, title="test")
        labels = [line.get_label() for line in ax.get_lines()]
        assert {"gd", "raw", "minimum"} <= set(labels)
        assert ax.get_title() == "test"
        plt.close(ax.figure)
