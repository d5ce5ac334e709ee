"""Lease a sandbox uid that no other grading run on this machine is using.

Under root every jail runs as an unprivileged uid of its own (see :mod:`.jail`), and after
the submission every process of that uid is killed (the jail's pid namespace already ends
them all; this is the second lock on the door). If two grading runs (two
``course grade`` commands, parallel jobs, a test suite running grading tests side by side)
picked uids by counting from the same base, one run's clean-up would kill the other's
kernels. So a uid is leased: holding an exclusive ``flock`` on a file named after it. The
lock goes away with the process that holds it, even after a crash, so a uid is never lost.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SANDBOX_UID_BASE = 61000  # uids 61000..64999 are unassigned on Debian-like systems
SANDBOX_UID_COUNT = 4000
LOCK_DIR = Path(tempfile.gettempdir()) / "course-sandbox-uids"


@contextmanager
def leased_uid() -> Iterator[int]:
    """Yield a uid in [SANDBOX_UID_BASE, +SANDBOX_UID_COUNT) held by no other process.

    On leaving, every process still running under the uid is killed and waited for, and only
    then is the lease released. Raises RuntimeError when every uid is taken. Without root
    the kernel keeps the grader's own uid, so there is nothing to lease: yields the base.
    """
    if os.geteuid() != 0:
        yield SANDBOX_UID_BASE
        return
    LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    if LOCK_DIR.stat().st_uid != 0:
        raise RuntimeError(f"{LOCK_DIR} belongs to another user; remove it and grade again.")
    start = os.getpid() % SANDBOX_UID_COUNT  # spread concurrent runs over the range
    for step in range(SANDBOX_UID_COUNT):
        uid = SANDBOX_UID_BASE + (start + step) % SANDBOX_UID_COUNT
        fd = os.open(LOCK_DIR / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            end_processes(uid)  # a run killed before its clean-up may have left some
            yield uid
        finally:
            end_processes(uid)
            os.close(fd)  # releases the lock
        return
    raise RuntimeError(f"All {SANDBOX_UID_COUNT} sandbox uids are in use: too many grading "
                       "runs at once on this machine; wait for some to finish.")


def end_processes(uid: int) -> None:
    """Kill whatever runs under ``uid`` (a fork bomb's children, a daemon) and wait until it
    is gone, so nothing of a submission outlives its grading. Only root can, and needs to."""
    if os.geteuid() != 0 or not shutil.which("pkill"):
        return
    for _ in range(50):
        subprocess.run(["pkill", "-KILL", "-u", str(uid)], capture_output=True)
        if subprocess.run(["pgrep", "-u", str(uid)], capture_output=True).returncode != 0:
            return
        time.sleep(0.1)
