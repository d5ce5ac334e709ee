"""``course doctor --role instructor``: what grading needs beyond what a student needs.

Each finding says what was checked by doing it (the jail is built and a program run in it;
``alembic`` is looked up on PATH as nbgrader will), and what to do when it fails.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..device import Finding, installed_version

INSTRUCTOR_EXTRA = 'pip install -e ".[instructor]" (from the course folder)'


def report() -> list[Finding]:
    """Findings for grading: nbgrader, JupyterLab, ``alembic`` on PATH, the grading jail."""
    findings = []
    for package, needed_for in [("nbgrader", "course release, course grade and the formgrader"),
                                ("jupyterlab", "the formgrader and opening the notebooks")]:
        version = installed_version(package)
        findings.append(Finding(package, version or "missing", version is not None,
                                "" if version else f"Needed for {needed_for}: {INSTRUCTOR_EXTRA}"))
    findings.append(_alembic_finding())
    findings.append(_jail_finding())
    return findings


def _alembic_finding() -> Finding:
    """nbgrader creates its gradebook by running ``alembic`` from PATH (the formgrader too)."""
    on_path = shutil.which("alembic")
    if on_path:
        return Finding("alembic on PATH", on_path, True)
    beside = Path(sys.executable).parent / "alembic"
    if beside.exists():
        return Finding("alembic on PATH", "not on PATH", False,
                       f"The `course` commands find {beside} themselves, but JupyterLab's "
                       "formgrader will not: start JupyterLab from an activated environment "
                       f"(. {beside.parent}/activate && jupyter lab).")
    return Finding("alembic on PATH", "missing", False,
                   f"nbgrader cannot create its gradebook without it: {INSTRUCTOR_EXTRA}")


def _jail_finding() -> Finding:
    """Build the grading jail and run Python in it, as ``course grade`` will."""
    from . import jail

    try:
        jail.check_available()
    except jail.JailUnavailable as exc:
        return Finding("grading sandbox", "unavailable", False, str(exc))
    how = ("a user id of its own per submission" if os.geteuid() == 0
           else "a user namespace (grading as a normal user)")
    return Finding("grading sandbox", f"bubblewrap jail works here, with {how}", True)
