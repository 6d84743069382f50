"""Shared helpers of the Multilevel Adventures course: what Bambi, PyMC and ArviZ leave to us.

The chapters build and fit their models with Bambi and PyMC and summarise, compare and
plot them with ArviZ, xarray and seaborn. These modules fill the gaps, one job each:

- :mod:`course_utils.data`: the course's data sets by name, checked against pinned hashes;
- :mod:`course_utils.models`: the lecture's models, one module each, which the chapters
  show and the appendix, the grader's reference and the benchmarks build too;
- :mod:`course_utils.cache` and :mod:`course_utils.fitting`: ``Model.fit`` through a fit
  cache (brms's ``file=``), with the cutpoint prior Bambi drops;
- :mod:`course_utils.progress`: which model is fitting and how far, in the terminal;
- :mod:`course_utils.diagnostics`: convergence checks that stop an unattended build;
- :mod:`course_utils.precis`: rethinking's ``precis()`` summary of a data set;
- :mod:`course_utils.names`: brms's names for a posterior's parameters;
- :mod:`course_utils.summary`: brms's ``summary()`` layout;
- :mod:`course_utils.brms_record`: brms's own output for the lecture's models
  (``parity/brms_results.json``);
- :mod:`course_utils.loo`: brms's ``loo_compare()`` table (with the loo package's
  standard errors);
- :mod:`course_utils.draws`: tidy draws, after tidybayes;
- :mod:`course_utils.predictions`: predictions for clusters in the sample, the average
  cluster and new clusters, brms's way;
- :mod:`course_utils.plots`: the course's figure style and the plots no library draws.

Import the modules you need; nothing heavy happens at import of the package itself.
"""

__version__ = "0.1.0"
