"""Rebuild a submission from the release notebook, carrying over only the student's answers.

A submitted notebook cannot be trusted to keep its nbgrader metadata: Colab and VS Code drop
it, copy-paste duplicates it, and a student can edit it (more points, a test cell unlocked).
So grading never uses the submitted structure. It starts from the release notebook (the
student version the instructor published) and transplants the *source* of each answer cell,
found in the submission by, in order:

1. grade id (the nbgrader metadata, when it survived);
2. cell id (nbformat 4.5 ids survive most editors even when metadata is stripped);
3. content: a code cell that defines the same functions or classes as the release cell
   (``def sigmoid(``), for notebooks whose ids and metadata are both gone.

Everything else (instructions, setup, tests, points) comes from the release, so lost,
duplicated, reordered or forged metadata cannot change what is graded or how much it is
worth. Extra code cells the student added (a helper, a scratch test) are kept in place,
without metadata; copies of locked cells are dropped.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field

import nbformat


@dataclass
class RepairReport:
    """What the transplant found: grade id -> how it was matched, and what was left out."""

    matched: dict[str, str] = field(default_factory=dict)  # grade id -> grade id|cell id|content
    unanswered: list[str] = field(default_factory=list)  # answer cells not found at all
    notes: list[str] = field(default_factory=list)  # duplicates, type changes, dropped cells

    def summary(self) -> str:
        parts = []
        rescued = [g for g, how in self.matched.items() if how != "grade id"]
        if rescued:
            parts.append("answers matched without metadata: " + ", ".join(rescued))
        if self.unanswered:
            parts.append("answer cells not found: " + ", ".join(self.unanswered))
        return "; ".join(parts + self.notes)


def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def _is_answer(cell) -> bool:
    return bool(_meta(cell).get("solution"))


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _defined_names(source: str) -> set[str]:
    """Top-level function and class names a code cell defines ('' if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        # A half-written answer may not parse; fall back to the def lines.
        return {line.split("(")[0].split()[1] for line in source.splitlines()
                if line.startswith(("def ", "class ")) and len(line.split()) > 1}
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _looks_copied(text: str, release_sources: set[str]) -> bool:
    """True for a copy of a release cell with lines added (a test cell with its hidden part)."""
    if any(marker in text for marker in ("BEGIN HIDDEN TESTS", "BEGIN SOLUTION")):
        return True
    return any(len(s) > 40 and text.startswith(s[:40]) for s in release_sources)


def _pick(candidates: list, stub: str, gid: str, report: RepairReport):
    """Of several submitted cells for one answer, prefer the last one the student changed."""
    if len(candidates) > 1:
        report.notes.append(f"{gid} appears {len(candidates)} times; the last edited copy is used")
    changed = [c for c in candidates if _source(c).strip() != stub.strip()]
    return (changed or candidates)[-1]


def repair(release: nbformat.NotebookNode, submitted: nbformat.NotebookNode
           ) -> tuple[nbformat.NotebookNode, RepairReport]:
    """Return the release notebook with the submission's answers transplanted, and a report.

    release: the student version as published (nbgrader metadata intact).
    submitted: whatever the student handed in, read with nbformat (any metadata state).
    """
    report = RepairReport()
    sub_cells = list(submitted.get("cells", []))
    used: set[int] = set()
    out = copy.deepcopy(release)
    release_sources = {_source(c).strip() for c in release.cells}
    positions: dict[int, int] = {}  # index in submission -> index in release of its answer

    for r_index, cell in enumerate(out.cells):
        if not _is_answer(cell):
            continue
        gid = _meta(cell)["grade_id"]
        stub = _source(cell)
        how, found = "grade id", [i for i, c in enumerate(sub_cells)
                                  if _meta(c).get("grade_id") == gid and i not in used]
        if not found and cell.get("id"):
            how = "cell id"
            found = [i for i, c in enumerate(sub_cells) if c.get("id") == cell.id and i not in used]
        if not found and cell.cell_type == "code":
            names = _defined_names(stub)
            if names:
                how = "content"
                found = [i for i, c in enumerate(sub_cells)
                         if i not in used and c.get("cell_type") == "code"
                         and names <= _defined_names(_source(c))]
        if not found:
            report.unanswered.append(gid)
            continue
        chosen = _pick([sub_cells[i] for i in found], stub, gid, report)
        index = next(i for i in found if sub_cells[i] is chosen)
        used.update(found)
        if chosen.get("cell_type") != cell.cell_type:
            report.notes.append(f"{gid} was turned into a {chosen.get('cell_type')} cell; "
                                "it is graded as unanswered")
            continue
        cell.source = _source(chosen)
        report.matched[gid] = how
        positions[index] = r_index

    # Extra code cells the student added stay, after the answer that precedes them.
    inserts: dict[int, list] = {}
    anchor = -1
    dropped = 0
    for i, c in enumerate(sub_cells):
        if i in positions:
            anchor = positions[i]
            continue
        if i in used or c.get("cell_type") != "code":
            continue
        text = _source(c).strip()
        if not text or text in release_sources:
            continue  # an unchanged cell of the notebook itself
        if _meta(c) or anchor < 0 or _looks_copied(text, release_sources):
            # A copy of a locked or test cell, or a cell before the first answer (where the
            # notebook's imports have not run yet): nothing an answer can depend on.
            dropped += 1
            continue
        extra = nbformat.v4.new_code_cell(text)
        inserts.setdefault(anchor, []).append(extra)
    if dropped:
        report.notes.append(f"{dropped} added or copied cell(s) outside the answers ignored")
    for anchor_index in sorted(inserts, reverse=True):
        out.cells[anchor_index + 1:anchor_index + 1] = inserts[anchor_index]
    return out, report
