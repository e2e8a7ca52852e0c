"""Writing an analysis of the metrics table (claims, why it leaks, mask shape): read the
metrics Parquet, compute a table with bootstrap intervals, and write it atomically with
the provenance every such table carries."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from maskleak.bootstrap import LEVEL
from maskleak.errors import InputError
from maskleak.provenance import read_table, write_parquet

#: ``compute(metrics, n_resamples=..., seed=...)`` -> the analysis table.
Analysis = Callable[..., pd.DataFrame]


def write_analysis(
    metrics_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    compute: Analysis,
    stage: str,
    n_resamples: int,
    seed: int,
    extra: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``compute`` on the metrics Parquet at ``metrics_path``, written to ``out_path`` with
    the record ``{stage, metrics, n_resamples, bootstrap_seed, level, **extra}``; returns
    the table and its record. An InputError from ``compute`` is re-raised naming the
    metrics file."""
    name = os.fspath(metrics_path)
    metrics = read_table(name, "metrics")
    try:
        table = compute(metrics, n_resamples=n_resamples, seed=seed)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc
    record = {
        "stage": stage,
        "metrics": name,
        "n_resamples": n_resamples,
        "bootstrap_seed": seed,
        "level": LEVEL,
        **(extra or {}),
    }
    write_parquet(table, Path(out_path), record)
    return table, record
