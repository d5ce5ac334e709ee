"""nbgrader's own exchange, on one machine: the instructor releases, two students fetch and
submit, the instructor collects, and `course grade` grades what was collected.

As root the students are two accounts of the machine (made if missing), as on a JupyterHub;
otherwise the one account submits, and a second student id is put in the exchange by hand.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from as_user import command_as, ensure_user, is_root
from conftest import REPO, notebook_path

from course_lib.grading.autograde import grade
from course_lib.grading.course_dir import COURSE_ID

A = "00_setup"
BIN = str(Path(sys.executable).parent)
STUDENTS = ["course-student-1", "course-student-2"]


def _nbgrader(*args, cwd, uid=None, home=None):
    argv = [f"{BIN}/nbgrader", *args]
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home or str(cwd)}
    done = subprocess.run(command_as(uid, argv) if uid is not None else argv, cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture
def course():
    # Under /tmp with open permissions, so that other accounts can reach the exchange.
    top = Path(tempfile.mkdtemp(prefix="course-exchange-"))
    top.chmod(0o755)
    course = top / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "notebooks" / A, course / "notebooks" / A)
    yield course
    shutil.rmtree(top, ignore_errors=True)


def test_release_fetch_submit_collect_grade(course):
    top = course.parent
    listed = _nbgrader("list", cwd=course)  # what the formgrader's assignment list asks
    assert "does not exist" not in listed
    exchange = course / "exchange"
    assert exchange.is_dir() and exchange.stat().st_mode & 0o1777 == 0o1777
    assert f"Released as: {COURSE_ID} {A}" in _nbgrader("release_assignment", A, cwd=course)

    ids = []
    for n, name in enumerate(STUDENTS if is_root() else [os.environ.get("USER", "me")]):
        uid = ensure_user(name) if is_root() else None
        work = top / f"student{n}"
        work.mkdir()
        if uid is not None:
            os.chown(work, uid, uid)
        flags = ["--course", COURSE_ID, f"--Exchange.root={exchange}"]
        _nbgrader("fetch_assignment", A, *flags, cwd=work, uid=uid)
        if n == 0:  # the first student answers everything; the second submits the release
            shutil.copy(notebook_path(A), work / A / f"{A}.ipynb")
        out = _nbgrader("submit", A, *flags, cwd=work, uid=uid)
        assert f"Submitted as: {COURSE_ID} {A}" in out
        ids.append(name)
    inbound = exchange / COURSE_ID / "inbound"
    if not is_root():  # a classmate's submission, named as nbgrader's submit names it
        only = next(inbound.iterdir())
        shutil.copytree(only, inbound / only.name.replace(ids[0], "classmate", 1))
        (inbound / only.name.replace(ids[0], "classmate", 1) / f"{A}.ipynb").write_bytes(
            (REPO / "notebooks" / A / f"{A}.ipynb").read_bytes())
        ids.append("classmate")
    assert len(list(inbound.iterdir())) == 2

    _nbgrader("collect", A, cwd=course)
    submitted = course / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == sorted(ids)
    rows = {r.student_id: r for r in grade(REPO, A, submitted, top / "grades")}
    assert rows[ids[0]].status == rows[ids[1]].status == "graded"
    assert rows[ids[0]].auto_score == rows[ids[0]].auto_max_score > 0
    assert rows[ids[1]].auto_score == 0
