"""COVERAGE.md names real sections: every `notebook` § N it cites has a '## N.' heading."""

import re

import nbformat
from conftest import REPO, notebook_path


def _headings(assignment):
    numbers = set()
    for cell in nbformat.read(notebook_path(assignment), as_version=4).cells:
        if cell.cell_type == "markdown":
            numbers |= set(re.findall(r"^## (\d+)\.", cell.source, flags=re.M))
    return numbers


def test_every_cited_section_exists():
    text = (REPO / "COVERAGE.md").read_text()
    cited = 0
    for line in text.splitlines():
        for name, sections in re.findall(r"`(\d\d_\w+)`((?:[ ;,]*§ \d+)+)", line):
            numbers = re.findall(r"§ (\d+)", sections)
            missing = set(numbers) - _headings(name)
            assert not missing, f"COVERAGE.md cites {name} § {sorted(missing)}, not there"
            cited += len(numbers)
    assert cited > 40
