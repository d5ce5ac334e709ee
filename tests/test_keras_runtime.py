"""course_lib.keras_runtime: the precision, compilation and seeding choices, and restarting an
optimizer without recompiling."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from course_lib import keras_runtime  # noqa: E402
from course_lib import text_models as tm  # noqa: E402


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_precision_and_jit_choices(monkeypatch):
    monkeypatch.setattr(keras_runtime, "_on_gpu", lambda: True)
    assert keras_runtime.precision_for("transformer", "full") == "mixed_bfloat16"
    assert keras_runtime.precision_for("lstm", "full") == "float32"
    assert keras_runtime.precision_for("transformer", "quick") == "float32"
    monkeypatch.setattr(keras_runtime, "_on_gpu", lambda: False)
    assert keras_runtime.precision_for("transformer", "full") == "float32"
    backend = keras.config.backend()
    assert keras_runtime.jit_for("quick") == {"jax": True, "torch": False}.get(backend, "auto")


def test_reset_optimizer_forgets_history_and_sets_the_rate():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    opt = keras.optimizers.AdamW(1e-3)
    model.compile(optimizer=opt, loss="mse")
    model.train_on_batch(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"))
    assert int(_np(opt.iterations)) == 1
    keras_runtime.reset_optimizer(opt, 5e-4)
    assert int(_np(opt.iterations)) == 0
    assert float(_np(opt.learning_rate)) == pytest.approx(5e-4)
    assert all(not _np(v).any() for v in opt.variables if "momentum" in v.path)


def test_seed_all_makes_weights_repeatable():
    def weights():
        keras_runtime.seed_all(3)
        return tm.transformer_encoder(10, 4, width=8, depth=1, heads=2).get_weights()

    for a, b in zip(weights(), weights()):
        np.testing.assert_array_equal(a, b)
