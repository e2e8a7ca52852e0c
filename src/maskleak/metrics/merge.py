"""Joining per-image parts (:func:`write_image_metrics`) into the metrics table and the
profile."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from maskleak.metrics.columns import METRICS, TableSpec, sort_table
from maskleak.metrics.parts import read_part, write_table


def merge_parts(
    part_paths: Sequence[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    spec: TableSpec,
    stage: str,
) -> pd.DataFrame:
    """Concatenate per-image parts of the table ``spec`` describes, in its row order,
    and write the result atomically as Parquet with provenance (``stage``, the parts and
    their manifests). A part that is missing, unreadable, or whose columns or dtypes are
    not ``spec``'s is an InputError naming the file."""
    import pyarrow as pa

    parts = [os.fspath(p) for p in part_paths]
    tables = []
    manifests = []
    for path in parts:
        table, record = read_part(path, spec)
        tables.append(table)
        if isinstance(record.get("manifest"), str):
            manifests.append(record["manifest"])
    # One schema (string or large_string alike) to concatenate, and none of the first
    # part's metadata (its record; pandas' index of its own rows if pandas wrote it).
    schema = spec.schema
    merged = pa.concat_tables(
        [t if t.schema.equals(schema) else t.cast(schema) for t in tables] or [schema.empty_table()]
    ).replace_schema_metadata(None)
    merged = sort_table(merged, spec)
    # The parts' Arrow types were checked, so the frame has the table's dtypes.
    frame = merged.to_pandas(use_threads=False)
    write_table(merged, out_path, {"stage": stage, "parts": parts, "manifests": manifests})
    return frame


def merge_metrics(
    part_paths: Sequence[str | os.PathLike[str]], out_path: str | os.PathLike[str]
) -> pd.DataFrame:
    """Concatenate per-image metrics parts into the metrics table and write it atomically
    as Parquet with provenance (the record lists the parts and their manifests).

    The result has exactly the rows, column order, dtypes, row order and values that
    :func:`metrics_table` over all the parts' manifests gives at once. A part that is
    missing, unreadable, or whose columns or dtypes are not :data:`COLUMNS`' is an
    InputError naming the file."""
    return merge_parts(part_paths, out_path, METRICS, "metrics")
