"""nbgrader's settings for the course's exercises (this folder is the course directory).

Instructors: see the README's "Teaching with the exercises" section; `make release` and
`make grade` run nbgrader with these settings.
"""

c = get_config()  # noqa: F821  (nbgrader provides it)

c.CourseDirectory.course_id = "multilevel-adventures"
# Students' notebooks are executed by `make grade` (autograder.grade), which runs
# `nbgrader autograde` per submission with its own time and memory limits on top of these.
c.Execute.timeout = 600  # seconds per cell: fitting both models takes 1 to 3 minutes
c.Execute.interrupt_on_timeout = True
# A deleted test cell is put back, so deleting it gains nothing.
c.OverwriteCells.add_missing_cells = True
c.Autograde.create_student = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Feedback shows the tests as students saw them: the hidden parts only hand results to
# the grader, and stay hidden.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
