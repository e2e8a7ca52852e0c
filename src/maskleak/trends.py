"""Polynomial trend lines through the metrics table, as the thesis drew them.

* ``strength_sweep`` (thesis Figs 4.2/4.3): per model and metric, a 2nd-degree fit of MSE
  against strength, once for the mean over images (scope ``mean``) and once per image
  (scope ``image``).
* ``mask_size_sweep`` (thesis Fig 4.10): per model, image, strength and metric, a straight
  line of MSE against the disc's share of the image: the counted share ``area_frac`` for
  the true metrics, and for the study's white-disc number (``mse_whitedisc_thesis``) the
  study's own axis, the analytic share ``area_frac_thesis`` = π r² / (w·h).

Seeds are always averaged first (per image and x); scope ``mean`` then averages those
per-image values over images, so every image weighs the same even if some have more seeds.
NaN metric values (e.g. a mask that covers the whole image) are left out of the fits.

Every fit the sweeps call for gets a row. Where there are too few distinct x for the
degree (a sweep of 1 or 2 strengths, or of 1 radius), the row says so in ``reason`` and its
coefficients, R² and equation are absent (NaN, empty), so figures can draw the points and
name what is missing instead of failing.

Every coefficient has a 95 % bootstrap percentile interval (``c2_lo`` … ``c0_hi``):
:mod:`maskleak.bootstrap` resamples the images and, within each drawn image, its seeds
(scope ``mean``), or the seeds alone (scope ``image``), and each resample is fitted exactly
as the point fit (seeds averaged per image and x, images averaged at each x, NaN left out,
``np.polyfit``). The resamples are drawn from a fixed seed (:data:`BOOTSTRAP_SEED`), so a
table always gets the same intervals. An interval needs something to resample: a scope
``image`` row with one seed, or a scope ``mean`` row with one image and one seed, has NaN
bounds and ``n_resamples`` 0 (with one image and several seeds, scope ``mean`` resamples
the seeds only). Resamples with too few distinct x for the degree are left out of the
interval.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from maskleak import bootstrap
from maskleak.as_shipped import experiment_rows
from maskleak.errors import InputError
from maskleak.provenance import read_table, require_columns, write_parquet

#: Column order of the trends table (mirrors workflow/schemas/trends.columns.yaml).
COLUMNS: tuple[str, ...] = (
    "experiment",
    "model",
    "scope",
    "image",
    "strength",
    "metric",
    "x",
    "degree",
    "c2",
    "c1",
    "c0",
    "c2_lo",
    "c2_hi",
    "c1_lo",
    "c1_hi",
    "c0_lo",
    "c0_hi",
    "r2",
    "n_points",
    "n_images",
    "n_seeds",
    "n_resamples",
    "x_min",
    "x_max",
    "equation",
    "reason",
)

DTYPES: dict[str, str] = {
    "experiment": "str",
    "model": "str",
    "scope": "str",
    "image": "str",
    "strength": "float64",
    "metric": "str",
    "x": "str",
    "degree": "int64",
    "c2": "float64",
    "c1": "float64",
    "c0": "float64",
    "c2_lo": "float64",
    "c2_hi": "float64",
    "c1_lo": "float64",
    "c1_hi": "float64",
    "c0_lo": "float64",
    "c0_hi": "float64",
    "r2": "float64",
    "n_points": "int64",
    "n_images": "int64",
    "n_seeds": "int64",
    "n_resamples": "int64",
    "x_min": "float64",
    "x_max": "float64",
    "equation": "str",
    "reason": "str",
}

STRENGTH_METRICS: tuple[str, ...] = ("mse_outside", "mse_outside_thesis")
MASK_SIZE_METRICS: tuple[str, ...] = ("mse_outside", "mse_outside_thesis", "mse_whitedisc_thesis")
#: The x of each mask-size metric: the study plotted its white-disc number against the
#: analytic disc share π r² / (w·h); the true metrics use the counted share.
MASK_SIZE_X: dict[str, str] = {
    "mse_outside": "area_frac",
    "mse_outside_thesis": "area_frac",
    "mse_whitedisc_thesis": "area_frac_thesis",
}
#: The study's published Fig 4.3 trend y = 9.694x² − 4.105x + 40, as (c2, c1, c0): its
#: wrapped uint8 MSE (our ``mse_outside_thesis``), mean over 20 images, against strength,
#: for SD 1.5 at 640x416 px and 200 steps (diffusers 0.11.1's Legacy inpainting pipeline).
#: On other models and settings a reference, not an expectation.
STUDY_PUBLISHED_FIT: tuple[float, float, float] = (9.694, -4.105, 40.0)
#: Seed of the bootstrap's generator: the same metrics table gives the same intervals.
BOOTSTRAP_SEED = 0
#: Coefficient columns, highest power first, and their interval columns.
COEFFICIENTS: tuple[str, ...] = ("c2", "c1", "c0")
#: Largest (resamples x images x seeds x x-values) block evaluated at once (~64 MB).
_BLOCK_ELEMENTS = 8_000_000

_SORT_KEYS = ["experiment", "model", "scope", "image", "strength", "metric"]
_MINUS = "\u2212"  # typographic minus, as in the thesis' "9.694x² − 4.105x + 40"


def _term(value: float, power: int, first: bool) -> str:
    text = f"{abs(value):.3f}"
    # A value that rounds to 0.000 is shown unsigned, never as "− 0.000".
    negative = value < 0 and float(text) != 0.0
    suffix = {0: "", 1: "x", 2: "x²"}[power]
    if first:
        return f"{_MINUS if negative else ''}{text}{suffix}"
    return f" {_MINUS if negative else '+'} {text}{suffix}"


def equation(coefs_high_first: Sequence[float]) -> str:
    """``'y = 9.694x² − 4.105x + 40.000'`` for coefficients given highest power first."""
    degree = len(coefs_high_first) - 1
    parts = [_term(float(c), degree - i, first=(i == 0)) for i, c in enumerate(coefs_high_first)]
    return "y = " + "".join(parts)


def _fit(x: np.ndarray, y: np.ndarray, degree: int, x_name: str, metric: str) -> dict[str, Any]:
    """Least-squares polynomial of ``degree`` through (x, y), as trends-table fields. With
    fewer than ``degree + 1`` distinct x there is no fit: coefficients, R² and x range are
    NaN, the equation is empty, and ``reason`` says why."""
    distinct = int(np.unique(x).size)
    if distinct < degree + 1:
        values = "value" if distinct == 1 else "values"
        return {
            "degree": degree,
            "c2": math.nan,
            "c1": math.nan,
            "c0": math.nan,
            "r2": math.nan,
            "n_points": distinct,
            "x_min": float(x.min()) if x.size else math.nan,
            "x_max": float(x.max()) if x.size else math.nan,
            "equation": "",
            "reason": (
                f"only {distinct} distinct {x_name} {values} with a finite {metric};"
                f" a degree-{degree} fit needs {degree + 1}"
            ),
        }
    coefs = np.polyfit(x, y, degree)  # highest power first
    residual = y - np.polyval(coefs, x)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = math.nan if ss_tot == 0 else 1.0 - float(np.sum(residual**2)) / ss_tot
    c2 = float(coefs[0]) if degree == 2 else math.nan
    return {
        "degree": degree,
        "c2": c2,
        "c1": float(coefs[-2]),
        "c0": float(coefs[-1]),
        "r2": r2,
        "n_points": int(x.size),
        "x_min": float(x.min()),
        "x_max": float(x.max()),
        "equation": equation([float(c) for c in coefs]),
        "reason": "",
    }


def _valid(rows: pd.DataFrame, metric: str, x: str) -> pd.DataFrame:
    """The rows a fit uses: finite ``metric`` and ``x``."""
    keep = np.isfinite(rows[metric].to_numpy(float)) & np.isfinite(rows[x].to_numpy(float))
    return rows.loc[keep]


def per_image_mean(rows: pd.DataFrame, metric: str, x: str) -> pd.DataFrame:
    """Mean over seeds (and any other repeats) of ``metric`` per image and ``x``: the
    points every fit (and every figure that shows a fit's points) is built from."""
    valid = _valid(rows, metric, x)
    return valid.groupby(["image", x], sort=True)[metric].mean().reset_index()


def _per_image_rows(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(image, its rows) for every image in ``rows``, also those without one finite value
    (their fits have no points), so that each image gets a row."""
    names = rows["image"].astype(str)
    return [(image, rows.loc[names == image]) for image in sorted(pd.unique(names))]


def _polyfit_rows(xs: np.ndarray, ys: np.ndarray, degree: int) -> np.ndarray:
    """Coefficients (c2, c1, c0) of a degree-``degree`` ``np.polyfit`` through (xs, ys[i])
    for every row i of ``ys`` (shape (n, X)), NaN values left out: shape (n, 3), c2 NaN
    for a line, all NaN where a row has fewer than ``degree + 1`` finite points (xs are
    distinct). Rows with the same finite points are fitted in one call."""
    out = np.full((ys.shape[0], 3), np.nan)
    if ys.size == 0:
        return out
    finite = np.isfinite(ys)
    patterns, inverse = np.unique(finite, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for p, pattern in enumerate(patterns):
        if int(pattern.sum()) < degree + 1:
            continue
        members = np.flatnonzero(inverse == p)
        coefs = np.polyfit(xs[pattern], ys[np.ix_(members, pattern)].T, degree)
        out[members, 2 - degree :] = coefs.T
    return out


def coefficient_samples(
    rows: pd.DataFrame,
    metric: str,
    x: str,
    degree: int,
    n_resamples: int = bootstrap.N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> np.ndarray:
    """Bootstrap samples of the fit's coefficients: shape (n_resamples, 3), columns c2,
    c1, c0 (c2 NaN for a line; a row NaN where its resample has too few distinct x).

    ``rows``: the metrics rows of one fit (one model; for a per-image fit, one image).
    Each resample is :func:`maskleak.bootstrap.draw`'s (images, then seeds within each
    image; seeds only for a single image) and is fitted as the point fit is made: mean
    over the drawn seeds per image and x, mean over the drawn images at each x (an image
    drawn twice counts twice), NaN values left out, then ``np.polyfit``. Vectorised: the
    per-(image, seed, x) sums are built once and indexed by the draws."""
    valid = _valid(rows, metric, x)
    out = np.full((n_resamples, 3), np.nan)
    draws = bootstrap.draw(valid, n_resamples, seed, group="image", within="seed")
    if valid.empty:
        return out
    xs, xcode = np.unique(valid[x].to_numpy(float), return_inverse=True)
    y = valid[metric].to_numpy(float)
    n_groups, n_units = draws.unit_draws.shape[1:]
    sums = np.zeros((n_groups, n_units, xs.size))
    counts = np.zeros((n_groups, n_units, xs.size))
    for g, unit_rows in enumerate(draws.rows):
        for u, positions in enumerate(unit_rows):
            sums[g, u] = np.bincount(xcode[positions], weights=y[positions], minlength=xs.size)
            counts[g, u] = np.bincount(xcode[positions], minlength=xs.size)
    block = max(1, _BLOCK_ELEMENTS // (n_groups * n_units * xs.size))
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        groups = draws.group_draws[start:stop, :, None]  # (b, G, 1)
        units = draws.unit_draws[start:stop]  # (b, G, U)
        weight = draws.unit_valid[start:stop, :, :, None]  # unused draw slots count 0
        drawn_sums = (sums[groups, units] * weight).sum(axis=2)  # (b, G, X)
        drawn_counts = (counts[groups, units] * weight).sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_image = drawn_sums / drawn_counts  # NaN where an image lacks that x
            n_images = np.isfinite(per_image).sum(axis=1)  # (b, X)
            mean = np.nansum(per_image, axis=1) / n_images  # NaN where no image has x
        out[start:stop] = _polyfit_rows(xs, mean, degree)
    return out


def _interval(
    rows: pd.DataFrame, metric: str, x: str, degree: int, scope: str, fit: dict[str, Any]
) -> dict[str, Any]:
    """The bootstrap interval fields of one fit (see the module docstring)."""
    valid = _valid(rows, metric, x)
    n_images = int(valid["image"].nunique())
    n_seeds = int(valid["seed"].nunique())
    fields: dict[str, Any] = {f"{c}_{b}": math.nan for c in COEFFICIENTS for b in ("lo", "hi")}
    fields |= {"n_images": n_images, "n_seeds": n_seeds, "n_resamples": 0}
    nothing_to_resample = n_seeds < 2 and (scope == "image" or n_images < 2)
    if fit["reason"] or nothing_to_resample:
        return fields
    samples = coefficient_samples(valid, metric, x, degree)
    low, high = bootstrap.percentile_interval(samples, bootstrap.LEVEL)
    for i, name in enumerate(COEFFICIENTS):
        fields[f"{name}_lo"] = float(np.asarray(low)[i])
        fields[f"{name}_hi"] = float(np.asarray(high)[i])
    fields["n_resamples"] = samples.shape[0]
    return fields


def _fit_with_interval(
    rows: pd.DataFrame, metric: str, x: str, degree: int, scope: str
) -> dict[str, Any]:
    """Point fit and bootstrap interval of ``metric`` against ``x`` over ``rows`` (one
    image for scope ``image``; all images, averaged per x, for scope ``mean``)."""
    points = per_image_mean(rows, metric, x)
    if scope == "mean":
        points = points.groupby(x, sort=True)[metric].mean().reset_index()
    fit = _fit(points[x].to_numpy(float), points[metric].to_numpy(float), degree, x, metric)
    return fit | _interval(rows, metric, x, degree, scope, fit)


def _strength_fits(rows: pd.DataFrame) -> list[dict[str, Any]]:
    if rows.empty:
        return []
    require_columns(rows, ["model", "image", "seed", "strength", *STRENGTH_METRICS], "metrics")
    fits: list[dict[str, Any]] = []
    for model, by_model in rows.groupby("model", sort=True):
        for metric in STRENGTH_METRICS:
            base = {
                "experiment": "strength_sweep",
                "model": str(model),
                "strength": math.nan,
                "metric": metric,
                "x": "strength",
            }
            fit = _fit_with_interval(by_model, metric, "strength", 2, "mean")
            fits.append({**base, "scope": "mean", "image": "", **fit})
            for image, mine in _per_image_rows(by_model):
                fit = _fit_with_interval(mine, metric, "strength", 2, "image")
                fits.append({**base, "scope": "image", "image": image, **fit})
    return fits


def _mask_size_fits(rows: pd.DataFrame) -> list[dict[str, Any]]:
    if rows.empty:
        return []
    xs = sorted(set(MASK_SIZE_X.values()))
    needed = ["model", "image", "seed", "strength", *xs, *MASK_SIZE_METRICS]
    require_columns(rows, needed, "metrics")
    fits: list[dict[str, Any]] = []
    for (model, strength), group in rows.groupby(["model", "strength"], sort=True):
        for metric in MASK_SIZE_METRICS:
            x = MASK_SIZE_X[metric]
            for image, mine in _per_image_rows(group):
                fits.append(
                    {
                        "experiment": "mask_size_sweep",
                        "model": str(model),
                        "scope": "image",
                        "image": image,
                        "strength": float(strength),
                        "metric": metric,
                        "x": x,
                        **_fit_with_interval(mine, metric, x, 1, "image"),
                    }
                )
    return fits


def fit_trends(metrics: pd.DataFrame) -> pd.DataFrame:
    """Trend-line fits through a metrics table (see the module docstring), one row per
    fit with columns :data:`COLUMNS`. A fit with too few distinct x (3 for a quadratic,
    2 for a line) is a row without coefficients and with its ``reason``; experiments other
    than the two sweeps are ignored."""
    fits: list[dict[str, Any]] = []
    if len(metrics):
        require_columns(metrics, ["experiment"], "metrics")
        fits += _strength_fits(metrics[experiment_rows(metrics, "strength_sweep")])
        fits += _mask_size_fits(metrics[experiment_rows(metrics, "mask_size_sweep")])
    frame = pd.DataFrame(fits, columns=list(COLUMNS)).astype(DTYPES)
    frame = frame.sort_values(_SORT_KEYS, kind="mergesort", na_position="first")
    return frame.reset_index(drop=True)


def write_trends(metrics_path: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> None:
    """Read the metrics Parquet, fit the trends, write them atomically with provenance."""
    name = os.fspath(metrics_path)
    metrics = read_table(name, "metrics")
    try:
        trends = fit_trends(metrics)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc
    write_parquet(trends, Path(out_path), {"stage": "trends", "metrics": name})
