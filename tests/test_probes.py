"""course_lib.probes: the encoder-block probes answer correctly for a right and a wrong block."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from course_lib import probes  # noqa: E402
from course_lib import text_models as tm  # noqa: E402

X = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
IDS = np.array([[4, 5, 6, 0, 0], [4, 5, 6, 7, 8]], dtype="int32")


def post_norm_block(x, mask, heads, ff_width, dropout=0.1, dtype=None, name="block"):
    """The same layers as the course's block, in post-norm order: LN(x + f(x))."""
    width = x.shape[-1]
    h = keras.layers.MultiHeadAttention(heads, key_dim=width // heads, dtype=dtype,
                                        name=f"{name}_attention")(x, x, attention_mask=mask)
    h = keras.layers.Dropout(dropout, name=f"{name}_drop1")(h)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln1")(x + h)
    h = keras.layers.Dense(ff_width, activation="gelu", name=f"{name}_ff1")(x)
    h = keras.layers.Dense(width, name=f"{name}_ff2")(h)
    h = keras.layers.Dropout(dropout, name=f"{name}_drop2")(h)
    return keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln2")(x + h)


def block_with_extra_dense(x, mask, heads, ff_width, dropout=0.1, dtype=None, name="block"):
    y = tm.encoder_block(x, mask, heads, ff_width, dropout, dtype, name)
    return keras.layers.Dense(x.shape[-1], name=f"{name}_extra")(y)


def test_reference_block_matches_itself_and_its_dropout_acts():
    comparable, y, y_ref, y_train = probes.encoder_block_against_reference(
        tm.encoder_block, X, IDS, 0.5, 3)
    assert comparable is True
    assert y.shape == y_ref.shape == y_train.shape == X.shape
    np.testing.assert_allclose(y, y_ref, atol=1e-6)
    assert np.abs(y_train - y).max() > 1e-3
    # The random weights matter: the block is not the identity.
    assert np.abs(y - X).max() > 0.1


def test_a_post_norm_block_pairs_up_but_computes_something_else():
    comparable, y, y_ref, _ = probes.encoder_block_against_reference(post_norm_block, X, IDS,
                                                                     0.0, 3)
    assert comparable is True
    assert np.abs(y - y_ref).max() > 1e-2


def test_a_block_with_other_layers_does_not_pair_up():
    comparable, y, y_ref, y_train = probes.encoder_block_against_reference(
        block_with_extra_dense, X, IDS, 0.0, 3)
    assert comparable is False
    assert not y.any() and not y_ref.any() and not y_train.any()


def test_four_heads_and_another_feed_forward_width():
    x = np.random.default_rng(1).normal(size=(2, 5, 16)).astype("float32")
    comparable, y, y_ref, _ = probes.encoder_block_against_reference(
        tm.encoder_block, x, IDS, 0.0, 4, heads=4, ff_dim=24)
    assert comparable is True
    np.testing.assert_allclose(y, y_ref, atol=1e-6)


def test_block_facts_and_behaviour_of_the_reference_block():
    y, kinds = probes.encoder_block_facts(tm.encoder_block, X, IDS)
    assert y.shape == X.shape and tuple(kinds) == (1, 2, 2)
    y_again, y_long, y_zero, names_ok = probes.encoder_block_behaviour(tm.encoder_block, X,
                                                                       IDS, 3)
    np.testing.assert_allclose(y_long[0, :3], y_again[0, :3], atol=1e-5)
    np.testing.assert_allclose(y_zero, X, atol=1e-6)
    assert names_ok is True
