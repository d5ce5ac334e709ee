"""Feedback preprocessor: tracebacks in test cells show the error, not the test code.

A traceback from a hidden test quotes the lines of the hidden test. nbgrader's
ClearHiddenTests removes hidden tests from the cell's source but not from its outputs, so
feedback would still show them. This keeps each error's name and message (the lesson) and
drops the frames.
"""

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from .course_dir import is_test_cell


class HideTestTracebacks(Preprocessor):
    """Replace the traceback of every error output in an autograded test cell."""

    # nbconvert preprocessors are off unless enabled; nbgrader's are on by default.
    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    if output.get("ename") == "CheckFailed":
                        # Already a message written for students, without code.
                        continue
                    output["traceback"] = [
                        f"{output.get('ename', 'Error')}: {output.get('evalue', '')}",
                        "(raised while a test ran; the test's code is not shown)",
                    ]
        return cell, resources
