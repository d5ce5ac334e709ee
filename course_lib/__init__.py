"""Companion package of the deep-learning course.

Importing it is cheap on purpose (well under 0.3 s): nothing here imports Keras,
TensorFlow, matplotlib or nbgrader. Each submodule imports what it needs when it
is used, so a student's first cell runs fast and an instructor's grading process
does not pay for TensorFlow.

Modules, one idea each:

- ``checks``: the assertions behind the notebooks' visible test cells.
- ``plots``, ``widgets``: figures and interactive explorers.
- ``device``: Keras backend, GPU, run profile and seeding.
- ``grading``: the instructor pipeline around nbgrader.
- ``presubmit``: the student's pre-submission check (``course_lib.submit_check()``).
- ``cli``: the ``course`` command.
"""

from importlib import import_module as _import_module

__version__ = "0.1.0"

_SUBMODULES = (
    "bbc", "checks", "cli", "data", "device", "distillation", "evaluation_plots", "experiment",
    "experiment_cli", "fixed_features", "gradcheck", "grading", "keras_runtime", "mlm", "nn",
    "notebooks", "plots", "presubmit", "pretraining", "probes", "recipe", "repair",
    "representations", "surfaces", "text", "text_models", "widgets", "window_classifier",
)


def __getattr__(name):
    # Lazy submodules: ``course_lib.checks`` works without importing every module up front.
    if name in _SUBMODULES:
        return _import_module(f"{__name__}.{name}")
    if name == "submit_check":  # course_lib.submit_check(): the student's pre-submission check
        return _import_module(f"{__name__}.presubmit").submit_check
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
