"""The grader's side of the check outside the kernel: a :mod:`.trusted_replay` process per
notebook, and what its verdicts do to a submission's grades.

A test cell keeps its points only if it passed in the student's kernel *and* here, where
the comparison runs on the recorded values in a process no student code ran in. When the
kernel says "passed" and this check says "failed", the points go and the submission is
flagged: honest code gets the same verdict in both places, so the difference means the
kernel was lied to (or the record was changed).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

STARTUP_TIMEOUT_S = 1800  # the solution notebook runs once per worker
CHECK_TIMEOUT_S = 120  # one submission's test cells, replayed


class CheckerFailed(Exception):
    """The trusted process could not start or answer; the kernel's verdicts stand alone."""


class TrustedChecker:
    """One :mod:`.trusted_replay` process for one solution notebook."""

    def __init__(self, notebook: Path, scratch: Path):
        self.notebook, self.scratch = Path(notebook), Path(scratch)
        self.proc: subprocess.Popen | None = None
        self.unchecked: dict[str, str] = {}  # grade id -> why the kernel's verdict stands alone
        self.problem = ""

    def start(self) -> None:
        """Launch the process (it runs the solution notebook while the caller goes on)."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "course_lib.grading.trusted_replay", str(self.notebook),
             str(self.scratch)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._ready = False
        self.problem = ""

    def _read(self, timeout: float) -> dict:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                line = self.proc.stdout.readline()
                if not line:
                    raise CheckerFailed(f"the grader's checking process stopped "
                                        f"(exit code {self.proc.wait()})")
                return json.loads(line)
        self.close()
        raise CheckerFailed(f"the grader's checking process did not answer within {timeout:g} s")

    def wait_ready(self) -> None:
        if self._ready or self.problem:
            return
        try:
            ready = self._read(STARTUP_TIMEOUT_S)["ready"]
        except (CheckerFailed, KeyError, ValueError) as exc:
            self.problem = f"the solution could not be run for checking ({exc})"
            return
        self.unchecked = {gid: why for gid, why in ready.items() if why}
        self._ready = True

    def check(self, records: Path) -> dict[str, tuple[bool, str]]:
        """Verdicts for one submission: grade id -> (passed, message). Raises CheckerFailed.

        If checking this submission fails (it timed out, the process died), the process is
        started afresh for the next one; if the solution itself cannot run, every call
        raises."""
        if self.proc is None or (self._ready and self.proc.poll() is not None):
            self.start()
        self.wait_ready()
        if self.problem:
            raise CheckerFailed(self.problem)
        try:
            self.proc.stdin.write(json.dumps({"records": str(records)}) + "\n")
            self.proc.stdin.flush()
            answer = self._read(CHECK_TIMEOUT_S)["results"]
            return {gid: (bool(v[0]), str(v[1])) for gid, v in answer.items()}
        except (OSError, KeyError, ValueError, TypeError, IndexError, CheckerFailed) as exc:
            self.close()
            self.proc = None
            raise CheckerFailed(str(exc) if isinstance(exc, CheckerFailed) else
                                f"the grader's checking process failed ({exc})") from None

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def apply_verdicts(gradebook, notebook: str, assignment: str, student: str,
                   verdicts: dict[str, tuple[bool, str]]) -> list[str]:
    """Take away the points of test cells that failed outside the kernel. Returns the grade
    ids that had passed in the kernel: the disagreements, which flag the submission (so no
    feedback page goes out for it; the reason carries the outside check's message)."""
    disagreed = []
    for gid in [gid for gid, (ok, _message) in verdicts.items() if not ok]:
        grade = gradebook.find_grade(gid, notebook, assignment, student)
        if grade.auto_score:
            grade.auto_score = 0.0
            disagreed.append(gid)
    gradebook.db.commit()
    return disagreed
