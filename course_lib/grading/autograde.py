"""Grade a batch of submissions with nbgrader; write ``grades.csv`` and feedback pages.

Every submission gets one row, whatever happens to it: a notebook that cannot be read, a
kernel that dies, or an nbgrader error becomes ``status=error`` with a reason, and the batch
goes on. Scores come from nbgrader's gradebook; which points are automatic and which wait for
a person is read from the assignment's own cell metadata, not from the submission.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import nbformat

from .course_dir import CourseDir
from .submissions import Submission, find_submissions, read_notebook


@dataclass
class GradeRow:
    """One line of grades.csv. Points are floats; ``max_score`` includes written answers."""

    student_id: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    auto_score: float = 0.0
    auto_max_score: float = 0.0
    manual_pending: float = 0.0  # points of written answers nobody has graded yet
    status: str = "error"  # graded | error
    reason: str = ""
    feedback: str = ""  # path of the feedback page, relative to the output folder


@dataclass(frozen=True)
class PointsPlan:
    """The assignment's points by grade id, split into autograded tests and written answers."""

    auto: dict[str, float]
    manual: dict[str, float]


def points_plan(notebook: Path) -> PointsPlan:
    """Read a solution notebook's nbgrader metadata: grade id -> points, automatic vs manual."""
    auto, manual = {}, {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            (manual if meta.get("solution") else auto)[meta["grade_id"]] = float(meta["points"])
    return PointsPlan(auto, manual)


def _failure_reason(result: dict) -> str:
    text = (result.get("error") or result.get("log") or "nbgrader failed without a message")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "nbgrader failed"


def _feedback_config():
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades
    from traitlets.config import Config

    from .hide_test_tracebacks import HideTestTracebacks

    c = Config()
    c.GenerateFeedback.preprocessors = [
        GetGrades, ClearHiddenTests, HideTestTracebacks, CSSHTMLHeaderPreprocessor,
    ]
    return c


def _grade_one(course: CourseDir, sub: Submission, assignment: str, plans: dict[str, PointsPlan],
               out: Path) -> GradeRow:
    from nbgrader.api import Gradebook

    row = GradeRow(sub.student_id, assignment)
    row.max_score = sum(sum(p.auto.values()) + sum(p.manual.values()) for p in plans.values())
    row.auto_max_score = sum(sum(p.auto.values()) for p in plans.values())
    if sub.problem:
        row.reason = sub.problem
        return row
    target = course.path("submitted", sub.student_id, assignment)
    target.mkdir(parents=True, exist_ok=True)
    for nb_name in plans:
        if nb_name not in sub.files:
            row.reason = f"{nb_name} is missing from the submission"
            return row
        nb, problem = read_notebook(sub.files[nb_name])
        if nb is None:
            row.reason = problem
            return row
        nbformat.write(nb, target / nb_name)

    result = course.api.autograde(assignment, sub.student_id, force=True, create=True)
    if not result["success"]:
        row.reason = f"autograding failed: {_failure_reason(result)}"
        return row

    failed, pending = [], 0.0
    with Gradebook(course.coursedir.db_url) as gb:
        submission = gb.find_submission(assignment, sub.student_id)
        for nb in submission.notebooks:
            plan = plans[nb.name + ".ipynb"]
            for grade in nb.grades:
                if grade.name in plan.auto:
                    row.auto_score += grade.score
                    if grade.score < grade.max_score:
                        failed.append(grade.name)
                elif grade.manual_score is None and grade.needs_manual_grade:
                    pending += grade.max_score
        row.score = float(submission.score)
    row.manual_pending = pending
    row.status = "graded"
    notes = []
    if failed:
        notes.append("tests not passed: " + ", ".join(failed))
    if pending:
        notes.append(f"written answers await manual grading ({pending:g} points)")
    row.reason = "; ".join(notes)

    feedback = course.api.generate_feedback(assignment, sub.student_id, force=True)
    pages = sorted(course.path("feedback", sub.student_id, assignment).glob("*.html"))
    if feedback["success"] and pages:
        dest = out / "feedback"
        dest.mkdir(parents=True, exist_ok=True)
        for page in pages:
            name = f"{sub.student_id}.html" if len(pages) == 1 else f"{sub.student_id}__{page.name}"
            shutil.copyfile(page, dest / name)
        row.feedback = str(Path("feedback") / (
            f"{sub.student_id}.html" if len(pages) == 1 else f"{sub.student_id}__{pages[0].name}"))
    else:
        row.reason = "; ".join(filter(None, [row.reason, "feedback page could not be made: "
                                             + _failure_reason(feedback)]))
    return row


def grade(repo: Path, assignment: str, submissions: Path, out: Path,
          cell_timeout: int = 120, progress=None) -> list[GradeRow]:
    """Autograde every submission in ``submissions`` against ``repo/solutions/<assignment>``.

    Writes ``out/grades.csv`` (one row per student) and ``out/feedback/<student>.html``.
    progress: optional callable(row) told about each finished row. Returns the rows.
    """
    repo, out = Path(repo), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    solution_dir = repo / "solutions" / assignment
    plans = {p.name: points_plan(p) for p in sorted(solution_dir.glob("*.ipynb"))}
    if not plans:
        raise FileNotFoundError(f"No notebook in {solution_dir}: is {assignment!r} an assignment?")
    subs = find_submissions(Path(submissions), assignment, list(plans))
    # Kernels started by nbgrader inherit these: small experiments, static figures.
    os.environ.setdefault("COURSE_PROFILE", "quick")
    os.environ["COURSE_STATIC_WIDGETS"] = "1"
    os.environ["MPLBACKEND"] = "Agg"
    rows = []
    # nbgrader's gradebook triggers SQLAlchemy warnings on every submission; they are noise.
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        course = CourseDir(Path(tmp), repo / "solutions", [assignment], cell_timeout,
                           extra_config=_feedback_config())
        course.generate_assignment(assignment)
        for sub in subs:
            try:
                row = _grade_one(course, sub, assignment, plans, out)
            except Exception as exc:  # one submission must never stop the batch
                row = GradeRow(sub.student_id, assignment,
                               reason=f"internal error while grading: {type(exc).__name__}: {exc}")
            rows.append(row)
            if progress:
                progress(row)
    write_csv(rows, out / "grades.csv")
    return rows


def write_csv(rows: list[GradeRow], path: Path) -> None:
    """Write rows as CSV with a header; points printed without trailing zeros."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(GradeRow)])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:g}" if isinstance(v, float) else v)
                             for k, v in asdict(row).items()})
