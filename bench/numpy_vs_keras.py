"""Time per epoch: the course_lib.nn MLP against the identical Keras model, on the same data.

Both train the digits MLP of notebook 05 (64 -> hidden ReLU -> 10, softmax cross-entropy from
logits, Adam) in float32 on the CPU, with the same initial weights, batch size and number of
epochs, in one run of this script. Keras trains through one ``model.fit`` call and a callback
records when each epoch starts and ends; NumPy trains with ``course_lib.nn.train_epoch``. The first
epoch of each is a warm-up (Keras traces its training function then) and is not counted; the
figure per side is the median of the remaining epochs.

Usage::

    python bench/numpy_vs_keras.py [--epochs 10] [--batch-size 32] [--hidden 64] [--blas-threads 1]

Prints both times per epoch and the ratio NumPy / Keras (below 1: NumPy is faster).

``--blas-threads`` caps NumPy's BLAS threads while NumPy trains (through threadpoolctl, which
scikit-learn installs). It matters more than one would think: on a busy two-core machine,
OpenBLAS splitting a mid-sized product (a batch of 256 here) across threads made NumPy epochs
between about 6 and 30 times slower than with one thread, depending on what else was running.
Keras keeps its own thread pools either way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from course_lib import data, nn


def numpy_epochs(X, y, init, epochs, batch_size, lr, seed):
    rng = np.random.default_rng(seed)
    d, h = init[0].shape
    model = nn.Sequential(nn.Dense(d, h, rng, dtype=np.float32), nn.ReLU(),
                          nn.Dense(h, init[2].shape[1], rng, dtype=np.float32))
    for p, value in zip(model.params.values(), init):
        p[:] = value
    loss_fn, opt = nn.SoftmaxCrossEntropy(), nn.Adam(lr=lr, eps=1e-7)
    times, losses = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        losses.append(nn.train_epoch(model, loss_fn, opt, X, y, batch_size, rng))
        times.append(time.perf_counter() - start)
    return times, losses


def keras_epochs(X, y, init, epochs, batch_size, lr):
    import keras

    d, h = init[0].shape
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(h, activation="relu"),
                              keras.layers.Dense(init[2].shape[1])])
    model.set_weights(init)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, epsilon=1e-7),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    history = model.fit(X, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0,
                        callbacks=[timer])
    return timer.times, history.history["loss"], keras.__version__, keras.backend.backend()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="cap NumPy's BLAS threads while NumPy trains (default: no cap)")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is a warm-up)")

    X, y = data.digits()
    split = data.split(X, y, seed=args.seed)
    X_train, y_train = split.X_train.astype(np.float32), split.y_train
    rng = np.random.default_rng(args.seed)
    init = [nn.Dense(64, args.hidden, rng).params["W"], np.zeros(args.hidden),
            nn.Dense(args.hidden, 10, rng, init="glorot").params["W"], np.zeros(10)]
    init = [a.astype(np.float32) for a in init]

    cap = (threadpool_limits(limits=args.blas_threads, user_api="blas")
           if args.blas_threads else contextlib.nullcontext())
    with cap:
        blas = [f"{i['internal_api']} x{i['num_threads']}" for i in threadpool_info()
                if i["user_api"] == "blas"]
        np_times, np_losses = numpy_epochs(X_train, y_train, init, args.epochs,
                                           args.batch_size, args.lr, args.seed)
    k_times, k_losses, version, backend = keras_epochs(X_train, y_train, init, args.epochs,
                                                       args.batch_size, args.lr)
    t_np, t_k = float(np.median(np_times[1:])), float(np.median(k_times[1:]))
    steps = -(-len(X_train) // args.batch_size)
    print(f"digits MLP 64-{args.hidden}-10, {len(X_train)} training examples, batch "
          f"{args.batch_size} ({steps} steps per epoch), Adam, float32, "
          f"{args.epochs} epochs (first one not timed), {os.cpu_count()} CPU cores")
    print(f"Keras {version} ({backend} backend): final training loss {k_losses[-1]:.4f}")
    print(f"course_lib.nn (NumPy {np.__version__}, BLAS {', '.join(blas) or 'unknown'}): "
          f"final training loss {np_losses[-1]:.4f}")
    print(f"time per epoch: NumPy {t_np * 1e3:.1f} ms, Keras {t_k * 1e3:.1f} ms")
    print(f"ratio NumPy / Keras = {t_np / t_k:.2f} "
          f"({'NumPy is faster' if t_np < t_k else 'Keras is faster'})")
    return t_np / t_k


if __name__ == "__main__":
    main()
