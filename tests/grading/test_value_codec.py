"""Values cross between the student's kernel and the grader's test process as data only."""

import collections
import json

import numpy as np
import pytest

from course_lib import nn
from course_lib.grading.value_codec import (
    Opaque,
    decode,
    encode,
    find_opaque,
    importable_name,
    resolve,
    sync_into,
)


def roundtrip(value):
    return decode(json.loads(json.dumps(encode(value))))


def test_plain_values_survive_with_their_types():
    value = {"a": (1, 2.5, float("nan")), 3: [np.arange(4, dtype=np.int16), np.float32(1.5)],
             "s": {1, 2}, "b": b"\x00\xff", "c": 1 + 2j, "n": None, "t": True}
    back = roundtrip(value)
    assert type(back["a"]) is tuple and np.isnan(back["a"][2])
    assert back[3][0].dtype == np.int16 and back[3][0].tolist() == [0, 1, 2, 3]
    assert type(back[3][1]) is np.float32 and back[3][1] == 1.5
    assert back["s"] == {1, 2} and back["b"] == b"\x00\xff" and back["c"] == 1 + 2j
    assert back["n"] is None and back["t"] is True
    rng = np.random.default_rng(3)
    rng.random()
    again = roundtrip(rng)
    assert again.random() == rng.random()


def test_subclasses_cross_as_their_base_type_without_their_methods():
    class Agreeable(str):
        def __eq__(self, other):
            return True

    class Liar(np.ndarray):
        def __eq__(self, other):
            return np.ones(self.shape, bool)

    pair = collections.namedtuple("pair", "a b")
    back = roundtrip([Agreeable("x"), np.arange(3).view(Liar), pair(1, 2),
                      collections.Counter("aab"), np.ma.array([1, 2], mask=[0, 1])])
    assert type(back[0]) is str and back[0] != "y"
    assert type(back[1]) is np.ndarray and not (back[1] == 7).any()
    assert type(back[2]) is tuple and back[2] == (1, 2)
    assert type(back[3]) is dict and back[3] == {"a": 2, "b": 1}
    assert type(back[4]) is np.ndarray and back[4].tolist() == [1, 2]


def test_values_that_cannot_cross_become_opaque_or_references():
    class Mine:
        pass

    for value in (np.array([object()]), Mine(), (i for i in range(3))):
        assert isinstance(find_opaque(roundtrip(value)), Opaque), value
    loop = []
    loop.append(loop)
    assert isinstance(find_opaque(roundtrip(loop)), Opaque)
    # With a hook, a live object becomes a reference, and the reader's hook resolves it.
    mine = Mine()
    tree = encode([1, mine], other=lambda v: {"$": "handle", "id": 7})
    assert tree["v"][1] == {"$": "handle", "id": 7}
    assert decode(tree, refs=lambda ref: ("handle", ref["id"])) == [1, ("handle", 7)]
    with pytest.raises(ValueError):
        decode(tree)  # without a hook, a reference is refused


def test_malformed_or_dangerous_data_is_refused():
    for tree in ({"$": "nope"}, {"$": "ndarray", "v": "!!"}, {"$": "float", "v": "1e400x"},
                 {"$": "object", "cls": "os:system", "v": {"$": "dict", "v": []}},
                 {"$": "object", "cls": "course_lib.grading.jail:JailSpec",
                  "v": {"$": "dict", "v": []}},
                 {"$": "object", "cls": "course_lib.nn:Dense",
                  "v": {"$": "dict", "v": [[1, 2]]}},
                 {"$": "generator", "v": encode({"bit_generator": "seed", "state": {}})},
                 [1, 2], {"$": "dict", "v": [[1]]}):
        with pytest.raises((ValueError, TypeError, KeyError)):
            decode(tree)


def test_only_course_functions_can_be_named_for_import():
    from course_lib import bbc, probes

    assert importable_name(bbc.duplicate_key) == "course_lib.bbc:duplicate_key"
    assert importable_name(probes.classifier_facts) == "course_lib.probes:classifier_facts"
    assert importable_name(np.sum) is None and importable_name(lambda x: x) is None
    for module, name in (("os", "system"), ("course_lib.grading.jail", "command"),
                         ("course_lib.bbc", "_decode"), ("course_lib.bbc", "os.system")):
        with pytest.raises(ValueError):
            resolve(module, name)


def test_a_model_changed_in_place_is_followed_in_place():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Dense(2, 3, rng), nn.ReLU(), nn.Dense(3, 1, rng))
    twin = nn.Sequential(nn.Dense(2, 3, np.random.default_rng(0)), nn.ReLU(),
                         nn.Dense(3, 1, np.random.default_rng(0)))
    shared = twin.layers[0].params["W"]  # another object holding the same array
    model.layers[0].params["W"] += 1.0
    assert sync_into(twin, roundtrip(model))
    assert np.array_equal(shared, model.layers[0].params["W"])
    assert not sync_into(np.zeros(3), np.zeros(4))  # a shape change cannot happen in place
