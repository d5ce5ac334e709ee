"""nbgrader's execution step, done apart: the student's cells in a jailed kernel, the test
cells in a jailed trusted process, and the grader passing data between the two.

:class:`JailedExecute` takes the place of nbgrader's ``Execute`` in the autograde
preprocessors. It walks the notebook (already rebuilt from the release, with the hidden
tests put back by nbgrader):

- every code cell that is not a test goes to the student's kernel (:mod:`.kernel_runner`),
  and what it shows becomes the cell's outputs;
- every test cell goes to the test process of its notebook (:mod:`.test_runner`); the test's
  calls to the student's functions come back through here and are sent on to the kernel.
  The test cell's outputs are then written here: what its visible part printed, and, on a
  failure, the check's message; a hidden part shows only that it passed or failed. nbgrader
  reads the points from those outputs (an error output scores 0), as it always does.

Budgets, per submission (:class:`Budgets`): time per cell (interrupted, then stopped), time
for the whole submission, output per cell (the kernel is stopped at the cap, while it
prints), memory and processes of the whole jail. A cell that kills or wedges the kernel, or
breaks a budget, costs that cell: its output says what happened, a fresh kernel runs the
cells before it again, and grading goes on. After ``max_restarts`` restarts, or when the
submission's time is up, the remaining cells are not run and their tests fail.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor

from . import cell_plan, jail
from .cell_outputs import error_output, merge_outputs
from .jailed_process import JailedProcess, JailError, TimedOut
from .test_process import TestProcess

KERNEL_DIED = "KernelDied"
KERNEL_STUCK = "KernelStuck"
BUDGET = "BudgetExceeded"
NOT_RUN = "NotRun"
HIDDEN_FAILED = "HiddenTestsFailed"
INTERRUPT_GRACE_S = 5
TEST_PROCESS_TIMEOUT_S = 600  # the trusted side's own work for one test cell


@dataclass
class Budgets:
    """Limits for one submission. Times in seconds, sizes in MiB."""

    cell_timeout: float = 120
    submission_timeout: float = 1800
    memory_mb: int = 4096
    max_output_kb: int = 1024
    processes: int = 64
    home_mb: int = 512
    tmp_mb: int = 256
    max_restarts: int = 3


@dataclass
class Session:
    """What the executor needs for one worker: budgets, how to jail a kernel, and one test
    process per notebook name (``"00_setup"``)."""

    budgets: Budgets
    kernel_spec: callable  # () -> jail.JailSpec, one fresh spec per kernel
    tests: dict[str, TestProcess] = field(default_factory=dict)
    unsafe: bool = False
    notes: list[str] = field(default_factory=list)  # per submission: what happened, by cell


_session: Session | None = None


@contextmanager
def session(value: Session) -> Iterator[Session]:
    """Make ``value`` the session that :class:`JailedExecute` uses while nbgrader runs."""
    global _session
    _session, previous = value, _session
    try:
        yield value
    finally:
        _session = previous


class JailedExecute(NbGraderPreprocessor):
    """Execute a submission as the module docstring says; needs an active :func:`session`."""

    def preprocess(self, nb, resources):
        if _session is None:
            raise RuntimeError(
                "Autograde with `course grade ASSIGNMENT SUBMISSIONS --out FOLDER`: it runs each "
                "submission in a jail and its tests apart from it. nbgrader's own autograde "
                "would run the students' code with your rights, so it is switched off here.")
        self.s, self.b = _session, _session.budgets
        name = resources.get("unique_key") or ""
        self.tests = self.s.tests.get(name)
        self.kernel: JailedProcess | None = None
        self.kernel_lost = ""
        self.fatal: set[int] = set()
        self.restarts = 0
        self.given_up = ""
        self.deadline = time.monotonic() + self.b.submission_timeout
        self.nb = nb
        self.in_test = False
        runner = self.tests.ensure() if self.tests else None
        if runner is not None:
            self._pump_request(runner, {"op": "begin"}, time.monotonic() + 60)
        try:
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                cell.outputs = []
                if cell_plan.cell_kind(cell) == cell_plan.TEST:
                    self._test(index, cell)
                else:
                    self._cell(index, cell)
        finally:
            self._stop_kernel()
        return nb, resources

    # -- the student's cells ------------------------------------------------------------------
    def _cell(self, index: int, cell) -> None:
        if not cell.source.strip():
            return
        if not self._ensure_kernel(index):
            cell.outputs = [error_output(NOT_RUN, f"Not run: {self.given_up}")]
            return
        collected = self._collect(self.kernel)
        try:
            self._run_in_kernel(cell.source, self._cell_deadline())
            cell.outputs = merge_outputs(collected)
        except JailError as exc:
            self.fatal.add(index)
            self._lose_kernel()
            cell.outputs = merge_outputs(collected) + [_failure_output(exc, self.b)]
            label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
            self.s.notes.append(f"{label}: {_what(exc, self.b)}")

    def _run_in_kernel(self, code: str, deadline: float) -> dict:
        return self._to_kernel({"op": "run", "id": "cell", "code": code}, deadline)

    def _to_kernel(self, message: dict, deadline: float) -> dict:
        """Send a request to the kernel and serve it until its reply (interrupting the kernel
        at ``deadline``). Raises JailError when the kernel is gone."""
        self.kernel.send(message)
        try:
            return self._pump(self.kernel, message["id"], deadline)
        except TimedOut:
            self.kernel.interrupt()
            try:
                return self._pump(self.kernel, message["id"], time.monotonic() + INTERRUPT_GRACE_S)
            except TimedOut:
                self.kernel.stop()
                raise TimedOut("stuck") from None

    def _ensure_kernel(self, index: int) -> bool:
        """A live kernel that has run the cells before ``index`` (restarting if need be)."""
        if self.given_up:
            return False
        if time.monotonic() >= self.deadline:
            self._give_up(index, "the submission used up its time budget "
                                 f"({self.b.submission_timeout:g} s)")
            return False
        if self.kernel is not None:
            return True
        if self.restarts > self.b.max_restarts:
            self._give_up(index, "the kernel had to be restarted more than "
                                 f"{self.b.max_restarts} times")
            return False
        spec = self.s.kernel_spec()
        spec.home_mb, spec.tmp_mb = self.b.home_mb, self.b.tmp_mb
        self.kernel = JailedProcess("course_lib.grading.kernel_runner", spec,
                                    memory_bytes=self.b.memory_mb * 2**20,
                                    max_output_bytes=self.b.max_output_kb * 1024,
                                    nproc=self.b.processes, unsafe_no_jail=self.s.unsafe)
        try:
            self.kernel.start()
        except (OSError, jail.JailUnavailable) as exc:
            self.kernel = None
            self.given_up = f"the kernel could not start: {exc}"
            return False
        self.kernel_lost = ""
        if self.restarts:
            self.kernel.sink = None  # the replayed cells' outputs are not kept
            for i, earlier in enumerate(self.nb.cells[:index]):
                if earlier.cell_type == "code" and i not in self.fatal \
                        and cell_plan.cell_kind(earlier) != cell_plan.TEST:
                    try:
                        self.kernel.output_bytes = 0
                        self._run_in_kernel(earlier.source, self._cell_deadline())
                    except JailError as exc:
                        self._lose_kernel()
                        self._give_up(index, f"running the cells before cell {index + 1} "
                                             f"again failed: {_what(exc, self.b)}")
                        return False
        return True

    def _give_up(self, index: int, why: str) -> None:
        self._stop_kernel()
        self.given_up = why
        self.s.notes.append(f"{why}: cell {index + 1} and the cells after it were not run")

    def _lose_kernel(self) -> None:
        if self.kernel is not None:
            self.kernel.stop()
        self.kernel = None
        self.restarts += 1

    def _stop_kernel(self) -> None:
        if self.kernel is not None:
            self.kernel.stop()
            self.kernel = None

    def _cell_deadline(self) -> float:
        return min(time.monotonic() + self.b.cell_timeout, self.deadline)

    # -- test cells ---------------------------------------------------------------------------
    def _test(self, index: int, cell) -> None:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {index + 1}")
        runner = self.tests.ensure() if self.tests else None
        if runner is None:
            reason = self.tests.failure if self.tests else "no test process for this notebook"
            cell.outputs = [error_output(NOT_RUN, f"Not checked: {reason}")]
            self.s.notes.append(f"{gid}: {reason}")
            return
        visible: list[dict] = []
        self.hidden, self.in_test = False, True
        self.visible_outputs = visible
        sink = self._test_sink
        runner.sink = sink
        if self._ensure_kernel(index):
            self.kernel.sink = sink
            self.kernel.output_bytes = 0
        else:
            self.kernel_lost = f"your notebook's kernel is not running: {self.given_up}"
        try:
            verdict = self._pump_request(runner, {"op": "test", "grade_id": gid},
                                         time.monotonic() + TEST_PROCESS_TIMEOUT_S)
        except JailError as exc:
            self.tests.close()
            verdict = {"passed": False, "failed_in": "grader",
                       "message": f"the grader's test process failed: {exc.reason}"}
        finally:
            self.in_test = False
        # Only printed text is kept in a test cell: nbgrader reads an error as 0 points and the
        # value of an execute_result as a partial score, so neither may come from the kernel.
        # And it scores a cell 0 when anything is on stderr; a warning printed by the student's
        # function is not a failed test, so it is shown as ordinary output.
        texts = [{**o, "name": "stdout"} for o in visible if o.get("output_type") == "stream"]
        cell.outputs = merge_outputs(texts)
        failed_in, message = verdict.get("failed_in"), str(verdict.get("message", ""))
        has_hidden = any(h for h, _ in cell_plan.segments(cell.source))
        if verdict.get("passed"):
            if has_hidden:
                cell.outputs.append(new_output("stream", name="stdout",
                                               text="✓ hidden tests passed\n"))
            return
        if failed_in == "hidden":
            cell.outputs.append(error_output(HIDDEN_FAILED, "✗ Hidden tests failed (this cell's "
                                                      "visible checks passed)."))
            self.s.notes.append(f"{gid}: hidden tests failed: {message.splitlines()[0][:200]}"
                                if message else f"{gid}: hidden tests failed")
        else:
            ename = "CheckFailed" if message.startswith("✗") else "TestFailed"
            cell.outputs.append(error_output(ename, message))
            if failed_in in ("kernel", "grader"):
                self.s.notes.append(f"{gid}: {message.splitlines()[0][:200]}")

    def _test_sink(self, output: dict) -> None:
        if not self.hidden:
            self.visible_outputs.append(output)

    def _pump_request(self, runner: JailedProcess, message: dict, deadline: float) -> dict:
        message = {**message, "id": f"grader-{message['op']}"}
        runner.send(message)
        return self._pump(runner, message["id"], deadline)

    def _pump(self, party: JailedProcess, ident: str, deadline: float) -> dict:
        """Read from ``party`` until the reply to ``ident``, passing requests across: the test
        process's ``get`` and ``call`` to the kernel, the kernel's ``callback`` back."""
        runner = self.tests.proc if self.tests else None
        while True:
            message = party.receive(deadline)
            op = message.get("op")
            if op == "reply" and message.get("id") == ident:
                return message
            if party is runner and op == "part":
                self.hidden = bool(message.get("hidden"))
            elif party is runner and op in ("get", "call"):
                runner.send(self._forward(message))
            elif party is self.kernel and party is not None and op == "callback" \
                    and self.in_test:
                runner.send(message)
                reply = self._pump(runner, message.get("id"),
                                   time.monotonic() + TEST_PROCESS_TIMEOUT_S)
                self.kernel.send(reply)
            else:
                raise JailError(f"unexpected message {op!r}")

    def _forward(self, message: dict) -> dict:
        """A request of the test process, answered by the kernel (or 'lost' if it cannot)."""
        ident = message.get("id")
        if self.kernel is None or self.kernel_lost:
            return {"op": "reply", "id": ident,
                    "lost": self.kernel_lost or "your notebook's kernel is not running"}
        request = {k: message[k] for k in ("op", "id", "name", "target", "args", "kwargs")
                   if k in message}
        try:
            return self._to_kernel(request, self._cell_deadline())
        except JailError as exc:
            what = _what(exc, self.b)
            name = _called_name(message)
            self.kernel_lost = f"your notebook's kernel stopped while running {name}: {what}"
            self._lose_kernel()
            return {"op": "reply", "id": ident, "lost": self.kernel_lost}

    # -- outputs --------------------------------------------------------------------------------
    def _collect(self, process: JailedProcess) -> list[dict]:
        outputs: list[dict] = []
        process.sink = outputs.append
        process.output_bytes = 0
        return outputs


def _called_name(message: dict) -> str:
    target = message.get("target") if isinstance(message.get("target"), dict) else {}
    if "import" in target:
        return f"the probe {str(target['import']).split(':')[-1]}"
    return "your function" if message.get("op") == "call" else f"`{message.get('name')}`"


def _what(exc: JailError, budgets: Budgets) -> str:
    from .jailed_process import Died, MemoryExceeded, OutputExceeded

    if isinstance(exc, TimedOut):
        return (f"it ran past its time limit ({budgets.cell_timeout:g} s) and did not stop when "
                "interrupted (does a loop catch KeyboardInterrupt or BaseException?)")
    if isinstance(exc, (OutputExceeded, MemoryExceeded)):
        return f"{exc.reason} (the limit is {budgets.max_output_kb} kB of output per cell and " \
               f"{budgets.memory_mb} MiB of memory)"
    if isinstance(exc, Died):
        return f"the kernel stopped: {exc.reason}"
    return exc.reason


def _failure_output(exc: JailError, budgets: Budgets) -> dict:
    from .jailed_process import Died

    name = KERNEL_DIED if isinstance(exc, Died) else KERNEL_STUCK if isinstance(exc, TimedOut) \
        else BUDGET
    return error_output(name, f"This cell was stopped: {_what(exc, budgets)}. The grader started a "
                        "fresh kernel and ran the cells before this one again, so the cells "
                        "after it were still graded.")
