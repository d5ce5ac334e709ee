"""Which cells run where, and where a test cell's names come from."""

import nbformat
import pytest
from conftest import ASSIGNMENTS, notebook_path

from course_lib.grading import cell_plan


def _nb(*cells):
    """cells: (kind, source) with kind answer | test | code | hidden-test."""
    nb = nbformat.v4.new_notebook()
    for i, (kind, source) in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        if kind == "answer":
            cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": f"a{i}"}
        elif kind == "test":
            cell.metadata["nbgrader"] = {"solution": False, "grade": True, "grade_id": f"t{i}",
                                         "points": 1, "locked": True}
        nb.cells.append(cell)
    return nb


def test_names_come_from_the_right_side():
    plan = cell_plan.plan(_nb(
        ("code", "import numpy as np\nX = np.ones(3)"),
        ("answer", "def f(x):\n    return x"),
        ("code", "Y = f(X)"),  # uses the answer: runs in the kernel only
        ("code", "def helper():\n    return f(1)"),  # calls the answer later: kernel only
        ("code", "Z = X * 2"),  # trusted
        ("test", "def ref(x):\n    return x\nassert f(X) is not None and Y is not None\n"
                 "assert Z.sum()"),
        ("test", "ref(helper())"),
    ))
    trusted = [c.index for c in plan.cells if c.kind == "instructor" and c.trusted]
    assert trusted == [0, 4]
    first, second = plan.tests()
    assert first.sources == {"f": "kernel", "X": "trusted", "Y": "kernel", "Z": "trusted"}
    assert second.sources == {"ref": "test", "helper": "kernel"}
    assert plan.problems() == []


def test_a_cell_that_reads_what_only_a_test_binds_is_a_problem():
    plan = cell_plan.plan(_nb(("answer", "def f(x):\n    return x"),
                              ("test", "x_check = 3\nassert f(x_check) == 3"),
                              ("code", "print(x_check)")))
    assert any("x_check" in p for p in plan.problems())


def test_segments_keep_order_and_line_numbers():
    source = "a = 1\n### BEGIN HIDDEN TESTS\nb = a\n### END HIDDEN TESTS\nc = b"
    parts = cell_plan.segments(source)
    assert [h for h, _ in parts] == [False, True, False]
    assert parts[1][1].splitlines()[2] == "b = a"  # still on line 3
    # A hidden block inside a loop cannot run on its own: the cell runs whole, as hidden.
    looped = "for i in range(2):\n### BEGIN HIDDEN TESTS\n    pass\n### END HIDDEN TESTS"
    assert cell_plan.segments(looped) == [(True, looped)]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_assignment_plans_without_problems(assignment):
    """The kernel never runs test cells, so no other cell may depend on one; and each test
    reads from the kernel only what the student's code binds."""
    nb = nbformat.read(notebook_path(assignment), as_version=4)
    plan = cell_plan.plan(nb)
    assert plan.problems() == []
    answers = set().union(*(c.scope.stores for c in plan.cells if c.kind == "answer"))
    for test in plan.tests():
        from_kernel = {n for n, w in test.sources.items() if w == "kernel"}
        assert from_kernel and from_kernel <= answers, (test.grade_id, from_kernel)
