"""Find the notebooks a class handed in, and read each one without trusting it.

Two layouts are accepted:

- a flat folder of ``<student_id>.ipynb`` files (what an instructor assembles by hand);
- nbgrader's ``submitted/`` tree: ``<student_id>/<assignment>/<notebook>.ipynb``.

Reading a submission never raises: a file that is not a notebook comes back with a reason a
person can act on, so one broken file cannot stop the batch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MAX_BYTES = 50 * 2**20
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")


@dataclass
class Submission:
    """One student's hand-in: notebook name -> file, or the reason it cannot be graded."""

    student_id: str
    files: dict[str, Path] = field(default_factory=dict)
    problem: str = ""


def find_submissions(folder: Path, assignment: str, notebook_names: list[str]) -> list[Submission]:
    """Submissions in ``folder`` for ``assignment``, sorted by student id.

    notebook_names: the assignment's notebook file names (e.g. ``["01_activations.ipynb"]``);
    a flat ``<student_id>.ipynb`` file is taken as the first of them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Submissions folder {folder} does not exist. Pass a folder of <student_id>.ipynb "
            "files or an nbgrader submitted/ tree."
        )
    found: dict[str, Submission] = {}
    for path in sorted(folder.glob("*.ipynb")):
        found[path.stem] = Submission(path.stem, {notebook_names[0]: path})
        if path.is_symlink():
            found[path.stem].problem = "the submission is a symbolic link; it is not followed"
    for student_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        nb_dir = student_dir / assignment
        if not nb_dir.is_dir():
            continue
        sub = found.setdefault(student_dir.name, Submission(student_dir.name))
        for path in sorted(nb_dir.glob("*.ipynb")):
            sub.files[path.name] = path
            if path.is_symlink() or student_dir.is_symlink() or nb_dir.is_symlink():
                sub.problem = "the submission is a symbolic link; it is not followed"
    for sub in found.values():
        if not STUDENT_ID.match(sub.student_id):
            sub.problem = (
                f"student id {sub.student_id!r} has characters nbgrader cannot use; rename the "
                "file to letters, digits, '_', '.', '@', '+' or '-'"
            )
        elif not sub.files:
            sub.problem = f"no notebook found for {assignment}"
    return [found[k] for k in sorted(found)]


def read_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """Read a submitted notebook; return ``(notebook, "")`` or ``(None, reason)``."""
    try:
        if Path(path).stat().st_size > MAX_BYTES:
            return None, (f"{Path(path).name} is larger than {MAX_BYTES // 2**20} MiB; clear its "
                          "outputs (Edit > Clear All Outputs) and submit again")
        raw = Path(path).read_bytes()
    except OSError as exc:
        return None, f"could not read {Path(path).name}: {exc.strerror}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"{Path(path).name} is not UTF-8 text (byte {exc.start}); it is not a notebook"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return None, (
            f"{Path(path).name} is not valid notebook JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}); the file is damaged or truncated: ask the student to "
            "download the notebook again (File > Download) and resubmit"
        )
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises several kinds for wrong structure
        return None, f"{Path(path).name} is not a readable notebook: {exc}"
    return nb, ""
