"""The class report's figures and tables from grade rows (the rows `course grade` returns)."""

from course_lib.grading.autograde import CSV_COLUMNS, GradeRow
from course_lib.grading.class_report import needs_a_person, render


def _row(sid, score, tests, **kw):
    return GradeRow(sid, "01_x", score=score, max_score=10, auto_score=score,
                    auto_max_score=10, status="graded", tests=tests, **kw)


ROWS = [
    _row("ann", 10, {"test_a": "", "test_b": ""}),
    _row("ben", 4, {"test_a": "", "test_b": "CheckFailed: f(x) has wrong values."}),
    _row("cat", 0, {"test_a": "CheckFailed: `f` is not written yet",
                    "test_b": "CheckFailed: f(x) has wrong values."},
         flags=["cell 7 stopped: over the 120 s budget"]),
    _row("dan", 10, {"test_a": "", "test_b": ""}, manual_pending=2.0),
    GradeRow("eve", "01_x", reason="not valid notebook JSON (line 1)"),
]


def test_report_counts_rates_messages_and_who_needs_a_person():
    page = render(ROWS, "01_x")
    assert "5 submissions, 4 graded, 1 not." in page
    assert "the median submission earned 70 %" in page and "2 earned them all" in page
    # test_b is the hardest (2 of 4 passed) and comes first
    hardest = page.index("<td>test_b</td><td class=num>50%</td><td class=num>2</td>")
    assert hardest < page.index("<td>test_a</td><td class=num>75%</td><td class=num>1</td>")
    assert "<td>f(x) has wrong values.</td>" not in page  # messages keep their kind
    assert "<td>CheckFailed: f(x) has wrong values.</td><td class=num>2</td>" in page
    people = page.split("need a person")[1]
    for sid in ("cat", "dan", "eve"):
        assert f"<td>{sid}</td>" in people
    assert "<td>ann</td>" not in people and "<td>ben</td>" not in people
    assert needs_a_person(ROWS[3]) == ["written answers to grade (2 points)"]


def test_what_a_submission_wrote_cannot_become_markup_and_csv_keeps_its_columns():
    evil = _row("<b>x</b>", 0, {"test_a": "CheckFailed: <img src=x onerror=alert(1)>"})
    page = render([evil], "01_x")
    assert "<img src=x" not in page and "&lt;img src=x" in page
    assert "tests" not in CSV_COLUMNS and "flags" not in CSV_COLUMNS
