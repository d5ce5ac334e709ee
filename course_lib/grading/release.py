"""Build the student notebooks (``notebooks/``) from the instructor's (``solutions/``).

The release is nbgrader's ``generate_assignment``: solution regions become stubs, hidden
tests disappear, outputs are cleared. It runs in a temporary course folder, and its result
is normalised (outputs and execution counts cleared, nbformat's canonical JSON) so that a
second release of the same source gives byte-identical files. That is what makes the drift
check meaningful: ``notebooks/`` must equal a fresh release, or someone edited it by hand
(or forgot to release after changing a solution).
"""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .course_dir import GENERATED, CourseDir, list_assignments


@dataclass
class ReleaseResult:
    """What a release (or a drift check) found for one assignment."""

    assignment: str
    changed: list[str] = field(default_factory=list)  # files that differ from notebooks/
    missing: list[str] = field(default_factory=list)  # in a fresh release, not in notebooks/
    extra: list[str] = field(default_factory=list)  # in notebooks/, not in a fresh release

    @property
    def in_sync(self) -> bool:
        return not (self.changed or self.missing or self.extra)


def normalise_notebook(path: Path) -> None:
    """Rewrite a notebook in canonical form: no outputs, no execution counts."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def _files(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and not set(GENERATED) & set(p.relative_to(folder).parts)}


def release(repo: Path, names: list[str] | None = None, check: bool = False) -> list[ReleaseResult]:
    """Release assignments from ``repo/solutions`` into ``repo/notebooks``.

    names: assignment ids (folder names); all of them when None or empty.
    check: compare only; ``notebooks/`` is left untouched.
    Returns one :class:`ReleaseResult` per assignment, listing what differed before release.
    """
    repo = Path(repo)
    solutions, notebooks = repo / "solutions", repo / "notebooks"
    names = list(names or list_assignments(solutions))
    results = []
    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        course = CourseDir(Path(tmp), solutions, names)
        for name in names:
            course.generate_assignment(name)
            fresh = course.path("release", name)
            for nb_path in fresh.rglob("*.ipynb"):
                normalise_notebook(nb_path)
            target = notebooks / name
            new_files, old_files = _files(fresh), _files(target)
            result = ReleaseResult(
                name,
                changed=sorted(
                    f for f in new_files & old_files
                    if not filecmp.cmp(fresh / f, target / f, shallow=False)
                ),
                missing=sorted(new_files - old_files),
                extra=sorted(old_files - new_files),
            )
            results.append(result)
            if not check and not result.in_sync:
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(fresh, target)
    return results
