"""What nbgrader needs from rmlearn to grade untrusted submissions safely (the instructor's side).

Modules (each imports nbgrader lazily, so ``import rmlearn`` never pulls it in):

- ``rmlearn.grading.sandbox``: every grading kernel runs in a bubblewrap sandbox.
- ``rmlearn.grading.scoring``: sturdy preprocessors and honest scores for messy submissions.
- ``rmlearn.grading.parallel``: the whole class graded at once, identical to a serial run.
- ``rmlearn.grading.files``: links, fifos and device files a submission leaves, never followed.
- ``rmlearn.grading.exchange``: ``nbgrader collect`` that takes only what each student submitted.
- ``rmlearn.grading.report``: item analysis after grading (``rmlearn course report``).

The course's ``nbgrader_config.py`` wires them in; ``docs/instructor.md`` says what each stops.
"""
