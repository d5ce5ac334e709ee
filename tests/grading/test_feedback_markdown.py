"""Written answers in feedback pages: inert whatever the student typed, and shown as typed.

The filter is tried on its own (every hostile form below) and in a Jinja template, as nbgrader's
feedback template calls it; `tests/browser/test_feedback_page.py` opens a real graded page.
"""

from html.parser import HTMLParser

import jinja2
import nbformat
import pytest

from course_lib.grading.sanitize_feedback import (
    ANSWER_TAGS,
    markdown_to_html,
    render_written_answer,
)

HOSTILE = {
    "script": "<script>alert(1)</script>",
    "refresh": '<meta http-equiv="refresh" content="0;url=https://example.org/">',
    "handler": "<img src=x onerror=alert(1)> and <b onclick=alert(2)>bold</b>",
    "style": "<style>body { display: none }</style>",
    "frame": '<iframe src="https://example.org"></iframe>',
    "base": '<base href="https://example.org/">',
    "svg": "<svg><script>alert(3)</script></svg>",
    "form": '<form action="https://example.org"><input name=p></form>',
    "js link": "[my grade](javascript:alert(4))",
    "data link": "[page](data:text/html,<script>alert(5)</script>)",
    "autolink js": "<javascript:alert(6)>",
    "mermaid": "```mermaid\n<img src=x onerror=alert(7)>\n```",
    "html block": "<div>\n\n<script>alert(8)</script>\n\n</div>",
    "entity": "&lt;script&gt;alert(9)&lt;/script&gt;",
    "unclosed": "<a href='https://example.org' onmouseover='alert(10)'",
}


class _Elements(HTMLParser):
    """Every element and attribute a browser would build from the HTML, and its text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Elements:
    parsed = _Elements()
    parsed.feed(html)
    parsed.close()
    return parsed


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_nothing_a_written_answer_contains_becomes_an_active_element(source):
    html = render_written_answer(f"My answer.\n\n{source}\n\nThe end.")
    parsed = _parse(html)
    for tag, attrs in parsed.elements:
        assert tag in ANSWER_TAGS, (tag, html)
        assert not [a for a in attrs if a.startswith("on") or a in ("src", "srcdoc")], html
        href = attrs.get("href") or ""
        # web and mail addresses, or a link within the page (where a harmful one is sent)
        assert not href or href.startswith(("https://", "http://", "mailto:", "#")), html
    assert "My answer." in parsed.text and "The end." in "".join(parsed.text)


def test_code_and_maths_keep_the_students_angle_brackets():
    source = ("For large inputs $\\sigma'(x) < 0.01$, so x<0 and y>1 both count.\n\n"
              "Inline `if z < 0:` and a block:\n\n```python\nif a < b and b > c:\n    pass\n```\n\n"
              "| x | x > 0 |\n|---|---|\n| 1 | yes |\n\n- **bold** and *emphasis*\n")
    parsed = _parse(render_written_answer(source))
    text = "".join(parsed.text)
    for shown in ("$\\sigma'(x) < 0.01$", "x<0 and y>1", "if z < 0:", "if a < b and b > c:",
                  "x > 0"):
        assert shown in text, (shown, text)
    assert "&lt;" not in text and "&amp;" not in text
    tags = {tag for tag, _ in parsed.elements}
    assert {"code", "pre", "table", "li", "strong", "em"} <= tags


def _page(cell) -> str:
    """Render a cell's source through the filter as nbgrader's feedback template does."""
    env = jinja2.Environment()
    env.filters["markdown2html"] = markdown_to_html
    return env.from_string("{{ cell.source | markdown2html }}").render(cell=cell)


def test_the_release_text_renders_as_written_and_only_answers_are_cut_down():
    source = "<details><summary>Hint</summary>Use the chain rule.</details>"
    prose = nbformat.v4.new_markdown_cell(source)
    answer = nbformat.v4.new_markdown_cell(source, metadata={"nbgrader": {
        "solution": True, "grade": True, "grade_id": "q", "points": 2}})
    assert "<details>" in _page(prose)
    assert "<details>" not in _page(answer) and "&lt;details&gt;" in _page(answer)
