"""Grade a batch of submissions with nbgrader; write ``grades.csv`` and feedback pages.

For each submission: the notebook is rebuilt from the release (:mod:`course_lib.repair`),
handed to nbgrader's autograde, whose execution step runs the student's cells in a jailed
kernel and the test cells in a jailed test process of the grader's (:mod:`.jailed_execute`),
and its scores are read back from nbgrader's gradebook. Which points are automatic and which
wait for a person is read from the assignment's own cell metadata, not from the submission.

Every submission gets one row, whatever happens to it: a notebook that cannot be read, a
kernel that dies, or an nbgrader error becomes ``status=error`` with a reason, and the batch
goes on.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path

import nbformat

from ..repair import repair
from . import jail
from .class_report import write_report
from .course_dir import CourseDir
from .jailed_execute import Budgets, Session, session
from .pending_answers import mark_pending, pending_answers
from .sandbox_uids import leased_uid
from .sanitize_feedback import forbid_scripts
from .submissions import Submission, find_submissions, read_notebook
from .test_process import TestProcess
from .written_answers import (
    WrittenScore,
    apply_scores,
    questions,
    read_scores,
    write_outputs,
    written_answers,
)

SANDBOXED, UNSANDBOXED = "bubblewrap", "none (--unsafe-no-sandbox)"


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
    sandbox: str = SANDBOXED  # how the submission's code was isolated
    # For the class report, not in grades.csv: each test's outcome ("" when it passed, else the
    # first line of its failure), and what a person should look at in this submission.
    tests: dict = field(default_factory=dict, metadata={"csv": False})
    flags: list = field(default_factory=list, metadata={"csv": False})
    # For written.csv and written.html: {(notebook, grade id): the student's written answer}.
    written: dict = field(default_factory=dict, metadata={"csv": False})


CSV_COLUMNS = [f.name for f in fields(GradeRow) if f.metadata.get("csv", True)]


@dataclass(frozen=True)
class PointsPlan:
    """The assignment's points by grade id, split into autograded tests and written answers."""

    auto: dict[str, float]
    manual: dict[str, float]


def written_points(plans: dict[str, PointsPlan]) -> dict[tuple[str, str], float]:
    """``{(notebook, grade id): points}`` of the written answers (notebook without .ipynb)."""
    return {(Path(name).stem, gid): points for name, plan in plans.items()
            for gid, points in plan.manual.items()}


def points_plan(notebook: Path) -> PointsPlan:
    """Read a solution notebook's nbgrader metadata: grade id -> points, automatic vs manual."""
    auto, manual = {}, {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            (manual if meta.get("solution") else auto)[meta["grade_id"]] = float(meta["points"])
    return PointsPlan(auto, manual)


def _failure_reason(result: dict) -> str:
    text = "\n".join(filter(None, [result.get("log"), result.get("error")]))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # nbgrader ends with a generic "see the above traceback"; the cause is the last real error.
    causes = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Exit)\b", ln)
              and "NbGraderException" not in ln]
    return (causes or lines or ["nbgrader failed without a message"])[-1][:300]


def _feedback_config():
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades
    from traitlets.config import Config

    from .sanitize_feedback import SanitizeFeedback, markdown_to_html

    c = Config()
    c.GenerateFeedback.preprocessors = [
        GetGrades, ClearHiddenTests, SanitizeFeedback, CSSHTMLHeaderPreprocessor,
    ]
    # Replaces nbconvert's own Markdown filter, which lets a written answer's raw HTML through.
    c.HTMLExporter.filters = {"markdown2html": markdown_to_html}
    return c


def grade(repo: Path, assignment: str, submissions: Path, out: Path,
          cell_timeout: int = 120, progress=None, sandbox: bool = True,
          memory_mb: int = 4096, jobs: int = 1, budgets: Budgets | None = None,
          written: Path | None = None) -> list[GradeRow]:
    """Autograde every submission in ``submissions`` against ``repo/solutions/<assignment>``.

    Writes ``out/grades.csv`` (one row per student), ``out/feedback/<student>.html`` and
    ``out/report.html`` (the class at a glance: :mod:`.class_report`).
    progress: optional callable(row) told about each finished row. Returns the rows.
    sandbox: False grades without the bubblewrap jail (the students' code then runs with the
    grader's rights; the CSV says so); the tests still run apart from the students' code.
    budgets: the limits of each submission (default: ``Budgets`` with ``cell_timeout`` and
    ``memory_mb``). jobs: worker processes; each has its own nbgrader course folder and
    gradebook, so they share nothing. written: a written-scores CSV (the ``written.csv`` an
    earlier run wrote, scores filled in: :mod:`.written_answers`); when the assignment has
    written answers, ``out/written.csv`` and ``out/written.html`` are written too.

    Raises :class:`.jail.JailUnavailable`, saying how to install bubblewrap, when ``sandbox``
    is on and no jail can be built here, and :class:`.written_answers.WrittenScoresError`,
    before grading anything, when ``written`` cannot be used.
    """
    repo, out = Path(repo), Path(out)
    solution_dir = repo / "solutions" / assignment
    if not any(solution_dir.glob("*.ipynb")):
        raise FileNotFoundError(f"No notebook in {solution_dir}: is {assignment!r} an assignment?")
    if sandbox:
        jail.check_available()
    budgets = budgets or Budgets(cell_timeout=cell_timeout, memory_mb=memory_mb)
    plans = {p.name: points_plan(p) for p in sorted(solution_dir.glob("*.ipynb"))}
    points = written_points(plans)
    numbered = list(enumerate(find_submissions(Path(submissions), assignment, list(plans))))
    scores = (read_scores(written, points, [sub.student_id for _, sub in numbered])
              if written else {})
    out.mkdir(parents=True, exist_ok=True)
    args = (repo, assignment, out, budgets, sandbox, scores)
    rows: list[tuple[int, GradeRow]] = []
    if jobs <= 1 or len(numbered) <= 1:
        rows = _grade_shard(*args, numbered, progress)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        shards = [numbered[i::jobs] for i in range(jobs)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_grade_shard, *args, shard, None) for shard in shards if shard]
            for future in as_completed(futures):
                for item in future.result():
                    rows.append(item)
                    if progress:
                        progress(item[1])
    ordered = [row for _, row in sorted(rows, key=lambda item: item[0])]
    write_csv(ordered, out / "grades.csv")
    write_report(ordered, assignment, out / "report.html")
    if points:
        asked = {(Path(name).stem, gid): text for name in plans for gid, text in
                 questions(nbformat.read(solution_dir / name, as_version=4)).items()}
        write_outputs(out, assignment, points, asked,
                      {row.student_id: row.written for row in ordered if row.status == "graded"},
                      scores)
    return ordered


def _grade_shard(repo: Path, assignment: str, out: Path, budgets: Budgets, sandbox: bool,
                 scores: dict[tuple, WrittenScore], numbered: list[tuple[int, Submission]],
                 progress) -> list[tuple[int, GradeRow]]:
    """Grade some submissions, in order, in one private nbgrader course folder."""
    solution_dir = repo / "solutions" / assignment
    plans = {p.name: points_plan(p) for p in sorted(solution_dir.glob("*.ipynb"))}
    # What the jailed processes inherit: small experiments, static figures, quiet TensorFlow.
    os.environ.setdefault("COURSE_PROFILE", "quick")
    os.environ["COURSE_STATIC_WIDGETS"] = "1"
    os.environ["MPLBACKEND"] = "Agg"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # nbgrader's gradebook triggers SQLAlchemy warnings on every submission; they are noise.
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    rows = []
    with ExitStack() as stack:
        # Random, private names: nothing another user or a submission could have prepared.
        tmp = Path(tempfile.mkdtemp(prefix="course-grade-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        os.chmod(tmp, 0o700)
        files = _matplotlib_font_list(tmp / "fonts")
        test_uid = stack.enter_context(leased_uid()) if sandbox else None
        config = _feedback_config()
        course = CourseDir(tmp / "course", repo / "solutions", [assignment],
                           budgets.cell_timeout, extra_config=config)
        course.generate_assignment(assignment)
        tests = {Path(nb).stem: TestProcess(
            course.path("source", assignment, nb).read_text(encoding="utf-8"),
            jail.JailSpec(uid=test_uid, files=files), unsafe=not sandbox) for nb in plans}
        stack.callback(lambda: [t.close() for t in tests.values()])
        for index, sub in numbered:
            row = _grade_in_jail(course, sub, assignment, plans, tests, budgets, sandbox, files,
                                 scores)
            rows.append((index, row))
            if progress:  # told before feedback pages exist: they come at the shard's end
                progress(row)
        _write_problems(tests, out)
        _attach_feedback(course, assignment, [row for _, row in rows], out)
    return rows


def _grade_in_jail(course: CourseDir, sub: Submission, assignment: str,
                   plans: dict[str, PointsPlan], tests: dict[str, TestProcess],
                   budgets: Budgets, sandbox: bool, files: dict,
                   scores: dict[tuple, WrittenScore]) -> GradeRow:
    """Grade one submission; its kernel runs in jails of a uid leased for it. Never raises:
    an internal error becomes the row's reason."""
    try:
        with (leased_uid() if sandbox else nullcontext(None)) as uid:
            sess = Session(budgets, lambda: jail.JailSpec(uid=uid, files=files), tests,
                           unsafe=not sandbox)
            row = _grade_one(course, sub, assignment, plans, sess, scores)
    except Exception as exc:  # noqa: BLE001 - one submission must never stop the batch
        row = GradeRow(sub.student_id, assignment,
                       reason=f"internal error while grading: {type(exc).__name__}: {exc}")
    row.sandbox = SANDBOXED if sandbox else UNSANDBOXED
    return row


def _grade_one(course: CourseDir, sub: Submission, assignment: str,
               plans: dict[str, PointsPlan], sess: Session,
               scores: dict[tuple, WrittenScore]) -> GradeRow:
    from nbgrader.api import Gradebook

    row = GradeRow(sub.student_id, assignment)
    row.max_score = sum(sum(p.auto.values()) + sum(p.manual.values()) for p in plans.values())
    row.auto_max_score = sum(sum(p.auto.values()) for p in plans.values())
    if sub.problem:
        row.reason = sub.problem
        return row
    repair_notes: list[str] = []
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
        release = nbformat.read(course.path("release", assignment, nb_name), as_version=4)
        repaired, report = repair(release, nb)
        repair_notes.append(report.summary())
        row.written.update({(Path(nb_name).stem, gid): text
                            for gid, text in written_answers(repaired).items()})
        nbformat.write(repaired, target / nb_name)

    with session(sess):
        result = course.api.autograde(assignment, sub.student_id, force=True, create=True)
    if not result["success"]:
        row.reason = f"autograding failed: {_failure_reason(result)}"
        return row

    failed = []
    with Gradebook(course.coursedir.db_url) as gb:
        rescore = apply_scores(gb, assignment, sub.student_id, row.written, scores)
        submission = gb.find_submission(assignment, sub.student_id)
        for nb in submission.notebooks:
            plan = plans[nb.name + ".ipynb"]
            why = _test_failures(course.path("autograded", sub.student_id, assignment,
                                             nb.name + ".ipynb"))
            for grade in nb.grades:
                if grade.name in plan.auto:
                    row.auto_score += grade.score
                    passed = grade.score >= grade.max_score
                    row.tests[grade.name] = "" if passed else why.get(grade.name, "no points")
                    if not passed:
                        failed.append(grade.name)
        waiting = pending_answers(gb, assignment, sub.student_id)
        pending = sum(sum(points.values()) for points in waiting.values())
        row.score = float(submission.score)
    row.manual_pending = pending
    row.status = "graded"
    notes = [n for n in repair_notes if n] + sess.notes + rescore
    row.flags = list(notes)
    if failed:
        notes.append("tests not passed: " + ", ".join(failed))
    if pending:
        notes.append(f"written answers await manual grading ({pending:g} points)")
    row.reason = "; ".join(dict.fromkeys(notes))
    return row


def _test_failures(autograded: Path) -> dict[str, str]:
    """Grade id -> the first line of the error each failing test cell showed."""
    if not autograded.exists():
        return {}
    found = {}
    for cell in nbformat.read(autograded, as_version=4).cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if gid and errors:
            lines = [ln.strip() for ln in str(errors[0].get("evalue", "")).splitlines()]
            first = next((ln.lstrip("✗ ") for ln in lines if ln), "")
            found[gid] = f"{errors[0].get('ename', 'Error')}: {first}"[:200]
    return found


def _attach_feedback(course: CourseDir, assignment: str, rows: list[GradeRow], out: Path) -> None:
    """Make the feedback pages of the graded rows in one nbgrader run and copy them to
    ``out/feedback``, each with a policy that lets no script run. One run for the whole
    shard: nbgrader builds its HTML exporter once per run, which costs more than converting
    a notebook."""
    graded = [row for row in rows if row.status == "graded"]
    if not graded:
        return
    from nbgrader.api import Gradebook

    result = course.api.generate_feedback(assignment, force=True)
    dest = out / "feedback"
    dest.mkdir(parents=True, exist_ok=True)
    with Gradebook(course.coursedir.db_url) as gb:
        pending = {row.student_id: pending_answers(gb, assignment, row.student_id)
                   for row in graded}
    for row in graded:
        pages = sorted(course.path("feedback", row.student_id, assignment).glob("*.html"))
        if not pages:
            row.reason = "; ".join(filter(None, [row.reason, "feedback page could not be made: "
                                                 + _failure_reason(result)]))
            continue
        for page in pages:
            name = f"{row.student_id}.html" if len(pages) == 1 else f"{row.student_id}__{page.name}"
            html = mark_pending(page.read_text(encoding="utf-8"),
                                pending[row.student_id].get(page.stem, {}))
            html = forbid_scripts(html)
            (dest / name).write_text(html, encoding="utf-8")
            row.feedback = row.feedback or str(Path("feedback") / name)


def _write_problems(tests: dict[str, TestProcess], out: Path) -> None:
    """Tell the instructor about authoring problems the test processes found (written whole,
    then renamed, so that a reader never sees half of it; the same text from every worker)."""
    lines = [f"{nb}: {p}" for nb, t in sorted(tests.items())
             for p in ([t.failure] if t.failure else []) + t.problems]
    target = out / "grading_problems.txt"
    if not lines:
        return
    part = out / f".problems-{os.getpid()}"
    part.write_text("Problems the grader found in the assignment itself (not in any "
                    "submission):\n" + "\n".join(lines) + "\n", encoding="utf-8")
    part.replace(target)


def _matplotlib_font_list(folder: Path) -> dict[str, Path]:
    """Build matplotlib's font list once (a quarter of a CPU second per fresh home folder);
    return it as a file to show read-only in each jail's matplotlib folder."""
    from .jail import HOME

    folder.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], capture_output=True,
                   env={**os.environ, "MPLCONFIGDIR": str(folder)}, timeout=120, check=False)
    os.chmod(folder, 0o755)
    found = {}
    for path in folder.glob("fontlist-*.json"):
        os.chmod(path, 0o644)
        found[f"{HOME}/.config/matplotlib/{path.name}"] = path
    return found


def write_csv(rows: list[GradeRow], path: Path) -> None:
    """Write rows as CSV with a header; points printed without trailing zeros."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            values = {k: getattr(row, k) for k in CSV_COLUMNS}
            writer.writerow({k: (f"{v:g}" if isinstance(v, float) else v)
                             for k, v in values.items()})
