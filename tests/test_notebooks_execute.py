"""Every notebook runs headless: solutions pass every check, student versions fail cleanly.

"Fail cleanly" means every test cell of an untouched student notebook fails with a check
message (CheckFailed or NotImplementedError), and no other cell fails. That proves both that
the notebook runs without the answers and that its checks can fail.
"""

import nbformat
import pytest
from conftest import ASSIGNMENTS, REPO, executing, notebook_path

from course_lib.notebooks import run_notebook


def _test_cells(nb):
    return [c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]


def _errors(cell):
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("assignment", executing(ASSIGNMENTS))
def test_solution_runs_and_passes_every_check(assignment, tmp_path):
    result = run_notebook(notebook_path(assignment), tmp_path, profile="quick")
    assert result.status == "ok", result.detail
    executed = nbformat.read(result.output, as_version=4)
    tests = _test_cells(executed)
    assert tests, f"{assignment} has no graded test cell"
    for cell in tests:
        assert not _errors(cell), cell.metadata["nbgrader"]["grade_id"]
        # a test cell's last line leaves no Out[] (it would show a checked value to students)
        assert not any(o.get("output_type") == "execute_result" for o in cell.outputs), \
            f'{cell.metadata["nbgrader"]["grade_id"]} leaves a value as its output'
    # Every cell that shows a figure holds it in the executed copy, as an image.
    drawing = [i for i, c in enumerate(executed.cells) if c.cell_type == "code"
               and ("plt.show()" in c.source or "widgets.explore(" in c.source)]
    assert drawing, f"{assignment} draws no figure"
    blank = [i for i in drawing if not any("image/png" in o.get("data", {})
                                           for o in executed.cells[i].get("outputs", []))]
    assert not blank, f"{assignment}: cells {blank} draw a figure that is not in the output"
    # Compiled libraries' start-up logs (absl, oneDNN, cuInit) stay out of the notebook.
    native = [i for i, c in enumerate(executed.cells) if c.cell_type == "code"
              and any(o.get("name") == "stderr" and ("I0000" in o.get("text", "")
                                                      or "absl::" in o.get("text", ""))
                      for o in c.get("outputs", []))]
    assert not native, f"{assignment}: cells {native} show compiled libraries' logs"


@pytest.mark.parametrize("assignment", executing(ASSIGNMENTS))
def test_student_version_fails_cleanly(assignment, tmp_path):
    result = run_notebook(notebook_path(assignment, student=True), tmp_path, profile="quick",
                          student=True)
    assert result.status == "open exercises", result.detail
    executed = nbformat.read(result.output, as_version=4)
    for cell in _test_cells(executed):
        errors = _errors(cell)
        gid = cell.metadata["nbgrader"]["grade_id"]
        assert errors, f"{gid} passed without an answer: the check cannot fail"
        assert errors[0]["ename"] in ("CheckFailed", "NotImplementedError"), (gid, errors[0])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_notebooks_have_no_outputs(assignment):
    for student in (False, True):
        nb = nbformat.read(notebook_path(assignment, student), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, (assignment, student)


def _repository():
    import tomllib

    course = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["course"]
    return course["repository"], course["branch"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_anatomy(assignment):
    """Title, Colab badge, setup cell, learning goals, summary pointing onward.

    The badge and the setup cell's install both use the repository named once, in
    pyproject.toml's [tool.course].
    """
    repo, branch = _repository()
    nb = nbformat.read(notebook_path(assignment), as_version=4)
    text = [c.source for c in nb.cells]
    assert text[0].startswith(f"# {assignment[:2]} ·"), "first cell is the title"
    badge = (f"(https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/"
             f"{assignment}/{assignment}.ipynb)")
    assert any("colab-badge.svg" in t and badge in t for t in text[:3]), badge
    setup = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup"]
    assert setup and "device.setup(" in setup[0].source
    assert f'"course-lib @ git+https://github.com/{repo}"' in setup[0].source
    assert 'find_spec("course_lib") is None' in setup[0].source, "install only when missing"
    assert setup[0].metadata["nbgrader"]["locked"]
    assert any(t.startswith("## Learning goals") for t in text)
    assert nb.cells[-1].source.startswith("## Summary")
    later = [a for a in ASSIGNMENTS if a > assignment]
    if later:
        assert later[0] in nb.cells[-1].source or "Next" in nb.cells[-1].source


# Every sentence that reports a result is printed from the numbers, so it must also hold in
# the full profile. These notebooks' full profile is cheap enough for a CPU; the others train
# on a GPU and are checked there.
FULL_ON_CPU = ["03_optimizers", "06_autoencoder_pretraining", "11_metrics_and_curves",
               "12_validation"]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", FULL_ON_CPU)
def test_full_profile_runs_and_passes_on_a_cpu(assignment, tmp_path):
    result = run_notebook(notebook_path(assignment), tmp_path, profile="full")
    assert result.status == "ok", result.detail
    executed = nbformat.read(result.output, as_version=4)
    failed = [c.metadata["nbgrader"]["grade_id"] for c in _test_cells(executed) if _errors(c)]
    assert not failed, failed
