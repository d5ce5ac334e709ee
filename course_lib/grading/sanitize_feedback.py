"""Feedback pages: nothing a student wrote or their code produced can act in the page.

A feedback page is HTML opened in a browser, by the student and often by the instructor. What
an answer cell displayed (``display(HTML("<script>..."))``, an SVG, a widget) and what a
written answer contains (Markdown lets raw HTML through) could act there: run a script, or
send the reader to another site with a ``<meta http-equiv="refresh">``, which no
Content-Security-Policy stops. So:

- in every cell's outputs, only text, PNG and JPEG images are kept, and images only when
  their data is plain base64 (:class:`SanitizeFeedback`); printed text is escaped by
  nbconvert itself;
- a written answer is rendered by :func:`markdown_to_html` with raw HTML shown as text, and
  what comes out is then cut down to the tags Markdown itself makes (paragraphs, lists,
  emphasis, code, tables, links to web addresses). Code blocks, inline code and maths show
  the student's ``<`` and ``>`` as they typed them;
- the page carries a Content-Security-Policy that allows no script at all
  (:func:`forbid_scripts`), so that even a gap in the above runs nothing.

Everything else in the page (instructions, tests, points) comes from the release notebook,
not from the submission (:mod:`course_lib.repair`).
"""

from __future__ import annotations

import re

import bleach
from jinja2 import pass_context
from nbconvert.filters.markdown_mistune import (
    IPythonRenderer,
    MarkdownWithMath,
    markdown2html_mistune,
)
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

SAFE_TYPES = ("text/plain", "image/png", "image/jpeg")
BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
          "base-uri 'none'; form-action 'none'")
# What Markdown renders to, and nothing that loads, embeds, styles or redirects.
ANSWER_TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "em", "strong", "del",
               "code", "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody",
               "tr", "th", "td", "span", "div", "sup", "sub"}
ANSWER_ATTRIBUTES = {"a": ["href", "title"], "span": ["class"], "div": ["class"],
                     "pre": ["class"], "code": ["class"]}


class SanitizeFeedback(Preprocessor):
    """Keep only inert outputs and drop attachments; written answers are made safe when they
    are rendered (:func:`markdown_to_html`)."""

    # nbconvert preprocessors are off unless enabled.
    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            kept = []
            for output in cell.get("outputs", []):
                if output.get("output_type") in ("display_data", "execute_result"):
                    data = {k: v for k, v in output.get("data", {}).items() if k in SAFE_TYPES
                            and isinstance(v, str) and (k == "text/plain" or BASE64.match(v))}
                    if not data:
                        continue
                    output["data"] = data
                    output["metadata"] = {}
                kept.append(output)
            cell.outputs = kept
        cell.pop("attachments", None)
        return cell, resources


def is_written_answer(cell) -> bool:
    """Whether ``cell`` (a notebook cell) is a markdown cell a student writes in."""
    return (cell.get("cell_type") == "markdown"
            and bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution")))


def render_written_answer(source: str) -> str:
    """A student's Markdown ``source`` as inert HTML: raw HTML in it shows as text, links go
    only to web or mail addresses, and no tag outside ``ANSWER_TAGS`` survives."""
    renderer = IPythonRenderer(escape=True, allow_harmful_protocols=False)
    html = MarkdownWithMath(renderer=renderer).render(source)
    return bleach.clean(html, tags=ANSWER_TAGS, attributes=ANSWER_ATTRIBUTES,
                        protocols={"http", "https", "mailto"}, strip=False)


@pass_context
def markdown_to_html(context, source: str) -> str:
    """The feedback template's Markdown filter: a written answer through
    :func:`render_written_answer`; the release's own text, and the instructor's comments
    (rendered where no cell is in the template's context), as nbconvert renders them."""
    if is_written_answer(context.get("cell", {})):
        return render_written_answer(source)
    return markdown2html_mistune(source)


def forbid_scripts(html: str) -> str:
    """``html`` with a Content-Security-Policy meta tag first in its head: no script runs.

    The page template's own scripts (MathJax from a CDN) could not run under that policy, so
    they are left out too: the page then asks no other site for anything."""
    tag = f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
    html = re.sub(r"<script\b.*?</script\s*>", "", html, flags=re.IGNORECASE | re.DOTALL)
    match = re.search(r"<head[^>]*>", html, flags=re.IGNORECASE)
    if match is None:
        return tag + html
    return html[:match.end()] + tag + html[match.end():]
