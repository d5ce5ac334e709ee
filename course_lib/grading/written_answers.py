"""Written answers: read them question by question, score them in a CSV, grade again.

The autograder cannot mark a written answer, and the submissions it grades live in a
throwaway nbgrader folder, so nbgrader's formgrader never sees them. Instead ``course grade``
writes two files beside ``grades.csv`` when an assignment has written answers:

- ``written.html``: every question with every student's answer under it, so that one
  question is marked across the class before the next (fairer and faster than student by
  student). Answers are rendered inertly (:func:`.sanitize_feedback.render_written_answer`)
  and the page allows no script;
- ``written.csv``: one row per student and answer, ``student_id, notebook, grade_id,
  max_points, score, comment, answer_digest``, with ``score`` and ``comment`` left blank.

The instructor fills in ``score`` (and, if they like, ``comment``, shown to the student) and
runs ``course grade`` again with ``--written written.csv``. The scores then count in
``grades.csv``, and each feedback page shows its answer's score and comment. A blank score
keeps the answer waiting. ``answer_digest`` ties a score to the answer it was given for: when
a student's answer has changed since (a resubmission), the old score is not used and the
answer waits again, and the row says so.

The file goes through a spreadsheet, so what spreadsheets do to a CSV is undone or refused
here, never silently used: a file saved with semicolons or tabs is read as such, blank rows
are skipped, a decimal comma is a decimal point, and a student id of digits that lost its
leading zeros (``0412`` read as the number 412) is matched to its student again. Digests
start with letters, so that no spreadsheet takes one for a number.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from .sanitize_feedback import forbid_scripts, is_written_answer, render_written_answer

COLUMNS = ["student_id", "notebook", "grade_id", "max_points", "score", "comment",
           "answer_digest"]


class WrittenScoresError(ValueError):
    """A written-scores CSV that cannot be used as it is; the message says what to fix."""


@dataclass(frozen=True)
class WrittenScore:
    """What a person gave one student's answer: points (None: not scored yet), a comment for
    the student, the digest of the answer they read, and the student id as the file gave it
    when that was not the id itself (leading zeros lost)."""

    score: float | None
    comment: str = ""
    digest: str = ""
    named_as: str = ""


def digest(answer: str) -> str:
    """A short fingerprint of an answer's text: ``sha256:`` and 12 hex digits of its SHA-256.
    The prefix keeps spreadsheets from reading ``000123456789`` or ``1234e5678901`` as a
    number and saving it changed."""
    return "sha256:" + hashlib.sha256(answer.strip().encode("utf-8")).hexdigest()[:12]


def written_answers(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """``{grade id: Markdown source}`` of a notebook's written-answer cells."""
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in notebook.cells
            if is_written_answer(c)}


def questions(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """``{grade id: the Markdown text just above the answer cell}``: the question asked."""
    found, before = {}, ""
    for cell in notebook.cells:
        if is_written_answer(cell):
            found[cell.metadata["nbgrader"]["grade_id"]] = before
        elif cell.cell_type == "markdown":
            before = cell.source
    return found


def read_scores(path: Path, points: dict[tuple[str, str], float],
                students: Iterable[str] = ()) -> dict[tuple, WrittenScore]:
    """Read a written-scores CSV. points: ``{(notebook, grade id): max points}`` of the
    assignment's written answers; students: the ids of the batch about to be graded, to which
    an id of digits that lost its leading zeros is matched again. Returns ``{(student_id,
    notebook, grade id): WrittenScore}``.

    Raises :class:`WrittenScoresError`, naming the line and what to do, for a missing file or
    column, a grade id that is not one of this assignment's written answers, a score that is
    not a number between 0 and the answer's points, or the same answer scored twice."""
    path = Path(path)
    if not points:
        raise WrittenScoresError(f"{path}: this assignment has no written answers; grade it "
                                 "without --written.")
    if not path.is_file():
        raise WrittenScoresError(
            f"{path}: no such file. Run `course grade` once without --written: it writes "
            "written.csv beside grades.csv, with a blank score column to fill in.")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WrittenScoresError(f"{path}: not UTF-8 text ({exc.reason}). Save it as CSV "
                                 "(UTF-8) from your spreadsheet and try again.") from None
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=_delimiter(content))
    missing = [c for c in ("student_id", "notebook", "grade_id", "score")
               if c not in (reader.fieldnames or [])]
    if missing:
        raise WrittenScoresError(
            f"{path}: no column {', '.join(missing)}. Start from the written.csv that "
            f"`course grade` wrote (columns: {', '.join(COLUMNS)}).")
    known = ", ".join(sorted({gid for _, gid in points}))
    students = set(students)
    unpadded = _unpadded_ids(students)
    scores: dict[tuple, WrittenScore] = {}
    problems = []
    for line, row in enumerate(reader, start=2):
        if not any(str(v or "").strip() for v in row.values()):
            continue  # a row emptied in a spreadsheet but not deleted
        student, nb, gid = (str(row.get(k) or "").strip()
                            for k in ("student_id", "notebook", "grade_id"))
        named_as = student if student in unpadded and student not in students else ""
        student = unpadded[student] if named_as else student
        text = str(row.get("score") or "").strip()
        if (nb, gid) not in points:
            problems.append(f"line {line}: {nb}/{gid} is not a written answer of this "
                            f"assignment (its written answers: {known})")
            continue
        score = None
        if text:
            try:
                score = float(text.replace(",", "."))
            except ValueError:
                score = float("nan")
            if not 0 <= score <= points[nb, gid]:
                problems.append(f"line {line}: score {text!r} for {student}'s {gid} is not a "
                                f"number from 0 to {points[nb, gid]:g}")
                continue
        if (student, nb, gid) in scores:
            problems.append(f"line {line}: {student}'s {gid} is scored a second time")
            continue
        scores[student, nb, gid] = WrittenScore(score, str(row.get("comment") or "").strip(),
                                                str(row.get("answer_digest") or "").strip(),
                                                named_as)
    if problems:
        raise WrittenScoresError(f"{path}: nothing was graded, fix these lines first:\n  "
                                 + "\n  ".join(problems))
    return scores


def _delimiter(text: str) -> str:
    """The separator that splits the header into the expected columns: a spreadsheet set to a
    language with a decimal comma saves its "CSV" with semicolons, and some save tabs."""
    header = text.partition("\n")[0]
    for sep in (",", ";", "\t"):
        if {"student_id", "grade_id"} <= {c.strip().strip('"') for c in header.split(sep)}:
            return sep
    return ","


def _unpadded_ids(students: Iterable[str]) -> dict[str, str]:
    """``{id without its leading zeros: id}`` for the ids of digits that have some, when no
    other id of the batch loses its zeros to the same number (then nothing is guessed)."""
    found: dict[str, list[str]] = {}
    for student in students:
        if student.isdigit() and student.startswith("0"):
            found.setdefault(student.lstrip("0") or "0", []).append(student)
    return {short: ids[0] for short, ids in found.items() if len(ids) == 1}


def write_scores(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` (dicts with the keys of ``COLUMNS``) as a written-scores CSV, whole or
    not at all (written to a neighbour, then renamed)."""
    part = Path(path).with_suffix(".csv.part")
    with open(part, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:g}" if isinstance(v, float) else v)
                             for k, v in row.items()})
    part.replace(path)


def scored_students(path: Path) -> set[str]:
    """The student ids a written-scores CSV that this module wrote has rows for."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["student_id"] for row in csv.DictReader(fh)}


def write_page(path: Path, assignment: str, asked: dict[tuple[str, str], str],
               answers: dict[str, dict[tuple[str, str], str]],
               scored: dict[tuple, float]) -> None:
    """Write the question-by-question page. asked: ``{(notebook, grade id): question}``
    (the release's Markdown); answers: ``{student_id: {(notebook, grade id): answer}}``;
    scored: ``{(student_id, notebook, grade id): points}`` of the answers scored so far."""
    count = f"{len(answers)} submission{'' if len(answers) == 1 else 's'}"
    parts = [f"<h1>Written answers of {html.escape(assignment)}</h1>",
             f"<p>{count}. Score each answer in written.csv (its row is named by student and "
             "grade id below), then run <code>course grade</code> again with "
             "<code>--written written.csv</code>.</p>"]
    for (nb, gid), question in asked.items():
        parts.append(f'<h2 id="{html.escape(gid)}">{html.escape(nb)} · {html.escape(gid)}</h2>'
                     f'<div class="question">{markdown2html_mistune(question)}</div>')
        for student, theirs in answers.items():
            answer = theirs.get((nb, gid), "")
            points = scored.get((student, nb, gid))
            state = "not scored yet" if points is None else f"scored {points:g}"
            # Who wrote an answer is said by a bar the answer's own Markdown cannot make (it
            # cannot set a class or a style), so a heading typed in an answer to look like the
            # next student's cannot pass for it.
            parts.append(f'<div class="answer"><h3 class="who">{html.escape(student)} '
                         f'<small>({html.escape(gid)}, digest {digest(answer)}, {state})'
                         f'</small></h3><div class="text">{render_written_answer(answer)}'
                         "</div></div>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             ".question{background:#eef;padding:.5em 1em}.answer{border-left:3px solid #ccd;"
             "padding:0 1em;margin:1em 0}pre{background:#f6f6f6;padding:.5em}"
             ".who{background:#ccd;margin:0 0 .5em -1em;padding:.2em 1em;font-size:1.1em}"
             ".text :is(h1,h2,h3,h4,h5,h6){font-size:1em}")
    page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Written answers: "
            f"{html.escape(assignment)}</title><style>{style}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    Path(path).write_text(forbid_scripts(page), encoding="utf-8")


def apply_scores(gradebook, assignment: str, student_id: str,
                 answers: dict[tuple[str, str], str],
                 scores: dict[tuple, WrittenScore]) -> list[str]:
    """Record the scores and comments given to this student's answers in nbgrader's
    gradebook, where its totals and feedback pages find them. Returns notes for the row:
    the answers whose text changed since they were scored (their old score is not used), and
    the id the scores were found under when a spreadsheet had dropped its leading zeros."""
    notes, renamed = [], ""
    for (nb, gid), answer in answers.items():
        given = scores.get((student_id, nb, gid))
        if given is None or given.score is None:
            continue
        renamed = renamed or given.named_as
        if given.digest and given.digest != digest(answer):
            notes.append(f"written answer {gid} changed since it was scored {given.score:g} "
                         f"(digest {given.digest}, now {digest(answer)}): score it again")
            continue
        gradebook.find_grade(gid, nb, assignment, student_id).manual_score = given.score
        if given.comment:
            gradebook.find_comment(gid, nb, assignment, student_id).manual_comment = \
                given.comment
    gradebook.db.commit()
    if renamed:
        notes.append(f"written scores found under {renamed} (a spreadsheet dropped the id's "
                     "leading zeros) and used")
    return notes


def write_outputs(out: Path, assignment: str, points: dict[tuple[str, str], float],
                  asked: dict[tuple[str, str], str],
                  answers: dict[str, dict[tuple[str, str], str]],
                  scores: dict[tuple, WrittenScore]) -> None:
    """Write ``out/written.csv`` and ``out/written.html`` after a grading run.

    points: ``{(notebook, grade id): max points}``; asked: the questions
    (:func:`questions`); answers: ``{student_id: {(notebook, grade id): answer}}`` of the
    submissions graded this time; scores: what the ``--written`` file gave. A score is carried
    over while its answer is unchanged; the rows of students not graded this time are kept as
    they were, so that nothing a person entered is lost."""
    lines = []
    for student, theirs in answers.items():
        for (nb, gid), most in points.items():
            answer = theirs.get((nb, gid), "")
            given = scores.get((student, nb, gid), WrittenScore(None))
            same = not given.digest or given.digest == digest(answer)
            lines.append({"student_id": student, "notebook": nb, "grade_id": gid,
                          "max_points": most, "score": given.score if same else None,
                          "comment": given.comment, "answer_digest": digest(answer)})
    for (student, nb, gid), given in scores.items():
        if student not in answers:
            lines.append({"student_id": student, "notebook": nb, "grade_id": gid,
                          "max_points": points[nb, gid], "score": given.score,
                          "comment": given.comment, "answer_digest": given.digest})
    write_scores(out / "written.csv", [{k: ("" if v is None else v) for k, v in line.items()}
                                       for line in lines])
    scored = {(line["student_id"], line["notebook"], line["grade_id"]): line["score"]
              for line in lines if line["score"] is not None}
    write_page(out / "written.html", assignment, asked, answers, scored)
