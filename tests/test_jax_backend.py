"""The Keras notebooks run unchanged with KERAS_BACKEND=jax, as on GPU machines that carry JAX
but no TensorFlow. (Here TensorFlow is installed too; what this proves is that no notebook
or course_lib code path needs it once the backend is JAX.)"""

import nbformat
import pytest
from conftest import notebook_path

from course_lib.notebooks import run_notebook

# Every notebook that builds Keras models beyond a single layer; 05 and 07 use a few Keras
# layers and run under JAX too, checked by hand, since CI time is counted.
KERAS_NOTEBOOKS = ["08_transformer_encoder", "09_pretraining", "10_finetuning", "13_distillation"]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", KERAS_NOTEBOOKS)
def test_solution_runs_under_jax(assignment, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    result = run_notebook(notebook_path(assignment), tmp_path, profile="quick")
    assert result.status == "ok", result.detail
    executed = nbformat.read(result.output, as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "Keras backend jax" in printed
    graded = [c for c in executed.cells if c.metadata.get("nbgrader", {}).get("grade")
              and c.cell_type == "code"]
    failed = [c.metadata["nbgrader"]["grade_id"] for c in graded
              if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert graded and not failed, failed
