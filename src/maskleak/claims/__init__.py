"""Each of the study's 8 claims tested on a run's own data, per model and metric: the
statistic, its 95 % interval, a verdict and one sentence of evidence.

* :mod:`maskleak.claims.table`: ``claims_table(metrics)`` and ``write_claims(...)``, the
  table's columns;
* :mod:`maskleak.claims.verdicts`: how an interval becomes a verdict (the rules, the
  practical margin);
* :mod:`maskleak.claims.catalogue`: the claims, their report figures, the report caption;
* :mod:`maskleak.claims.strength`, :mod:`~maskleak.claims.regions`,
  :mod:`~maskleak.claims.mask_size`: the statistic of each claim;
* :mod:`maskleak.claims.estimate`: bootstrap intervals and per-image aggregates;
* :mod:`maskleak.claims.page`: the HTML verdict page of the report.

This package module imports nothing, so that the workflow can read the catalogue at
parse time without loading numpy and pandas.
"""
