"""Arrange hand-ins from an LMS download or a JupyterHub exchange into nbgrader's layout.

Sources accepted:

- an LMS download, as a zip file or an unpacked folder, with one notebook per student named
  ``<student>_<assignment>.ipynb`` (``jdoe_01_activations.ipynb``) or in Canvas' form
  ``<name>_<userid>_<submissionid>_<assignment>.ipynb`` (``doe_12345_67890_01_activations.ipynb``,
  optionally ``_LATE_`` after the name and ``-N`` before ``.ipynb`` for a resubmission);
- a JupyterHub exchange folder (``inbound/<student>+<assignment>+<timestamp>[+<random>]/``).

The result is ``<dest>/<student>/<assignment>/<assignment>.ipynb``, what ``course grade``
reads. Nothing from a zip is extracted by its own path: only the file name's last part is
used, so ``../../etc/passwd`` or an absolute name cannot write outside ``dest``. Symbolic links
are never followed. Files that match no student are reported, never silently dropped.
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .submissions import STUDENT_ID

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


@dataclass
class CollectReport:
    """Students collected (id -> source name) and files that could not be used, with why."""

    collected: dict[str, str] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


def parse_lms_name(filename: str, assignment: str) -> tuple[str, int] | None:
    """(student id, resubmission number) from an LMS file name, or None if it does not match."""
    pattern = (rf"^(?P<who>.+?)_(?:LATE_)?(?:(?P<uid>\d+)_(?P<sid>\d+)_)?"
               rf"{re.escape(assignment)}(?:-(?P<n>\d+))?\.ipynb$")
    match = re.match(pattern, filename)
    if not match:
        return None
    who = match.group("who").removesuffix("_LATE")
    return who, int(match.group("n") or 0)


def _lms_items(source: Path):
    """(name, bytes-or-None, reason) for each file of a zip or folder, without following links."""
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                name = PurePosixPath(info.filename.replace("\\", "/")).name
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    yield name, None, "a symbolic link in the zip; not followed"
                elif info.file_size > MAX_NOTEBOOK_BYTES:
                    yield name, None, f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB"
                else:
                    yield name, archive.read(info), ""
        return
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is neither a zip file nor a folder")
    for path in sorted(source.rglob("*")):
        if path.is_symlink():
            yield path.name, None, "a symbolic link; not followed"
        elif path.is_file():
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                yield path.name, None, f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB"
            else:
                yield path.name, path.read_bytes(), ""


def _exchange_items(inbound: Path, assignment: str):
    """(student, timestamp, notebook path) for each hand-in of ``assignment`` in an exchange."""
    for folder in sorted(inbound.iterdir()):
        parts = folder.name.split("+")
        if len(parts) < 3 or parts[1] != assignment or folder.is_symlink():
            continue
        for nb in sorted(folder.glob("*.ipynb")):
            if not nb.is_symlink():
                yield parts[0], parts[2], nb


def collect(assignment: str, source: Path, dest: Path) -> CollectReport:
    """Copy each student's latest notebook for ``assignment`` from ``source`` into ``dest``."""
    source, dest = Path(source), Path(dest)
    report = CollectReport()
    chosen: dict[str, tuple[object, str, bytes]] = {}  # student -> (rank, name, data)
    inbound = source / "inbound" if (source / "inbound").is_dir() else None
    if inbound is None and source.is_dir():
        inbound = next((p for p in source.glob("*/inbound") if p.is_dir()), None)
    if inbound is not None:
        for student, stamp, nb in _exchange_items(inbound, assignment):
            if student not in chosen or stamp > chosen[student][0]:
                chosen[student] = (stamp, f"{nb.parent.name}/{nb.name}", nb.read_bytes())
    else:
        for name, data, reason in _lms_items(source):
            if reason:
                report.skipped.append((name, reason))
                continue
            if not name.endswith(".ipynb"):
                report.skipped.append((name, "not a notebook"))
                continue
            parsed = parse_lms_name(name, assignment)
            if parsed is None:
                report.skipped.append((name, f"name does not end in _{assignment}.ipynb"))
                continue
            student, attempt = parsed
            if student in chosen:
                older = min((chosen[student][0], chosen[student][1]), (attempt, name))
                report.skipped.append((older[1], "an earlier submission; the latest is graded"))
                if attempt < chosen[student][0]:
                    continue
            chosen[student] = (attempt, name, data)
    for student, (_, name, data) in sorted(chosen.items()):
        if not STUDENT_ID.match(student):
            report.skipped.append((name, f"student id {student!r} has characters that cannot "
                                         "be used as a folder name"))
            continue
        target = dest / student / assignment
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{assignment}.ipynb").write_bytes(data)
        report.collected[student] = name
    return report
