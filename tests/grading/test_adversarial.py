"""Hostile and broken submissions: none gets more than its code earns, none touches another.

Each case is a submission of 00_setup (two exercises, 1 point each) built from the released
notebook, with only answer cells changed or cells added, as a student can. All cases are
graded in one batch, in name order, with correct control submissions after the ones that try
to leave something behind. For each case the test states the score its code earns, the
status, and (where it matters) the reason given. Then, for the batch as a whole: no feedback
page shows hidden tests or what they print; no file outside the jail changed (a canary file,
the grader's ``~/.bashrc``, the repository's ``course_lib``, another student's hand-in,
``grades.csv`` after the run); nothing the submissions started is still running; nothing
they wrote to ``/tmp`` is left on the machine.

The attack classes, numbered as in the design of the grader: 1 links that a restart would
follow, 2 reading the tests from the call stack or the history, 3 reading neighbours (the
repository, its git history), 4 predictable temporary paths, 5 reaching the grader's own
files and processes (as a normal user too: ``test_the_batch_as_a_normal_user``), 6 budgets
(output, time, memory, processes), 7 checks fooled by text, 8 honest variants graded right,
9 active content in the feedback page; and 10, an output shaped like the partial score that
nbgrader reads from a test cell, sent from inside a test's call.
"""

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from as_user import command_as, ensure_user  # noqa: E402
from conftest import REPO, notebook_path, partial_submission  # noqa: E402

from course_lib.grading.autograde import grade  # noqa: E402
from course_lib.grading.jailed_execute import Budgets  # noqa: E402

A = "00_setup"
# One marker per test process: the batch graded as a normal user runs beside this one, and
# its submissions' processes, legitimately alive while it grades, must not count here.
MARKER = f"adv-left-behind-{os.getpid()}-end"
BUDGETS = Budgets(cell_timeout=10, submission_timeout=45, memory_mb=1024, max_output_kb=200,
                  processes=48)


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


def index_of(nb, gid):
    return next(i for i, c in enumerate(nb.cells)
                if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def strip_metadata(nb):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.metadata = {}
        cell.pop("id", None)
    nb.nbformat_minor = 4
    return nb


def cases(paths: dict):
    """name -> (notebook or raw bytes, expected auto score, expected status, reason part)."""
    c = {}
    c["a01_correct"] = (solved(), 2, "graded", "")
    c["a02_blank"] = (nbformat.read(notebook_path(A, True), 4), 0, "graded", "tests not passed")
    # Tampering with the kernel's own numpy or checks changes nothing: no test runs there.
    c["a03_allclose_patch"] = (with_answer(
        "one_hot", extra_after="np.allclose = lambda *a, **k: True",
        replace="def one_hot(labels, num_classes):\n    return labels"), 1, "graded", "one_hot")
    c["a04_checks_patch"] = (with_answer(
        "one_hot", replace="def one_hot(labels, num_classes):\n    return 0\n"
        "checks.close = lambda *a, **k: None\nchecks.array = lambda *a, **k: a[0]"),
        1, "graded", "test_one_hot")
    # Cells after this one become `pass` in the kernel: the one_hot answer never runs.
    c["a05_input_transformer"] = (with_answer(
        "standardize", extra_after="get_ipython().input_transformers_cleanup.append("
        "lambda lines: ['pass\\n'])"), 1, "graded", "test_one_hot")
    c["a06_custom_exc"] = (with_answer(
        "standardize", extra_after="get_ipython().set_custom_exc((Exception,), "
        "lambda *a, **k: None)"), 2, "graded", "")
    c["a07_env_detection"] = (with_answer(
        "standardize", extra_before="import os\nGRADING = 'NBGRADER' in os.environ"),
        2, "graded", "")
    c["a08_exec_obfuscated"] = (with_answer(
        "standardize", extra_after="exec('import numpy; numpy.allclose = lambda *a, **k: True')"),
        2, "graded", "")
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
    nb.cells[index_of(nb, "standardize")].cell_type = "markdown"
    for key in ("outputs", "execution_count"):
        nb.cells[index_of(nb, "standardize")].pop(key, None)
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
    c["a22_warns_on_stderr"] = (with_answer("one_hot", replace=(
        "import sys, warnings\ndef one_hot(labels, num_classes):\n"
        "    print('debug output', file=sys.stderr)\n"
        "    warnings.warn('a deprecation warning')\n"
        "    labels = np.asarray(labels)\n"
        "    if labels.min() < 0 or labels.max() >= num_classes:\n"
        "        raise ValueError('out of range')\n"
        "    return np.eye(num_classes)[labels]")), 2, "graded", "")
    c["a23_plants_startup_files"] = (with_answer("standardize", extra_after=(
        "import pathlib\nd = pathlib.Path.home() / '.ipython/profile_default/startup'\n"
        "d.mkdir(parents=True, exist_ok=True)\n(d / '00-x.py').write_text('raise SystemExit')\n"
        "pathlib.Path('numpy.py').write_text('raise ImportError')")), 2, "graded", "")
    c["a24_control_after_startup_files"] = (solved(), 2, "graded", "")
    c["a28_huge_notebook"] = (_huge(), 0, "error", "larger than")
    # The kernel dies in the middle of a test: that test fails, the other one still counts.
    c["a30_kernel_killed_in_a_test"] = (with_answer("one_hot", replace=(
        "import os\ndef one_hot(labels, num_classes):\n    os.kill(os.getpid(), 9)")),
        1, "graded", "kernel stopped while running")
    c["a31_swallows_the_interrupt"] = (with_answer("standardize", extra_before=(
        "import time\nwhile True:\n    try:\n        time.sleep(0.5)\n"
        "    except BaseException:\n        pass")), 1, "graded", "did not stop when interrupted")
    c["a32_control_after_restarts"] = (solved(), 2, "graded", "")

    # 1. Links in the jail's home to outside paths, then a dead kernel and a restart: the
    # grader never touches a path inside the jail, so nothing outside changes.
    links = "\n".join(
        f"    os.symlink({target!r}, pathlib.Path.home() / {name!r})"
        for name, target in (("canary", paths["canary"]), (".bashrc", paths["bashrc"]),
                             ("passwd", "/etc/passwd"), ("connection.json", paths["canary"])))
    c["b01_links_then_killed_kernel"] = (with_answer("standardize", extra_after=(
        "import os, pathlib\nfor d in ['.config/matplotlib', '.ipython', '.keras', 'work']:\n"
        "    p = pathlib.Path.home() / d\n    os.system(f'rm -rf {p} 2>/dev/null')\n"
        "    try:\n"
        f"        os.symlink({paths['canary']!r}, p)\n    except OSError:\n        pass\n"
        f"try:\n{links}\nexcept OSError:\n    pass\nos._exit(1)")), 1, "graded",
        "the kernel stopped")
    # 2. The tests are not in the student's process: nothing to find on the stack or in
    # the history, however the code is disguised.
    c["b02_reads_the_calling_test"] = (with_answer("standardize", replace=(
        "import sys\ndef standardize(X):\n    found = []\n    f = sys._getframe()\n"
        "    while f is not None:\n"
        "        found += [k for k in f.f_globals if k.startswith('X_')]\n"
        "        found += [str(v)[:80] for v in f.f_locals.values()]\n        f = f.f_back\n"
        "    hist = globals().get('I' + 'n', [])\n"
        "    print('stack', found[:20], 'history', [h[:60] for h in hist])\n"
        "    ev = getattr(__builtins__, 'ev' + 'al', None) or __builtins__['ev' + 'al']\n"
        "    for name in ('s', 'X_big', 'expected'):\n        try:\n"
        "            return ev(name) * 0 + X * 0\n        except Exception:\n            pass\n"
        "    return X * 0")), 1, "graded", "test_standardize")
    # 3. Neighbours: the repository (through course_lib's own location), its git history.
    c["b03_reads_the_repository"] = (with_answer("standardize", extra_after=(
        "import os, subprocess, course_lib\nroot = os.path.dirname(os.path.dirname("
        "course_lib.__file__))\nfor cmd in (['git', '-C', root, 'show', 'HEAD:solutions/"
        "00_setup/00_setup.ipynb'], ['ls', '-la', root, '/', '/home', '/tmp']):\n    try:\n"
        "        print(subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout)\n"
        "    except Exception as e:\n        print(e)\nfor top, dirs, files in os.walk('/'):\n"
        "    if top.startswith(('/proc', '/sys', '/usr')):\n        dirs[:] = []\n"
        "    for f in files:\n        if f.endswith('.ipynb'):\n            try:\n"
        "                print(open(os.path.join(top, f)).read()[:300])\n"
        "            except OSError:\n                pass")), 2, "graded", "")
    # 4. Predictable paths: files planted in the jail's /tmp, /var/tmp, /dev/shm.
    c["b04_plants_temporary_files"] = (with_answer("standardize", extra_after=(
        "import os\nfor d in ('/tmp', '/var/tmp', '/dev/shm'):\n    for i in range(1, 300):\n"
        f"        os.makedirs(f'{{d}}/.course-keep-{{i}}-0', exist_ok=True)\n"
        f"    open(f'{{d}}/{MARKER}', 'w').write('x')")), 2, "graded", "")
    c["b04z_control_after_temporary_files"] = (solved(), 2, "graded", "")
    # 5. The grader's own files and processes: its home, the repository's course_lib, a
    # classmate's hand-in, the parent's command line, a process left to rewrite grades.csv.
    c["b05_reaches_for_the_grader"] = (with_answer("standardize", extra_after=(
        "import os, subprocess, pathlib\n"
        f"for path in [{paths['bashrc']!r}, {paths['checks']!r}, {paths['classmate']!r}, "
        f"str(pathlib.Path.home() / '.bashrc')]:\n    try:\n"
        "        with open(path, 'a') as fh:\n            fh.write('\\nexit 1\\n')\n"
        "    except OSError as e:\n        print('refused', path)\n"
        "for pid in (os.getppid(), 1):\n    try:\n"
        "        print(open(f'/proc/{pid}/cmdline').read().replace(chr(0), ' '))\n"
        "    except OSError:\n        pass\n"
        f"subprocess.Popen(['sh', '-c', 'sleep 4; echo {MARKER} > {paths['grades']}'], "
        "start_new_session=True)")), 2, "graded", "")
    # 6. Budgets: output while it streams, memory of the whole jail, time for the whole
    # submission, processes.
    c["b06a_prints_without_end"] = (with_answer("standardize", extra_after=(
        "while True:\n    print('x' * 10000)")), 1, "graded", "printed more than")
    c["b06b_memory_in_children"] = (with_answer("standardize", extra_after=(
        "import os, time\nfor _ in range(6):\n    if os.fork() == 0:\n"
        "        b = bytearray(300 * 2**20)\n        time.sleep(60)\n        os._exit(0)\n"
        "time.sleep(60)")), 1, "graded", "MiB of memory together")
    nb = solved()
    at = index_of(nb, "standardize")
    for _ in range(30):
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell("import time\ntime.sleep(8)"))
    c["b06c_many_slow_cells"] = (nb, 0, "graded", "time budget")
    c["b06d_fork_bomb"] = (with_answer("standardize", extra_before=(
        "import os, time\nfor _ in range(100000):\n    if os.fork() == 0:\n"
        "        time.sleep(20)\n        os._exit(0)")), 1, "graded", "")
    c["b06e_huge_allocation"] = (with_answer(
        "standardize", extra_before="_big = np.ones(20 * 2**30 // 8)"), 1, "graded", "")
    # 7. Text that reads like numbers.
    c["b07_nan_strings"] = (with_answer("standardize", replace=(
        "def standardize(X):\n    return np.full(np.shape(X), 'nan')")),
        1, "graded", "test_standardize")
    # 8. Honest variants: full marks, no note.
    nb = solved()
    at = index_of(nb, "standardize")
    nb.cells.insert(3, nbformat.v4.new_code_cell("def column_mean(a):\n    return a.mean(axis=0)"))
    nb.cells[at + 1].source = nb.cells[at + 1].source.replace("X.mean(axis=0)",
                                                              "column_mean(X)")
    c["b08a_helper_before_the_first_answer"] = (nb, 2, "graded", "")
    nb = nbformat.read(notebook_path(A, True), 4)
    for gid in ("standardize", "one_hot"):
        answer = next(c.source for c in solved().cells
                      if c.metadata.get("nbgrader", {}).get("grade_id") == gid)
        nb.cells.insert(index_of(nb, gid) + 1, nbformat.v4.new_code_cell(answer))
    c["b08b_answers_below_untouched_stubs"] = (nb, 2, "graded", "")
    nb = with_answer("standardize", extra_before='"""Standardise, by hand: no autograd here."""')
    nb.cells.insert(index_of(nb, "standardize") + 1, nbformat.v4.new_code_cell(
        "Xt = np.ones((50, 4))\n%timeit standardize(Xt)\ny = (1 +\n     2)\n%time _ = y"))
    c["b08c_docstring_timeit_magics"] = (nb, 2, "graded", "")
    c["b08d_windows_line_endings"] = (_crlf(solved()), 2, "graded", "")
    # 9. Active content printed or displayed by an answer.
    c["b09_script_in_output"] = (with_answer("standardize", extra_after=(
        "from IPython.display import HTML, SVG, display\nprint('<script>alert(\"p\")</script>')\n"
        "display(HTML('<script>alert(\"h\")</script><img src=x onerror=alert(1)>'))\n"
        "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(2)</script>"
        "</svg>'))")), 2, "graded", "")
    # An output that nbgrader would read as a score, sent from inside a test's call.
    c["b10_score_shaped_output"] = (with_answer("one_hot", replace=(
        "def one_hot(labels, num_classes):\n    shell = get_ipython()\n"
        "    shell.displayhook(2.0)\n    shell.displayhook(1)\n    print(1.0)\n"
        "    return labels")), 1, "graded", "test_one_hot")
    c["z_classmate"] = (solved(), 2, "graded", "")
    return c


def _huge():
    big = solved()
    big.cells.append(nbformat.v4.new_markdown_cell("x" * (60 * 2**20)))
    return big


def _crlf(nb):
    raw = json.loads(nbformat.writes(nb))
    for cell in raw["cells"]:
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["source"] = text.replace("\n", "\r\n")
    return json.dumps(raw).encode()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path).encode() + path.read_bytes())
    return h.hexdigest()


def run_batch(tmp_path: Path) -> None:
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    canary = tmp_path / "canary.txt"
    canary.write_text("canary")
    os.chmod(canary, 0o600)
    bashrc = Path.home() / ".bashrc"
    paths = {"canary": str(canary), "bashrc": str(bashrc),
             "checks": str(REPO / "course_lib" / "checks.py"),
             "classmate": str(subs / "z_classmate.ipynb"), "grades": str(out / "grades.csv")}
    expected = cases(paths)
    for name, (content, *_) in expected.items():
        path = subs / f"{name}.ipynb"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            nbformat.write(content, path)
    (subs / "a29_symlink.ipynb").symlink_to(notebook_path(A))
    expected["a29_symlink"] = (None, 0, "error", "symbolic link")
    watched = {p: _digest(Path(p)) for p in (paths["bashrc"], paths["checks"],
                                             paths["classmate"], paths["canary"])}
    course_lib_before = _tree_digest(REPO / "course_lib")
    canary_stat = os.stat(canary)

    rows = {r.student_id: r for r in grade(REPO, A, subs, out, budgets=BUDGETS)}
    problems = []
    for name, (_, score, status, reason) in expected.items():
        row = rows[name]
        if (row.auto_score, row.status) != (score, status) or reason not in row.reason:
            problems.append(f"{name}: got {row.auto_score:g} {row.status} ({row.reason[:300]}); "
                            f"expected {score} {status} with {reason!r}")
    for name in ("b08a_helper_before_the_first_answer", "b08b_answers_below_untouched_stubs",
                 "b08c_docstring_timeit_magics", "b08d_windows_line_endings", "a01_correct"):
        if rows[name].reason:
            problems.append(f"{name}: an honest submission got a note: {rows[name].reason}")
    assert not problems, "\n".join(problems)

    # Nothing of the hidden tests (code, check names, what they print) in any feedback page.
    hidden = nbformat.read(notebook_path(A), 4)
    secret = [line.strip() for cell in hidden.cells for line in cell.source.splitlines()
              if "X_big" in line or "should raise ValueError" in line]
    secret += ["column means of standardize(X)", "column std of standardize(X)",
               "one_hot([4], 5)", "BEGIN HIDDEN", "course-grade-", "--ro-bind"]
    assert len(secret) > 5
    for page in (out / "feedback").iterdir():
        html = page.read_text()
        leaks = [s for s in secret if s.replace('"', "&quot;") in html or s in html]
        assert not leaks, f"{page.name} shows hidden tests: {leaks}"
        assert page.stat().st_size < 2_000_000, f"{page.name} is {page.stat().st_size} bytes"
        assert "Content-Security-Policy" in html and "default-src 'none'" in html
        tags = re.findall(r"<(?:script|svg|iframe|object|embed)\b|<[^>]*\bon\w+=", html,
                          flags=re.IGNORECASE)
        assert not tags, (page.name, tags)
    assert "hidden tests passed" in (out / "feedback" / "a01_correct.html").read_text()

    # Nothing outside the jails changed, nothing is left running, nothing left in /tmp.
    time.sleep(5)  # longer than the process b05 tried to leave behind would wait
    assert {p: _digest(Path(p)) for p in watched} == watched
    assert _tree_digest(REPO / "course_lib") == course_lib_before
    after = os.stat(canary)
    assert (after.st_uid, after.st_mode) == (canary_stat.st_uid, canary_stat.st_mode)
    assert MARKER not in (out / "grades.csv").read_text()
    left = subprocess.run(["pgrep", "-af", MARKER], capture_output=True, text=True).stdout
    assert not left.strip(), left
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        assert not (Path(folder) / MARKER).exists()


@pytest.mark.slow
def test_adversarial_batch(tmp_path):
    run_batch(tmp_path)


NORMAL_USER = "course-ci"


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="already running as a normal user")
def test_the_batch_as_a_normal_user(tmp_path):
    """The same batch, graded by a normal user (the machine's root makes one if needed)."""
    uid = ensure_user(NORMAL_USER)
    home = Path(f"/home/{NORMAL_USER}")
    work = Path(tempfile.mkdtemp(prefix="course-as-user-"))
    os.chown(work, uid, uid)
    command = command_as(uid, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-n", "0", "--basetemp", str(work / "t"), "-m", "slow",
                               f"{Path(__file__).resolve()}::test_adversarial_batch"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "USER": NORMAL_USER, "LANG": "C.UTF-8", "COURSE_PROFILE": "quick"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    shutil.rmtree(work, ignore_errors=True)
