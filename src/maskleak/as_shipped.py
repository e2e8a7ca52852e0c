"""The rows of a metrics table that the thesis' analyses (trends, claims, their figures)
read: each pipeline as it ships (variant ``baseline``) and its first pass. A sweep may also
run variants (:mod:`maskleak.mechanisms`); mixing them into a fit or a verdict would
average different pipelines. A table written before variants existed has no ``variant``
column: all its rows are the pipelines as they ship."""

from __future__ import annotations

import pandas as pd

from maskleak.mechanisms import BASELINE


def experiment_rows(metrics: pd.DataFrame, experiment: str) -> pd.Series:
    """Bool per row: ``experiment``'s rows made by the pipeline as it ships, first pass."""
    keep = metrics["experiment"] == experiment
    if "variant" in metrics.columns:
        keep &= metrics["variant"] == BASELINE
    if "pass" in metrics.columns:
        keep &= metrics["pass"] == 1
    return keep
