"""Importing course_lib stays cheap: no TensorFlow, Keras, matplotlib or nbgrader up front."""

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "matplotlib", "nbgrader", "nbclient", "numpy")


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_import_course_lib_is_under_300_ms():
    code = (
        "import time; t = time.perf_counter(); import course_lib; "
        "print(time.perf_counter() - t)"
    )
    # Best of three: the first start of a fresh interpreter can hit a cold disk cache.
    best = min(float(_run(code)) for _ in range(3))
    assert best < 0.3, f"import course_lib took {best:.3f} s"


def test_import_course_lib_loads_no_heavy_module():
    code = f"import sys, course_lib; print([m for m in {HEAVY!r} if m in sys.modules])"
    assert _run(code) == "[]"


def test_checks_do_not_import_keras():
    code = ("import sys, course_lib.checks; "
            "print('keras' in sys.modules, 'tensorflow' in sys.modules)")
    assert _run(code) == "False False"
