"""One line between the two sides of course_lib: what a notebook imports never imports the
grader. The grading package may use the student side; the student side never the grading
side (not even lazily inside a function), so a student's kernel never loads the grader and
the two cannot form an import circle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "course_lib"
# The `course` command serves both sides; it imports the grader only inside the instructor's
# subcommands.
BOTH_SIDES = {"cli.py", "__init__.py"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ("." * node.level) + (node.module or "")
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_student_modules_never_import_the_grader():
    offenders = {}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name in BOTH_SIDES:
            continue
        bad = {name for name in _imports(path)
               if "grading" in name.replace("course_lib.", ".").split(".")}
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}


def test_the_grader_is_not_imported_by_course_lib_itself():
    init = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    assert "import_module" in init and "from . import grading" not in init


def test_every_module_is_reachable_as_an_attribute_of_the_package():
    """``course_lib.<name>`` loads a submodule lazily only when __init__ lists it; a module
    left off the list fails as an AttributeError in a student's notebook."""
    import course_lib

    modules = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    modules |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert modules == set(course_lib._SUBMODULES)
