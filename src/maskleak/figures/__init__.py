"""The thesis' figures (4.2-4.11) and one beyond it, drawn from the metrics and trends
tables: one module per figure, each with one function that a workflow script calls.

* :mod:`.strength_grid` (Fig 4.2), :mod:`.strength_trend` (Fig 4.3),
  :mod:`.worst_case` (Figs 4.4-4.9), :mod:`.area_curves` (Fig 4.10),
  :mod:`.radius_gallery` (Fig 4.11), :mod:`.model_comparison` (beyond the thesis);
* shared: :mod:`.common` (tables, records, saving), :mod:`.layout` (panel grids, titles,
  a canvas that holds every text), :mod:`.heatmaps` (squared-error maps), :mod:`.fits`
  (trend rows), :mod:`.captions` (the report captions' values, computed from the plan).

Every figure is written atomically as a PNG at 150 dpi with a ``maskleak`` text chunk
holding its parameters, what it picked (rows, strengths, radii, fits) and the package
versions. Matplotlib is used through :class:`matplotlib.figure.Figure` and the Agg
canvas only (no pyplot global state), and the PNG carries no "Software" or date entry,
so rerunning a figure gives byte-identical files.

Units: all MSE values are per element (mean over pixels and RGB channels) of 8-bit
pixel levels, i.e. (8-bit level)².

This file imports nothing, so that each workflow script's code hash (``params.code``)
covers only the modules its figure uses.
"""
