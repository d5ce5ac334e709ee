"""course_lib.nn: every backward pass agrees with centred differences; optimizers step exactly.

Gradients are checked in float64 on random shapes and seeds with course_lib.gradcheck; a
correct layer scores about 1e-10, and the tolerance is 1e-7. Tests at the end break a layer on
purpose and assert that the same check then fails, so a passing check means something.
"""

import numpy as np
import pytest

from course_lib import gradcheck, nn

TOL = 1e-7
SEEDS = range(4)


def _shapes(seed):
    rng = np.random.default_rng(seed)
    n, d_in, d_out = (int(v) for v in rng.integers(1, 9, size=3))
    return rng, n, d_in, d_out


def _away_from_zero(x, margin=1e-3):
    """Move entries within margin of 0 away from it: ReLU's kink would fool the check."""
    return np.where(np.abs(x) < margin, np.copysign(margin, x) * 10, x)


def _check_input_grad(layer, x, rng):
    """dL/dx for L = sum(layer(x) * r), a random linear read-out of the output."""
    r = rng.normal(size=layer.forward(x).shape)
    layer.forward(x)
    dx = layer.backward(r)

    def loss():
        return np.sum(layer.forward(x) * r)

    return gradcheck.check_gradients(loss, {"x": x}, {"x": dx}, tol=TOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("init", ["he", "glorot"])
def test_dense_gradients(seed, init):
    rng, n, d_in, d_out = _shapes(seed)
    layer = nn.Dense(d_in, d_out, rng, init=init)
    layer.params["b"][:] = rng.normal(size=d_out)
    x = rng.normal(size=(n, d_in))
    r = rng.normal(size=(n, d_out))

    def loss():
        return np.sum(layer.forward(x) * r)

    layer.forward(x)
    dx = layer.backward(r)
    report = gradcheck.check_gradients(loss, {**layer.params, "x": x}, {**layer.grads, "x": dx},
                                       tol=TOL)
    assert report.passed, str(report)
    assert report.max_error < TOL


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("cls", [nn.ReLU, nn.Sigmoid, nn.Tanh])
def test_activation_gradients(seed, cls):
    rng, n, d, _ = _shapes(seed)
    x = _away_from_zero(rng.normal(scale=3.0, size=(n, d)))
    report = _check_input_grad(cls(), x, rng)
    assert report.passed, str(report)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("labels", ["int", "soft"])
def test_softmax_cross_entropy_gradient(seed, labels):
    rng, n, _, k = _shapes(seed)
    k = k + 1  # at least two classes
    z = rng.normal(scale=3.0, size=(n, k))
    y = rng.integers(0, k, size=n) if labels == "int" else rng.dirichlet(np.ones(k), size=n)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn.forward(z, y)
    report = gradcheck.check_gradients(lambda: loss_fn.forward(z, y), {"z": z},
                                       {"z": loss_fn.backward()}, tol=TOL)
    assert report.passed, str(report)


def test_softmax_cross_entropy_values_and_stability():
    loss_fn = nn.SoftmaxCrossEntropy()
    z = np.array([[0.0, 0.0, 0.0, 0.0]])
    assert loss_fn(z, np.array([2])) == pytest.approx(np.log(4))
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        big = loss_fn(np.array([[1000.0, 0.0], [0.0, -1000.0]]), np.array([1, 1]))
        grad = loss_fn.backward()
    assert big == pytest.approx((1000.0 + 1000.0) / 2)
    np.testing.assert_allclose(grad, [[0.5, -0.5], [0.5, -0.5]], atol=1e-12)
    # integer labels and their one-hot rows give the same loss
    z = np.random.default_rng(1).normal(size=(5, 3))
    y = np.array([0, 2, 1, 1, 0])
    assert loss_fn(z, y) == pytest.approx(loss_fn(z, np.eye(3)[y]))


@pytest.mark.parametrize("seed", SEEDS)
def test_mse_gradient(seed):
    rng, n, d, _ = _shapes(seed)
    pred, target = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    loss_fn = nn.MeanSquaredError()
    assert loss_fn(pred, target) == pytest.approx(np.mean((pred - target) ** 2))
    report = gradcheck.check_gradients(lambda: loss_fn.forward(pred, target), {"p": pred},
                                       {"p": loss_fn.backward()}, tol=TOL)
    assert report.passed, str(report)


def _random_model(seed):
    rng = np.random.default_rng(seed)
    sizes = [int(v) for v in rng.integers(2, 7, size=int(rng.integers(2, 5)))]
    acts = [nn.ReLU, nn.Sigmoid, nn.Tanh]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Dense(a, b, rng, init="glorot"))
        if i < len(sizes) - 2:
            layers.append(acts[int(rng.integers(0, 3))]())
    for layer in layers:  # non-zero biases, so their gradients are not trivially tested
        if "b" in layer.params:
            layer.params["b"][:] = rng.normal(scale=0.5, size=layer.params["b"].shape)
    return rng, nn.Sequential(*layers), sizes


@pytest.mark.parametrize("seed", range(8))
def test_sequential_gradients_classifier(seed):
    rng, model, sizes = _random_model(seed)
    n = int(rng.integers(1, 10))
    x = rng.normal(size=(n, sizes[0]))
    y = rng.integers(0, sizes[-1], size=n)
    loss_fn = nn.SoftmaxCrossEntropy()

    def loss():
        return loss_fn.forward(model.forward(x), y)

    loss()
    dx = model.backward(loss_fn.backward())
    params = {**model.params, "x": x}
    grads = {**model.grads, "x": dx}
    report = gradcheck.check_gradients(loss, params, grads, tol=TOL)
    # ReLU kinks: a pre-activation within h of 0 would fail a correct gradient. Random
    # normal inputs make that vanishingly rare; the check below would show it by name.
    assert report.passed, f"{model}\n{report}"


@pytest.mark.parametrize("seed", range(4))
def test_sequential_gradients_autoencoder(seed):
    rng = np.random.default_rng(100 + seed)
    d, h = int(rng.integers(3, 9)), int(rng.integers(2, 5))
    model = nn.Sequential(nn.Dense(d, h, rng), nn.Tanh(), nn.Dense(h, d, rng), nn.Sigmoid())
    x = rng.uniform(size=(6, d))
    loss_fn = nn.MeanSquaredError()

    def loss():
        return loss_fn.forward(model.forward(x), x)

    loss()
    model.backward(loss_fn.backward())
    report = gradcheck.check_gradients(loss, model.params, model.grads, tol=TOL)
    assert report.passed, str(report)


def test_sequential_params_are_shared_and_named():
    rng = np.random.default_rng(0)
    first = nn.Dense(3, 4, rng)
    model = nn.Sequential(first, nn.ReLU(), nn.Dense(4, 2, rng))
    assert list(model.params) == ["0.W", "0.b", "2.W", "2.b"]
    assert model.params["0.W"] is first.params["W"]
    copy = model.copy()
    copy.params["0.W"][:] = 0.0
    assert np.any(first.params["W"] != 0.0), "copy() must not share arrays with the original"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_are_kept(dtype):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Dense(5, 4, rng, dtype=dtype), nn.Tanh(), nn.Dense(4, 4, rng,
                          dtype=dtype), nn.ReLU(), nn.Dense(4, 3, rng, dtype=dtype), nn.Sigmoid(),
                          nn.Dense(3, 3, rng, dtype=dtype))
    x = rng.normal(size=(6, 5)).astype(dtype)
    out = model.forward(x)
    assert out.dtype == dtype
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn.forward(out, np.array([0, 1, 2, 0, 1, 2]))
    dx = model.backward(loss_fn.backward())
    assert dx.dtype == dtype
    opt = nn.Adam()
    opt.step(model.params, model.grads)
    assert all(p.dtype == dtype for p in model.params.values())


def test_shape_errors_say_what_to_do():
    rng = np.random.default_rng(0)
    layer = nn.Dense(4, 2, rng)
    with pytest.raises(ValueError, match=r"expects 4 features.*got shape \(3, 5\)"):
        layer.forward(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"x\[None, :\]"):
        layer.forward(np.zeros(4))
    with pytest.raises(ValueError, match="reshape"):
        layer.forward(np.zeros((2, 2, 2)))
    layer.forward(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"gradient of shape \(3, 2\)"):
        layer.backward(np.zeros((3, 3)))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Dense(2, 2, rng).backward(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="integer dtype"):
        nn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"0\.\.2"):
        nn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="same shape"):
        nn.MeanSquaredError().forward(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="default_rng"):
        nn.Dense(2, 2, 0)


def test_initialisations_have_the_right_scale():
    rng = np.random.default_rng(0)
    he = nn.Dense(400, 300, rng, init="he").params["W"]
    glorot = nn.Dense(400, 300, rng, init="glorot").params["W"]
    assert he.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert np.abs(glorot).max() <= np.sqrt(6 / 700)
    assert glorot.std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)  # uniform: limit / sqrt 3
    again = nn.Dense(400, 300, np.random.default_rng(0), init="he").params["W"]
    np.testing.assert_array_equal(he, again)


def test_sgd_plain_and_momentum_by_hand():
    p = {"w": np.array([1.0, -2.0])}
    g = {"w": np.array([0.5, 1.0])}
    nn.SGD(lr=0.1).step(p, g)
    np.testing.assert_allclose(p["w"], [0.95, -2.1])
    p = {"w": np.array([1.0, -2.0])}
    opt = nn.SGD(lr=0.1, momentum=0.9)
    opt.step(p, g)  # v = -0.1 g = [-0.05, -0.1]
    np.testing.assert_allclose(p["w"], [0.95, -2.1])
    opt.step(p, g)  # v = 0.9 v - 0.1 g = [-0.095, -0.19]
    np.testing.assert_allclose(p["w"], [0.855, -2.29])


def test_adam_matches_a_hand_computed_step():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    p = {"w": np.array([1.0, -1.0, 0.5])}
    g1, g2 = np.array([0.2, -0.4, 0.0]), np.array([0.1, 0.3, -1.0])
    opt = nn.Adam(lr=lr, beta1=b1, beta2=b2, eps=eps)
    opt.step(p, {"w": g1})
    # step 1: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps)
    want = np.array([1.0 - lr * 0.2 / (0.2 + eps), -1.0 + lr * 0.4 / (0.4 + eps), 0.5])
    np.testing.assert_allclose(p["w"], want, rtol=1e-15, atol=1e-15)
    opt.step(p, {"w": g2})
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    m_hat, v_hat = m / (1 - b1**2), v / (1 - b2**2)
    want = want - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(p["w"], want, rtol=1e-14)
    # the second step by numbers, written out for the third coordinate
    # (its first gradient was 0: m = 0.1 * -1.0, v = 0.001 * 1.0 after two steps)
    m_hat3, v_hat3 = -0.1 / (1 - 0.81), 0.001 / (1 - 0.999**2)
    assert p["w"][2] == pytest.approx(0.5 - lr * m_hat3 / (np.sqrt(v_hat3) + eps), rel=1e-12)


def test_adam_trains_a_subset_of_parameters_only():
    p = {"a": np.ones(2), "b": np.ones(2)}
    g = {"a": np.ones(2), "b": np.ones(2)}
    nn.Adam(lr=0.1).step({"a": p["a"]}, g)
    np.testing.assert_allclose(p["b"], 1.0)
    assert np.all(p["a"] < 1.0)
    with pytest.raises(ValueError, match="No gradient"):
        nn.SGD().step(p, {"a": g["a"]})


def test_adam_agrees_with_keras():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(3)
    start = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(20)]
    ours = {"w": start.astype(np.float64)}
    opt = nn.Adam(lr=0.01, eps=1e-7)
    var = keras.Variable(start)
    kopt = keras.optimizers.Adam(learning_rate=0.01, epsilon=1e-7)
    for g in grads:
        opt.step(ours, {"w": g.astype(np.float64)})
        kopt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
    theirs = keras.ops.convert_to_numpy(var)
    # Keras adds epsilon before the bias correction and computes in float32.
    np.testing.assert_allclose(ours["w"], theirs, rtol=1e-5, atol=1e-5)


def test_minibatches_cover_every_index_once():
    rng = np.random.default_rng(0)
    batches = list(nn.minibatches(10, 4, rng))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    np.testing.assert_array_equal(np.concatenate(batches),
                                  np.random.default_rng(0).permutation(10))


def test_training_reduces_the_loss_and_fits_a_simple_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)  # XOR-like: needs the hidden layer
    model = nn.Sequential(nn.Dense(2, 16, rng), nn.ReLU(), nn.Dense(16, 2, rng))
    loss_fn, opt = nn.SoftmaxCrossEntropy(), nn.Adam(lr=0.02)
    first = nn.train_epoch(model, loss_fn, opt, X, y, 32, rng)
    for _ in range(60):
        last = nn.train_epoch(model, loss_fn, opt, X, y, 32, rng)
    assert last < first / 3
    assert np.mean(model.forward(X).argmax(1) == y) > 0.95


# --- the checks can fail: break a layer and the same gradient check must say so ------------

class _DenseHalvedWeightGrad(nn.Dense):
    def backward(self, grad_out):
        dx = super().backward(grad_out)
        self.grads["W"] = self.grads["W"] * 0.5  # as if averaged once too often
        return dx


class _ReLUWrongAtNegatives(nn.ReLU):
    def backward(self, grad_out):
        return grad_out * (self.mask + 0.1 * ~self.mask)


def test_a_wrong_dense_gradient_is_caught():
    rng = np.random.default_rng(0)
    layer = _DenseHalvedWeightGrad(3, 2, rng)
    x, r = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    layer.forward(x)
    layer.backward(r)
    report = gradcheck.check_gradients(lambda: np.sum(layer.forward(x) * r), layer.params,
                                       layer.grads, tol=TOL)
    assert not report["W"].passed and report["b"].passed
    assert "0.5 times" in report["W"].hint


def test_a_wrong_activation_gradient_is_caught():
    rng = np.random.default_rng(0)
    x = _away_from_zero(rng.normal(size=(5, 4)))
    assert not _check_input_grad(_ReLUWrongAtNegatives(), x, rng).passed


def test_relu_kink_fools_the_check():
    """Not a bug in ReLU: at a kink the centred difference itself is wrong."""
    x = np.array([[1e-6, -2.0, 3.0]])
    report = _check_input_grad(nn.ReLU(), x, np.random.default_rng(0))
    assert not report.passed
    assert report["x"].worst_index == (0, 0)
