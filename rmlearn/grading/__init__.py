"""What nbgrader needs from rmlearn to grade untrusted submissions safely (the instructor's side).

Nothing student-facing imports this package, so ``import rmlearn`` never pulls in nbgrader. Inside
it, ``exchange`` imports nbgrader when loaded; ``parallel`` and ``report`` only in the functions that
need it; ``scoring`` (which a grading kernel imports for ``record``) only when an nbgrader class of
it is first named; ``files``, ``instructor`` and ``sandbox`` never.

- ``rmlearn.grading.instructor``: a ready course directory (``rmlearn course init``).
- ``rmlearn.grading.sandbox``: every grading kernel runs in a bubblewrap sandbox.
- ``rmlearn.grading.scoring``: sturdy preprocessors and honest scores for messy submissions.
- ``rmlearn.grading.parallel``: the whole class graded at once, identical to a serial run.
- ``rmlearn.grading.files``: links, fifos and device files a submission leaves, never followed.
- ``rmlearn.grading.exchange``: ``nbgrader collect`` that takes only what each student submitted.
- ``rmlearn.grading.report``: item analysis after grading (``rmlearn course report``).

The course's ``nbgrader_config.py`` wires them in; ``docs/instructor.md`` says what each stops.
"""
