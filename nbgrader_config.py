"""nbgrader settings for instructors who run nbgrader (or its JupyterLab extensions) here.

The repository's layout is not nbgrader's default: the instructor's notebooks live in
``solutions/`` and the student versions in ``notebooks/``. The other settings come from
``course_lib.grading.course_dir.nbgrader_config``, the same ones ``course release`` and
``course grade`` use, so nbgrader and the ``course`` command cannot disagree. nbgrader's
exchange (release, fetch, submit, collect) is ``exchange/`` here, or ``$COURSE_EXCHANGE``.
"""

from pathlib import Path

from course_lib.grading.course_dir import exchange_root, nbgrader_config

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)
c.merge(nbgrader_config())
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
# release_assignment / fetch_assignment / submit / collect go through this folder (see the
# README: a course-local one by default, a shared one through $COURSE_EXCHANGE).
c.Exchange.root = str(exchange_root(Path(__file__).resolve().parent))
