"""The trusted side of grading: the test cells run here, never in the student's kernel.

One such process serves one notebook of an assignment for a whole batch of submissions. It
runs in a jail of its own (no network, nothing of the grader's to reach) and talks only to
the grader (:mod:`.channel`). At ``start`` it receives the assignment's source notebook,
plans it (:mod:`.cell_plan`) and runs the instructor's *trusted* cells, those no student
code can have decided; before each test cell it keeps a copy of the names that cell reads.
The solution's answer cells never run here.

For each submission (``begin``), each ``test`` request runs one test cell's code in a fresh
namespace made of those copies, the names earlier test cells bound, and, for each name the
student's code binds, what the student's kernel holds: plain data arrives as data, and a
function (or any other live object) as a :class:`Remote`, whose calls send their arguments
to the kernel as data and get data back (:mod:`.value_codec`). A test's own function passed
to a student's function is called back here. Live objects such as a Keras model are
questioned by probes of :mod:`course_lib.probes`, run in the kernel through
``checks.in_kernel``. So every expected value and every comparison is computed here; the
kernel only ever answers calls.

The reply says whether the cell passed and, if not, in which part (visible or hidden) and
why. What the visible part prints is sent as it is printed; before a hidden part starts,
the grader is told, so that nothing printed there reaches the feedback.
"""

from __future__ import annotations

import builtins
import copy
import io
import os
import sys
import types
from contextlib import redirect_stderr

import nbformat

from . import cell_plan
from .channel import OutputStream, Peer
from .value_codec import Opaque, decode, encode, importable_name, sync_into

MAX_VALUE_BYTES = 256 * 2**20


class KernelLost(BaseException):  # noqa: N818 - reads as what happened
    """The student's kernel cannot answer (it died, ran out of time or memory). A
    BaseException, so that a test's own ``except Exception`` cannot swallow it."""


class Remote:
    """A value that stays in the student's kernel: calling it calls it there."""

    def __init__(self, runner: TestRunner, tree: dict):
        self._runner, self._id = runner, int(tree["id"])
        self._callable = bool(tree.get("callable"))
        self._type = str(tree.get("type") or "object")
        name = tree.get("name")
        self.__name__ = name if isinstance(name, str) and name.isidentifier() else self._type

    def __call__(self, *args, **kwargs):
        if not self._callable:
            raise TypeError(f"'{self._type}' object is not callable")
        return self._runner.call({"handle": self._id}, args, kwargs)

    def __getattr__(self, name):
        raise AttributeError(
            f"{self.__name__!r} is a {self._type} that lives in the student's kernel; a test "
            "questions it with a probe from course_lib.probes (checks.in_kernel), not through "
            f"its attribute {name!r}")

    def __repr__(self) -> str:
        return f"<{self._type} {self.__name__} in the student's kernel>"


_SHARED = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)


def _copy_of(value):
    """Modules, functions and classes as they are; data copied, so that no test can change
    what the next submission's test starts from."""
    if isinstance(value, _SHARED):
        return value
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - a value that cannot be copied is shared
        return value


def rebuild_exception(info) -> BaseException:
    """The student's error, raised again here from its description (never its code)."""
    from course_lib import checks

    info = info if type(info) is dict else {}
    name, message = str(info.get("type", "Exception")), str(info.get("message", ""))
    check = info.get("check")
    if name == "CheckFailed" and type(check) is dict:
        details = check.get("details") if type(check.get("details")) is list else []
        exc = checks.CheckFailed(str(check.get("title", "")), [str(d) for d in details],
                                 check.get("see") if type(check.get("see")) is str else None)
    else:
        cls = getattr(builtins, name, None)
        # Only ordinary errors keep their type: a student's "KeyboardInterrupt" or
        # "StopIteration" must not steer the test's own control flow.
        if not (isinstance(cls, type) and issubclass(cls, Exception)) \
                or issubclass(cls, (StopIteration, StopAsyncIteration)):
            cls = type(name if name.isidentifier() else "StudentError", (Exception,), {})
        try:
            exc = cls(message)
        except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs five arguments
            exc = type(name if name.isidentifier() else "StudentError", (Exception,), {})(message)
    if type(info.get("culprit")) is str:
        exc.course_culprit = info["culprit"]
    if type(info.get("traceback")) is str:
        exc.course_traceback = info["traceback"]
    for note in info.get("notes", []) if type(info.get("notes")) is list else []:
        if hasattr(exc, "add_note"):
            exc.add_note(str(note))
    return exc


class TestRunner:
    """The handlers of the trusted process (see the module docstring)."""

    def __init__(self, read_fd: int, write_fd: int):
        self.peer = Peer(read_fd, write_fd, {"start": self.start, "begin": self.begin,
                                             "test": self.test, "callback": self.callback})
        self.plan: cell_plan.NotebookPlan | None = None
        self.sources: dict[str, str] = {}
        self.snapshots: dict[str, dict] = {}
        self.carried: dict = {}
        self.callbacks: dict[int, object] = {}
        self._callback_count = 0
        self.out = OutputStream(self.peer, "stdout")

    # -- start: the instructor's trusted cells ------------------------------------------------
    def start(self, message: dict) -> dict:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        from course_lib import checks

        checks._kernel_call = self.probe
        nb = nbformat.reads(message["notebook"], as_version=4)
        self.plan = cell_plan.plan(nb)
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        shell = InteractiveShell.instance(config=config)
        problems = list(self.plan.problems())
        needed = self.plan.trusted_needed()
        sink = io.StringIO()
        saved = sys.stdout
        sys.stdout = sink  # what the instructor's cells print is of no use here
        try:
            for cell, planned in zip(nb.cells, self.plan.cells):
                if planned.kind == cell_plan.TEST:
                    self.sources[planned.grade_id] = cell.source
                    wanted = {n for n, w in planned.sources.items() if w == cell_plan.TRUSTED}
                    self.snapshots[planned.grade_id] = {
                        n: _copy_of(shell.user_ns[n]) for n in wanted if n in shell.user_ns}
                    missing = wanted - shell.user_ns.keys()
                    if missing:
                        problems.append(f"{planned.grade_id} reads {sorted(missing)}, which the "
                                        "instructor's cells did not define when run alone")
                elif planned.index in needed:
                    with redirect_stderr(io.StringIO()):
                        result = shell.run_cell(cell.source, store_history=False)
                    if not result.success:
                        error = result.error_in_exec or result.error_before_exec
                        problems.append(f"cell {planned.index + 1} failed when run without the "
                                        f"answers: {type(error).__name__}: {error}")
        finally:
            sys.stdout = saved
        return {"ready": True, "problems": problems,
                "tests": [c.grade_id for c in self.plan.tests()]}

    def begin(self, message: dict) -> dict:
        """A new submission: nothing carries over from the previous one."""
        self.carried = {}
        self.callbacks = {}
        return {"ok": True}

    # -- one test cell --------------------------------------------------------------------------
    def test(self, message: dict) -> dict:
        gid = str(message.get("grade_id"))
        planned = self.plan.test(gid)
        ns = {"__name__": "__main__", "__builtins__": builtins}
        ns.update({n: _copy_of(v) for n, v in self.snapshots.get(gid, {}).items()})
        for name, where in planned.sources.items():
            if where == cell_plan.FROM_TEST and name in self.carried:
                ns[name] = self.carried[name]
        verdict = {"passed": True, "failed_in": None, "message": ""}
        try:
            for name, where in sorted(planned.sources.items()):
                if where == cell_plan.KERNEL:
                    reply = self._kernel({"op": "get", "name": name})
                    if "value" in reply:
                        ns[name] = self.decode(reply["value"])
            for hidden, code in cell_plan.segments(self.sources[gid]):
                self.peer.send({"op": "part", "hidden": hidden})
                message_text = self._run(code, ns, gid)
                if message_text is not None:
                    verdict = {"passed": False, "failed_in": "hidden" if hidden else "visible",
                               "message": message_text}
                    break
        except KernelLost as lost:
            verdict = {"passed": False, "failed_in": "kernel", "message": str(lost)}
        finally:
            self.out.flush()
            self.carried.update({n: ns[n] for n in planned.scope.stores if n in ns})
        return verdict

    def _run(self, code: str, ns: dict, gid: str) -> str | None:
        """Run one part of a test cell; None if it passed, else what failed."""
        from course_lib.checks import CheckFailed

        saved = sys.stdout
        sys.stdout = self.out
        try:
            with redirect_stderr(io.StringIO()):
                exec(compile(code, f"<test cell {gid}>", "exec"), ns)  # noqa: S102
            return None
        except CheckFailed as exc:
            return exc._text()
        except KernelLost:
            raise
        except BaseException as exc:  # noqa: BLE001 - any other error fails the test
            text = f"{type(exc).__name__}: {exc}"
            for note in getattr(exc, "__notes__", []) or []:
                text += f"\n{note}"
            student = getattr(exc, "course_traceback", "")
            if student:
                text += "\n\nIn your code:\n" + student.strip()
            return text[:6000]
        finally:
            self.out.flush()
            sys.stdout = saved

    # -- calls into the kernel ------------------------------------------------------------------
    def _kernel(self, request: dict) -> dict:
        self.out.flush()
        reply = self.peer.request(request)
        if "lost" in reply:
            raise KernelLost(str(reply["lost"]))
        if "refused" in reply:
            raise KernelLost(f"the kernel refused the call: {reply['refused']}")
        return reply

    def call(self, target: dict, args: tuple, kwargs: dict):
        """Call ``target`` in the kernel: a handle, or ``{"import": "module:function"}``."""
        mark = self._callback_count
        try:
            reply = self._kernel({
                "op": "call", "target": target,
                "args": [self.encode(a) for a in args],
                "kwargs": {k: self.encode(v) for k, v in kwargs.items()}})
        finally:
            for key in [k for k in self.callbacks if k > mark]:
                del self.callbacks[key]  # a test's function is callable during its call only
        slots = {str(i): a for i, a in enumerate(args)}
        slots.update({f"kw:{k}": v for k, v in kwargs.items()})
        changed = reply.get("changed") if isinstance(reply.get("changed"), dict) else {}
        for slot, tree in changed.items():
            if slot in slots:
                try:
                    sync_into(slots[slot], self.decode(tree))
                except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
                    pass  # an argument changed in a way that cannot be followed stays as sent
        if "raised" in reply:
            raise rebuild_exception(reply["raised"])
        if "returned" not in reply:
            raise KernelLost("the kernel sent no result")
        return self.decode(reply["returned"])

    def probe(self, probe, args: tuple, kwargs: dict):
        """``checks.in_kernel`` while grading: the probe runs in the student's kernel."""
        ref = importable_name(probe)
        if ref is None:
            raise RuntimeError(f"{getattr(probe, '__name__', probe)!r} is not a function of a "
                               "course_lib student module; probes live in course_lib.probes")
        return self.call({"import": ref}, args, kwargs)

    def callback(self, message: dict) -> dict:
        """The kernel calls a test's function it was given."""
        fn = self.callbacks.get(message.get("callback"))
        if fn is None:
            return {"raised": {"type": "RuntimeError",
                               "message": "this function of the test can no longer be called"}}
        try:
            args = [self.decode(t) for t in message.get("args", [])]
            kwargs = {str(k): self.decode(t) for k, t in message.get("kwargs", {}).items()}
            return {"returned": self.encode(fn(*args, **kwargs))}
        except KernelLost:
            raise
        except Exception as exc:  # noqa: BLE001 - the kernel gets the error's description
            return {"raised": {"type": type(exc).__name__, "message": str(exc)[:2000]}}

    # -- values ---------------------------------------------------------------------------------
    def encode(self, value):
        return encode(value, MAX_VALUE_BYTES, other=self._reference)

    def _reference(self, value):
        if isinstance(value, Remote):
            return {"$": "handle", "id": value._id}
        if callable(value):
            ref = importable_name(value)
            if ref is not None:
                return {"$": "import", "ref": ref}
            self._callback_count += 1
            key = self._callback_count
            self.callbacks[key] = value
            return {"$": "callback", "id": key, "name": getattr(value, "__name__", "callback")}
        return None

    def decode(self, tree):
        def refs(ref):
            kind = ref.get("$")
            if kind == "handle":
                return Remote(self, ref)
            if kind == "callback" and ref.get("id") in self.callbacks:
                return self.callbacks[ref["id"]]
            # Never "import": nothing the kernel sends may name code to run here.
            return Opaque("a reference the grader does not know")

        return decode(tree, refs=refs)


def main(argv: list[str]) -> None:
    read_fd, write_fd = int(argv[0]), int(argv[1])
    os.environ.setdefault("MPLBACKEND", "Agg")
    TestRunner(read_fd, write_fd).peer.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
