"""Check a submission's test results in a process the student's code never ran in.

nbgrader runs a notebook's test cells in the student's kernel, where an answer cell may have
replaced ``np.allclose`` or taught its return value to equal anything. This module runs the
same test cells a second time, here, in a process of the grader's own:

1. At start it runs the assignment's solution notebook top to bottom (in an IPython shell,
   in a scratch folder). Before each test cell it keeps the names that cell reads (data,
   modules, helpers), so each later check starts from exactly that state.
2. For each submission it executes every test cell's code again, in a fresh namespace made
   from that state, with each student function replaced by a stand-in that answers from the
   record the student's kernel wrote (:mod:`.call_recorder`): the value returned or the
   error raised, and any argument changed in place. All the test's own computations (the
   expected values, the comparisons) happen here.

A test cell is checked this way only if the solution's own record passes it here: a cell
whose values cannot cross processes (a Keras model) or that measures time is left to the
kernel alone, and the ready message says which cells those are and why.

Protocol (one JSON object per line): on start, ``{"ready": {grade_id: why_not_or_""}}``; then
for each request ``{"records": folder}`` the answer ``{"results": {grade_id: [passed,
message]}}`` for the cells checked here.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import io
import json
import os
import stat
import sys
import types
from collections import deque
from pathlib import Path

import nbformat

from . import call_recorder
from .call_recorder import begin
from .course_dir import is_test_cell
from .value_codec import decode, find_opaque, sync_into

MAX_RECORD_FILE = 256 * 2**20


def _loaded_and_stored(source: str) -> tuple[set[str], set[str]]:
    tree = ast.parse(source)
    loads, stores = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else stores).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stores.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stores |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return loads, stores


def recorded_names(notebook: Path) -> dict[str, list[str]]:
    """grade id -> the student functions each test cell calls (names defined in answer
    cells and read by the test)."""
    nb = nbformat.read(notebook, as_version=4)
    answers: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            try:
                answers |= _loaded_and_stored(cell.source)[1]
            except SyntaxError:
                continue
    plan = {}
    for cell in nb.cells:
        if is_test_cell(cell):
            try:
                loads = _loaded_and_stored(cell.source)[0]
            except SyntaxError:
                continue
            plan[cell.metadata["nbgrader"]["grade_id"]] = sorted(loads & answers)
    return plan


class RecordError(Exception):
    """The record of a test cell is missing or malformed."""


def read_record(folder: Path, notebook: str, grade_id: str) -> list[dict]:
    """The entries of ``folder/notebook/grade_id.jsonl``, validated; raises RecordError.

    The folder belongs to the submission's sandbox user, who could put a link or a pipe
    there; this process may run as root. So nothing is followed, and only a regular file
    of bounded size is read."""
    flags = os.O_RDONLY | os.O_NOFOLLOW
    fds = []
    try:
        fds.append(os.open(folder, flags | os.O_DIRECTORY))
        fds.append(os.open(notebook, flags | os.O_DIRECTORY, dir_fd=fds[-1]))
        fds.append(os.open(f"{grade_id}.jsonl", flags | os.O_NONBLOCK, dir_fd=fds[-1]))
        info = os.fstat(fds[-1])
        if not stat.S_ISREG(info.st_mode):
            raise RecordError("the record of this test's calls is not a file")
        if info.st_size > MAX_RECORD_FILE:
            raise RecordError("the record of this test's calls is too large")
        data = os.read(fds[-1], MAX_RECORD_FILE + 1)
    except FileNotFoundError:
        raise RecordError("no calls were recorded in your kernel (the cell did not run, or "
                          "the notebook's kernel stopped first)") from None
    except OSError as exc:
        raise RecordError(f"the record of this test's calls cannot be read ({exc.strerror})") \
            from None
    finally:
        for fd in fds:
            os.close(fd)
    entries = []
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise RecordError(f"the record of this test's calls is damaged ({exc})") from None
        if type(entry) is not dict or type(entry.get("fn")) is not str \
                or type(entry.get("changed", {})) is not dict:
            raise RecordError("the record of this test's calls is damaged")
        entry.setdefault("changed", {})
        entries.append(entry)
    return entries


def _rebuild_exception(info: dict) -> BaseException:
    from course_lib import checks

    info = info if type(info) is dict else {}
    name, message = str(info.get("type", "Exception")), str(info.get("message", ""))
    check = info.get("check")
    if name == "CheckFailed" and type(check) is dict:
        details = check.get("details") if type(check.get("details")) is list else []
        return checks.CheckFailed(str(check.get("title", "")), [str(d) for d in details],
                                  check.get("see") if type(check.get("see")) is str else None)
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = type(name if name.isidentifier() else "StudentError", (Exception,), {})
    try:
        exc = cls(message)
    except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs five arguments
        exc = type(name if name.isidentifier() else "StudentError", (Exception,), {})(message)
    if type(info.get("culprit")) is str:
        exc.course_culprit = info["culprit"]
    return exc


class ReplayStopped(BaseException):
    """The record cannot answer this call. A BaseException, so that a test's own
    ``except Exception`` (expecting the student's error) cannot swallow it."""


class _Replayed:
    """Stands in for a student function (or a test's probe): answers each call from the
    kernel's record."""

    def __init__(self, name: str, queue: deque):
        self.__name__, self.queue = name, queue

    def __call__(self, *args, **kwargs):
        return self.answer(self.__name__, args, kwargs)

    def answer(self, name: str, args: tuple, kwargs: dict):
        """The recorded outcome of the next call, which must be a call of ``name``."""
        if not self.queue:
            raise ReplayStopped(f"`{name}` was called here, but in your notebook's kernel the "
                                "test stopped before this call.")
        entry = self.queue.popleft()
        if entry["fn"] != name:
            raise ReplayStopped(f"In your kernel this test called `{entry['fn']}` where the "
                                f"grader's check calls `{name}`.")
        slots = call_recorder.argument_slots(args, kwargs)
        try:
            for key, tree in entry["changed"].items():
                new = decode(tree)
                if key not in slots or find_opaque(new) is not None \
                        or not sync_into(slots[key], new):
                    raise ReplayStopped(
                        f"`{name}` changed its argument {key.removeprefix('kw:')} in a "
                        "way the grader cannot follow outside your kernel.")
            value = decode(entry["returned"]) if "returned" in entry else None
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise ReplayStopped(f"the record of this test's calls is damaged ({exc})") from None
        if "raised" in entry:
            raise _rebuild_exception(entry["raised"])
        if "returned" not in entry:
            raise ReplayStopped(f"`{name}` was interrupted in your kernel.")
        opaque = find_opaque(value)
        if opaque is not None:
            raise ReplayStopped(
                f"`{name}` returned {opaque.what}, which the grader cannot check "
                "outside your notebook's kernel. Return NumPy arrays, numbers, strings, or "
                "lists, tuples and dicts of them.")
        return value


_SHARED = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)


def _copy_of(value):
    """Modules, functions and classes as they are; data copied, so that no check can change
    what the next one starts from."""
    if isinstance(value, _SHARED):
        return value
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - a value that cannot be copied is shared
        return value


def _snapshot(ns: dict, names: set[str]) -> dict:
    """The values of ``names`` in ``ns``, as the test cell about to run would read them."""
    return {name: _copy_of(ns[name]) for name in names & ns.keys()}


def _fresh(snapshot: dict) -> dict:
    """A namespace to run one check in, starting from ``snapshot``."""
    return {"__name__": "__main__", "__builtins__": builtins,
            **{name: _copy_of(value) for name, value in snapshot.items()}}


class TrustedChecks:
    """The solution notebook, run once; then any number of submissions' records checked."""

    def __init__(self, notebook: Path, scratch: Path):
        from IPython.core.interactiveshell import InteractiveShell

        nb = nbformat.read(notebook, as_version=4)
        self.names = recorded_names(notebook)
        self.cells: dict[str, tuple[types.CodeType, dict]] = {}
        self.why_not: dict[str, str] = {}
        self.notebook = Path(notebook).stem
        own = scratch / "solution-records"
        os.chdir(scratch)
        shell = InteractiveShell.instance()
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if not is_test_cell(cell) or gid not in self.names:
                shell.run_cell(cell.source, store_history=False)
                continue
            try:
                code = compile(cell.source, f"<test cell {gid}>", "exec")
                loads, _stores = _loaded_and_stored(cell.source)
            except SyntaxError as exc:
                self.why_not[gid] = f"its code is not plain Python ({exc.msg})"
                shell.run_cell(cell.source, store_history=False)
                continue
            snapshot = _snapshot(shell.user_ns, loads - set(self.names[gid]))
            begin(gid, self.names[gid], self.notebook, folder=str(own))
            result = shell.run_cell(cell.source, store_history=False)
            self.cells[gid] = (code, snapshot)
            if not result.success:
                self.why_not[gid] = "the solution does not pass it"
                continue
            passed, message = self.check_cell(gid, own)
            if not passed:
                self.why_not[gid] = f"the solution's own record does not pass it here ({message})"
        for gid in self.names:
            self.why_not.setdefault(gid, "" if gid in self.cells else "it did not run")

    def check_cell(self, gid: str, records: Path) -> tuple[bool, str]:
        """Run test cell ``gid`` here against one submission's records; (passed, what failed)."""
        from course_lib.checks import CheckFailed

        code, snapshot = self.cells[gid]
        try:
            queue = deque(read_record(records, self.notebook, gid))
        except RecordError as exc:
            return False, str(exc)
        ns = _fresh(snapshot)
        for name in self.names[gid]:
            ns[name] = _Replayed(name, queue)
        call_recorder.replay_answer = _Replayed("probe", queue).answer
        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                exec(code, ns)  # noqa: S102 - the course's own test code, on data only
        except ReplayStopped as exc:
            return False, str(exc)
        except CheckFailed as exc:
            return False, exc._text()
        except Exception as exc:  # noqa: BLE001 - any other failure is the test failing
            return False, f"{type(exc).__name__}: {exc}"[:2000]
        finally:
            call_recorder.replay_answer = None
        if queue:
            return False, (f"your kernel recorded {len(queue)} more call(s) than this test makes: "
                           "the test took a different path in your kernel")
        return True, ""

    def check(self, records: Path) -> dict[str, tuple[bool, str]]:
        """Results for every test cell checked here, from one submission's record folder."""
        return {gid: self.check_cell(gid, Path(records))
                for gid, why in self.why_not.items() if not why}


def main(argv: list[str]) -> None:
    notebook, scratch = Path(argv[0]), Path(argv[1])
    # The protocol owns the real stdout; whatever the notebook prints goes to /dev/null.
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 1)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    checks = TrustedChecks(notebook, scratch)
    protocol.write(json.dumps({"ready": checks.why_not}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        results = checks.check(Path(request["records"]))
        protocol.write(json.dumps({"results": results}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
