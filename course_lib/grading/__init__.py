"""The instructor pipeline around nbgrader: release, drift check, collection and grading.

nbgrader stays the grading engine (course folder, gradebook, scores, feedback); this package
prepares its inputs, replaces its execution step, and reads its outputs, so every step can be
run and tested without a JupyterHub. Nothing here is imported by the student side of
``course_lib``.

- :mod:`.course_dir`: a throwaway nbgrader course directory with the course's settings.
- :mod:`.release`: ``solutions/`` -> ``notebooks/`` (student versions), and the drift check.
- :mod:`.collect`, :mod:`.submissions`: find and validate the notebooks handed in.
- :mod:`.autograde`: grade a batch, write ``grades.csv`` and one feedback page per student.
- :mod:`.jailed_execute`: nbgrader's execution step, split in two: the student's cells in a
  jailed kernel (:mod:`.kernel_runner`), the test cells in the grader's own jailed process
  (:mod:`.test_runner`), planned by :mod:`.cell_plan`, talking through :mod:`.channel` and
  :mod:`.jailed_process`, with values as data only (:mod:`.value_codec`).
- :mod:`.jail`, :mod:`.sandbox_uids`: the bubblewrap jail and, under root, its uid.
- :mod:`.sanitize_feedback`: feedback pages in which nothing a student produced can run.
- :mod:`.written_answers`: written answers read question by question, scored in a CSV.
"""
