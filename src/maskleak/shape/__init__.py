"""Leak against mask shape (issue 11): does the outside error follow the mask's area or
its edge?

* :mod:`.fit`: per model, pipeline and strength, least-squares lines of ``mse_outside``
  on three predictors (area share, edge per kept pixel, latent-footprint share), per
  mask family and pooled, with hierarchical-bootstrap intervals and a verdict; the fit
  table's columns (mirrors workflow/schemas/mask_shape.columns.yaml) and its writer.

The figure is :mod:`maskleak.figures.mask_shape`.

This file imports nothing, so that each workflow script's code hash covers only the
modules it uses.
"""
