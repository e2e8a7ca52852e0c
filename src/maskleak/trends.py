"""Polynomial trend lines through the metrics table, as the thesis drew them.

* ``strength_sweep`` (thesis Figs 4.2/4.3): per model and metric, a 2nd-degree fit of MSE
  against strength, once for the mean over images (scope ``mean``) and once per image
  (scope ``image``).
* ``mask_size_sweep`` (thesis Fig 4.10): per model, image, strength and metric, a straight
  line of MSE against the disc's share of the image (``area_frac``).

Seeds are always averaged first (per image and x); scope ``mean`` then averages those
per-image values over images, so every image weighs the same even if some have more seeds.
NaN metric values (e.g. a mask that covers the whole image) are left out of the fits.

Every fit the sweeps call for gets a row. Where there are too few distinct x for the
degree (a sweep of 1 or 2 strengths, or of 1 radius), the row says so in ``reason`` and its
coefficients, R² and equation are absent (NaN, empty), so figures can draw the points and
name what is missing instead of failing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from maskleak.errors import InputError
from maskleak.provenance import write_parquet

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
    "r2",
    "n_points",
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
    "r2": "float64",
    "n_points": "int64",
    "x_min": "float64",
    "x_max": "float64",
    "equation": "str",
    "reason": "str",
}

STRENGTH_METRICS: tuple[str, ...] = ("mse_outside", "mse_outside_thesis")
MASK_SIZE_METRICS: tuple[str, ...] = ("mse_outside", "mse_outside_thesis", "mse_whitedisc_thesis")

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


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"metrics table lacks column(s) {missing}")


def per_image_mean(rows: pd.DataFrame, metric: str, x: str) -> pd.DataFrame:
    """Mean over seeds (and any other repeats) of ``metric`` per image and ``x``: the
    points every fit (and every figure that shows a fit's points) is built from."""
    valid = rows[rows[metric].notna() & rows[x].notna()]
    return valid.groupby(["image", x], sort=True)[metric].mean().reset_index()


def _per_image_points(
    rows: pd.DataFrame, metric: str, x: str
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(image, x, seed-mean y) for every image in ``rows``, also those without one finite
    value (their arrays are empty), so that each image gets a row."""
    per_image = per_image_mean(rows, metric, x)
    points = []
    for image in sorted(str(i) for i in pd.unique(rows["image"])):
        mine = per_image.loc[per_image["image"].astype(str) == image]
        points.append((image, mine[x].to_numpy(float), mine[metric].to_numpy(float)))
    return points


def _strength_fits(rows: pd.DataFrame) -> list[dict[str, Any]]:
    if rows.empty:
        return []
    _require(rows, ["model", "image", "strength", *STRENGTH_METRICS])
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
            mean = per_image_mean(by_model, metric, "strength").groupby("strength")[metric].mean()
            fit = _fit(mean.index.to_numpy(float), mean.to_numpy(float), 2, "strength", metric)
            fits.append({**base, "scope": "mean", "image": "", **fit})
            for image, xs, ys in _per_image_points(by_model, metric, "strength"):
                fit = _fit(xs, ys, 2, "strength", metric)
                fits.append({**base, "scope": "image", "image": image, **fit})
    return fits


def _mask_size_fits(rows: pd.DataFrame) -> list[dict[str, Any]]:
    if rows.empty:
        return []
    _require(rows, ["model", "image", "strength", "area_frac", *MASK_SIZE_METRICS])
    fits: list[dict[str, Any]] = []
    for (model, strength), group in rows.groupby(["model", "strength"], sort=True):
        for metric in MASK_SIZE_METRICS:
            for image, xs, ys in _per_image_points(group, metric, "area_frac"):
                fits.append(
                    {
                        "experiment": "mask_size_sweep",
                        "model": str(model),
                        "scope": "image",
                        "image": image,
                        "strength": float(strength),
                        "metric": metric,
                        "x": "area_frac",
                        **_fit(xs, ys, 1, "area_frac", metric),
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
        _require(metrics, ["experiment"])
        fits += _strength_fits(metrics[metrics["experiment"] == "strength_sweep"])
        fits += _mask_size_fits(metrics[metrics["experiment"] == "mask_size_sweep"])
    frame = pd.DataFrame(fits, columns=list(COLUMNS)).astype(DTYPES)
    frame = frame.sort_values(_SORT_KEYS, kind="mergesort", na_position="first")
    return frame.reset_index(drop=True)


def write_trends(metrics_path: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> None:
    """Read the metrics Parquet, fit the trends, write them atomically with provenance."""
    name = os.fspath(metrics_path)
    try:
        metrics = pd.read_parquet(name)
    except FileNotFoundError:
        raise InputError(f"metrics table {name} not found; rerun the metrics rule") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"metrics table {name} is not readable Parquet: {exc}") from exc
    try:
        trends = fit_trends(metrics)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc
    write_parquet(trends, Path(out_path), {"stage": "trends", "metrics": name})
