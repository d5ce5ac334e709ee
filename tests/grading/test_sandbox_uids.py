"""Two grading runs on one machine never share a sandbox uid (one's clean-up would kill the
other's kernels)."""

import os
import subprocess
import sys

import pytest

from course_lib.grading.sandbox_uids import SANDBOX_UID_BASE, SANDBOX_UID_COUNT, leased_uid

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="uids are only switched under root")


@needs_root
def test_nested_leases_differ_and_stay_in_range():
    with leased_uid() as a, leased_uid() as b:
        assert a != b
        assert all(SANDBOX_UID_BASE <= u < SANDBOX_UID_BASE + SANDBOX_UID_COUNT for u in (a, b))


@needs_root
def test_a_uid_held_by_another_process_is_skipped_and_its_processes_survive(monkeypatch):
    # Another "grading run" holds a lease and runs a process under its uid.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys\n"
         "from course_lib.grading.sandbox_uids import leased_uid\n"
         "with leased_uid() as uid:\n"
         "    p = subprocess.Popen(['sleep', '60'], user=uid)\n"
         "    print(uid, flush=True)\n"
         "    sys.stdin.readline()\n"
         "    print('alive' if p.poll() is None else 'killed', flush=True)\n"
         "print('ended by the lease' if p.wait(timeout=10) else 'exited', flush=True)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    theirs = int(holder.stdout.readline())
    # Start our search exactly at their uid: it must be passed over, not shared.
    monkeypatch.setattr(os, "getpid", lambda: theirs - SANDBOX_UID_BASE)
    with leased_uid() as mine:
        # Usually theirs + 1; further on when a test on another worker holds that one.
        assert mine != theirs
    out, _ = holder.communicate("\n", timeout=60)
    assert out.split("\n")[:2] == ["alive", "ended by the lease"]


def test_without_root_nothing_is_leased(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with leased_uid() as uid:
        assert uid == SANDBOX_UID_BASE
