"""A small NumPy layer library: the network of notebook 04, packaged for notebooks 05 and 06.

Every layer has the same two methods, and that is all backpropagation needs:

- ``forward(x)`` computes the output and remembers what ``backward`` will need;
- ``backward(grad_out)`` takes dLoss/d(output) and returns dLoss/d(input). A layer with
  parameters also stores dLoss/d(parameter) in ``layer.grads``, under the parameter's name.

Arrays are batches with one example per row, shape (N, features). Losses take the mean over
the batch, so the gradient a loss hands back already carries the factor 1/N and no layer
divides by N again. Parameters are float64 unless a layer is built with another ``dtype``;
activations and losses keep the dtype of what they are given.

Typical use::

    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Dense(64, 32, rng), nn.ReLU(), nn.Dense(32, 10, rng))
    loss_fn, opt = nn.SoftmaxCrossEntropy(), nn.Adam(lr=1e-3)
    loss = nn.train_step(model, loss_fn, opt, X_batch, y_batch)   # forward, backward, update

Optimizers update the parameter arrays in place, so layers and optimizers share one copy.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping

import numpy as np

__all__ = [
    "Adam", "Dense", "Layer", "MeanSquaredError", "ReLU", "SGD", "Sequential", "Sigmoid",
    "SoftmaxCrossEntropy", "Tanh", "minibatches", "train_epoch", "train_step",
]


def _batch(x, what: str, features: int | None = None) -> np.ndarray:
    """x as an array of shape (N, features); a ValueError that says how to fix anything else."""
    x = np.asarray(x)
    if x.ndim != 2:
        hint = (" For a single example use x[None, :] (or x.reshape(1, -1))."
                if x.ndim == 1 else " Flatten each example first: x.reshape(len(x), -1).")
        raise ValueError(f"{what} expects a batch of shape (N, features), got shape {x.shape}."
                         + hint)
    if features is not None and x.shape[1] != features:
        raise ValueError(
            f"{what} expects {features} features per example, got shape {x.shape}. Check the "
            f"previous layer's output size (or the data's number of columns)."
        )
    return x


class Layer:
    """Base class. ``params`` and ``grads`` map names to arrays; both are empty without weights."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def _saved(self, name: str):
        value = getattr(self, name, None)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward: run "
                               "forward on a batch first, then backward on that batch's gradient.")
        return value


class Dense(Layer):
    """A fully connected layer, Z = X W + b, that is z_nj = sum_k x_nk w_kj + b_j.

    n_in, n_out: features in and out. rng: a ``np.random.Generator`` (the only source of
    randomness, so a seed fixes the weights). init: ``"he"`` (normal, std sqrt(2 / n_in), for
    ReLU) or ``"glorot"`` (uniform in +-sqrt(6 / (n_in + n_out)), for tanh and sigmoid).
    Biases start at zero. W has shape (n_in, n_out), b shape (n_out,).

    Backward, for an upstream gradient dZ of shape (N, n_out):
    dW = X^T dZ (n_in, n_out), db = sum of dZ over the batch (n_out,), dX = dZ W^T (N, n_in).
    """

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, *, init: str = "he",
                 dtype=np.float64):
        super().__init__()
        if not isinstance(rng, np.random.Generator):
            raise ValueError("Dense needs a random generator: pass np.random.default_rng(seed).")
        if init == "he":
            W = rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))
        elif init == "glorot":
            limit = np.sqrt(6.0 / (n_in + n_out))
            W = rng.uniform(-limit, limit, size=(n_in, n_out))
        else:
            raise ValueError(f"init must be 'he' or 'glorot', got {init!r}.")
        self.n_in, self.n_out = n_in, n_out
        self.params = {"W": W.astype(dtype), "b": np.zeros(n_out, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.x = None

    def forward(self, x):
        """x: (N, n_in) -> Z: (N, n_out)."""
        self.x = _batch(x, f"Dense({self.n_in} -> {self.n_out})", self.n_in)
        return self.x @ self.params["W"] + self.params["b"]

    def backward(self, grad_out):
        """grad_out = dL/dZ, (N, n_out) -> dL/dX, (N, n_in); fills grads['W'], grads['b']."""
        x = self._saved("x")
        grad_out = np.asarray(grad_out)
        if grad_out.shape != (len(x), self.n_out):
            raise ValueError(f"Dense({self.n_in} -> {self.n_out}).backward expects a gradient of "
                             f"shape {(len(x), self.n_out)} (the output's shape), got "
                             f"{grad_out.shape}.")
        self.grads["W"] = x.T @ grad_out
        self.grads["b"] = grad_out.sum(axis=0)
        return grad_out @ self.params["W"].T

    def __repr__(self):
        return f"Dense({self.n_in} -> {self.n_out})"


class ReLU(Layer):
    """max(0, z) element-wise; the derivative is 1 where z > 0 and 0 elsewhere (0 at z = 0)."""

    def forward(self, x):
        x = np.asarray(x)
        self.mask = x > 0
        return np.maximum(x, 0)

    def backward(self, grad_out):
        return grad_out * self._saved("mask")

    def __repr__(self):
        return "ReLU()"


class Sigmoid(Layer):
    """1 / (1 + e^(-z)) without overflow; its derivative a (1 - a) needs only the output a."""

    def forward(self, x):
        x = np.asarray(x)
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        self.out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, grad_out):
        a = self._saved("out")
        return grad_out * a * (1 - a)

    def __repr__(self):
        return "Sigmoid()"


class Tanh(Layer):
    """tanh(z); its derivative 1 - a^2 needs only the output a."""

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, grad_out):
        a = self._saved("out")
        return grad_out * (1 - a * a)

    def __repr__(self):
        return "Tanh()"


class Sequential(Layer):
    """Layers applied in order; backward visits them in reverse.

    ``params`` and ``grads`` are flat dictionaries named "<layer index>.<name>", e.g. "0.W",
    so an optimizer sees one model the way it sees one layer. They are rebuilt on each access
    and hold the layers' own arrays (not copies).
    """

    def __init__(self, *layers: Layer):
        self.layers = list(layers)

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.params.items()}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in layer.grads.items()}

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out):
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def copy(self) -> Sequential:
        """An independent deep copy: training the copy leaves this model unchanged."""
        return copy.deepcopy(self)

    def __repr__(self):
        return "Sequential(" + ", ".join(map(repr, self.layers)) + ")"


class SoftmaxCrossEntropy:
    """Mean categorical cross-entropy computed from logits, stable for any logit size.

    forward(logits, y): logits (N, K); y either integer labels (N,) in 0..K-1 or target
    probabilities (N, K) whose rows sum to 1. Returns the mean over the batch of
    logsumexp(z_n) - sum_k y_nk z_nk, a float. backward() returns (softmax(z) - Y) / N, (N, K).
    """

    def forward(self, logits, y):
        z = _batch(logits, "SoftmaxCrossEntropy (logits)")
        y = np.asarray(y)
        n, k = z.shape
        if y.ndim == 1:
            if y.shape[0] != n or y.dtype.kind not in "iu":
                raise ValueError(f"Integer labels must have shape ({n},) and an integer dtype, "
                                 f"got shape {y.shape}, dtype {y.dtype}. Use y.astype(int).")
            if n and (y.min() < 0 or y.max() >= k):
                raise ValueError(f"Labels must lie in 0..{k - 1} for {k} logits per example, "
                                 f"got values from {y.min()} to {y.max()}.")
            target = np.zeros_like(z)
            target[np.arange(n), y] = 1
        elif y.shape == z.shape:
            target = y.astype(z.dtype)
        else:
            raise ValueError(f"Targets must be labels of shape ({n},) or probabilities of shape "
                             f"{z.shape}, got {y.shape}.")
        shifted = z - z.max(axis=1, keepdims=True)  # exp only sees values <= 0
        log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.probs = np.exp(shifted - log_norm)
        self.target = target
        return float(-(target * (shifted - log_norm)).sum() / n)

    def backward(self):
        return (self.probs - self.target) / len(self.probs)

    __call__ = forward


class MeanSquaredError:
    """Mean over every entry of (prediction - target)^2, as keras.losses.MeanSquaredError.

    forward(pred, target): both (N, D). Returns a float. backward() returns
    2 (pred - target) / (N D), shape (N, D).
    """

    def forward(self, pred, target):
        pred = _batch(pred, "MeanSquaredError (predictions)")
        target = np.asarray(target)
        if target.shape != pred.shape:
            raise ValueError(f"Predictions {pred.shape} and targets {target.shape} must have the "
                             "same shape.")
        self.diff = pred - target
        return float(np.mean(self.diff ** 2))

    def backward(self):
        return 2 * self.diff / self.diff.size

    __call__ = forward


class Optimizer:
    """Shared interface: ``step(params, grads)`` updates every array in ``params`` in place.

    params, grads: dictionaries name -> array with the same keys and shapes (a model's
    ``params`` and ``grads``). State (velocities, moments) is kept per name, so one optimizer
    serves one model; pass a subset of the names to train only those parameters.
    """

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        for name, p in params.items():
            if name not in grads:
                raise ValueError(f"No gradient for parameter {name!r}: run backward first.")
            g = grads[name]
            if g.shape != p.shape:
                raise ValueError(f"Gradient for {name!r} has shape {g.shape}, the parameter "
                                 f"{p.shape}.")
            self._update(name, p, g)

    def _update(self, name, p, g):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum as in keras.optimizers.SGD.

    v <- momentum * v - lr * g;  p <- p + v   (plain SGD when momentum = 0: p <- p - lr * g).
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0):
        self.lr, self.momentum = lr, momentum
        self.velocity: dict[str, np.ndarray] = {}

    def _update(self, name, p, g):
        if self.momentum == 0.0:
            p -= self.lr * g
            return
        v = self.velocity.setdefault(name, np.zeros_like(p))
        v *= self.momentum
        v -= self.lr * g
        p += v


class Adam(Optimizer):
    """Adam, Algorithm 1 of Kingma & Ba (2015), bias-corrected.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  m_hat = m / (1 - b1^t);
    v_hat = v / (1 - b2^t);  p <- p - lr * m_hat / (sqrt(v_hat) + eps).
    t counts calls to ``step`` (starting at 1). Keras adds its epsilon to sqrt(v) before the
    bias correction instead; with eps this small the two differ far below float32 precision.
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params, grads):
        self.t += 1
        # The bias corrections are the same for every array: compute them once per step.
        self._c1 = 1.0 / (1.0 - self.beta1 ** self.t)
        self._c2 = 1.0 / (1.0 - self.beta2 ** self.t)
        super().step(params, grads)

    def _update(self, name, p, g):
        m = self.m.setdefault(name, np.zeros_like(p))
        v = self.v.setdefault(name, np.zeros_like(p))
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * np.square(g)
        denom = np.sqrt(v * self._c2)  # sqrt(v_hat)
        denom += self.eps
        p -= (self.lr * self._c1) * m / denom  # lr * m_hat / (sqrt(v_hat) + eps)


def minibatches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays covering 0..n-1 once in a random order: one ``rng.permutation(n)`` cut into
    consecutive slices of ``batch_size`` (the last one may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def train_step(model: Layer, loss_fn, optimizer: Optimizer, x, y) -> float:
    """One update on one batch: forward, loss, backward, optimizer step. Returns the loss
    (computed before the update)."""
    loss = loss_fn.forward(model.forward(x), y)
    model.backward(loss_fn.backward())
    optimizer.step(model.params, model.grads)
    return loss


def train_epoch(model: Layer, loss_fn, optimizer: Optimizer, X, Y, batch_size: int,
                rng: np.random.Generator) -> float:
    """One pass over (X, Y) in shuffled mini-batches (see :func:`minibatches`).

    X: (N, features); Y: labels or targets with N rows. Returns the mean training loss over
    the epoch, each batch weighted by its size.
    """
    total = 0.0
    for idx in minibatches(len(X), batch_size, rng):
        total += train_step(model, loss_fn, optimizer, X[idx], Y[idx]) * len(idx)
    return total / len(X)
