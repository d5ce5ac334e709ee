"""The instructor pipeline around nbgrader: release, drift check and autograding.

nbgrader stays the grading engine; this package only prepares its inputs and reads its
outputs, so every step can be run and tested without a JupyterHub:

- :mod:`.course_dir`: a throwaway nbgrader course directory with the course's settings.
- :mod:`.release`: ``solutions/`` -> ``notebooks/`` (student versions), and the drift check.
- :mod:`.submissions`: find and validate the notebooks handed in.
- :mod:`.autograde`: grade a batch, write ``grades.csv`` and one feedback page per student.
- :mod:`.call_recorder`, :mod:`.value_codec`, :mod:`.trusted_replay`, :mod:`.outside_check`:
  each test cell checked a second time, outside the student's kernel, on the recorded values.
"""
