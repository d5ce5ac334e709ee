"""Real nbgrader on every assignment: solution = full marks, release = 0, partial in between.

Also the `course grade` command on a folder with a correct, a blank, a partial and an
invalid-JSON submission: the right scores, statuses and reasons, one feedback page each,
and no hidden test in any feedback page.
"""

import csv
import shutil

import nbformat
import pytest
from conftest import ASSIGNMENTS, REPO, executing, notebook_path, partial_submission

from course_lib.cli import main
from course_lib.grading.autograde import grade


@pytest.mark.parametrize("assignment", executing(ASSIGNMENTS))
def test_solution_full_release_zero_partial_between(assignment, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(notebook_path(assignment), subs / "solution.ipynb")
    shutil.copy(notebook_path(assignment, student=True), subs / "release.ipynb")
    nbformat.write(partial_submission(assignment, solved=1), subs / "partial.ipynb")
    # A generous per-cell limit: CI machines are slow and busy, and this is not a timing test.
    rows = {r.student_id: r for r in grade(REPO, assignment, subs, tmp_path / "out",
                                            cell_timeout=600)}

    assert all(r.status == "graded" for r in rows.values()), {k: r.reason for k, r in rows.items()}
    full = rows["solution"]
    assert full.auto_max_score > 0
    assert full.auto_score == full.auto_max_score, full.reason
    assert rows["release"].auto_score == 0
    assert 0 < rows["partial"].auto_score < full.auto_max_score, rows["partial"].reason
    # The test process found nothing wrong with the assignment itself (every test cell ran
    # apart from the kernel, from the instructor's cells alone).
    problems = tmp_path / "out" / "grading_problems.txt"
    assert not problems.exists(), problems.read_text()
    # A written answer nobody has graded yet is shown as waiting, not as zero points.
    written = [c.metadata["nbgrader"] for c in nbformat.read(notebook_path(assignment), 4).cells
               if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution")]
    page = (tmp_path / "out" / full.feedback).read_text()
    assert full.manual_pending == sum(w["points"] for w in written)
    for w in written:
        assert f'href="#{w["grade_id"]}">Written response</a> (waiting for your instructor' in page
    if written:
        assert "Score so far:" in page and "points waiting for your instructor" in page


def test_course_grade_command_on_a_mixed_folder(tmp_path, capsys):
    assignment = ASSIGNMENTS[0]
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(notebook_path(assignment), subs / "ada.ipynb")
    shutil.copy(notebook_path(assignment, student=True), subs / "blank.ipynb")
    nbformat.write(partial_submission(assignment, solved=1), subs / "half.ipynb")
    (subs / "broken.ipynb").write_text('{"cells": [ {"cell_type": "code", ')
    # nbgrader's submitted/ layout is accepted in the same folder: <student>/<assignment>/<nb>
    (subs / "tree" / assignment).mkdir(parents=True)
    shutil.copy(notebook_path(assignment), subs / "tree" / assignment / f"{assignment}.ipynb")
    out = tmp_path / "out"

    assert main(["grade", assignment, str(subs), "--out", str(out), "--repo", str(REPO)]) == 0
    with open(out / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"ada", "blank", "half", "broken", "tree"}
    assert {"student_id", "assignment", "score", "max_score", "status", "reason"} <= set(
        rows["ada"])
    top = float(rows["ada"]["auto_max_score"])
    assert (rows["ada"]["status"], float(rows["ada"]["auto_score"])) == ("graded", top)
    assert (rows["blank"]["status"], float(rows["blank"]["score"])) == ("graded", 0)
    assert rows["half"]["status"] == "graded" and 0 < float(rows["half"]["score"]) < top
    assert (rows["tree"]["status"], float(rows["tree"]["auto_score"])) == ("graded", top)
    assert rows["broken"]["status"] == "error"
    assert "not valid notebook JSON" in rows["broken"]["reason"]
    assert "tests not passed" in rows["blank"]["reason"]

    report = (out / "report.html").read_text()
    assert "5 submissions, 4 graded, 1 not." in report
    assert report.count("data:image/png;base64,") == 2  # score spread, pass rate per test
    assert "Content-Security-Policy" in report and "<script" not in report
    attention = report.split("need a person")[1]
    assert "broken" in attention and "not valid notebook JSON" in attention
    assert "ada" not in attention  # full marks, nothing flagged, no written answer
    # the blank submission fails every test with the check's own message
    assert "Most common failures" in report and "is not written yet" in report

    pages = sorted(p.name for p in (out / "feedback").iterdir())
    assert pages == ["ada.html", "blank.html", "half.html", "tree.html"]
    for page in (out / "feedback").iterdir():
        html = page.read_text()
        assert "BEGIN HIDDEN TESTS" not in html
        hidden = _hidden_lines(assignment)
        leaked = [line for line in hidden if line in html]
        assert not leaked, f"{page.name} shows hidden test code: {leaked[:2]}"


def _hidden_lines(assignment):
    """Distinctive lines from the hidden test regions of an assignment's solution."""
    lines = []
    for cell in nbformat.read(notebook_path(assignment), as_version=4).cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 25:
                lines.append(line.strip().replace("<", "&lt;").replace(">", "&gt;"))
    return lines


def test_without_bubblewrap_grading_refuses_and_says_what_to_do(tmp_path, monkeypatch, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(notebook_path(ASSIGNMENTS[0]), subs / "ada.ipynb")
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without bwrap
    code = main(["grade", ASSIGNMENTS[0], str(subs), "--out", str(tmp_path / "out"),
                 "--repo", str(REPO)])
    err = capsys.readouterr().err
    assert code == 2
    assert "apt-get install bubblewrap" in err and "--unsafe-no-sandbox" in err
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_unsafe_no_sandbox_still_grades_apart_and_says_so(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    assignment = ASSIGNMENTS[0]
    shutil.copy(notebook_path(assignment), subs / "ada.ipynb")
    shutil.copy(notebook_path(assignment, student=True), subs / "blank.ipynb")
    rows = {r.student_id: r for r in grade(REPO, assignment, subs, tmp_path / "out",
                                            sandbox=False)}
    assert rows["ada"].auto_score == rows["ada"].auto_max_score > 0
    assert rows["blank"].auto_score == 0
    assert {r.sandbox for r in rows.values()} == {"none (--unsafe-no-sandbox)"}
    with open(tmp_path / "out" / "grades.csv", newline="") as fh:
        assert {r["sandbox"] for r in csv.DictReader(fh)} == {"none (--unsafe-no-sandbox)"}
