"""Rebuilding a submission from the release: answers move over, nothing else does."""

import copy
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import notebook_path  # noqa: E402

from course_lib.grading.repair import repair  # noqa: E402

A = "00_setup"


def _answers(nb):
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def test_metadata_and_ids_gone_content_still_matches():
    release = nbformat.read(notebook_path(A, True), 4)
    solution = nbformat.read(notebook_path(A), 4)
    stripped = copy.deepcopy(solution)
    for cell in stripped.cells:
        cell.metadata = {}
        cell.pop("id", None)
    out, report = repair(release, stripped)
    assert _answers(out) == _answers(solution)
    assert set(report.matched.values()) == {"content"}
    assert not report.unanswered


def test_forged_points_do_not_survive():
    release = nbformat.read(notebook_path(A, True), 4)
    forged = copy.deepcopy(release)
    for cell in forged.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.metadata["nbgrader"]["points"] = 1000
    out, _ = repair(release, forged)
    points = [c.metadata["nbgrader"].get("points") for c in out.cells
              if c.metadata.get("nbgrader", {}).get("grade")]
    assert points and max(points) < 1000


def test_duplicate_answer_uses_last_edited_copy_and_says_so():
    release = nbformat.read(notebook_path(A, True), 4)
    sub = copy.deepcopy(release)
    index = next(i for i, c in enumerate(sub.cells)
                 if c.metadata.get("nbgrader", {}).get("grade_id") == "standardize")
    edited = copy.deepcopy(sub.cells[index])
    edited.source = edited.source.replace("raise NotImplementedError()", "return X")
    sub.cells.insert(index + 1, edited)
    out, report = repair(release, sub)
    assert "return X" in _answers(out)["standardize"]
    assert any("appears 2 times" in note for note in report.notes)


def test_added_helper_cell_is_kept_after_its_answer():
    release = nbformat.read(notebook_path(A, True), 4)
    sub = copy.deepcopy(release)
    index = next(i for i, c in enumerate(sub.cells)
                 if c.metadata.get("nbgrader", {}).get("grade_id") == "standardize")
    sub.cells.insert(index + 1, nbformat.v4.new_code_cell("def helper(x):\n    return x"))
    out, _ = repair(release, sub)
    sources = [c.source for c in out.cells]
    at = next(i for i, c in enumerate(out.cells)
              if c.metadata.get("nbgrader", {}).get("grade_id") == "standardize")
    assert sources[at + 1].startswith("def helper")
    assert len(out.cells) == len(release.cells) + 1
