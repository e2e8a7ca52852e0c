"""Write the why table (Parquet, with provenance) and the "Why it leaks" page from a
metrics table: what rule ``why`` runs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from maskleak.analysis_table import write_analysis
from maskleak.bootstrap import N_RESAMPLES
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
    table, record = write_analysis(metrics_path, out_path, why_table, "why", n_resamples, seed)
    if page_path is not None:
        write_page(table, Path(page_path), record, os.fspath(out_path), figures or {})
