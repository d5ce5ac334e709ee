"""The check outside the kernel: values cross as data only, and the trusted process judges.

The codec tests need nothing else. The checker tests start the real checking process on
00_setup's solution and feed it records: the solution's own (passes), and records changed
the ways a submission could change them (wrong value, cut short, extra calls, a link,
garbage), each of which must fail with a message that says why.
"""

import collections
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from course_lib import nn
from course_lib.grading.outside_check import TrustedChecker
from course_lib.grading.tamper_scan import scan_answers, scan_source
from course_lib.grading.trusted_replay import recorded_names
from course_lib.grading.value_codec import Opaque, decode, encode, find_opaque, sync_into


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


def test_values_that_cannot_cross_become_opaque():
    class Mine:
        pass

    for value in (np.array([object()]), Mine(), (i for i in range(3))):
        assert isinstance(find_opaque(roundtrip(value)), Opaque), value
    assert isinstance(find_opaque(roundtrip([1, {"k": Mine()}])), Opaque)
    loop = []
    loop.append(loop)
    assert isinstance(find_opaque(roundtrip(loop)), Opaque)


def test_malformed_records_are_refused():
    for tree in ({"$": "nope"}, {"$": "ndarray", "v": "!!"}, {"$": "float", "v": "1e400x"},
                 {"$": "object", "cls": "os:system", "v": {"$": "dict", "v": []}},
                 {"$": "generator", "v": encode({"bit_generator": "seed", "state": {}})},
                 [1, 2], {"$": "dict", "v": [[1]]}):
        with pytest.raises((ValueError, TypeError, KeyError)):
            decode(tree)


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


def test_aliases_and_rebinding_are_found():
    assert scan_source("import numpy as m\nm.allclose = print")
    assert scan_source("from numpy import testing as t\nt.assert_allclose = print")
    assert scan_source("f = np\ng = f\ng.allclose = None")
    assert scan_source("checks = object()")
    assert scan_answers([("a", "import numpy as m"), ("b", "m.allclose = 1")])
    assert not scan_source("x = np.zeros(3)\ny = x\ny[0] = 1\nimport numpy as np")


def test_the_recorded_names_are_the_answer_functions():
    names = recorded_names(REPO / "solutions/00_setup/00_setup.ipynb")
    assert names == {"test_standardize": ["standardize"], "test_one_hot": ["one_hot"]}


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("trusted")
    checker = TrustedChecker(REPO / "solutions/00_setup/00_setup.ipynb", scratch)
    checker.start()
    checker.wait_ready()
    assert not checker.problem and checker.unchecked == {}
    yield checker, scratch / "solution-records"
    checker.close()


def changed_copy(own: Path, tmp: Path, edit) -> Path:
    dest = tmp / "record"
    shutil.copytree(own, dest)
    edit(dest / "00_setup")
    return dest


def test_the_solutions_own_record_passes(checker):
    proc, own = checker
    assert proc.check(own) == {"test_standardize": (True, ""), "test_one_hot": (True, "")}


def test_changed_records_fail_and_say_why(checker, tmp_path):
    proc, own = checker

    def wrong_value(folder):
        path = folder / "test_one_hot.jsonl"
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        entries[0]["returned"] = encode(np.zeros((4, 3)))
        path.write_text("".join(json.dumps(e) + "\n" for e in entries))

    def cut_short(folder):
        path = folder / "test_one_hot.jsonl"
        path.write_text(path.read_text().splitlines(keepends=True)[0])

    def extra_call(folder):
        path = folder / "test_standardize.jsonl"
        path.write_text(path.read_text() + path.read_text().splitlines(keepends=True)[0])

    def linked(folder):
        (folder / "test_one_hot.jsonl").unlink()
        os.symlink(own / "00_setup" / "test_one_hot.jsonl", folder / "test_one_hot.jsonl")

    def garbage(folder):
        (folder / "test_one_hot.jsonl").write_text('{"fn": "one_hot", "returned": {"$": "x"}}\n')

    expectations = {
        wrong_value: ("test_one_hot", "has wrong values"),
        cut_short: ("test_one_hot", "stopped before this call"),
        extra_call: ("test_standardize", "more call(s)"),
        linked: ("test_one_hot", "cannot be read"),
        garbage: ("test_one_hot", "damaged"),
    }
    for i, (edit, (gid, words)) in enumerate(expectations.items()):
        folder = tmp_path / str(i)
        folder.mkdir()
        verdicts = proc.check(changed_copy(own, folder, edit))
        passed, message = verdicts[gid]
        assert not passed and words in message, (edit.__name__, message)
        other = ({"test_standardize", "test_one_hot"} - {gid}).pop()
        assert verdicts[other] == (True, ""), edit.__name__


def test_a_probe_is_a_plain_call_outside_the_grader():
    from course_lib import checks

    assert checks.in_kernel(lambda a, b=1: a + b, 2, b=3) == 5
