"""Find code in a submission that tampers with the grading rather than answering.

Tests run in the same Python process as the student's code, so an answer cell can replace
``np.allclose`` or a ``checks`` function with one that always agrees, rewrite later cells
through IPython's input transformers, swallow exceptions with a custom handler, or look for
signs of the autograder. The sandbox stops a submission from touching files and other
students; it cannot stop it from lying inside its own process. This scan reads the answer
cells (in the grader, before anything runs) and reports every construct that has no place in
an exercise answer of this course. A submission with findings is graded as usual, and then
marked ``flagged`` with its score withheld for a person to review: tampering is never
silently rewarded, and a false alarm costs a look, not a grade.

The patterns are deliberately broad (``exec``, ``__import__``, ``get_ipython``); none is
needed to answer any exercise of the course.
"""

from __future__ import annotations

import ast

# Modules whose attributes an answer must never reassign.
PROTECTED = {"np", "numpy", "checks", "course_lib", "builtins", "math", "sys", "os", "IPython",
             "warnings", "gradcheck", "keras", "sklearn", "nbgrader", "unittest", "pytest",
             "time"}
# Names and attributes that exist only to reach into the interpreter or the grader.
SUSPICIOUS_NAMES = {
    "get_ipython": "uses IPython's shell object",
    "__builtins__": "touches the builtins",
    "__import__": "imports by computed name",
    "exec": "executes code built at run time",
    "eval": "evaluates code built at run time",
    "compile": "compiles code at run time",
    "globals": "edits the global namespace directly",
    "setattr": "sets attributes by name",
    "delattr": "deletes attributes by name",
    "vars": "reaches an object's namespace",
    "ctypes": "uses ctypes",
    "gc": "uses the garbage collector to find objects",
    "inspect": "inspects the call stack",
    "signal": "installs signal handlers",
    "atexit": "registers exit handlers",
    "importlib": "reloads or imports modules by name",
}
SUSPICIOUS_ATTRS = {
    "input_transformers_cleanup": "rewrites cells before they run",
    "input_transformers_post": "rewrites cells before they run",
    "ast_transformers": "rewrites cells before they run",
    "set_custom_exc": "hides exceptions",
    "excepthook": "hides exceptions",
    "_getframe": "inspects the call stack",
    "__dict__": "reaches an object's namespace",
    "__code__": "rewrites a function's code",
    "__globals__": "reaches a function's globals",
    "__subclasses__": "walks the class hierarchy",
    "_exit": "ends the process",
    "modules": "edits sys.modules",
    "environ": "reads or changes the environment (grader detection)",
    "events": "registers IPython event callbacks",
}
SUSPICIOUS_STRINGS = ("nbgrader", "gradebook", "autograd", "COURSE_SANDBOX", "HIDDEN TESTS",
                      "/solutions", "source/")


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def protected_aliases(source: str, known: set[str] = PROTECTED) -> set[str]:
    """Names that ``source`` binds to a protected module or one of its attributes.

    ``import numpy as m``, ``from numpy import testing as t`` and ``f = np`` (or
    ``f = np.testing``) all make a second name for something the tests rely on; assigning
    through it (``m.allclose = ...``) is the same tampering as through ``np``.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: set[str] = set()
    changed = True
    while changed:  # ``a = np; b = a`` needs two rounds
        changed = False
        names = known | found
        for node in ast.walk(tree):
            new = []
            if isinstance(node, ast.Import):
                new = [a.asname or a.name.split(".")[0] for a in node.names
                       if a.name.split(".")[0] in names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] in names:
                    new = [a.asname or a.name for a in node.names if a.name != "*"]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                if isinstance(node.value, (ast.Name, ast.Attribute)) \
                        and _root_name(node.value) in names:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    new = [t.id for t in targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.NamedExpr) and isinstance(node.value, (ast.Name,
                                                                             ast.Attribute)):
                if _root_name(node.value) in names:
                    new = [node.target.id]
            fresh = set(new) - names - found
            if fresh:
                found |= fresh
                changed = True
    return found


def scan_source(source: str, protected: set[str] = PROTECTED) -> list[str]:
    """Findings for one cell's code, as short sentences ("line 3: replaces np.allclose").

    protected: the names whose attributes must not be assigned (aliases included)."""
    protected = protected | protected_aliases(source, protected)
    findings = [f"line {n}: runs a shell command or IPython magic"
                for n, text in enumerate(source.splitlines(), 1)
                if text.lstrip().startswith(("!", "%"))]
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return findings  # the rest will fail when run

    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and node.name in PROTECTED:
            findings.append(f"line {line}: defines its own {node.name}")
        for target in targets:
            if isinstance(target, ast.Name) and target.id in PROTECTED:
                findings.append(f"line {line}: rebinds {target.id}")
            if isinstance(target, ast.Attribute) and _root_name(target) in protected:
                findings.append(f"line {line}: replaces {ast.unparse(target)}")
            if isinstance(target, ast.Subscript) and _root_name(target.value) in protected:
                findings.append(f"line {line}: writes into {ast.unparse(target.value)}")
        if isinstance(node, ast.Name) and node.id in SUSPICIOUS_NAMES:
            findings.append(f"line {line}: {SUSPICIOUS_NAMES[node.id]} ({node.id})")
        elif isinstance(node, ast.Attribute) and node.attr in SUSPICIOUS_ATTRS:
            findings.append(f"line {line}: {SUSPICIOUS_ATTRS[node.attr]} (.{node.attr})")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if getattr(node, "module",
                                                                               None) else [])
            for name in names:
                top = name.split(".")[0]
                if top in SUSPICIOUS_NAMES or top == "builtins":
                    findings.append(f"line {line}: imports {name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            hits = [s for s in SUSPICIOUS_STRINGS if s.lower() in node.value.lower()]
            if hits:
                findings.append(f"line {line}: mentions {hits[0]!r}")
    return sorted(set(findings), key=lambda f: (len(f.split(":")[0]), f))


def scan_answers(cells: list[tuple[str, str]]) -> list[str]:
    """Findings for (label, source) pairs, each prefixed with its cell's label.

    An alias made in one cell (``import numpy as m``) counts in every other cell."""
    aliases: set[str] = set()
    for _label, source in cells:
        aliases |= protected_aliases(source, PROTECTED | aliases)
    return [f"{label} {finding}" for label, source in cells
            for finding in scan_source(source, PROTECTED | aliases)]
