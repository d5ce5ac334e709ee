"""The student's pre-submission check: will this notebook grade the way I think?

Run it on the saved notebook (``course check notebooks/01_activations/01_activations.ipynb``)
or from inside it (``course_lib.submit_check()``). It re-runs the notebook in a fresh kernel,
as the autograder will, and reports, most serious first:

- graded cells that were deleted, duplicated or turned into another cell type (compared with
  the released notebook when it can be found);
- answers that still raise ``NotImplementedError``;
- checks that fail, with their whole message, pointing at the answer cell they test;
- written answers still empty;
- other cells that fail;
- cells that only worked because of the order they were run in: they succeeded in your saved
  session but fail when the notebook runs top to bottom.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat


@dataclass
class SubmitReport:
    """Findings, each a sentence; ``problems`` must be fixed, ``notes`` are worth knowing."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"✗ {p}" for p in self.problems] + [f"• {n}" for n in self.notes]
        verdict = ("Ready to submit: every check passes in a fresh run." if not self.problems
                   else f"{len(self.problems)} problem(s) to fix before you submit.")
        return "\n".join([*lines, verdict])


def _release_for(path: Path) -> nbformat.NotebookNode | None:
    """The released notebook this one came from, if the course repository is around it."""
    from .notebooks import find_repo

    try:
        repo = find_repo(path.parent)
    except FileNotFoundError:
        return None
    candidate = repo / "notebooks" / path.stem / path.name
    return nbformat.read(candidate, as_version=4) if candidate.exists() else None


def _label(cell, index: int) -> str:
    gid = cell.metadata.get("nbgrader", {}).get("grade_id")
    return f"cell {index + 1}" + (f" ({gid})" if gid else "")


def _answer_above(cells, index: int) -> int | None:
    """The answer cell a check tests: the nearest code answer cell above it."""
    for i in range(index - 1, -1, -1):
        meta = cells[i].metadata.get("nbgrader", {})
        if cells[i].cell_type == "code" and meta.get("solution"):
            return i
        if cells[i].cell_type == "markdown" and cells[i].source.lstrip().startswith("#"):
            return None  # a new section: the check is not about an answer above it
    return None


def _lesson(message: str, limit: int = 2000) -> str:
    """A check's whole message (expected, got, input, what to re-read), indented, without the
    leading ✗ the check itself prints."""
    text = message.strip()
    text = text[1:].lstrip() if text.startswith("✗") else text
    if len(text) > limit:
        text = text[:limit] + " ..."
    return "\n".join("    " + line for line in text.splitlines())


def _unwritten(source: str) -> bool:
    """True for a written answer still as released: empty or the placeholder alone."""
    from .repair import TEXT_STUB

    return source.strip() in ("", TEXT_STUB)


def check_notebook(path: Path, timeout: int = 600) -> SubmitReport:
    """Check a saved notebook as the autograder would see it (see the module docstring)."""
    from .notebooks import run_notebook
    from .repair import repair

    path = Path(path)
    report = SubmitReport()
    saved = nbformat.read(path, as_version=4)
    release = _release_for(path)
    if release is not None:
        _, structure = repair(release, saved)
        for gid in structure.unanswered:
            report.problems.append(f"the answer cell {gid} is missing: copy it back from the "
                                   "released notebook and put your answer in it")
        report.problems += [n for n in structure.notes if "turned into" in n]
        report.notes += [n for n in structure.notes if "appears" in n]
        lost = [g for g, how in structure.matched.items() if how != "grade id"]
        if lost:
            report.notes.append("these answers lost their nbgrader metadata (it happens in Colab "
                                "and VS Code) but were found by their content: " + ", ".join(lost))
    with tempfile.TemporaryDirectory() as tmp:
        result = run_notebook(path, Path(tmp), student=True, timeout=timeout)
        fresh = nbformat.read(result.output, as_version=4) if result.output else saved
    for index, (old, new) in enumerate(zip(saved.cells, fresh.cells)):
        if new.cell_type != "code":
            continue
        errors = [o for o in new.get("outputs", []) if o.get("output_type") == "error"]
        if not errors:
            continue
        err = errors[0]
        meta = new.metadata.get("nbgrader", {})
        worked_before = old.get("outputs") and not any(
            o.get("output_type") == "error" for o in old.get("outputs", []))
        if err.get("ename") == "NotImplementedError" or "not written yet" in err.get("evalue", ""):
            report.problems.append(f"{_label(new, index)}: an exercise is not answered yet")
        elif meta.get("grade") and not meta.get("solution"):
            answer = _answer_above(fresh.cells, index)
            where = (f"the answer in {_label(fresh.cells[answer], answer)} fails "
                     f"{_label(new, index)}'s check" if answer is not None
                     else f"{_label(new, index)}: this check fails")
            report.problems.append(f"{where}:\n{_lesson(err.get('evalue', ''))}")
        elif worked_before:
            report.problems.append(
                f"{_label(new, index)} worked in your session but fails when the notebook runs "
                f"from the top ({err.get('ename')}: {err.get('evalue', '')[:120]}); it depends "
                "on cells run out of order or on something since deleted")
        else:
            report.problems.append(f"{_label(new, index)} fails: {err.get('ename')}: "
                                   f"{err.get('evalue', '')[:200]}")
    for index, cell in enumerate(fresh.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("solution") and _unwritten(cell.source):
            report.problems.append(f"{_label(cell, index)}: this written answer is empty "
                                   f"({meta.get('points', 0):g} point(s), graded by your "
                                   "instructor)")
    if result.status == "failed" and not report.problems:
        report.problems.append(f"the notebook did not run to the end: {result.detail}")
    return report


def submit_check() -> SubmitReport | None:
    """Run :func:`check_notebook` on the notebook this is called from, and print the report.

    JupyterLab tells the kernel which file it belongs to; Colab does not. There, the message
    says how to run the same check on the downloaded file.
    """
    name = os.environ.get("JPY_SESSION_NAME") or globals().get("__vsc_ipynb_file__")
    if not name or not Path(name).exists():
        print("This notebook's file cannot be found from inside the kernel (as in Colab).\n"
              "Save it (File > Download .ipynb), then on a machine with the course installed "
              "run:\n    course check path/to/the/notebook.ipynb")
        return None
    print(f"Checking {name} in a fresh kernel (save first: the check reads the saved file)...")
    report = check_notebook(Path(name))
    print(report)
    return report
