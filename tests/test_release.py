"""`course release --check`: the committed notebooks/ equal a fresh release of solutions/."""

import shutil

import nbformat
from conftest import ASSIGNMENTS, REPO

from course_lib.cli import main


def test_committed_release_is_in_sync(capsys):
    assert main(["release", "--check", "--repo", str(REPO)]) == 0, capsys.readouterr().out


def _copy_repo(tmp_path):
    copy = tmp_path / "repo"
    for part in ("solutions", "notebooks"):
        shutil.copytree(REPO / part, copy / part)
    return copy


def test_hand_edit_in_notebooks_is_caught(tmp_path, capsys):
    repo = _copy_repo(tmp_path)
    name = ASSIGNMENTS[-1]
    path = repo / "notebooks" / name / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n\nA sentence added by hand."
    nbformat.write(nb, path)
    assert main(["release", "--check", "--repo", str(repo)]) == 1
    out = capsys.readouterr().out
    assert f"changed: notebooks/{name}/{name}.ipynb" in out
    assert f"course release {name}" in out


def test_release_repairs_drift_and_is_deterministic(tmp_path, capsys):
    repo = _copy_repo(tmp_path)
    name = ASSIGNMENTS[0]
    (repo / "notebooks" / name / f"{name}.ipynb").unlink()
    (repo / "notebooks" / name / "stray.txt").write_text("left behind")
    assert main(["release", name, "--repo", str(repo)]) == 0
    assert main(["release", "--check", "--repo", str(repo)]) == 0
    assert not (repo / "notebooks" / name / "stray.txt").exists()
