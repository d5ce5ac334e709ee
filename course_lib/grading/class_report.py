"""``report.html``: the class at a glance, written by ``course grade`` beside ``grades.csv``.

An instructor after grading wants to see the class, not read a CSV: how the scores spread,
which exercise the class found hardest (each test's pass rate), the failure messages seen most
often, and the submissions that need a person (grading errors, budget stops and other flags,
written answers waiting). The page is one self-contained file: figures are PNG images inside
it, it loads nothing from elsewhere and runs no script (the same policy as feedback pages).
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from html import escape
from pathlib import Path

from .sanitize_feedback import forbid_scripts

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; }
.muted { color: #666; }
"""


def _png(fig) -> str:
    """A matplotlib figure as an <img> with its PNG inline; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _score_figure(percents: list[float]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.hist(percents, bins=[i * 10 for i in range(11)], color="#4477aa", edgecolor="white")
    ax.set_xlabel("score (% of the points tests can give)")
    ax.set_ylabel("submissions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, 100)
    return _png(fig)


def _pass_rate_figure(rates: list[tuple[str, float]]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rates) + 0.8))
    names = [name for name, _ in rates]
    ax.barh(names, [100 * r for _, r in rates], color="#228833")
    ax.invert_yaxis()  # hardest first, at the top
    ax.set_xlim(0, 100)
    ax.set_xlabel("submissions passing the test (%)")
    return _png(fig)


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{escape(str(v))}</td>'
                         for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def needs_a_person(row) -> list[str]:
    """Why a row (a :class:`.autograde.GradeRow`) needs an instructor's eyes, if it does."""
    why = []
    if row.status != "graded":
        why.append(f"not graded: {row.reason}")
    why += list(row.flags)
    if row.manual_pending:
        why.append(f"written answers to grade ({row.manual_pending:g} points)")
    return why


def render(rows: list, assignment: str) -> str:
    """The report page for the rows of one ``course grade`` run, as HTML text."""
    graded = [r for r in rows if r.status == "graded"]
    parts = [f"<h1>{escape(assignment)}: the class</h1>"]
    top = max((r.auto_max_score for r in graded), default=0.0)
    percents = [100 * r.auto_score / top for r in graded] if top else []
    if percents:
        ordered = sorted(percents)
        median = ordered[len(ordered) // 2] if len(ordered) % 2 else (
            ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2
        parts.append(
            f"<p>{len(rows)} submissions, {len(graded)} graded, {len(rows) - len(graded)} not. "
            f"Tests give up to {top:g} points; the median submission earned {median:.0f} % of "
            f"them, the mean {sum(percents) / len(percents):.0f} %; "
            f"{sum(p >= 100 for p in percents)} earned them all.</p>")
        parts += ["<h2>Scores</h2>", _score_figure(percents)]
    else:
        parts.append(f"<p>{len(rows)} submissions, none graded: see below.</p>")

    outcomes: dict[str, list[str]] = {}
    for r in graded:
        for test, why in r.tests.items():
            outcomes.setdefault(test, []).append(why)
    if outcomes:
        rates = sorted(((t, sum(not w for w in ws) / len(ws)) for t, ws in outcomes.items()),
                       key=lambda item: (item[1], item[0]))
        parts += ["<h2>Tests, hardest first</h2>", _pass_rate_figure(rates),
                  _table(["test", "passed", "failed"],
                         [[t, f"{rate:.0%}", sum(bool(w) for w in outcomes[t])]
                          for t, rate in rates], numeric={1, 2})]
        common = Counter((t, w) for t, ws in outcomes.items() for w in ws if w).most_common(10)
        if common:
            parts += ["<h2>Most common failures</h2>",
                      _table(["test", "message", "submissions"],
                             [[t, w, n] for (t, w), n in common], numeric={2})]

    attention = [(r, needs_a_person(r)) for r in rows]
    attention = [(r, why) for r, why in attention if why]
    parts.append("<h2>Submissions that need a person</h2>")
    if attention:
        parts.append(_table(["student", "score", "why", "feedback"],
                            [[r.student_id, f"{r.score:g} / {r.max_score:g}", "; ".join(why),
                              r.feedback or "none"] for r, why in attention], numeric={1}))
    else:
        parts.append('<p class="muted">None: every submission was graded in full by its '
                     "tests, with nothing flagged.</p>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{escape(assignment)}: class report</title><style>{STYLE}</style></head>"
            f"<body>{''.join(parts)}</body></html>")
    return forbid_scripts(page)


def write_report(rows: list, assignment: str, path: Path) -> Path:
    """Write :func:`render`'s page to ``path`` and return it."""
    path = Path(path)
    path.write_text(render(rows, assignment), encoding="utf-8")
    return path
