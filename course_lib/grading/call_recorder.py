"""Inside the student's kernel: write down every call a test cell makes to a student function.

The grader starts each autograded test cell with one line (see
:class:`.recovering_execute.RecoveringExecute`)::

    begin("test_gd", ["gd"])

which, for that cell only, puts a recording wrapper around each named student function.
Each call made by the test's code (not the student's functions calling each other) is
appended to ``$COURSE_RECORD_DIR/<grade id>.jsonl``: the function's name, what it returned
or raised, and the new state of any argument it changed, all in the data-only form of
:mod:`.value_codec`. After the cell the names are restored. A test about live objects (a
Keras model) runs a probe through ``checks.in_kernel``; the probe's result is recorded the
same way, and the calls it makes are not.

Nothing here decides a grade. :mod:`.trusted_replay` runs the same test code again in the
grader's own process, answering each call with the recorded value, so the comparison with
the expected values happens where the student's code never ran. A submission that breaks
or forges the record only loses points: to forge a passing record it would need the
correct values, which is what the exercise asks for.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .value_codec import encode

MAX_RECORD_BYTES = 64 * 2**20  # per test cell; beyond it the values are written as opaque

_depth = 0  # > 0 while a student function runs: its calls to other ones are not recorded


def _digest(tree) -> str:
    return hashlib.blake2b(json.dumps(tree, sort_keys=True).encode(), digest_size=16).hexdigest()


def describe_exception(exc: BaseException) -> dict:
    """What the grader needs to raise the same error again: type, message, and for a
    NotImplementedError the function that still has its stub; for a failed check its text."""
    from course_lib.checks import _raising_function

    info = {"type": type(exc).__name__, "message": str(exc)[:4000]}
    if isinstance(exc, NotImplementedError) and exc.__traceback__ is not None:
        info["culprit"] = _raising_function(exc)
    if type(exc).__name__ == "CheckFailed":
        info["check"] = {"title": str(getattr(exc, "title", ""))[:2000],
                         "details": [str(d)[:2000] for d in getattr(exc, "details", [])][:50],
                         "see": getattr(exc, "see", None) and str(exc.see)[:500]}
    return info


class _Recording:
    """Calls ``fn`` and appends one line per call from test code to ``path``."""

    def __init__(self, fn, name: str, path: Path):
        self.fn, self.__name__, self.path = fn, name, path
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    def __call__(self, *args, **kwargs):
        if _depth:
            return self.fn(*args, **kwargs)
        return _record_call(self.fn, self.__name__, self.path, args, kwargs)


def argument_slots(args: tuple, kwargs: dict) -> dict:
    """A call's arguments by the keys a record uses: "0", "1", ... and "kw:<name>"."""
    return {**{str(i): a for i, a in enumerate(args)},
            **{f"kw:{k}": v for k, v in kwargs.items()}}


def _record_call(fn, name: str, path: Path, args: tuple, kwargs: dict):
    """Call ``fn`` and append the call to ``path``; calls it makes are not recorded."""
    global _depth
    slots = argument_slots(args, kwargs)
    with _quiet():
        before = {key: _digest(encode(val, MAX_RECORD_BYTES)) for key, val in slots.items()}
    _depth += 1
    entry: dict = {"fn": name}
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:
        entry["raised"] = describe_exception(exc)
        raise
    else:
        entry["returned"] = result
        return result
    finally:
        _depth -= 1
        try:
            _write(path, entry, slots, before)
        except Exception:  # noqa: BLE001 - a full disk costs the record, not the answer
            pass


def _write(path: Path, entry: dict, slots: dict, before: dict) -> None:
    with _quiet():
        changed = {}
        for key, val in slots.items():
            tree = encode(val, MAX_RECORD_BYTES)
            if _digest(tree) != before[key]:
                changed[key] = tree
        if "returned" in entry:
            entry["returned"] = encode(entry["returned"], MAX_RECORD_BYTES)
        entry["changed"] = changed
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


# While a test cell is recorded: its record file. While the grader replays one (in its own
# process, see trusted_replay): the function that answers probes from the record.
_recording_into: Path | None = None
replay_answer = None


def run_probe(probe, *args, **kwargs):
    """Run a test's probe of live objects (see ``checks.in_kernel``): in the kernel, run and
    record it like a student function; in the grader's replay, answer from the record."""
    name = f"probe {getattr(probe, '__name__', 'probe')}"
    if replay_answer is not None:
        return replay_answer(name, args, kwargs)
    if _recording_into is not None and not _depth:
        return _record_call(probe, name, _recording_into, args, kwargs)
    return probe(*args, **kwargs)


@contextmanager
def _quiet():
    """Recording must neither warn nor trip a caller's ``np.errstate(all='raise')``."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def begin(grade_id: str, names: list[str], notebook: str = "", folder: str | None = None) -> None:
    """Record the calls this cell makes to ``names``; does nothing outside the grader.

    notebook: a sub-folder per notebook; folder: where records go, default
    ``$COURSE_RECORD_DIR``."""
    folder = folder or os.environ.get("COURSE_RECORD_DIR")
    if not folder:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    path = Path(folder) / notebook / f"{grade_id}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")  # a cell run again (after a restart) starts over
    ns = shell.user_ns
    wrapped = {}
    for name in names:
        fn = ns.get(name)
        if callable(fn) and not isinstance(fn, _Recording):
            wrapped[name] = (fn, _Recording(fn, name, path))
            ns[name] = wrapped[name][1]

    global _recording_into
    _recording_into = path

    def restore(*_args):
        global _recording_into
        _recording_into = None
        for name, (fn, wrapper) in wrapped.items():
            if ns.get(name) is wrapper:
                ns[name] = fn
        shell.events.unregister("post_run_cell", restore)

    shell.events.register("post_run_cell", restore)


def prefix(grade_id: str, names: list[str], notebook: str) -> str:
    """The line the grader puts before a test cell's code to call :func:`begin`."""
    return ("__import__('course_lib.grading.call_recorder').grading.call_recorder.begin("
            f"{json.dumps(grade_id)}, {json.dumps(sorted(names))}, {json.dumps(notebook)})\n")
