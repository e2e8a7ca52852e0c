"""Image-weighted means of a few columns and the same means on each hierarchical
bootstrap resample, so that any function of means (a share, a relative change) gets its
interval by being evaluated on every resample.

A mean here is taken seeds first: each (image, seed) unit averages its rows (its
strengths, when they are pooled), each image averages its units, and the mean is over the
images, so every image weighs the same. The resamples are those of
:func:`maskleak.bootstrap.draw` (images with replacement, then each drawn image's seeds
with replacement); they are evaluated in numpy at once, not one DataFrame per resample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from maskleak.bootstrap import draw, percentile_interval
from maskleak.claims.estimate import RESAMPLED_NOTHING, resampled_text, sample_sizes


@dataclass(frozen=True)
class Means:
    """Means of C columns on the data (``value``, shape (C,)) and on each of R resamples
    (``samples``, shape (R, C)); what they rest on (``n_images``, ``n_seeds``,
    ``n_rows``) and what the resamples resample (``resampled``, "" for nothing)."""

    value: np.ndarray
    samples: np.ndarray
    n_images: int
    n_seeds: int
    n_rows: int
    resampled: str


def _unit_values(frame: pd.DataFrame, columns: Sequence[str], n_resamples: int, seed: int):
    """The resamples' draws and each unit's mean of ``columns``: (draws, values of shape
    (G, U, C), NaN where a group has fewer than U units)."""
    draws = draw(frame, n_resamples, seed)
    data = frame[list(columns)].to_numpy(dtype=np.float64)
    n_units = max(len(u) for u in draws.units)
    values = np.full((len(draws.groups), n_units, len(columns)), np.nan)
    for g, unit_rows in enumerate(draws.rows):
        for u, positions in enumerate(unit_rows):
            values[g, u] = data[positions].mean(axis=0)
    return draws, values


def image_means(rows: pd.DataFrame, columns: Sequence[str], n_resamples: int, seed: int) -> Means:
    """The image-weighted means of ``columns`` over ``rows`` (which need ``image`` and
    ``seed``) and over each of ``n_resamples`` hierarchical resamples drawn from ``seed``.
    Rows where any of ``columns`` is NaN are left out. No rows: every mean NaN."""
    columns = list(columns)
    frame = rows.loc[rows[columns].notna().all(axis=1), ["image", "seed", *columns]]
    frame = frame.reset_index(drop=True)
    if frame.empty:
        nan = np.full(len(columns), np.nan)
        return Means(nan, np.full((n_resamples, len(columns)), np.nan), 0, 0, 0, "")
    n_images, n_seeds = sample_sizes(frame)
    draws, values = _unit_values(frame, columns, n_resamples, seed)
    per_image = np.nanmean(values, axis=1)  # (G, C): each image's units averaged
    value = per_image.mean(axis=0)
    # (R, G, U, C): each drawn image's drawn units; only the valid draws count.
    drawn = values[draws.group_draws[..., None], draws.unit_draws]
    valid = draws.unit_valid[..., None]
    unit_sum = np.where(valid, drawn, 0.0).sum(axis=2)
    samples = (unit_sum / valid.sum(axis=2)).mean(axis=1)
    return Means(value, samples, n_images, n_seeds, len(frame), resampled_text(frame))


def interval(means: Means, statistic: np.ndarray) -> tuple[float, float]:
    """The percentile interval of ``statistic`` (one value per resample, shape (R,));
    NaN where the resamples resample nothing (one image, one seed)."""
    if means.resampled == RESAMPLED_NOTHING:
        return np.nan, np.nan
    low, high = percentile_interval(np.asarray(statistic, dtype=np.float64))
    return float(low), float(high)


def divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` element-wise, NaN where the denominator is 0 (a share
    of nothing, or a change relative to nothing, is undefined)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, numerator / denominator, np.nan)
