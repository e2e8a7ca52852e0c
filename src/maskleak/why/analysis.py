"""The statistics of "Why it leaks", from the mechanism sweep's rows of a metrics table.

* attribution: per model (and its pipeline), variant and strength, pass 1, the share of
  ``mse_outside`` made by each of its three parts (VAE floor, latent footprint, beyond
  it): mean part / mean ``mse_outside``;
* variant_effect: per variant, the change of ``mse_outside`` against the baseline, paired
  on image, mask, strength and seed (pass 1): the mean difference, and that mean over
  the baseline's mean;
* seam_cost: per variant, the change of ``seam_step_excess`` against the baseline, paired
  the same way: the seam a variant leaves at the mask edge (paste-back's cost beside
  its gain in variant_effect); no relative change (the baseline's excess is near 0 and
  of either sign);
* pass_growth: per variant with several passes, pass k against pass 1 of the same
  variant, paired the same way.

Every statistic is also computed with all strengths pooled (strength NaN). Means and
intervals: :mod:`maskleak.why.means`. One row per statistic, columns
:data:`maskleak.why.columns.COLUMNS`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from maskleak.bootstrap import N_RESAMPLES
from maskleak.errors import InputError
from maskleak.mechanisms import BASELINE
from maskleak.provenance import require_columns
from maskleak.why import columns as cols
from maskleak.why.means import Means, divide, image_means, interval
from maskleak.why.variants import changes, variant_order

#: The statistics' rows: everything but model, pipeline, variant and changes.
Row = dict[str, Any]


def _strengths(rows: pd.DataFrame) -> Iterator[tuple[float, pd.DataFrame]]:
    """(strength, its rows) for each strength in order, then (NaN, all rows): pooled."""
    for strength in sorted(float(s) for s in pd.unique(rows["strength"])):
        yield strength, rows.loc[rows["strength"] == strength]
    yield math.nan, rows


def _row(means: Means, statistic: np.ndarray, value: float | np.ndarray, **fields: Any) -> Row:
    low, high = interval(means, statistic)
    return {
        **fields,
        "value": float(value),
        "ci_low": low,
        "ci_high": high,
        "unit": cols.UNITS[fields["quantity"]],
        "n_images": means.n_images,
        "n_seeds": means.n_seeds,
        "n_rows": means.n_rows,
        "resampled": means.resampled,
    }


def attribution(rows: pd.DataFrame, n_resamples: int, seed: int) -> list[Row]:
    """Per strength (then pooled): the share of each part, for ``rows`` (one model's and
    variant's pass-1 rows)."""
    out = []
    parts = list(cols.PARTS.values())
    for strength, at in _strengths(rows):
        means = image_means(at, ["mse_outside", *parts], n_resamples, seed)
        total, total_samples = means.value[0], means.samples[:, 0]
        for k, part in enumerate(cols.PARTS, start=1):
            out.append(
                _row(
                    means,
                    divide(means.samples[:, k], total_samples),
                    divide(means.value[k], total),
                    strength=strength,
                    part=part,
                    quantity=cols.SHARE,
                    reference_mean=float(total),
                    compared_mean=float(means.value[k]),
                )
            )
    return out


def paired(
    reference: pd.DataFrame, compared: pd.DataFrame, what: str, column: str = "mse_outside"
) -> pd.DataFrame:
    """``reference`` and ``compared`` rows matched on :data:`~columns.PAIR_KEYS`: the
    keys, ``reference`` and ``compared`` (their ``column``) and ``difference``
    (compared - reference), one row per key both have. InputError if a key repeats
    (``what`` names the rows in the message)."""
    keys = list(cols.PAIR_KEYS)
    for side in (reference, compared):
        if side.duplicated(keys).any():
            raise InputError(f"metrics table has repeated {keys} in the rows of {what}")
    merged = reference[[*keys, column]].merge(
        compared[[*keys, column]], on=keys, suffixes=("_reference", "_compared")
    )
    merged = merged.rename(
        columns={f"{column}_reference": "reference", f"{column}_compared": "compared"}
    )
    merged["difference"] = merged["compared"] - merged["reference"]
    return merged


def change(
    pairs: pd.DataFrame,
    n_resamples: int,
    seed: int,
    quantity: str = cols.CHANGE,
    relative: bool = True,
    **fields: Any,
) -> list[Row]:
    """Per strength (then pooled): the mean paired difference (as ``quantity``) and,
    if ``relative``, the relative change, for ``pairs`` from :func:`paired`."""
    out = []
    for strength, at in _strengths(pairs):
        means = image_means(at, ["difference", "reference", "compared"], n_resamples, seed)
        diff, ref, comp = means.value
        common = {**fields, "strength": strength, "part": "", "reference_mean": float(ref)}
        common["compared_mean"] = float(comp)
        out.append(_row(means, means.samples[:, 0], diff, quantity=quantity, **common))
        if relative:
            ratio = divide(means.samples[:, 0], means.samples[:, 1])
            out.append(
                _row(means, ratio, divide(diff, ref), quantity=cols.RELATIVE_CHANGE, **common)
            )
    return out


def _model_rows(rows: pd.DataFrame, n_resamples: int, seed: int) -> dict[str, list[Row]]:
    """One model's statistics by analysis."""
    found: dict[str, list[Row]] = {a: [] for a in cols.ANALYSES}
    variants = variant_order(rows)
    if BASELINE not in variants:
        raise InputError(f"metrics table has no {BASELINE} rows in experiment {cols.EXPERIMENT!r}")
    first = rows.loc[rows["pass"] == 1]
    base = first.loc[first["variant"] == BASELINE]
    for variant in variants:
        named: dict[str, Any] = {"variant": variant, "changes": changes(rows, variant)}
        mine = rows.loc[rows["variant"] == variant]
        mine_first = mine.loc[mine["pass"] == 1]
        for stat in attribution(mine_first, n_resamples, seed):
            found[cols.ATTRIBUTION].append({**named, "pass": 1, **stat})
        if variant != BASELINE:
            what = f"variant {variant!r}, pass 1"
            pairs = paired(base, mine_first, what)
            found[cols.VARIANT_EFFECT] += change(pairs, n_resamples, seed, **{**named, "pass": 1})
            seams = paired(base, mine_first, what, cols.SEAM_COLUMN)
            found[cols.SEAM_COST] += change(
                seams, n_resamples, seed, cols.SEAM_STEP_CHANGE, False, **named, **{"pass": 1}
            )
        for k in sorted(int(p) for p in pd.unique(mine["pass"]) if int(p) > 1):
            pairs = paired(mine_first, mine.loc[mine["pass"] == k], f"variant {variant!r}")
            found[cols.PASS_GROWTH] += change(pairs, n_resamples, seed, **{**named, "pass": k})
    return found


def why_table(metrics: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """The statistics of the module docstring on ``metrics``' mechanism-sweep rows, one
    row per statistic, columns :data:`~columns.COLUMNS`, ordered by analysis, model,
    variant (baseline first), pass, strength (pooled last), part and quantity. Intervals
    from ``n_resamples`` hierarchical resamples drawn from ``seed``: the same table gives
    the same result. A table without mechanism-sweep rows gives an empty table."""
    require_columns(metrics, cols.REQUIRED, "metrics")
    sweep = metrics.loc[metrics["experiment"] == cols.EXPERIMENT]
    by_analysis: dict[str, list[Row]] = {a: [] for a in cols.ANALYSES}
    for (model, pipeline), rows in sweep.groupby(["model", "pipeline"], sort=True):
        where = {"model": str(model), "pipeline": str(pipeline)}
        for analysis, found in _model_rows(rows, n_resamples, seed).items():
            by_analysis[analysis] += [{"analysis": analysis, **where, **r} for r in found]
    records = [r for a in cols.ANALYSES for r in by_analysis[a]]
    frame = pd.DataFrame(records, columns=list(cols.COLUMNS))
    return frame.astype(cols.DTYPES).reset_index(drop=True)
