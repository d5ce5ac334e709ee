"""Autograde preprocessor: the outputs of one cell may not exceed a byte budget.

nbgrader's LimitOutput counts lines, so one 100 MB line (``print("x" * 10**8)``, which the
kernel sends as many stream chunks) passes through whole into the graded notebook, the
feedback page and the instructor's disk. This keeps each cell's text outputs, in order, until
``max_bytes`` is spent, cuts the output that crosses the line, drops the rest, and says so.
"""

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Integer


def _size(text: str) -> int:
    return len(text.encode("utf-8", "replace"))


class CapOutputBytes(Preprocessor):
    """Truncate a cell's text outputs (streams, plain text, tracebacks) to ``max_bytes``."""

    max_bytes = Integer(100_000, help="Largest total text output of one cell, in bytes").tag(
        config=True)

    # nbconvert preprocessors are off unless enabled; nbgrader's are on by default.
    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        budget = self.max_bytes
        kept = []
        for output in cell.get("outputs", []):
            texts = []
            if "text" in output:
                texts.append(("text", None))
            for mime, value in output.get("data", {}).items():
                if isinstance(value, str):
                    texts.append(("data", mime))
            if "traceback" in output:
                texts.append(("traceback", None))
            over = False
            for field, mime in texts:
                value = output[field] if field != "data" else output["data"][mime]
                text = "".join(value) if isinstance(value, list) else value
                if _size(text) > budget:
                    text = text.encode("utf-8", "replace")[:max(budget, 0)].decode(
                        "utf-8", "ignore") + "\n... [output truncated: over the byte limit]\n"
                    over = True
                budget -= _size(text)
                if field == "data":
                    output["data"][mime] = text
                elif field == "traceback":
                    output[field] = text.splitlines()
                else:
                    output[field] = text
            kept.append(output)
            if over or budget <= 0:
                break
        cell["outputs"] = kept
        return cell, resources
