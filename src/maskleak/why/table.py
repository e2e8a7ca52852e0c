"""Write the why table (Parquet, with provenance) and the "Why it leaks" page from a
metrics table: what rule ``why`` runs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from maskleak.bootstrap import LEVEL, N_RESAMPLES
from maskleak.errors import InputError
from maskleak.provenance import read_table, write_parquet
from maskleak.why.analysis import why_table
from maskleak.why.page import write_page


def write_why(
    metrics_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    page_path: str | os.PathLike[str] | None = None,
    figures: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> None:
    """Read the metrics Parquet, compute :func:`~maskleak.why.analysis.why_table`, write
    it atomically with its provenance and, if ``page_path`` is given, the page, naming
    ``figures`` (per model: (report label, path) of each mechanism figure)."""
    name = os.fspath(metrics_path)
    metrics = read_table(name, "metrics")
    try:
        table = why_table(metrics, n_resamples=n_resamples, seed=seed)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc
    record = {
        "stage": "why",
        "metrics": name,
        "n_resamples": n_resamples,
        "bootstrap_seed": seed,
        "level": LEVEL,
    }
    write_parquet(table, Path(out_path), record)
    if page_path is not None:
        write_page(table, Path(page_path), record, os.fspath(out_path), figures or {})
