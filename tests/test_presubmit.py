"""`course check`: what a student learns before submitting."""

import copy
import shutil

import nbformat
from conftest import REPO, notebook_path

from course_lib.cli import main
from course_lib.presubmit import check_notebook

A = "00_setup"


def _student_repo(tmp_path):
    repo = tmp_path / "course"
    (repo / "solutions").mkdir(parents=True)
    shutil.copytree(REPO / "notebooks" / A, repo / "notebooks" / A)
    (repo / "mywork").mkdir()
    return repo / "mywork" / f"{A}.ipynb"


def test_finished_notebook_is_ready(tmp_path, capsys):
    path = _student_repo(tmp_path)
    shutil.copy(notebook_path(A), path)
    assert main(["check", str(path)]) == 0
    assert "Ready to submit" in capsys.readouterr().out


def test_reports_missing_answer_open_exercise_and_out_of_order_cell(tmp_path):
    path = _student_repo(tmp_path)
    nb = copy.deepcopy(nbformat.read(notebook_path(A), as_version=4))
    at = next(i for i, c in enumerate(nb.cells) if c.source.startswith("epochs ="))
    early = nbformat.v4.new_code_cell("print(X.shape)")  # X is defined further down
    early.outputs = [nbformat.v4.new_output("stream", name="stdout", text="(4, 3)\n")]
    nb.cells.insert(at, early)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "one_hot"]
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "standardize":
            cell.source = cell.source.split("### BEGIN SOLUTION")[0] + "raise NotImplementedError()"
    nbformat.write(nb, path)
    report = check_notebook(path)
    text = str(report)
    assert "the answer cell one_hot is missing" in text
    assert "an exercise is not answered yet" in text
    assert "worked in your session but fails when the notebook runs from the top" in text
    assert "problem(s) to fix" in text


def test_submit_check_in_colab_says_what_to_do(monkeypatch, capsys):
    import course_lib

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert course_lib.submit_check() is None
    assert "course check path/to/the/notebook.ipynb" in capsys.readouterr().out


def test_a_failing_check_keeps_its_lesson_and_names_the_answer_cell(tmp_path):
    path = _student_repo(tmp_path)
    nb = copy.deepcopy(nbformat.read(notebook_path(A), as_version=4))
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    answer = ids.index("standardize")
    nb.cells[answer].source = "def standardize(X):\n    return X - X.mean(axis=0)\n"
    written = nbformat.v4.new_markdown_cell("YOUR ANSWER HERE")
    written.metadata["nbgrader"] = {"grade_id": "q_why", "solution": True, "grade": True,
                                    "points": 2, "locked": False, "schema_version": 3}
    nb.cells.append(written)
    nbformat.write(nb, path)
    text = str(check_notebook(path))
    problem = text.split("✗ ")[1]
    # the answer cell, not the check cell, is where the student edits
    assert problem.startswith(f"the answer in cell {answer + 1} (standardize) fails "
                              f"cell {answer + 2} (test_standardize)'s check:")
    assert "Re-read" in problem and "expected" in problem.lower()  # the whole lesson
    assert problem.count("✗") == 0  # the check's own mark is not repeated
    assert "q_why): this written answer is empty (2 point(s)" in text
