"""course_lib.data: the small data sets are reproducible, shaped as documented and offline."""

import subprocess
import sys

import numpy as np
import pytest

from course_lib import data


@pytest.mark.parametrize("make", [data.two_moons, data.spirals])
def test_synthetic_sets_are_seeded_and_shaped(make):
    X, y = make(n=101, seed=3)
    assert X.shape == (101, 2) and X.dtype == np.float64
    assert y.shape == (101,) and y.dtype == np.int64
    X2, y2 = make(n=101, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = make(n=101, seed=4)
    assert not np.array_equal(X, X3)
    counts = np.bincount(y)
    assert counts.max() - counts.min() <= 1


def test_spirals_classes_and_errors():
    _, y = data.spirals(n=90, classes=5)
    assert set(y.tolist()) == set(range(5))
    with pytest.raises(ValueError, match="at least 2"):
        data.spirals(classes=1)


def test_two_moons_is_not_linearly_separable_but_learnable():
    X, y = data.two_moons(n=400, noise=0.1)
    X1 = np.hstack([X, np.ones((len(X), 1))])
    w, *_ = np.linalg.lstsq(X1, 2.0 * y - 1.0, rcond=None)
    linear = np.mean((X1 @ w > 0) == y)
    assert 0.75 < linear < 0.95  # a line gets most of it, not all


def test_digits():
    X, y = data.digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert sorted(set(y.tolist())) == list(range(10))


def test_split_is_stratified_disjoint_and_seeded():
    X, y = data.digits()
    rows = np.arange(len(X))  # track where each example went
    parts = data.split(rows, y, val=0.15, test=0.15, seed=0)
    sizes = [len(parts.X_train), len(parts.X_val), len(parts.X_test)]
    assert sum(sizes) == len(X)
    assert len(set(parts.X_train) | set(parts.X_val) | set(parts.X_test)) == len(X)
    for Xp, yp in [(parts.X_train, parts.y_train), (parts.X_val, parts.y_val),
                   (parts.X_test, parts.y_test)]:
        np.testing.assert_array_equal(y[Xp], yp)
        share = np.bincount(yp, minlength=10) / len(yp)
        overall = np.bincount(y, minlength=10) / len(y)
        assert np.abs(share - overall).max() < 0.01
    assert abs(len(parts.X_test) / len(X) - 0.15) < 0.01
    again = data.split(rows, y, seed=0)
    np.testing.assert_array_equal(again.X_val, parts.X_val)
    other = data.split(rows, y, seed=1)
    assert not np.array_equal(other.X_val, parts.X_val)
    X_train, y_train, *_ = parts  # a Split unpacks like a tuple
    assert X_train is parts.X_train


def test_split_without_validation_and_errors():
    y = np.repeat(np.arange(3), 10)
    parts = data.split(np.arange(30), y, val=0.0, test=0.2)
    assert len(parts.X_val) == 0 and len(parts.X_test) == 6
    with pytest.raises(ValueError, match="val \\+ test < 1"):
        data.split(np.arange(30), y, val=0.5, test=0.5)
    with pytest.raises(ValueError, match="30 labels"):
        data.split(np.arange(20), y)


def test_per_class():
    y = np.array([0, 1, 2] * 10 + [2, 2])
    idx = data.per_class(y, 4, seed=1)
    assert idx.dtype == np.int64 and len(idx) == 12
    assert np.bincount(y[idx]).tolist() == [4, 4, 4]
    assert len(set(idx.tolist())) == 12
    np.testing.assert_array_equal(idx, data.per_class(y, 4, seed=1))
    assert not np.array_equal(idx, data.per_class(y, 4, seed=2))
    assert list(y[idx]) == sorted(y[idx])
    with pytest.raises(ValueError, match="only 10 examples"):
        data.per_class(y, 11)
    with pytest.raises(ValueError, match="at least 1"):
        data.per_class(y, 0)


def test_import_is_cheap():
    code = "import sys, course_lib.data; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
