"""Shared helpers for the test suite: where the repository is, and submission fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(
    p.name for p in (REPO / "solutions").iterdir() if p.is_dir() and any(p.glob("*.ipynb"))
)

# Keep test kernels small and headless whatever machine runs the suite.
os.environ.setdefault("COURSE_PROFILE", "quick")
os.environ["COURSE_STATIC_WIDGETS"] = "1"
os.environ["MPLBACKEND"] = "Agg"


# The notebooks that train Keras models for a minute or more on two cores: a test that runs or
# grades one of them takes minutes.
HEAVY_NOTEBOOKS = ("07_text_to_tensors", "09_pretraining", "10_finetuning", "13_distillation")


def executing(assignments):
    """Parameters for a test that executes each notebook: the heavy ones marked slow."""
    return [pytest.param(a, marks=pytest.mark.slow) if a in HEAVY_NOTEBOOKS else a
            for a in assignments]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say why nothing ran when the default suite's filter may have left out what was asked for.

    (Under pytest-xdist the workers deselect, so the count is not known here.)"""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and config.option.markexpr == "not slow":
        terminalreporter.write_line(
            "No test ran. The default suite leaves out the tests marked slow: to run those you "
            "asked for, add -m slow (or run scripts/test --all).", yellow=True)


def notebook_path(assignment: str, student: bool = False) -> Path:
    folder = REPO / ("notebooks" if student else "solutions") / assignment
    return folder / f"{assignment}.ipynb"


def partial_submission(assignment: str, solved: int = 1) -> nbformat.NotebookNode:
    """The student version with the first ``solved`` exercise cells filled in from the solution.

    Exercise cells are matched by grade id; everything else stays as released. This is what a
    student who stopped half-way hands in.
    """
    solution = nbformat.read(notebook_path(assignment), as_version=4)
    answers = [
        c for c in solution.cells
        if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"
    ][:solved]
    by_id = {c.metadata["nbgrader"]["grade_id"]: c.source for c in answers}
    nb = nbformat.read(notebook_path(assignment, student=True), as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in by_id:
            cell.source = by_id[gid]
    return nb


def synthetic_split(seed: int = 0):
    """A made-up corpus for fast model tests: two topics (tech, entertainment), each with a
    vocabulary of its own over shared filler words, and off-topic politics as unlabeled text."""
    import numpy as np

    from course_lib import bbc

    rng = np.random.default_rng(seed)
    filler = [f"w{i}" for i in range(40)]
    topics = [[f"t{i}" for i in range(15)], [f"s{i}" for i in range(15)]]
    items = []
    for label, words in enumerate(topics):
        cat = ("tech", "entertainment")[label]
        for i in range(40):
            draw = rng.choice(filler + words * 2, size=40)
            items.append(bbc.Article(" ".join(draw), cat, f"{cat}/{i}"))
    for i in range(20):
        items.append(bbc.Article(" ".join(rng.choice(filler, size=40)), "politics", f"p/{i}"))
    return bbc.split(["tech", "entertainment"], seed=0, items=items)
