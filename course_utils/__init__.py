"""Shared helpers of the Multilevel Adventures course.

One module per job:

- :mod:`course_utils.data`: the course's data sets by name, checked against pinned hashes;
- :mod:`course_utils.cache` and :mod:`course_utils.fitting`: seeded fits, cached on disk;
- :mod:`course_utils.precis`: a quick summary of a data set;
- :mod:`course_utils.names`: brms's names for a posterior's parameters;
- :mod:`course_utils.summary`: brms-style model summaries;
- :mod:`course_utils.loo`: PSIS-LOO and model comparison tables;
- :mod:`course_utils.draws`: tidy draws, after tidybayes;
- :mod:`course_utils.plots`: the course's figures.

Import the modules you need; nothing heavy happens at import of the package itself.
"""

__version__ = "0.1.0"
