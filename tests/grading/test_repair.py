"""Rebuilding a submission from the release: answers move over, nothing else does."""

import copy
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import notebook_path  # noqa: E402

from course_lib.repair import repair  # noqa: E402

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


def test_honest_variants_keep_their_place_and_get_no_note():
    """A helper before the first answer, an answer written below its untouched stub, Windows
    line endings: each is graded as written, and the report says nothing."""
    release = nbformat.read(notebook_path(A, True), 4)
    solution = nbformat.read(notebook_path(A), 4)
    sub = copy.deepcopy(release)
    sub.cells.insert(3, nbformat.v4.new_code_cell("def column_mean(a):\n    return a.mean(0)"))
    at = next(i for i, c in enumerate(sub.cells)
              if c.metadata.get("nbgrader", {}).get("grade_id") == "standardize")
    sub.cells.insert(at + 1, nbformat.v4.new_code_cell(_answers(solution)["standardize"]))
    for cell in sub.cells:
        cell.source = cell.source.replace("\n", "\r\n")
    out, report = repair(release, sub)
    sources = [c.source for c in out.cells]
    assert sources[3].startswith("def column_mean") and "\r" not in "".join(sources)
    at = next(i for i, c in enumerate(out.cells)
              if c.metadata.get("nbgrader", {}).get("grade_id") == "standardize")
    assert sources[at + 1] == _answers(solution)["standardize"]
    assert len(out.cells) == len(release.cells) + 2
    assert report.summary() == ""


def test_a_written_answer_without_metadata_is_found_after_its_question():
    assignment = "01_activations"
    release = nbformat.read(notebook_path(assignment, True), 4)
    sub = copy.deepcopy(release)
    written = next(i for i, c in enumerate(release.cells)
                   if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution"))
    sub.cells[written].source = "Because the gradient vanishes when the unit saturates."
    for cell in sub.cells:
        cell.metadata = {}
        cell.pop("id", None)
    out, report = repair(release, sub)
    gid = release.cells[written].metadata["nbgrader"]["grade_id"]
    assert out.cells[written].source.startswith("Because the gradient vanishes")
    assert report.matched[gid] == "content" and gid not in report.unanswered
