"""A throwaway nbgrader course directory, configured the way the course grades.

nbgrader works on a course folder (``source/``, ``release/``, ``submitted/``, a gradebook
database). The repository keeps its own layout (``solutions/`` and ``notebooks/``), so each
release or grading run builds a fresh course folder in a temporary directory, runs nbgrader
there, and copies back only what it needs. Nothing nbgrader writes (gradebook, logs) lands in
the repository, and two runs cannot see each other's state.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from traitlets.config import Config

from ..repair import TEXT_STUB

COURSE_ID = "dl-course"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
# Passed to every kernel: no history file (nbgrader's own default) and no start-up warnings
# (ipykernel warns about unencrypted TCP on every start, which buries real messages).
# Folders inside an assignment that running it creates (saved weights, predictions, caches):
# never copied into a course folder, never part of a release.
GENERATED = ("artifacts", ".ipynb_checkpoints", "__pycache__")
KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]


def nbgrader_config(cell_timeout: int = 120) -> Config:
    """The settings shared by ``nbgrader_config.py`` and every run of the pipeline.

    cell_timeout: seconds one cell may run during autograding before it is stopped.
    """
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from .jailed_execute import JailedExecute

    c = Config()
    # nbgrader's own list, with its execution step replaced: the student's cells run in a
    # jailed kernel and the test cells apart from them (see jailed_execute). Outside
    # `course grade` that step refuses to run, so no path runs students' code unjailed.
    c.Autograde.autograde_preprocessors = [
        JailedExecute, IgnorePattern, ClearMetadataPreprocessor,
        LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
    ]
    c.CourseDirectory.course_id = COURSE_ID
    c.ClearSolutions.code_stub = {"python": CODE_STUB}
    c.ClearSolutions.text_stub = TEXT_STUB
    c.Execute.timeout = cell_timeout
    c.Execute.extra_arguments = KERNEL_ARGUMENTS
    # The student version must not carry the instructor's outputs.
    c.ClearOutput.enabled = True
    return c


class CourseDir:
    """An nbgrader course rooted at ``root`` with the solution folder of some assignments.

    root: an empty (or new) folder; solutions: the repository's ``solutions/`` folder.
    """

    def __init__(self, root: Path, solutions: Path, assignments: list[str],
                 cell_timeout: int = 120, extra_config: Config | None = None):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        _put_interpreter_bin_on_path()
        self.root = Path(root)
        (self.root / "source").mkdir(parents=True, exist_ok=True)
        for name in assignments:
            src = Path(solutions) / name
            if not src.is_dir():
                raise FileNotFoundError(
                    f"No assignment {name!r}: expected a folder {src}. "
                    f"Known: {', '.join(list_assignments(solutions)) or 'none'}."
                )
            shutil.copytree(src, self.root / "source" / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(*GENERATED))
        config = nbgrader_config(cell_timeout)
        config.CourseDirectory.root = str(self.root)
        # A private exchange: the system-wide one (/usr/local/share/nbgrader/exchange) is
        # usually absent or unwritable, and nothing here should touch it.
        (self.root / "exchange").mkdir(exist_ok=True)
        config.Exchange.root = str(self.root / "exchange")
        if extra_config is not None:
            config.merge(extra_config)
        self.coursedir = CourseDirectory(config=config)
        self.api = NbGraderAPI(coursedir=self.coursedir, config=config)
        self.api.log.setLevel(logging.WARNING)

    def path(self, step: str, *parts: str) -> Path:
        """A path inside the course: step is source, release, submitted, autograded or feedback."""
        return self.root / step / Path(*parts)

    def generate_assignment(self, name: str) -> None:
        """Run nbgrader's generate_assignment; raise with nbgrader's own log if it fails."""
        result = self.api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(
                f"nbgrader could not generate the student version of {name}:\n"
                f"{result.get('error') or ''}\n{result.get('log') or ''}"
            )


def _put_interpreter_bin_on_path() -> None:
    """nbgrader runs the ``alembic`` executable to create its gradebook. In a virtualenv used
    without activation (``.venv/bin/course grade ...``) that folder is not on PATH, and the
    gradebook cannot be made; so add the running interpreter's own bin folder."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


EXCHANGE_ENV = "COURSE_EXCHANGE"


def exchange_root(course_folder: str | Path) -> Path:
    """The folder where nbgrader's release, fetch, submit and collect meet.

    ``$COURSE_EXCHANGE`` when set (a folder shared by every account, such as JupyterHub's
    ``/srv/nbgrader/exchange``), else ``exchange/`` in the course folder. A missing folder is
    made, writable by every account of the machine as nbgrader asks of its exchange, with the
    sticky bit so that nobody can remove another's files; where it cannot be made, nbgrader
    says so when it is used.
    """
    root = Path(os.environ.get(EXCHANGE_ENV) or Path(course_folder) / "exchange")
    if not root.exists():
        try:
            root.mkdir(parents=True)
            root.chmod(0o1777)
        except OSError:
            pass
    return root


def list_assignments(solutions: Path) -> list[str]:
    """Assignment ids: the folders of ``solutions/`` that hold a notebook, in course order."""
    solutions = Path(solutions)
    if not solutions.is_dir():
        return []
    return sorted(p.name for p in solutions.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))
