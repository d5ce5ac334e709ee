"""Grade a batch of submissions with nbgrader; write ``grades.csv`` and feedback pages.

Every submission gets one row, whatever happens to it: a notebook that cannot be read, a
kernel that dies, or an nbgrader error becomes ``status=error`` with a reason, and the batch
goes on. Scores come from nbgrader's gradebook; which points are automatic and which wait for
a person is read from the assignment's own cell metadata, not from the submission.
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
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import nbformat

from .course_dir import CourseDir
from .outside_check import CheckerFailed, TrustedChecker, apply_verdicts
from .recovering_execute import KERNEL_DIED, KERNEL_STUCK
from .repair import repair
from .sandbox_uids import leased_uid
from .submissions import Submission, find_submissions, read_notebook
from .tamper_scan import scan_answers
from .trusted_replay import recorded_names


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
    status: str = "error"  # graded | flagged (score withheld for review) | error
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


def _student_cells(release, repaired) -> list[tuple[str, str]]:
    """(label, source) of every code cell the student wrote: answers and added cells."""
    published = {c.source for c in release.cells}
    cells = []
    for cell in repaired.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or (cell.source in published and not meta.get("solution")):
            continue
        if meta.get("solution") or not meta:
            cells.append((meta.get("grade_id", "an added cell"), cell.source))
    return cells


def _failure_reason(result: dict) -> str:
    text = "\n".join(filter(None, [result.get("log"), result.get("error")]))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # nbgrader ends with a generic "see the above traceback"; the cause is the last real error.
    causes = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Exit)\b", ln)
              and "NbGraderException" not in ln]
    if "DeadKernelError" in text or "Kernel died" in text:
        return "the kernel died while running this notebook (os._exit, a crash or a hard limit)"
    return (causes or lines or ["nbgrader failed without a message"])[-1][:300]


def _sandbox_config(jupyter_dir: Path):
    from traitlets.config import Config

    from .sandbox_kernel import install_kernelspec

    c = Config()
    c.Execute.kernel_name = install_kernelspec(jupyter_dir)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [str(jupyter_dir), os.environ.get("JUPYTER_PATH")]))
    return c


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
               out: Path, checkers: dict[str, TrustedChecker], records: Path) -> GradeRow:
    from nbgrader.api import Gradebook

    row = GradeRow(sub.student_id, assignment)
    row.max_score = sum(sum(p.auto.values()) + sum(p.manual.values()) for p in plans.values())
    row.auto_max_score = sum(sum(p.auto.values()) for p in plans.values())
    if sub.problem:
        row.reason = sub.problem
        return row
    repair_notes: list[str] = []
    tampering: list[str] = []
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
        tampering += scan_answers(_student_cells(release, repaired))
        nbformat.write(repaired, target / nb_name)

    result = course.api.autograde(assignment, sub.student_id, force=True, create=True)
    if not result["success"]:
        row.reason = f"autograding failed: {_failure_reason(result)}"
        return row

    failed, pending = [], 0.0
    disagreed, unchecked = [], []
    with Gradebook(course.coursedir.db_url) as gb:
        for nb_name, checker in checkers.items():
            try:
                verdicts = checker.check(records)
            except CheckerFailed as exc:
                unchecked.append(f"{nb_name}: {exc}")
                continue
            disagreed += [(gid, verdicts[gid][1]) for gid in apply_verdicts(
                gb, Path(nb_name).stem, assignment, sub.student_id, verdicts)]
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
    if disagreed:
        # Honest code passes or fails a test the same way in both places.
        tampering = [f"{gid} passed inside the notebook's kernel but failed when the grader "
                     f"checked the returned values outside it ({msg.splitlines()[0][:160]})"
                     for gid, msg in disagreed] + tampering
    # Without the outside check only the kernel vouches for the scores: a person decides.
    tampering += [f"the tests could not be checked outside the kernel: {u}" for u in unchecked]
    if tampering:
        row.status = "flagged"
        row.reason = (f"score withheld for review (autograder gave {row.score:g}/{row.max_score:g})"
                      f": {'; '.join(tampering[:5])}")
        row.score = row.auto_score = 0.0
        return row
    notes = [n for n in repair_notes if n]
    notes += _restart_notes(course.path("autograded", sub.student_id, assignment))
    if failed:
        notes.append("tests not passed: " + ", ".join(failed))
    if pending:
        notes.append(f"written answers await manual grading ({pending:g} points)")
    row.reason = "; ".join(notes)

    return row


def _attach_feedback(course: CourseDir, assignment: str, rows: list[GradeRow], out: Path) -> None:
    """Make the feedback pages of the graded rows in one nbgrader run and copy them to
    ``out/feedback``. One run for the whole shard: nbgrader builds its HTML exporter (and
    compiles its templates) once per run, which costs more than converting a notebook."""
    graded = [row for row in rows if row.status == "graded"]
    if not graded:
        return
    result = course.api.generate_feedback(assignment, force=True)
    dest = out / "feedback"
    dest.mkdir(parents=True, exist_ok=True)
    for row in graded:
        pages = sorted(course.path("feedback", row.student_id, assignment).glob("*.html"))
        if not pages:
            row.reason = "; ".join(filter(None, [row.reason, "feedback page could not be made: "
                                                 + _failure_reason(result)]))
            continue
        for page in pages:
            name = f"{row.student_id}.html" if len(pages) == 1 else f"{row.student_id}__{page.name}"
            shutil.copyfile(page, dest / name)
            row.feedback = row.feedback or str(Path("feedback") / name)


def _restart_notes(folder: Path) -> list[str]:
    """Say which cells killed or wedged the kernel (see recovering_execute), by grade id."""
    notes = []
    for path in sorted(folder.glob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            names = {o.get("ename") for o in cell.get("outputs", [])}
            label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {i + 1}"
            if KERNEL_DIED in names:
                notes.append(f"the kernel died in {label} and was restarted")
            elif KERNEL_STUCK in names:
                notes.append(f"{label} ignored the time limit; the kernel was restarted")
    return notes


def grade(repo: Path, assignment: str, submissions: Path, out: Path,
          cell_timeout: int = 120, progress=None, sandbox: bool = True,
          memory_mb: int = 4096, jobs: int = 1) -> list[GradeRow]:
    """Autograde every submission in ``submissions`` against ``repo/solutions/<assignment>``.

    Writes ``out/grades.csv`` (one row per student) and ``out/feedback/<student>.html``.
    progress: optional callable(row) told about each finished row. Returns the rows.
    sandbox: run each submission's kernel through :mod:`.sandbox_kernel` (limits, private
    home, and under root a uid of its own with the sources hidden); memory_mb: its
    address-space limit. jobs: worker processes; each has its own nbgrader course folder and
    gradebook, so they share nothing.
    """
    repo, out = Path(repo), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    solution_dir = repo / "solutions" / assignment
    if not any(solution_dir.glob("*.ipynb")):
        raise FileNotFoundError(f"No notebook in {solution_dir}: is {assignment!r} an assignment?")
    names = [p.name for p in sorted(solution_dir.glob("*.ipynb"))]
    numbered = list(enumerate(find_submissions(Path(submissions), assignment, names)))
    args = (repo, assignment, Path(submissions), out, cell_timeout, sandbox, memory_mb)
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
    return ordered


def _grade_shard(repo: Path, assignment: str, submissions: Path, out: Path, cell_timeout: int,
                 sandbox: bool, memory_mb: int, numbered: list[tuple[int, Submission]],
                 progress) -> list[tuple[int, GradeRow]]:
    """Grade some submissions, in order, in one private nbgrader course folder."""
    solution_dir = repo / "solutions" / assignment
    plans = {p.name: points_plan(p) for p in sorted(solution_dir.glob("*.ipynb"))}
    names = {Path(nb).stem: recorded_names(solution_dir / nb) for nb in plans}
    # Kernels started by nbgrader inherit these: small experiments, static figures.
    os.environ.setdefault("COURSE_PROFILE", "quick")
    os.environ["COURSE_STATIC_WIDGETS"] = "1"
    os.environ["MPLBACKEND"] = "Agg"
    # nbgrader's gradebook triggers SQLAlchemy warnings on every submission; they are noise.
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    rows = []
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp, \
            tempfile.TemporaryDirectory(prefix="course-sandbox-") as boxes:
        # The course folder (sources, hidden tests, gradebook, every submission) is private
        # to the grader; the sandbox folders' parent is only traversable, each box private.
        os.chmod(tmp, 0o700)
        os.chmod(boxes, 0o711)
        config = _feedback_config()
        config.RecoveringExecute.record_names = names
        if sandbox:
            config.merge(_sandbox_config(Path(tmp) / "jupyter"))
            os.environ["COURSE_SANDBOX_MEMORY_MB"] = str(memory_mb)
            os.environ["COURSE_SANDBOX_MPL_FONTS"] = _matplotlib_font_list(Path(tmp) / "fonts")
            os.environ["COURSE_SANDBOX_HIDE"] = os.pathsep.join(
                str(p.resolve()) for p in (repo / "solutions", submissions, out))
        course = CourseDir(Path(tmp), repo / "solutions", [assignment], cell_timeout,
                           extra_config=config)
        course.generate_assignment(assignment)
        # The solution runs in the checking processes while the first submissions grade.
        checkers = {nb: TrustedChecker(solution_dir / nb, Path(tmp) / "trusted" / Path(nb).stem)
                    for nb in plans}
        for checker in checkers.values():
            checker.start()
        try:
            for index, sub in numbered:
                row = _grade_in_box(course, sub, assignment, plans, out, checkers, Path(boxes),
                                    sandbox)
                rows.append((index, row))
                if progress:  # told before feedback pages exist: they come at the shard's end
                    progress(row)
        finally:  # also when grading is interrupted: no checking process outlives the run
            for checker in checkers.values():
                checker.close()
        _write_unchecked(checkers, out)
        _attach_feedback(course, assignment, [row for _, row in rows], out)
    return rows


def _grade_in_box(course: CourseDir, sub: Submission, assignment: str,
                  plans: dict[str, PointsPlan], out: Path, checkers: dict[str, TrustedChecker],
                  boxes: Path, sandbox: bool) -> GradeRow:
    """Grade one submission; its kernel's home and record folder live in a box of its own,
    deleted afterwards. Never raises: an internal error becomes the row's reason."""
    box = boxes / (sub.student_id if not sub.problem else "_")
    box.mkdir(exist_ok=True)
    records = box / "record"
    records.mkdir(exist_ok=True)
    os.environ["COURSE_SANDBOX_DIR"] = str(box)
    os.environ["COURSE_RECORD_DIR"] = str(records)
    try:
        # Leaving the lease kills whatever the submission left running. Unsandboxed kernels
        # run as the grader: there is no uid to lease.
        with (leased_uid() if sandbox else nullcontext(0)) as uid:
            os.environ["COURSE_SANDBOX_UID"] = str(uid)
            return _grade_one(course, sub, assignment, plans, out, checkers, records)
    except Exception as exc:  # one submission must never stop the batch
        return GradeRow(sub.student_id, assignment,
                        reason=f"internal error while grading: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(box, ignore_errors=True)


def _write_unchecked(checkers: dict[str, TrustedChecker], out: Path) -> None:
    """Tell the instructor which test cells only the kernel checked, and why (same text from
    every worker; written whole, then renamed, so readers never see half of it)."""
    lines = []
    for nb, checker in checkers.items():
        if checker.problem:
            lines.append(f"{nb}: every test cell (the grader's check failed: {checker.problem})")
        for gid, why in sorted(checker.unchecked.items()):
            lines.append(f"{nb}: {gid}: {why}")
    text = ("Test cells checked inside the notebook's kernel only (all others were also checked "
            "outside it, on the recorded values):\n" + ("\n".join(lines) or "none") + "\n")
    part = out / f".unchecked-{os.getpid()}"
    part.write_text(text, encoding="utf-8")
    part.replace(out / "checked_in_kernel_only.txt")


def _matplotlib_font_list(folder: Path) -> str:
    """Build matplotlib's font list once in ``folder`` (see sandbox_kernel); return it."""
    folder.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], capture_output=True,
                   env={**os.environ, "MPLCONFIGDIR": str(folder)}, timeout=120, check=False)
    return str(folder)


def write_csv(rows: list[GradeRow], path: Path) -> None:
    """Write rows as CSV with a header; points printed without trailing zeros."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(GradeRow)])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:g}" if isinstance(v, float) else v)
                             for k, v in asdict(row).items()})
