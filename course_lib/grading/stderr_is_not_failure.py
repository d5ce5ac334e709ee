"""Autograde preprocessor: output on stderr does not fail a test cell.

nbgrader scores a test cell 0 as soon as anything was written to stderr, so a library's
deprecation warning, TensorFlow's start-up log or a student's debug print to stderr would
cost a correct answer its points. Only an error (an exception) should. This runs after
execution and before scores are saved, and relabels stderr output in test cells as stdout,
prefixed so the feedback still shows where it came from.
"""

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from .course_dir import is_test_cell


class StderrIsNotFailure(Preprocessor):
    """Turn stderr stream outputs of autograded test cells into labelled stdout."""

    # nbconvert preprocessors are off unless enabled; nbgrader's are on by default.
    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
                    output["text"] = "".join(
                        f"[stderr] {line}" for line in output.get("text", "").splitlines(True)
                    )
        return cell, resources
