"""The grader's handle on one test process (:mod:`.test_runner`): one notebook, many students.

It starts the process in its jail, sends it the assignment's source notebook, and waits
while the instructor's cells run there. If the process dies (a submission's data crashed
it, a budget stopped it) it is started again for the next test; what the instructor's cells
printed on the way is kept for the message when it cannot start at all.
"""

from __future__ import annotations

import time

from . import jail
from .jailed_process import JailedProcess, JailError

TEST_PROCESS_MEMORY_MB = 6144
START_TIMEOUT_S = 1800  # the instructor's cells, once per worker


class TestProcess:
    """The grader's handle on one :mod:`.test_runner` process (one notebook, many students)."""

    def __init__(self, source_notebook: str, spec: jail.JailSpec, unsafe: bool = False):
        self.source, self.spec, self.unsafe = source_notebook, spec, unsafe
        self.proc: JailedProcess | None = None
        self.problems: list[str] = []
        self.failure = ""  # why the process cannot be used at all

    def ensure(self) -> JailedProcess | None:
        """The running process, started (and the instructor's cells run) if need be."""
        if self.proc is not None and self.proc.alive():
            return self.proc
        self.proc = JailedProcess("course_lib.grading.test_runner", self.spec,
                                  memory_bytes=TEST_PROCESS_MEMORY_MB * 2**20,
                                  max_output_bytes=2**40,
                                  nproc=4096, unsafe_no_jail=self.unsafe)
        said: list[str] = []
        self.proc.sink = lambda output: said.append(str(output.get("text", "")))
        try:
            self.proc.start()
            self.proc.send({"op": "start", "id": "start", "notebook": self.source})
            reply = self.proc.receive(time.monotonic() + START_TIMEOUT_S)
            self.problems = [str(p) for p in reply.get("problems", [])]
            self.failure = ""
        except (JailError, OSError) as exc:
            last = "".join(said).strip().splitlines()[-3:]
            self.failure = (f"the grader's test process could not start: "
                            f"{getattr(exc, 'reason', exc)}" + (f" ({' | '.join(last)})"
                                                                if last else ""))
            self.close()
        return self.proc

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


