"""Why it leaks: which mechanism accounts for which share of the outside error, and what
each mechanism's switch changes, from the mechanism sweep's rows of the metrics table.

* :mod:`.columns`: the why table's columns (mirrors workflow/schemas/why.columns.yaml) and
  the metrics columns it reads;
* :mod:`.variants`: a sweep's rows, its variants in order, and what each one changes;
* :mod:`.means`: image-weighted means with their hierarchical-bootstrap resamples;
* :mod:`.analysis`: the statistics (attribution shares, variant effects, pass growth);
* :mod:`.page`: the report's "Why it leaks" HTML page; :mod:`.table`: both files written;
* :mod:`.captions`: what the report captions and the workflow read from the plan.

This file imports nothing, so that each workflow script's code hash covers only the
modules it uses.
"""
