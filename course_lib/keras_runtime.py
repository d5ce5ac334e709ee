"""Running one Keras model on any backend: the choices that depend on where it runs.

``KERAS_BACKEND`` may be tensorflow, jax or torch, on a CPU or a GPU. What is right differs:
mixed precision pays only on a GPU and breaks an LSTM under JAX; XLA compilation pays only for
long runs; seeding must reach the backend's own generator. Each function here makes one such
choice, so that the model code in :mod:`course_lib.text_models` and :mod:`course_lib.mlm` is the
same everywhere.

- :func:`precision_for`: the dtype policy for a model's layers.
- :func:`jit_for`: what to pass as ``jit_compile``.
- :func:`seed_all`: repeatable initial weights, dropout and shuffling.
- :func:`reset_optimizer`: train one compiled model again from new weights, without recompiling.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["jit_for", "precision_for", "reset_optimizer", "seed_all"]


def _on_gpu() -> bool:
    from . import device

    return bool(device.gpus())


def precision_for(kind: str = "transformer", profile: str | None = None) -> str:
    """The dtype policy to give a model's layers: ``"mixed_bfloat16"`` or ``"float32"``.

    Mixed precision (bfloat16 arithmetic, float32 weights) is used only where it is correct and
    pays: in the full profile, on a GPU, for the Transformer. On a CPU bfloat16 is slower, and
    an LSTM in ``mixed_bfloat16`` fails under JAX ("Unknown output type bfloat16"), so the LSTM
    always runs in float32. The output layer of every model is float32 whatever this says.
    """
    from . import device

    profile = profile or device.profile()
    if kind == "transformer" and profile == "full" and _on_gpu():
        return "mixed_bfloat16"
    return "float32"


def jit_for(profile: str | None = None) -> bool | str:
    """What to pass as ``jit_compile`` to ``model.compile``.

    JAX always compiles (True). TensorFlow's default ("auto") resolves to no XLA on a CPU;
    forcing XLA made masked-LM epochs about 25 % faster there once compiled, but compiling costs
    seconds, which the quick profile cannot spare: True in the full and checkpoint profiles
    (long runs), "auto" in quick.
    The torch backend gets False (its compiler is a separate, slower-to-start path).
    """
    from . import device

    backend = keras.config.backend()
    if backend == "jax":
        return True
    if backend == "torch":
        return False
    profile = profile or device.profile()
    return True if profile in ("full", "checkpoint") else "auto"


def seed_all(seed: int) -> None:
    """Make the next model's initial weights, dropout and shuffling repeatable.

    Clears Keras' global state (names, the global seed generator), then seeds Python, NumPy and
    the backend through :func:`course_lib.device.seed_everything` (which leaves TensorFlow alone
    under JAX).
    """
    from . import device

    keras.utils.clear_session(free_memory=False)
    device.seed_everything(seed, keras=True)


def reset_optimizer(optimizer: keras.optimizers.Optimizer, learning_rate: float) -> None:
    """Forget an optimizer's history (step count, moment estimates) and set its learning rate.

    This lets one compiled model train many times from different starting weights without
    compiling (and tracing) its training step again. Works on every backend.
    """
    for v in optimizer.variables:
        if not v.path.endswith("learning_rate"):
            v.assign(ops.zeros(v.shape, dtype=v.dtype))
    optimizer.learning_rate = learning_rate
