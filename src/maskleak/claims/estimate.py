"""A claim's statistic on the run's data and its hierarchical-bootstrap interval, and the
per-image aggregates the statistics are built from.

Every statistic sees a few columns of a metrics table, its ``image`` column replaced by
integer codes (or a resample of it, see :func:`maskleak.bootstrap.bootstrap`: there
``image`` and ``seed`` hold draw numbers, so that an image drawn twice counts twice), and
averages the same way: over seeds first (per image and x), then over images, so every
image weighs the same. The aggregates are numpy group-bys (``np.unique`` and
``np.bincount``): a statistic runs once per resample, 1000 times per claim and metric.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from maskleak.bootstrap import LEVEL, bootstrap, percentile_interval
from maskleak.claims.verdicts import (
    HOLDS,
    INCONCLUSIVE,
    PRACTICAL_REL,
    Direction,
    Finding,
    inside_margin,
    number,
    verdict,
)

#: What an interval resamples, by the data it rests on (the ``resampled`` column).
RESAMPLED_IMAGES_SEEDS = "images, then seeds within each image"
RESAMPLED_IMAGES = "images (1 seed each)"
RESAMPLED_SEEDS = "seeds only (1 image)"
RESAMPLED_NOTHING = ""


@dataclass(frozen=True)
class Estimate:
    """A vector statistic on the data (``value``, shape (k,)) with the percentile interval
    of each element over the bootstrap resamples (``low``, ``high``, shape (k,))."""

    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_images: int
    n_seeds: int
    resampled: str


def interval_text(low: float, high: float) -> str:
    """``95 % CI 1.23 to 4.56`` (the level is :data:`maskleak.bootstrap.LEVEL`)."""
    return f"{100 * LEVEL:g} % CI {number(low)} to {number(high)}"


def finite_rows(rows: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """The rows of ``rows`` where every one of ``columns`` is a number (not NaN), in
    their order and with their index."""
    return rows[rows[list(columns)].notna().all(axis=1)]


def sample_sizes(rows: pd.DataFrame) -> tuple[int, int]:
    """(distinct images, distinct seeds) in ``rows``: the ``n_images`` and ``n_seeds`` a
    finding reports."""
    return int(rows["image"].nunique()), int(rows["seed"].nunique())


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` for a ratio of non-negative levels (MSEs, variances):
    ∞ where the denominator is 0 (or less) and the numerator is not, NaN where both are."""
    if denominator > 0:
        return numerator / denominator
    return np.inf if numerator > 0 else np.nan


def resampled_text(rows: pd.DataFrame) -> str:
    """What the hierarchical bootstrap can resample in ``rows``: images (and the seeds
    within them), seeds only (one image), or nothing (one image, one seed)."""
    seeds_per_image = rows.groupby("image")["seed"].nunique()
    several_seeds = bool((seeds_per_image > 1).any())
    if len(seeds_per_image) > 1:
        return RESAMPLED_IMAGES_SEEDS if several_seeds else RESAMPLED_IMAGES
    return RESAMPLED_SEEDS if several_seeds else RESAMPLED_NOTHING


def estimate(
    rows: pd.DataFrame,
    columns: Sequence[str],
    statistic: Callable[[pd.DataFrame], Sequence[float] | np.ndarray],
    n_resamples: int,
    seed: int,
) -> Estimate:
    """``statistic`` (returning k numbers) on ``rows`` and its bootstrap interval over
    ``n_resamples`` hierarchical resamples (images, then seeds within each image). The
    statistic sees ``image`` (as integer codes), ``seed`` and ``columns`` only."""
    n_images, n_seeds = sample_sizes(rows)
    resampled = resampled_text(rows)
    wanted = list(dict.fromkeys(["image", "seed", *columns]))
    frame = rows[wanted].reset_index(drop=True)
    frame["image"] = pd.factorize(frame["image"], sort=True)[0]

    def as_array(sample: pd.DataFrame) -> np.ndarray:
        return np.atleast_1d(np.asarray(statistic(sample), dtype=float))

    value = as_array(frame)
    samples = bootstrap(frame, as_array, n_resamples=n_resamples, seed=seed)
    low, high = percentile_interval(samples.reshape(n_resamples, -1))
    return Estimate(
        value=value,
        low=np.atleast_1d(np.asarray(low, dtype=float)),
        high=np.atleast_1d(np.asarray(high, dtype=float)),
        n_images=n_images,
        n_seeds=n_seeds,
        resampled=resampled,
    )


def finding(
    est: Estimate,
    *,
    statistic: str,
    unit: str,
    reference: float,
    direction: Direction,
    margin: float,
    evidence: str,
    note: str = "",
    index: int = 0,
) -> Finding:
    """The :class:`Finding` for element ``index`` of ``est``, judged by
    :func:`maskleak.claims.verdicts.verdict`. ``evidence`` is the sentence without its
    interval clause and final period; this adds both (then ``note``, if any, after a
    semicolon), and says so where the interval covers seeds only, where there was
    nothing to resample (verdict inconclusive), and where a claim holds with an interval
    inside the practical margin (a real but small effect)."""
    value, low, high = (float(a[index]) for a in (est.value, est.low, est.high))
    judged = verdict(low, high, reference, direction, margin)
    if judged == HOLDS and inside_margin(low, high, reference, margin):
        # Significant but practically small: the verdict stands, the reader is told.
        small = "the effect is real but small: its interval lies within the practical margin"
        note = f"{note}; {small}" if note else small
    if est.resampled == RESAMPLED_NOTHING:
        judged = INCONCLUSIVE
        clause = "no interval: one image and one seed, nothing to resample"
    elif est.resampled == RESAMPLED_SEEDS:
        clause = f"{interval_text(low, high)}, over seeds only: 1 image"
    else:
        clause = f"{interval_text(low, high)} over {est.n_images} images"
    return Finding(
        statistic=statistic,
        value=value,
        ci_low=low,
        ci_high=high,
        unit=unit,
        reference=float(reference),
        margin=float(margin),
        direction=direction,
        verdict=judged,
        evidence=f"{evidence} ({clause}){'; ' + note if note else ''}.",
        n_images=est.n_images,
        n_seeds=est.n_seeds,
        resampled=est.resampled,
    )


def finding_above_zero(
    est: Estimate, *, statistic: str, unit: str, margin: float, evidence: str, note: str = ""
) -> Finding:
    """:func:`finding` for a claim that the statistic (element 0 of ``est``, in ``unit``)
    exceeds 0, with practical margin ``margin`` (0: none)."""
    return finding(
        est,
        statistic=statistic,
        unit=unit,
        reference=0.0,
        direction="greater",
        margin=margin,
        evidence=evidence,
        note=note,
    )


def ratio_finding(est: Estimate, *, statistic: str, direction: Direction, evidence: str) -> Finding:
    """:func:`finding` for a claim that a ratio (element 0 of ``est``) lies above
    (``direction = "greater"``) or below (``"less"``) 1, practical margin
    :data:`PRACTICAL_REL` (a ratio within 0.9-1.1 counts as no difference)."""
    return finding(
        est,
        statistic=statistic,
        unit="ratio",
        reference=1.0,
        direction=direction,
        margin=PRACTICAL_REL,
        evidence=evidence,
    )


def _groups(keys: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct combinations of ``keys`` (each (n,), numeric), as one array per key,
    sorted, and each row's group number (n,)."""
    stacked = np.stack([np.asarray(k, dtype=float) for k in keys], axis=1)
    distinct, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return [distinct[:, j] for j in range(distinct.shape[1])], inverse.reshape(-1)


def means_by(keys: Sequence[np.ndarray], values: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Mean of ``values`` (n,) per distinct combination of ``keys`` (each (n,)), NaN
    values left out: (the keys of each group, one array per key; the group means)."""
    values = np.asarray(values, dtype=float)
    finite = ~np.isnan(values)
    if not finite.any():
        return [np.zeros(0) for _ in keys], np.zeros(0)
    distinct, inverse = _groups([np.asarray(k)[finite] for k in keys])
    sums = np.bincount(inverse, weights=values[finite], minlength=len(distinct[0]))
    counts = np.bincount(inverse, minlength=len(distinct[0]))
    return distinct, sums / counts


def variances_by(
    keys: Sequence[np.ndarray], values: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """Sample variance (ddof 1) of ``values`` per distinct combination of ``keys``, as
    :func:`means_by` (NaN for a group of one value)."""
    values = np.asarray(values, dtype=float)
    distinct, inverse = _groups(keys)
    n_groups = len(distinct[0])
    counts = np.bincount(inverse, minlength=n_groups)
    mean = np.bincount(inverse, weights=values, minlength=n_groups) / counts
    squares = np.bincount(inverse, weights=(values - mean[inverse]) ** 2, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        return distinct, np.where(counts > 1, squares / (counts - 1), np.nan)


def cell_means(frame: pd.DataFrame, keys: Sequence[str], column: str):
    """Seed means: the mean of ``column`` per image and ``keys`` (NaN left out), as
    :func:`means_by` returns it, the image codes first."""
    arrays = [frame["image"].to_numpy()] + [frame[k].to_numpy() for k in keys]
    return means_by(arrays, frame[column].to_numpy(float))


def image_mean(frame: pd.DataFrame, column: str) -> float:
    """Mean over images of each image's mean ``column`` (NaN left out); NaN if none."""
    _, means = cell_means(frame, [], column)
    return float(means.mean()) if means.size else np.nan


def lines_by(
    groups: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """A least-squares line through the (x, y) points of each distinct combination of
    ``groups``: (the groups' keys; slope, y unit per x unit, NaN with fewer than 2
    distinct x; x_range, x_max − x_min; level, the mean of its y)."""
    distinct, inverse = _groups(groups)
    n_groups = len(distinct[0])
    counts = np.bincount(inverse, minlength=n_groups)
    x_mean = np.bincount(inverse, weights=x, minlength=n_groups) / counts
    y_mean = np.bincount(inverse, weights=y, minlength=n_groups) / counts
    dx, dy = x - x_mean[inverse], y - y_mean[inverse]
    sxy = np.bincount(inverse, weights=dx * dy, minlength=n_groups)
    sxx = np.bincount(inverse, weights=dx * dx, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(sxx > 0, sxy / sxx, np.nan)
    x_max = np.full(n_groups, -np.inf)
    x_min = np.full(n_groups, np.inf)
    np.maximum.at(x_max, inverse, x)
    np.minimum.at(x_min, inverse, x)
    return distinct, slope, x_max - x_min, y_mean


def by_image(images: np.ndarray, values: np.ndarray, n_images: int) -> np.ndarray:
    """``values`` placed at their image codes in an array of ``n_images`` (NaN where an
    image has none), so two per-image quantities can be subtracted image by image."""
    placed = np.full(n_images, np.nan)
    placed[images.astype(np.int64)] = values
    return placed
