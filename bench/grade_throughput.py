"""How fast does `course grade` get through a class? Prints seconds per submission and total.

Generates N submissions of the NumPy notebook 00_setup (a mix: 50 % correct, 30 % half done,
10 % blank, 10 % damaged JSON) and grades them with sandboxing on, as `course grade` does.
Target on a 2-core machine: 200 submissions in at most 240 s.

    python bench/grade_throughput.py [--n 200] [--jobs CORES+1] [--no-sandbox]
"""

from __future__ import annotations

import argparse
import os
import resource
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    # One worker more than cores: each worker spends part of its time waiting for its kernel.
    parser.add_argument("--jobs", type=int, default=(os.cpu_count() or 1) + 1)
    parser.add_argument("--no-sandbox", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "subs"
        subs.mkdir()
        make_class(subs, args.n)
        start = time.perf_counter()
        cpu_start = _cpu_seconds()
        rows = grade(REPO, ASSIGNMENT, subs, Path(tmp) / "out", sandbox=not args.no_sandbox,
                     jobs=args.jobs)
        total = time.perf_counter() - start
        cpu = [b - a for a, b in zip(cpu_start, _cpu_seconds())]
    statuses = Counter(r.status for r in rows)
    scores = Counter(r.auto_score for r in rows)
    print(f"submissions: {len(rows)}  jobs: {args.jobs}  sandbox: {not args.no_sandbox}  "
          f"cores: {os.cpu_count()}")
    print(f"statuses: {dict(statuses)}  auto scores: {dict(sorted(scores.items()))}")
    print(f"total: {total:.1f} s  per submission: {total / len(rows):.2f} s  "
          f"(target: 200 in 240 s, i.e. 1.20 s each)")
    # CPU time does not depend on what else the machine is doing, unlike the wall time: it
    # says what a quiet machine with this many cores could reach at best.
    print(f"CPU per submission: grader {cpu[0] / len(rows):.2f} s, grading workers and kernels "
          f"{cpu[1] / len(rows):.2f} s; best case on {os.cpu_count()} idle cores: "
          f"{sum(cpu) / min(args.jobs, os.cpu_count() or 1):.0f} s for {len(rows)}")


def _cpu_seconds() -> tuple[float, float]:
    """(this process, its finished children) user+system CPU seconds."""
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


if __name__ == "__main__":
    main()
