"""Hostile and broken submissions: none gets more than its work earned, none touches another.

Each case is a submission of 00_setup (two exercises, 1 point each) built from the released
notebook. All cases are graded in one batch, in name order, with a correct control submission
after the ones that try to leave something behind for the next student. For each case the
test states the score it earned, the status, and (where it matters) the reason given.
"""

import copy
import os
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import REPO, notebook_path, partial_submission  # noqa: E402

from course_lib.grading.autograde import grade  # noqa: E402

A = "00_setup"
AS_ROOT = os.geteuid() == 0


def solved():
    return partial_submission(A, solved=2)


def with_answer(gid, extra_before="", extra_after="", replace=None, nb=None):
    """The solved notebook with code added around (or replacing) one answer cell's source."""
    nb = nb or solved()
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == gid:
            body = replace if replace is not None else cell.source
            cell.source = "\n".join(filter(None, [extra_before, body, extra_after]))
    return nb


def strip_metadata(nb):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.metadata = {}
        cell.pop("id", None)
    nb.nbformat_minor = 4
    return nb


def cases(tmp: Path):
    """name -> (notebook or raw bytes, expected auto score, expected status, reason part)."""
    # Built at run time inside the submission, so no literal path gives the attempt away.
    hidden_path = f"{REPO!s}/sol' + 'utions/{A}/{A}.ipynb"
    c = {}
    c["a01_correct"] = (solved(), 2, "graded", "")
    c["a02_blank"] = (nbformat.read(notebook_path(A, True), 4), 0, "graded", "tests not passed")
    c["a03_allclose_patch"] = (with_answer(
        "one_hot", extra_after="np.allclose = lambda *a, **k: True",
        replace="def one_hot(labels, num_classes):\n    return labels"),
        0, "flagged", "np.allclose")
    c["a04_checks_patch"] = (with_answer(
        "one_hot", replace="def one_hot(labels, num_classes):\n    return 0\n"
        "checks.close = lambda *a, **k: None\nchecks.array = lambda *a, **k: a[0]"),
        0, "flagged", "checks.close")
    c["a05_input_transformer"] = (with_answer(
        "standardize", extra_after="get_ipython().input_transformers_cleanup.append("
        "lambda lines: ['pass\\n'])"), 0, "flagged", "rewrites cells")
    c["a06_custom_exc"] = (with_answer(
        "standardize", extra_after="get_ipython().set_custom_exc((Exception,), "
        "lambda *a, **k: None)"), 0, "flagged", "hides exceptions")
    c["a07_env_detection"] = (with_answer(
        "standardize", extra_before="import os\nGRADING = 'NBGRADER' in os.environ"),
        0, "flagged", "environment")
    c["a08_exec_obfuscated"] = (with_answer(
        "standardize", extra_after="exec('import numpy; numpy.allclose = lambda *a, **k: True')"),
        0, "flagged", "executes code")
    c["a09_metadata_lost"] = (strip_metadata(solved()), 2, "graded", "without metadata")
    nb = solved()
    nb.cells.insert(12, copy.deepcopy(nb.cells[12]))  # a copy-pasted cell, duplicated ids
    for cell in nb.cells:
        if cell.metadata.get("nbgrader"):
            cell.metadata["nbgrader"]["schema_version"] = 99
    c["a10_duplicated_cells_bad_schema"] = (nb, 2, "graded", "")
    nb = solved()
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id", "").startswith("test_"):
            cell.metadata["nbgrader"]["points"] = 100
            cell.source = "pass"
    c["a11_forged_points_and_tests"] = (with_answer("one_hot", replace="def one_hot(l, k):\n"
                                                    "    return 0", nb=nb), 1, "graded", "")
    nb = solved()
    nb.cells = [cell for cell in nb.cells if not cell.metadata.get("nbgrader", {}).get(
        "grade_id", "").startswith("test_")]
    c["a12_deleted_test_cells"] = (nb, 2, "graded", "")
    nb = solved()
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "standardize":
            cell.cell_type = "markdown"
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    c["a13_answer_turned_markdown"] = (nb, 1, "graded", "turned into a markdown cell")
    c["a14_renamed_function"] = (with_answer("standardize", replace="def standardise(X):\n"
                                             "    return (X - X.mean(0)) / X.std(0)"),
                                 1, "graded", "test_standardize")
    c["a15_old_nbformat_v3"] = (nbformat.writes(nbformat.convert(solved(), 3)).encode(),
                                2, "graded", "")
    c["a16_not_utf8"] = (b'{"cells": [], "metadata": {}, "nbformat": 4, "nb\xff\xfe": 1}',
                         0, "error", "not UTF-8")
    c["a17_infinite_recursion"] = (with_answer("standardize", replace="def standardize(X):\n"
                                               "    return standardize(X)"), 1, "graded", "")
    c["a18_huge_allocation"] = (with_answer(
        "standardize", extra_before="_big = np.ones(20 * 2**30 // 8)"), 1, "graded", "")
    c["a19_huge_print"] = (with_answer("standardize", extra_after="print('x' * 30_000_000)"),
                           2, "graded", "")
    c["a20_sleeps_past_limit"] = (with_answer(
        "standardize", extra_before="import time\ntime.sleep(600)"), 1, "graded", "")
    c["a21_fork_bomb"] = (with_answer("standardize", extra_before=(
        "import os, time\nfor _ in range(100000):\n    if os.fork() == 0:\n"
        "        time.sleep(20)\n        os.kill(os.getpid(), 9)")), 1, "graded", "")
    c["a22_warns_on_stderr"] = (with_answer("one_hot", replace=(
        "import sys, warnings\ndef one_hot(labels, num_classes):\n"
        "    print('debug output', file=sys.stderr)\n"
        "    warnings.warn('a deprecation warning')\n"
        "    labels = np.asarray(labels)\n"
        "    if labels.min() < 0 or labels.max() >= num_classes:\n"
        "        raise ValueError('out of range')\n"
        "    return np.eye(num_classes)[labels]")), 2, "graded", "")
    c["a23_plants_startup_files"] = (with_answer("standardize", extra_after=(
        "import os, pathlib\nfor d in [pathlib.Path.home() / '.ipython/profile_default/startup',"
        " pathlib.Path('.')]:\n    d.mkdir(parents=True, exist_ok=True)\n"
        "(pathlib.Path.home() / '.ipython/profile_default/startup/00-x.py').write_text("
        "'raise SystemExit')\npathlib.Path('numpy.py').write_text('raise ImportError')")),
        2, "graded", "")
    c["a24_control_after_startup_files"] = (solved(), 2, "graded", "")
    c["a25_reads_hidden_tests"] = (with_answer("standardize", extra_after=(
        f"try:\n    print(open('{hidden_path}').read())\nexcept OSError as e:\n    print(e)")),
        2, "graded", "")
    c["a26_writes_gradebook"] = (with_answer("standardize", extra_after=(
        "import glob, sqlite3\nfor p in glob.glob('/tmp/course-grade-*/grade' + 'book.db'):\n"
        "    try:\n        sqlite3.connect(p).execute('delete from grade')\n"
        "    except Exception as e:\n        print(e)")), 2, "graded", "")
    c["a27_control_last"] = (solved(), 2, "graded", "")
    big = solved()
    big.cells.append(nbformat.v4.new_markdown_cell("x" * (60 * 2**20)))
    c["a28_huge_notebook"] = (big, 0, "error", "larger than")
    # The kernel is killed (as the out-of-memory killer would) in the middle of a test cell;
    # the other exercise still earns its point.
    c["a30_kernel_killed_in_a_test"] = (with_answer("one_hot", replace=(
        "import os\ndef one_hot(labels, num_classes):\n    os.kill(os.getpid(), 9)")),
        1, "graded", "kernel died in test_one_hot")
    c["a31_swallows_the_interrupt"] = (with_answer("standardize", extra_before=(
        "import time\nwhile True:\n    try:\n        time.sleep(0.5)\n"
        "    except BaseException:\n        pass")), 1, "graded",
        "standardize ignored the time limit")
    c["a32_control_after_restarts"] = (solved(), 2, "graded", "")
    # Tampering the static scan alone used to miss: an alias of numpy.
    c["a33_alias_patch"] = (with_answer(
        "one_hot", replace="import numpy as m\nm.allclose = lambda *a, **k: True\n"
        "def one_hot(labels, num_classes):\n    return labels"), 0, "flagged", "m.allclose")
    # A stand-in for the checks module that agrees with everything, keeping only what the
    # hidden test needs to raise. Inside the kernel both tests pass; outside it, on the values
    # one_hot really returned, test_one_hot fails.
    c["a34_agreeable_checks"] = (with_answer("one_hot", replace=(
        "def one_hot(labels, num_classes):\n    if labels.max() >= num_classes:\n"
        "        raise ValueError('label out of range')\n    return labels\n\n"
        "from course_lib import checks as _real\n\nclass _Agree:\n"
        "    def __getattr__(self, name):\n        if name in ('call', 'CheckFailed'):\n"
        "            return getattr(_real, name)\n        return lambda *a, **k: None\n\n"
        "checks = _Agree()")), 0, "flagged", "failed when the grader checked")
    # The record of the calls replaced by a link (the checking process may run as root and
    # must not follow it): correct answers, but the record cannot be read, so no credit
    # without a person's review.
    c["a35_record_made_a_link"] = (with_answer("one_hot", extra_after=(
        "import os, pathlib\n_rec = pathlib.Path.home() / 'record' / '00_setup'\n"
        "_rec.mkdir(parents=True, exist_ok=True)\n"
        "os.symlink('/dev/zero', _rec / 'test_one_hot.jsonl')")), 0, "flagged",
        "record of this test's calls cannot be read")
    c["a36_control_after_records"] = (solved(), 2, "graded", "")
    return c


@pytest.mark.slow
def test_adversarial_batch(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    expected = cases(tmp_path)
    for name, (content, *_) in expected.items():
        path = subs / f"{name}.ipynb"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            nbformat.write(content, path)
    (subs / "a29_symlink.ipynb").symlink_to(notebook_path(A))
    expected["a29_symlink"] = (None, 0, "error", "symbolic link")

    out = tmp_path / "out"
    rows = {r.student_id: r for r in grade(REPO, A, subs, out, cell_timeout=15)}
    problems = []
    for name, (_, score, status, reason) in expected.items():
        row = rows[name]
        if (row.auto_score, row.status) != (score, status) or reason not in row.reason:
            problems.append(f"{name}: got {row.auto_score:g} {row.status} ({row.reason[:200]}); "
                            f"expected {score} {status} with {reason!r}")
    assert not problems, "\n".join(problems)

    # Nothing from the hidden tests reached any feedback page.
    hidden = nbformat.read(notebook_path(A), 4)
    secret = [line.strip() for cell in hidden.cells for line in cell.source.splitlines()
              if "X_big" in line or "should raise ValueError" in line]
    assert secret
    for page in (out / "feedback").iterdir():
        html = page.read_text()
        leaks = [s for s in secret if s.replace('"', "&quot;") in html or s in html]
        assert not leaks, f"{page.name} shows hidden tests: {leaks}"
        assert page.stat().st_size < 2_000_000, f"{page.name} is {page.stat().st_size} bytes"
    if AS_ROOT:
        # The gradebook attack ran as nobody and could not reach the gradebook.
        assert rows["a27_control_last"].auto_score == 2
