"""A mechanism sweep's rows, its variants in order, and what each variant changes, read
from the table itself (the mechanism columns every metrics or profile row carries), so
that the analysis and the figures describe a variant by what it did, not by its name."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from maskleak import mechanisms
from maskleak.errors import InputError
from maskleak.provenance import require_columns
from maskleak.why.columns import EXPERIMENT
from maskleak.why.labels import changes_text, value_label


def sweep_rows(
    table: pd.DataFrame,
    columns: Sequence[str],
    name: str,
    model: str | None = None,
    experiment: str = EXPERIMENT,
) -> pd.DataFrame:
    """The rows of ``table`` (the ``name`` table: metrics, profile) from ``experiment``
    (and ``model``), index reset; InputError naming a missing column, or saying that
    there are no such rows."""
    require_columns(table, ["experiment", "model", *columns], name)
    keep = table["experiment"] == experiment
    what = f"experiment {experiment!r}"
    if model is not None:
        keep &= table["model"] == model
        what += f", model {model!r}"
    rows = table.loc[keep]
    if rows.empty:
        raise InputError(f"{name} table has no rows for {what}")
    return rows.reset_index(drop=True)


def variant_order(rows: pd.DataFrame) -> list[str]:
    """The variants in ``rows``: baseline first, then in the order the table lists them
    (the config's order)."""
    names = [str(v) for v in pd.unique(rows["variant"])]
    return sorted(names, key=lambda v: v != mechanisms.BASELINE)


def changes(rows: pd.DataFrame, variant: str) -> str:
    """What ``variant`` changes against the baseline in ``rows`` (one model's rows):
    ``name=value`` for each mechanism column whose value differs, joined by ``, ``;
    ``""`` for the baseline and for a variant that changes nothing in this pipeline.
    InputError if ``rows`` has no baseline."""
    require_columns(rows, ["variant", *mechanisms.NAMES], "metrics")
    base = rows.loc[rows["variant"] == mechanisms.BASELINE]
    mine = rows.loc[rows["variant"] == variant]
    if base.empty:
        raise InputError(f"metrics table has no {mechanisms.BASELINE} rows to compare with")
    if mine.empty:
        raise InputError(f"metrics table has no rows of variant {variant!r}")
    changed = {
        name: mine[name].iloc[0]
        for name in mechanisms.NAMES
        if value_label(mine[name].iloc[0]) != value_label(base[name].iloc[0])
    }
    return changes_text(changed)
