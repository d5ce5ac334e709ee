"""Find the course's notebooks and execute them headless, as ``course run`` does.

A solution notebook passes when every cell runs without an error. A student notebook is
expected to stop at its exercises: there, an exercise whose check reports "not written yet"
(or fails) is an *open exercise*, not a broken notebook. Only an error outside the exercises,
or any error in a solution notebook, makes the run fail.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

# Errors that mean "the student has work to do here", as opposed to a broken notebook.
EXERCISE_ERRORS = {"CheckFailed", "NotImplementedError"}


@dataclass
class RunResult:
    """The outcome of executing one notebook; seconds are wall-clock."""

    name: str
    status: str  # ok | open exercises | failed
    seconds: float
    detail: str = ""
    output: Path | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def find_repo(start: Path | None = None) -> Path:
    """The course repository: the nearest folder, from ``start`` up, that holds ``solutions/``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "solutions").is_dir() and (folder / "notebooks").is_dir():
            return folder
    raise FileNotFoundError(
        f"No course repository at or above {here}: run this inside the course's folder "
        "(the one with solutions/ and notebooks/), or pass --repo."
    )


def assignment_names(repo: Path, names: list[str] | None) -> list[str]:
    """Full assignment ids for names or number prefixes (``01`` -> ``01_activations``).

    All assignments of ``solutions/`` when names is empty; ValueError names the known ones
    when a name matches none or several.
    """
    known = sorted(p.name for p in (Path(repo) / "solutions").iterdir()
                   if p.is_dir() and any(p.glob("*.ipynb")))
    if not names:
        return known
    chosen = []
    for name in names:
        hits = [k for k in known if k == name or k.startswith(f"{name}_")]
        if len(hits) != 1:
            raise ValueError(f"{name!r} matches {len(hits)} assignments; known: {', '.join(known)}")
        chosen.append(hits[0])
    return chosen


def resolve(repo: Path, names: list[str] | None, student: bool = False) -> list[Path]:
    """Notebook paths for assignment names, from notebooks/ (student) or solutions/."""
    base = Path(repo) / ("notebooks" if student else "solutions")
    paths = []
    for name in assignment_names(repo, names):
        found = sorted((base / name).glob("*.ipynb"))
        if not found:
            raise FileNotFoundError(
                f"No notebook in {base / name}"
                + (": run `course release` first." if student else ".")
            )
        paths += found
    return paths


def _first_error(nb) -> tuple[int, dict] | None:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return index, output
    return None


def _classify_student_errors(nb) -> tuple[int, str]:
    """Count open exercises; return (count, detail of the first non-exercise error or "")."""
    open_count = 0
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            in_exercise = meta.get("grade") or meta.get("solution")
            if in_exercise and output.get("ename") in EXERCISE_ERRORS:
                open_count += 1
            else:
                return open_count, f"cell {index}: {output.get('ename')}: {output.get('evalue')}"
    return open_count, ""


def run_notebook(path: Path, out_dir: Path, profile: str = "quick", student: bool = False,
                 timeout: int = 600) -> RunResult:
    """Execute one notebook in a fresh kernel, in its own folder; save the executed copy.

    profile: ``quick`` or ``full`` (exported as ``COURSE_PROFILE`` to the kernel).
    timeout: seconds one cell may run.
    """
    import nbclient
    import nbformat

    path = Path(path)
    os.environ["COURSE_PROFILE"] = profile
    os.environ["COURSE_STATIC_WIDGETS"] = "1"
    # The inline backend, as in JupyterLab: figures are kept in the executed copy (and a figure
    # that fails only when drawn fails here too).
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=student,
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        resources={"metadata": {"path": str(path.parent)}},
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The kernel's own log (start-up warnings, crashes) goes to a file beside the executed copy,
    # not into the progress table.
    kernel_log = out_dir / f"{path.stem}.kernel.log"
    start = time.perf_counter()
    detail, status = "", "ok"
    try:
        with open(kernel_log, "w") as log:
            client.execute(stderr=log, stdout=log)
    except nbclient.exceptions.CellExecutionError as exc:
        status = "failed"
        detail = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else repr(exc)
    except Exception as exc:  # kernel died, timeout, ...
        status, detail = "failed", f"{type(exc).__name__}: {exc}"[:300]
    seconds = time.perf_counter() - start
    if student and status == "ok":
        open_count, problem = _classify_student_errors(nb)
        if problem:
            status, detail = "failed", problem
        elif open_count:
            status, detail = "open exercises", f"{open_count} check(s) waiting for answers"
    elif status == "failed" and not detail:
        found = _first_error(nb)
        if found:
            detail = f"cell {found[0]}: {found[1].get('ename')}: {found[1].get('evalue')}"
    output = out_dir / path.name
    nbformat.write(nb, output)
    return RunResult(path.parent.name, status, seconds, detail, output)


def format_table(results: list[RunResult]) -> str:
    """A plain-text table: notebook, status, seconds, detail."""
    width = max([len("notebook")] + [len(r.name) for r in results])
    swidth = max([len("status")] + [len(r.status) for r in results])
    lines = [f"{'notebook':<{width}}  {'status':<{swidth}}  {'seconds':>7}  detail"]
    for r in results:
        lines.append(f"{r.name:<{width}}  {r.status:<{swidth}}  {r.seconds:7.1f}  {r.detail}")
    return "\n".join(lines)
