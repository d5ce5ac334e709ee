"""Feedback pages: a written answer nobody has graded yet says so.

nbgrader's feedback template prints ``Score: 0.0 / 2.0`` for a written answer that waits for
its instructor, as if it had been marked wrong. This module finds those answers in the
gradebook and rewrites the page's three places that show their score (the notebook's total,
the table of contents, the answer's own heading) to say that they wait.
"""

from __future__ import annotations

import re

WAITING = "waiting for your instructor"


def pending_answers(gradebook, assignment: str, student_id: str) -> dict[str, dict[str, float]]:
    """``{notebook name: {grade id: points}}`` of the answers that need a person and have
    no score yet (the same rule as ``grades.csv``'s ``manual_pending``)."""
    submission = gradebook.find_submission(assignment, student_id)
    return {nb.name: {g.name: float(g.max_score) for g in nb.grades
                      if g.manual_score is None and g.needs_manual_grade}
            for nb in submission.notebooks}


def mark_pending(html: str, pending: dict[str, float]) -> str:
    """``html`` (one notebook's feedback page) with each pending answer's ``Score: x / y``
    replaced by a line saying it waits, and the total called a score so far."""
    if not pending:
        return html
    number = r"[\d.]+"
    for gid, points in pending.items():
        waiting = f"{WAITING} ({points:g} point{'s' if points != 1 else ''})"
        anchor = re.escape(f'href="#{gid}"')
        html = re.sub(rf'(<a {anchor}>[^<]*</a>) \(Score: {number} / {number}\)',
                      rf"\1 ({waiting})", html, count=1)
        at = html.find(f'<a name="{gid}"></a>')
        if at >= 0:
            head, tail = html[:at], html[at:]
            tail = re.sub(rf"Score: {number} / {number}", waiting[0].upper() + waiting[1:],
                          tail, count=1)
            html = head + tail
    total = sum(pending.values())
    return re.sub(rf"(<h4>[^<]*)\(Score: ({number}) / ({number})\)</h4>",
                  rf"\1(Score so far: \2 / \3; {total:g} points {WAITING})</h4>", html, count=1)
