"""Hierarchical (two-level) bootstrap over images and the seeds within each image.

An outside-mask MSE varies twice: between images (content) and, for one image, between
seeds (the sampler's noise). A confidence interval for a quantity averaged over images
must resample both levels, in the order the data was made: each resample draws the
images with replacement, then, within each drawn image, that image's seeds with
replacement, and takes every row of each drawn (image, seed) unit (e.g. all strengths of
that seed, so a seed's curve stays whole).

Degenerate cases, so that callers need no special handling:

* one group (a single image): resampling groups would always draw that image, so only
  the units within it are resampled (the interval is then over seeds only);
* ``within=None``: whole groups are drawn (all their rows), no second level;
* a group with one unit (one seed): its unit is always drawn, so with one image and one
  seed every resample is the whole table and the interval has zero width;
* an empty table: every resample is empty.

Every draw comes from one :class:`numpy.random.Generator` seeded with ``seed``, so the
same table, ``n_resamples`` and ``seed`` give the same resamples.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from maskleak.errors import InputError
from maskleak.provenance import require_columns

#: Resamples per bootstrap interval (the percentile interval's 2.5/97.5 % points then rest
#: on 25 resamples each side).
N_RESAMPLES: int = 1000
#: Coverage of every confidence interval and band the project reports.
LEVEL: float = 0.95


@dataclass(frozen=True)
class Draws:
    """The draws of ``n_resamples`` hierarchical resamples, as index arrays, so that
    vectorised statistics (e.g. :mod:`maskleak.trends`) and :func:`resample_indices` use
    exactly the same resamples.

    Attributes:
        groups: the distinct group values, sorted, shape (G,).
        units: per group, its distinct unit values, sorted (a 1-element object array
            holding ``None`` when ``within`` is None).
        group_draws: (R, G) int: position in ``groups`` of each drawn group.
        unit_draws: (R, G, U) int, U = the most units any group has: position in that
            drawn group's ``units`` of each drawn unit; only the first ``n_units`` of the
            drawn group are used (see ``unit_valid``), the rest are 0.
        unit_valid: (R, G, U) bool: which entries of ``unit_draws`` are real draws (a group
            with n units has n draws).
        rows: per group, per unit, the table's row positions (iloc), in table order.
    """

    groups: np.ndarray
    units: list[np.ndarray]
    group_draws: np.ndarray
    unit_draws: np.ndarray
    unit_valid: np.ndarray
    rows: list[list[np.ndarray]]

    @property
    def n_resamples(self) -> int:
        return int(self.group_draws.shape[0])


def draw(
    table: pd.DataFrame,
    n_resamples: int,
    seed: int = 0,
    group: str = "image",
    within: str | None = "seed",
) -> Draws:
    """Draw ``n_resamples`` hierarchical resamples of ``table`` (see the module docstring).

    The generator draws first all group indices, shape (R, G), then all unit indices,
    shape (R, G, U) (each below its drawn group's unit count); with one group the group
    draws are all 0 and take nothing from the generator.
    """
    if n_resamples < 1:
        raise InputError(f"n_resamples must be >= 1, got {n_resamples}")
    require_columns(table, [group] if within is None else [group, within], "bootstrap")
    rng = np.random.default_rng(seed)
    group_codes, groups = pd.factorize(table[group], sort=True, use_na_sentinel=False)
    n_groups = len(groups)
    units: list[np.ndarray] = []
    rows: list[list[np.ndarray]] = []
    for g in range(n_groups):
        positions = np.flatnonzero(group_codes == g)
        if within is None:
            units.append(np.array([None], dtype=object))
            rows.append([positions])
            continue
        unit_codes, unit_values = pd.factorize(
            table[within].iloc[positions], sort=True, use_na_sentinel=False
        )
        units.append(np.asarray(unit_values))
        rows.append([positions[unit_codes == u] for u in range(len(unit_values))])
    if n_groups == 0:
        empty = np.zeros((n_resamples, 0), dtype=np.int64)
        return Draws(np.asarray(groups), units, empty, empty[..., None], empty[..., None] > 0, rows)

    if n_groups == 1:
        # A single image: drawing images is degenerate, resample its seeds only.
        group_draws = np.zeros((n_resamples, 1), dtype=np.int64)
    else:
        group_draws = rng.integers(0, n_groups, size=(n_resamples, n_groups))
    n_units = np.array([len(u) for u in units], dtype=np.int64)
    max_units = int(n_units.max())
    drawn_counts = n_units[group_draws]  # (R, G)
    unit_draws = rng.integers(0, drawn_counts[..., None], size=(*group_draws.shape, max_units))
    unit_valid = np.arange(max_units) < drawn_counts[..., None]
    unit_draws = np.where(unit_valid, unit_draws, 0)
    return Draws(np.asarray(groups), units, group_draws, unit_draws, unit_valid, rows)


def _positions(draws: Draws, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions of resample ``r`` with, for each row, the number of its group draw
    (0..G-1) and of its unit draw within that group (0..n_units-1)."""
    positions, group_labels, unit_labels = [], [], []
    for k, g in enumerate(draws.group_draws[r]):
        for j in np.flatnonzero(draws.unit_valid[r, k]):
            rows = draws.rows[g][draws.unit_draws[r, k, j]]
            positions.append(rows)
            group_labels.append(np.full(rows.size, k, dtype=np.int64))
            unit_labels.append(np.full(rows.size, j, dtype=np.int64))
    if not positions:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(positions), np.concatenate(group_labels), np.concatenate(unit_labels)


def resample_indices(
    table: pd.DataFrame,
    n_resamples: int,
    seed: int = 0,
    group: str = "image",
    within: str | None = "seed",
) -> list[np.ndarray]:
    """Row positions (for ``table.iloc``) of each of ``n_resamples`` hierarchical
    resamples: the groups (``group``, images) drawn with replacement, then within each
    drawn group its ``within`` units (seeds) drawn with replacement, each drawn unit
    contributing all its rows in table order. ``within=None`` draws whole groups. With a
    single group only its units are resampled. Deterministic for a given ``seed``.
    """
    draws = draw(table, n_resamples, seed, group, within)
    return [_positions(draws, r)[0] for r in range(draws.n_resamples)]


def bootstrap(
    table: pd.DataFrame,
    statistic: Callable[[pd.DataFrame], float | np.ndarray],
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    group: str = "image",
    within: str | None = "seed",
) -> np.ndarray:
    """``statistic`` evaluated on each hierarchical resample of ``table`` (the resamples of
    :func:`resample_indices`): shape (n_resamples,) for a scalar statistic, (n_resamples, k)
    for one returning k values.

    In each resample the ``group`` column holds the draw number (int64, 0..G-1) instead of
    the group's name, and the ``within`` column the unit's draw number within its group, so
    that an image (or seed) drawn twice counts twice in a statistic that groups by it
    (grouping by the original names would merge the two draws into one).
    """
    draws = draw(table, n_resamples, seed, group, within)
    values = []
    for r in range(draws.n_resamples):
        positions, group_labels, unit_labels = _positions(draws, r)
        sample = table.iloc[positions].reset_index(drop=True)
        sample[group] = group_labels
        if within is not None:
            sample[within] = unit_labels
        values.append(np.asarray(statistic(sample), dtype=float))
    return np.stack(values)


def percentile_interval(
    samples: np.ndarray, level: float = LEVEL
) -> tuple[np.ndarray | float, ...]:
    """(low, high) percentile interval of ``samples`` along axis 0, NaN resamples left out:
    the (1 - level)/2 and (1 + level)/2 quantiles (linear interpolation). Floats for 1-D
    ``samples``, arrays of shape ``samples.shape[1:]`` otherwise; NaN where every resample
    is NaN (or there are none)."""
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level}")
    samples = np.asarray(samples, dtype=float)
    if samples.shape[0] == 0:
        nan = np.full(samples.shape[1:], np.nan)
        return (float(nan), float(nan)) if nan.ndim == 0 else (nan, nan.copy())
    quantiles = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    with warnings.catch_warnings():
        # An all-NaN column (no resample had a value) is a NaN bound, not an error.
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(samples, quantiles, axis=0)
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high
