"""Which cell of an assignment runs where, and where each name a test cell reads comes from.

Grading runs a notebook in two places. The student's kernel, in its jail, runs every code
cell except the test cells. A trusted process runs the test cells, and before that the
instructor's own cells whose results no student code can have decided. This module reads the
solution notebook once and decides, with Python's own :mod:`symtable`:

- the kind of each cell: ``answer`` (the student writes it), ``test`` (autograded),
  ``written`` (a markdown answer), ``instructor`` (locked code or prose around it);
- which instructor cells are *trusted*: they read no name that an answer cell, or an
  instructor cell that is not trusted, binds. Only these run in the trusted process; the
  solution's answer cells never run there, so no solution value can stand in for a
  student's;
- for every test cell and every global name it reads, where the value comes from:
  ``trusted`` (the trusted process's run of the instructor cells), ``test`` (an earlier test
  cell, run for the same submission), or ``kernel`` (the student's kernel: an answer, or an
  instructor cell that used one).

The analysis is conservative: a name read inside a function body counts as read, and a name
bound by a student's cell anywhere in the notebook taints a function that reads it, since
the function looks the name up only when it is called.
"""

from __future__ import annotations

import symtable
from dataclasses import dataclass, field

ANSWER, TEST, WRITTEN, INSTRUCTOR, PROSE = "answer", "test", "written", "instructor", "prose"
TRUSTED, FROM_TEST, KERNEL = "trusted", "test", "kernel"

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"


def cell_kind(cell) -> str:
    """answer | test | written | instructor | prose, from the cell's nbgrader metadata."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    meta = meta if isinstance(meta, dict) else {}
    if cell.get("cell_type") != "code":
        return WRITTEN if meta.get("solution") else PROSE
    if meta.get("solution"):
        return ANSWER
    if meta.get("grade"):
        return TEST
    return INSTRUCTOR


def source_of(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


@dataclass
class Scope:
    """The global names one cell binds at top level and reads, now or when its functions run."""

    stores: set[str] = field(default_factory=set)
    reads_now: set[str] = field(default_factory=set)
    reads_later: set[str] = field(default_factory=set)  # inside functions, lambdas, classes
    parsed: bool = True

    @property
    def reads(self) -> set[str]:
        return self.reads_now | self.reads_later


def _strip_magics(source: str) -> str:
    # IPython syntax (%timeit, !ls) is not Python; such a line binds nothing.
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def scope_of(source: str) -> Scope:
    """Global names bound and read by a cell's source (an unparsable cell binds nothing)."""
    try:
        table = symtable.symtable(_strip_magics(source), "<cell>", "exec")
    except SyntaxError:
        return Scope(parsed=False)
    scope = Scope()
    for sym in table.get_symbols():
        name = sym.get_name()
        if sym.is_assigned() or sym.is_imported() or sym.is_namespace():
            scope.stores.add(name)
        if sym.is_referenced():
            scope.reads_now.add(name)
    for child in table.get_children():
        _nested(child, scope)
    return scope


def _nested(table, scope: Scope) -> None:
    for sym in table.get_symbols():
        if sym.is_global() or sym.is_declared_global():
            if sym.is_referenced():
                scope.reads_later.add(sym.get_name())
            if sym.is_declared_global() and sym.is_assigned():
                scope.stores.add(sym.get_name())
        elif sym.is_free() and sym.is_referenced():
            pass  # a closure over an enclosing function's local: not a global
    for child in table.get_children():
        _nested(child, scope)


@dataclass
class CellPlan:
    index: int
    kind: str
    grade_id: str | None
    scope: Scope
    trusted: bool = False  # instructor cells only: runs in the trusted process
    sources: dict[str, str] = field(default_factory=dict)  # test cells: name -> where from


@dataclass
class NotebookPlan:
    cells: list[CellPlan]

    def tests(self) -> list[CellPlan]:
        return [c for c in self.cells if c.kind == TEST]

    def test(self, grade_id: str) -> CellPlan:
        return next(c for c in self.cells if c.kind == TEST and c.grade_id == grade_id)

    def trusted_needed(self) -> set[int]:
        """Indices of the trusted instructor cells that the tests need: those binding a name
        a test reads from the trusted side, and, in turn, what those cells read. The trusted
        process runs only these (a figure or a long demo is of no use to a test)."""
        need = {n for t in self.tests() for n, w in t.sources.items() if w == TRUSTED}
        chosen: set[int] = set()
        for cell in reversed(self.cells):
            if cell.kind == INSTRUCTOR and cell.trusted and cell.scope.stores & need:
                chosen.add(cell.index)
                need |= cell.scope.reads
        return chosen

    def problems(self) -> list[str]:
        """Authoring mistakes that would make the kernel's run differ from a student's run:
        a cell outside the tests that reads a name only a test cell binds (the kernel never
        runs test cells), and test cells that do not parse."""
        found = []
        for i, cell in enumerate(self.cells):
            if cell.kind == TEST and not cell.scope.parsed:
                found.append(f"cell {i + 1} ({cell.grade_id}) is not valid Python")
            if cell.kind in (ANSWER, INSTRUCTOR):
                # A name the cell binds itself is taken to be bound before it is read.
                for name in sorted(cell.scope.reads_now - cell.scope.stores):
                    if _latest_binder(self.cells, i, name) == TEST:
                        found.append(f"cell {i + 1} reads {name!r}, which only a test cell "
                                     "binds: the student's kernel never runs test cells")
        return found


def _latest_binder(cells: list[CellPlan], before: int, name: str) -> str | None:
    for cell in reversed(cells[:before]):
        if name in cell.scope.stores:
            return cell.kind if cell.kind != INSTRUCTOR else (TRUSTED if cell.trusted else KERNEL)
    return None


def plan(nb) -> NotebookPlan:
    """The plan of a solution (or source) notebook: an nbformat notebook with its metadata."""
    cells = []
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        kind = cell_kind(cell)
        scope = scope_of(source_of(cell)) if cell.get("cell_type") == "code" else Scope()
        cells.append(CellPlan(i, kind, meta.get("grade_id") if isinstance(meta, dict) else None,
                              scope))
    # Names a student's code binds, anywhere: a function that reads one is decided by it.
    student_names = set().union(*(c.scope.stores for c in cells if c.kind == ANSWER))
    tainted_names = set(student_names)
    for i, cell in enumerate(cells):
        if cell.kind != INSTRUCTOR:
            continue
        immediate = {n for n in cell.scope.reads_now
                     if _latest_binder(cells, i, n) in (ANSWER, KERNEL)}
        cell.trusted = cell.scope.parsed and not immediate \
            and not (cell.scope.reads_later & tainted_names)
        if not cell.trusted:
            tainted_names |= cell.scope.stores
    for i, cell in enumerate(cells):
        if cell.kind != TEST:
            continue
        for name in sorted(cell.scope.reads - cell.scope.stores):
            where = _latest_binder(cells, i, name)
            if where in (ANSWER, KERNEL):
                cell.sources[name] = KERNEL
            elif where == TEST:
                cell.sources[name] = FROM_TEST
            elif where == TRUSTED:
                cell.sources[name] = TRUSTED
    return NotebookPlan(cells)


def segments(source: str) -> list[tuple[bool, str]]:
    """A test cell's source as ``(hidden, code)`` parts in order. The code of each part keeps
    its lines where they were (other lines blank), so tracebacks point at the right line.
    A cell whose parts do not compile on their own runs whole, as one hidden part."""
    parts: list[tuple[bool, list[str]]] = []
    lines = source.splitlines()
    hidden = False
    for i, line in enumerate(lines):
        marker = line.strip()
        if marker in (HIDDEN_BEGIN, HIDDEN_END):
            hidden = marker == HIDDEN_BEGIN
            continue
        if not parts or parts[-1][0] != hidden:
            parts.append((hidden, [""] * i))
        parts[-1][1].append(line)
    result = [(h, "\n".join(code)) for h, code in parts if any(x.strip() for x in code)]
    try:
        for _, code in result:
            compile(code, "<part>", "exec")
    except SyntaxError:
        return [(True, source)]
    return result
