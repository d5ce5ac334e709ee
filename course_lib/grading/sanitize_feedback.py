"""Feedback preprocessor: nothing a student's code produced can act in the feedback page.

A feedback page is HTML opened in a browser, by the student and often by the instructor. What
an answer cell displayed (``display(HTML("<script>..."))``, an SVG, a widget) and what a
written answer contains (Markdown passes raw HTML through) could run there. So, in every
cell's outputs, only text, PNG and JPEG images are kept, and images only when their data is
plain base64; in written answers, ``<`` and ``>`` are shown as characters, not read as tags.
Printed text is escaped by nbconvert itself. The page also carries a Content-Security-Policy
that allows no script at all (:func:`forbid_scripts`), so that even a gap here runs nothing.
"""

from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

SAFE_TYPES = ("text/plain", "image/png", "image/jpeg")
BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
          "base-uri 'none'; form-action 'none'")


class SanitizeFeedback(Preprocessor):
    """Keep only inert outputs; show written answers' angle brackets as text."""

    # nbconvert preprocessors are off unless enabled.
    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("solution"):
            cell.source = cell.source.replace("<", "&lt;").replace(">", "&gt;")
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
