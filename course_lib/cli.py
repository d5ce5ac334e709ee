"""The ``course`` command: one entry point for students, instructors and CI.

Each subcommand is a thin layer over a course_lib function, so everything it does can also be
called from Python (and is tested that way). Heavy imports (nbclient, nbgrader) happen inside
the subcommand that needs them: ``course --help`` and ``course doctor`` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_doctor(args) -> int:
    from . import device

    sections = [("For working through the notebooks", device.report())]
    if args.role == "instructor":
        from .grading import doctor

        sections.append(("For releasing and grading", doctor.report()))
    problems = 0
    for title, findings in sections:
        print(f"{title}:\n{device.format_report(findings)}\n")
        problems += sum(not f.ok for f in findings)
    print(f"{problems} problem(s): see the arrows above for what to do." if problems else
          f"All set for a{'n instructor' if args.role == 'instructor' else ' student'}.")
    return 1 if problems else 0


def _cmd_run(args) -> int:
    from . import device, notebooks

    repo = Path(args.repo) if args.repo else notebooks.find_repo()
    profile = args.profile or device.profile()
    paths = notebooks.resolve(repo, args.names, student=args.student)
    out = Path(args.out) / ("student" if args.student else "solutions")
    kind = "student" if args.student else "solution"
    print(f"Running {len(paths)} {kind} notebook(s), profile {profile}, executed copies in {out}")
    results = []
    for i, path in enumerate(paths, 1):
        print(f"[{i}/{len(paths)}] {path.parent.name} ...", end=" ", flush=True)
        result = notebooks.run_notebook(path, out, profile=profile, student=args.student,
                                        timeout=args.timeout)
        print(f"{result.status} ({result.seconds:.1f} s)", flush=True)
        results.append(result)
    print()
    print(notebooks.format_table(results))
    return 1 if any(r.failed for r in results) else 0


def _cmd_release(args) -> int:
    from . import notebooks
    from .grading.release import release

    repo = Path(args.repo) if args.repo else notebooks.find_repo()
    results = release(repo, notebooks.assignment_names(repo, args.names), check=args.check)
    stale = [r for r in results if not r.in_sync]
    for r in results:
        if r.in_sync:
            print(f"{r.assignment}: up to date")
            continue
        what = "differs from a fresh release" if args.check else "released"
        print(f"{r.assignment}: {what}")
        for label, items in (("changed", r.changed), ("missing", r.missing), ("extra", r.extra)):
            for item in items:
                print(f"  {label}: notebooks/{r.assignment}/{item}")
    if args.check and stale:
        print(f"\n{len(stale)} assignment(s) out of date: run `course release "
              f"{' '.join(r.assignment for r in stale)}` and commit notebooks/.")
        return 1
    return 0


def _cmd_check(args) -> int:
    from .presubmit import check_notebook

    report = check_notebook(Path(args.notebook), timeout=args.timeout)
    print(report)
    return 1 if report.problems else 0


def _cmd_collect(args) -> int:
    from .grading.collect import collect

    report = collect(args.assignment, Path(args.source), Path(args.to))
    for student, name in report.collected.items():
        print(f"  {student}: {name}")
    for name, reason in report.skipped:
        print(f"  skipped {name}: {reason}")
    print(f"\n{len(report.collected)} submission(s) in {args.to}; {len(report.skipped)} file(s) "
          f"skipped. Next: course grade {args.assignment} {args.to} --out grades/")
    return 0


def _cmd_grade(args) -> int:
    from . import notebooks
    from .grading.autograde import grade
    from .grading.jailed_execute import Budgets
    from .grading.written_answers import scored_students

    repo = Path(args.repo) if args.repo else notebooks.find_repo()

    def progress(row):
        print(f"  {row.student_id}: {row.status} {row.score:g}/{row.max_score:g}"
              + (f"  ({row.reason})" if row.reason else ""), flush=True)

    assignment = notebooks.assignment_names(repo, [args.assignment])[0]
    if args.unsafe_no_sandbox:
        print("WARNING: --unsafe-no-sandbox: the students' code runs with your rights, with no "
              "isolation (grades.csv records it). Use it only for notebooks you trust.",
              file=sys.stderr)
    print(f"Grading {assignment} submissions from {args.submissions}")
    budgets = Budgets(cell_timeout=args.timeout, submission_timeout=args.submission_timeout,
                      memory_mb=args.memory_mb, max_output_kb=args.max_output_kb)
    rows = grade(repo, assignment, Path(args.submissions), Path(args.out), progress=progress,
                 sandbox=not args.unsafe_no_sandbox, jobs=args.jobs, budgets=budgets,
                 written=Path(args.written) if args.written else None)
    errors = sum(r.status == "error" for r in rows)
    csv_path = Path(args.out) / "grades.csv"
    print(f"\n{len(rows)} submission(s), {errors} error(s). Grades: {csv_path}; the class at a "
          f"glance: {Path(args.out) / 'report.html'}")
    written = Path(args.out) / "written.csv"
    if written.exists():
        waiting = sum(r.manual_pending > 0 for r in rows)
        page = Path(args.out) / "written.html"
        if waiting:
            print(f"Written answers, question by question: {page}; {waiting} submission(s) "
                  f"still wait for their scores. Fill in the score column of {written} and "
                  f"run this command again with --written {written}.")
        else:
            print(f"Written answers, question by question: {page}; every one is scored "
                  f"({written}).")
        others = sorted(scored_students(written) - {r.student_id for r in rows})
        if others:
            shown = ", ".join(others[:8]) + (", ..." if len(others) > 8 else "")
            print(f"{written} also keeps, as they were, the rows of {len(others)} student(s) "
                  f"not in this batch: {shown}. If one of them is in the batch under another "
                  "id (a spreadsheet writes a long id of digits as 1.23E+15), put the id back "
                  "and grade again.")
    problems = Path(args.out) / "grading_problems.txt"
    if problems.exists():
        print(f"The grader found problems in the assignment itself: see {problems}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course",
        description="Run, release and grade the deep-learning course's notebooks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="check Python, packages, Keras backend, GPU and data; "
                       "with --role instructor also nbgrader, JupyterLab and the grading jail")
    p.add_argument("--role", choices=["student", "instructor"], default="student",
                   help="what to check for (default: student)")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("run", help="execute notebooks headless and print a status table")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="assignments to run, e.g. 01 or 01_activations (default: all)")
    p.add_argument("--profile", choices=["quick", "full"],
                   help="experiment size (default: full with a GPU, quick without)")
    p.add_argument("--student", action="store_true",
                   help="run the student versions from notebooks/ instead of solutions/")
    p.add_argument("--out", default="course_output/run", help="folder for executed copies")
    p.add_argument("--timeout", type=int, default=1200, help="seconds one cell may run")
    p.add_argument("--repo", help="course repository (default: found from the current folder)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("release", help="build notebooks/ from solutions/ with nbgrader")
    p.add_argument("names", nargs="*", metavar="NAME", help="assignments (default: all)")
    p.add_argument("--check", action="store_true",
                   help="change nothing; exit 1 if notebooks/ differs from a fresh release")
    p.add_argument("--repo", help="course repository (default: found from the current folder)")
    p.set_defaults(func=_cmd_release)

    p = sub.add_parser("check", help="before you submit: re-run a notebook and report problems")
    p.add_argument("notebook", help="the saved .ipynb file")
    p.add_argument("--timeout", type=int, default=600, help="seconds one cell may run")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("collect", help="arrange an LMS download or JupyterHub exchange for grading")
    p.add_argument("assignment", help="assignment id, e.g. 01_activations")
    p.add_argument("source", help="LMS zip or folder, or a JupyterHub exchange folder")
    p.add_argument("--to", default="submitted", help="destination (nbgrader's submitted/ layout)")
    p.set_defaults(func=_cmd_collect)

    from .experiment_cli import add_parser as add_experiment_parser

    add_experiment_parser(sub)  # course experiment pretraining ... (notebook 10's table)

    p = sub.add_parser("grade", help="autograde submissions; write grades.csv, feedback and "
                       "report.html")
    p.add_argument("assignment", help="assignment id, e.g. 01_activations")
    p.add_argument("submissions",
                   help="folder of <student_id>.ipynb files, or an nbgrader submitted/ tree")
    p.add_argument("--out", required=True, help="folder for grades.csv, feedback/ and report.html")
    p.add_argument("--timeout", type=int, default=120,
                   help="seconds one cell may run before it is interrupted (default 120)")
    p.add_argument("--submission-timeout", type=int, default=1800,
                   help="seconds for one submission's whole notebook (default 1800)")
    p.add_argument("--memory-mb", type=int, default=4096,
                   help="memory of all of a submission's processes together, in MiB")
    p.add_argument("--max-output-kb", type=int, default=1024,
                   help="output one cell may print before its kernel is stopped, in kB")
    p.add_argument("--jobs", type=int, default=1,
                   help="submissions graded at once (each worker has its own nbgrader folder)")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="grade without the bubblewrap jail: the students' code runs with your "
                        "rights (trusted notebooks only; grades.csv records it)")
    p.add_argument("--written", metavar="CSV",
                   help="scores of written answers: the written.csv an earlier run wrote, with "
                        "its score (and comment) column filled in")
    p.add_argument("--repo", help="course repository (default: found from the current folder)")
    p.set_defaults(func=_cmd_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"course {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
