"""How fast does `course grade` get through a class, next to plain nbgrader on the same class?

Generates N submissions of the NumPy notebook 00_setup (a mix: 50 % correct, 30 % half done,
10 % blank, 10 % damaged JSON) and grades them twice in one run: with `course grade` as an
instructor runs it (every kernel in its bubblewrap jail, the tests in the grader's own jailed
process, feedback pages), and with plain `nbgrader autograde` in a fresh nbgrader course (one
unjailed kernel per submission, the tests inside it; nbgrader grades one submission at a
time). Prints both times and their ratio. Target on a 2-core machine: 200 submissions with
the jail in at most 240 s.

    python bench/grade_throughput.py [--n 200] [--jobs CORES+1] [--skip-nbgrader]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import notebook_path, partial_submission  # noqa: E402

from course_lib.grading.autograde import grade  # noqa: E402

ASSIGNMENT = "00_setup"


def make_class(folder: Path, n: int) -> None:
    correct = nbformat.read(notebook_path(ASSIGNMENT), as_version=4)
    half = partial_submission(ASSIGNMENT, solved=1)
    blank = nbformat.read(notebook_path(ASSIGNMENT, student=True), as_version=4)
    for i in range(n):
        path = folder / f"s{i:04d}.ipynb"
        kind = i % 10
        if kind < 5:
            nbformat.write(correct, path)
        elif kind < 8:
            nbformat.write(half, path)
        elif kind < 9:
            nbformat.write(blank, path)
        else:
            path.write_text('{"cells": [')


def plain_nbgrader(subs: Path, course: Path) -> tuple[float, Counter]:
    """Time `nbgrader autograde` over the same submissions in a fresh course folder."""
    (course / "source").mkdir(parents=True)
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    for path in sorted(subs.glob("*.ipynb")):
        dest = course / "submitted" / path.stem / ASSIGNMENT
        dest.mkdir(parents=True)
        shutil.copy(path, dest / f"{ASSIGNMENT}.ipynb")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    nbgrader = [sys.executable, "-m", "nbgrader"]
    config = ["--CourseDirectory.course_id=bench", f"--CourseDirectory.root={course}"]
    subprocess.run([*nbgrader, "generate_assignment", ASSIGNMENT, "--force", *config], cwd=course,
                   env=env, capture_output=True, check=True)
    start = time.perf_counter()
    done = subprocess.run([*nbgrader, "autograde", ASSIGNMENT, "--force", *config], cwd=course,
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    graded = Counter("graded" if (course / "autograded" / p.name).is_dir() else "failed"
                     for p in (course / "submitted").iterdir())
    if done.returncode not in (0, 1):
        print(done.stderr[-2000:])
    return seconds, graded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    # One worker more than cores: each worker spends part of its time waiting for its kernel.
    parser.add_argument("--jobs", type=int, default=(os.cpu_count() or 1) + 1)
    parser.add_argument("--skip-nbgrader", action="store_true",
                        help="time only `course grade`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "subs"
        subs.mkdir()
        make_class(subs, args.n)
        start = time.perf_counter()
        rows = grade(REPO, ASSIGNMENT, subs, Path(tmp) / "out", jobs=args.jobs)
        ours = time.perf_counter() - start
        statuses = Counter(r.status for r in rows)
        scores = Counter(r.auto_score for r in rows)
        print(f"course grade: {len(rows)} submissions in {ours:.1f} s "
              f"({ours / len(rows):.2f} s each), jobs {args.jobs}, jail on, {os.cpu_count()} "
              f"cores; statuses {dict(statuses)}, auto scores {dict(sorted(scores.items()))}")
        verdict = "meets" if ours * 200 / len(rows) <= 240 else "misses"
        print(f"target: 200 in 240 s; this run {verdict} it")
        if not args.skip_nbgrader:
            theirs, graded = plain_nbgrader(subs, Path(tmp) / "nbgrader")
            print(f"plain nbgrader autograde: {sum(graded.values())} submissions in {theirs:.1f} s "
                  f"({theirs / max(1, sum(graded.values())):.2f} s each), one at a time, no "
                  f"jail; {dict(graded)}")
            print(f"ratio course grade / plain nbgrader: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
