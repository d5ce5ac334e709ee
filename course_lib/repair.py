"""Rebuild a submission from the release notebook, carrying over only the student's work.

A submitted notebook cannot be trusted to keep its nbgrader metadata: Colab and VS Code drop
it, copy-paste duplicates it, and a student can edit it (more points, a test cell unlocked).
So grading never uses the submitted structure. It starts from the release notebook (the
student version the instructor published) and transplants the *source* of each answer cell,
found in the submission by, in order:

1. grade id (the nbgrader metadata, when it survived);
2. cell id (nbformat 4.5 ids survive most editors even when metadata is stripped);
3. content: for code, a cell that defines the same functions or classes as the release cell
   (``def sigmoid(``); for a written answer, the text cell right after the question it
   answers (the release cell before it, found by its text).

Everything else (instructions, setup, tests, points) comes from the release, so lost,
duplicated, reordered or forged metadata cannot change what is graded or how much it is
worth. Code cells the student added (a helper, an answer written below its stub, a scratch
test) are kept in place, after the release cell they followed; a cell that still carries
nbgrader metadata but is not an answer (an edited test or locked cell) is not. Line endings
are normalised first, so a notebook saved with Windows line endings matches like any other.

This module is shared by the student's pre-submission check (:mod:`course_lib.presubmit`)
and the grader (:mod:`course_lib.grading.autograde`), so both see a notebook the same way.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field

import nbformat

# What a released written answer holds until the student writes one (nbgrader's text stub).
TEXT_STUB = "YOUR ANSWER HERE"


@dataclass
class RepairReport:
    """What the transplant found: grade id -> how it was matched, and what was left out."""

    matched: dict[str, str] = field(default_factory=dict)  # grade id -> grade id|cell id|content
    unanswered: list[str] = field(default_factory=list)  # answer cells not found at all
    notes: list[str] = field(default_factory=list)  # duplicates, type changes

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
    text = "".join(src) if isinstance(src, list) else str(src)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _defined_names(source: str) -> set[str]:
    """Top-level function and class names a code cell defines."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        # A half-written answer may not parse; fall back to the def lines.
        return {line.split("(")[0].split()[1] for line in source.splitlines()
                if line.startswith(("def ", "class ")) and len(line.split()) > 1}
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _pick(candidates: list, stub: str, gid: str, report: RepairReport):
    """Of several submitted cells for one answer, prefer the last one the student changed."""
    if len(candidates) > 1:
        report.notes.append(f"{gid} appears {len(candidates)} times; the last edited copy is used")
    changed = [c for c in candidates if _source(c).strip() != stub.strip()]
    return (changed or candidates)[-1]


def _find_answer(r_index: int, out, sub_cells: list, used: set[int]) -> tuple[str, list[int]]:
    """How the answer for release cell ``r_index`` was found, and the submission's indices."""
    cell = out.cells[r_index]
    gid = _meta(cell)["grade_id"]
    found = [i for i, c in enumerate(sub_cells)
             if _meta(c).get("grade_id") == gid and i not in used]
    if found:
        return "grade id", found
    if cell.get("id"):
        found = [i for i, c in enumerate(sub_cells) if c.get("id") == cell.id and i not in used]
        if found:
            return "cell id", found
    if cell.cell_type == "code":
        names = _defined_names(_source(cell))
        if names:
            return "content", [i for i, c in enumerate(sub_cells)
                               if i not in used and c.get("cell_type") == "code"
                               and not _meta(c) and names <= _defined_names(_source(c))]
    elif r_index > 0:
        # A written answer: the text cell right after its question.
        question = _source(out.cells[r_index - 1]).strip()
        release_texts = {_source(c).strip() for c in out.cells}
        for i, c in enumerate(sub_cells[:-1]):
            after = sub_cells[i + 1]
            if _source(c).strip() == question and i + 1 not in used \
                    and after.get("cell_type") == "markdown" and not _meta(after) \
                    and _source(after).strip() not in release_texts:
                return "content", [i + 1]
    return "", []


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
    positions: dict[int, int] = {}  # index in submission -> index in release

    for r_index, cell in enumerate(out.cells):
        if not _is_answer(cell):
            continue
        gid = _meta(cell)["grade_id"]
        how, found = _find_answer(r_index, out, sub_cells, used)
        if not found:
            report.unanswered.append(gid)
            continue
        chosen = _pick([sub_cells[i] for i in found], _source(cell), gid, report)
        index = next(i for i in found if sub_cells[i] is chosen)
        used.update(found)
        if chosen.get("cell_type") != cell.cell_type:
            report.notes.append(f"{gid} was turned into a {chosen.get('cell_type')} cell; "
                                "it is graded as unanswered")
            continue
        cell.source = _source(chosen)
        report.matched[gid] = how
        positions[index] = r_index

    # Every other cell of the submission: a release cell (its text unchanged), which marks the
    # place; or a code cell the student added, kept right after the last place marked.
    by_text: dict[str, list[int]] = {}
    for r_index, cell in enumerate(out.cells):
        by_text.setdefault(_source(cell).strip(), []).append(r_index)
    inserts: dict[int, list] = {}
    anchor = -1
    for i, c in enumerate(sub_cells):
        if i in positions:
            anchor = positions[i]
            continue
        if i in used:
            continue
        text = _source(c).strip()
        if text in by_text:
            later = [r for r in by_text[text] if r > anchor]
            anchor = later[0] if later else anchor
            continue
        if c.get("cell_type") != "code" or not text or _meta(c):
            continue  # prose, an empty cell, or an edited copy of a test or locked cell
        inserts.setdefault(anchor, []).append(nbformat.v4.new_code_cell(text))
    for anchor_index in sorted(inserts, reverse=True):
        out.cells[anchor_index + 1:anchor_index + 1] = inserts[anchor_index]
    return out, report
