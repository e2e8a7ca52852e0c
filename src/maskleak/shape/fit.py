"""Does the inpainting's leak follow the mask's area or its edge? Least-squares lines of
``excess_over_floor`` on three shape predictors, per mask family and pooled, with
hierarchical bootstrap intervals, and a verdict per model, pipeline and strength (issue 11).

Why this response: ``mse_outside`` is dominated by the image's own VAE round-trip error
(the floor, ``mse_outside_vae``), which differs severalfold between images (4x on the
test run) and is there whatever the mask; pooled over images it swamps the shape's
effect (R² ~0 for every predictor). ``excess_over_floor`` = ``mse_outside`` −
``mse_outside_vae`` (a metrics column, in (8-bit level)²) is what the inpainting adds to
the kept pixels' error beyond the image's own encode/decode, so the fit regresses that.
Rows without a round trip (NaN excess) are left out.

Why these predictors: ``excess_over_floor`` is a MEAN over the kept pixels. If the leak
lives in the kept pixels whose latent cell the pipeline repaints, then
``excess_over_floor ≈ intercept + c · n_outside_footprint / n_outside`` (intercept ~0):
the excess follows the share of kept pixels in the latent footprint, which grows with the
mask's edge, not its area (a disc has the least edge for its area, so circles understate
it). Per row, all
dimensionless:

* ``area_frac``: the inpainted share of the image (metrics column);
* ``edge_per_kept_px`` = ``perimeter_px / n_outside``: crack length of the mask's
  boundary (4-neighbour inside/outside pixel pairs) per kept pixel;
* ``footprint_share`` = ``n_outside_footprint / n_outside``: share of the kept pixels
  whose latent cell is repainted (1 for a 9-channel UNet, which repaints every cell).

Points: every fit is over one point per image and mask (``mask_id``), its seeds
averaged (x does not depend on the seed), so seed noise, which no predictor can explain,
does not dilute R², and every image weighs the same (each runs the same masks). Lines:
ordinary least squares y = intercept + slope · x per family (``mask_kind``) and pooled
over families (``all``); R² = 1 − SS_res / SS_tot of that line (for one predictor, the
squared correlation). A family whose points have fewer than 2 distinct x values has no
line (NaN, with a ``reason``).

Intervals: percentile intervals (level :data:`maskleak.bootstrap.LEVEL`) of
:func:`maskleak.claims.estimate.estimate`'s hierarchical bootstrap (images drawn with
replacement, then seeds within each drawn image; an image drawn twice gives its points
twice); every statistic of one model, pipeline and strength comes from the same
resamples, so the R² differences are paired.

Verdict (per model, pipeline and strength): ``r2_minus_area`` = R²(edge predictor) −
R²(area_frac) on the pooled points, for footprint_share and edge_per_kept_px. ``edge``
when either difference's interval lies above 0 (an edge predictor explains the excess
better than area); ``area`` when every defined difference's interval lies below 0;
otherwise (an interval containing 0, nothing defined, nothing to resample)
``undecided``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from maskleak import mask_specs
from maskleak.analysis_table import write_analysis
from maskleak.as_shipped import experiment_rows
from maskleak.bootstrap import LEVEL, N_RESAMPLES
from maskleak.claims.estimate import RESAMPLED_NOTHING, Estimate, estimate, means_by
from maskleak.errors import InputError
from maskleak.provenance import require_columns

#: The experiment whose rows are fitted.
EXPERIMENT = "mask_shape_sweep"

#: The response: per-element outside-mask MSE minus the image's VAE floor over the same
#: pixels (mse_outside − mse_outside_vae), (8-bit level)²; NaN without a round trip.
RESPONSE = "excess_over_floor"
AREA, EDGE, FOOTPRINT = "area_frac", "edge_per_kept_px", "footprint_share"
#: The predictors, in table order (area, the reference, first).
PREDICTORS: tuple[str, ...] = (AREA, EDGE, FOOTPRINT)
#: The edge predictors, each compared with area; the first is preferred on a tie.
EDGE_PREDICTORS: tuple[str, ...] = (FOOTPRINT, EDGE)
#: How the finding sentences name each predictor.
PREDICTOR_NAMES: dict[str, str] = {
    AREA: "area",
    EDGE: "edge length per kept pixel",
    FOOTPRINT: "the latent footprint",
}

#: The family value of the fit pooled over all mask families.
ALL = "all"
#: Mask families in table and legend order; others follow, sorted by name.
FAMILY_ORDER: tuple[str, ...] = mask_specs.KINDS

VERDICT_EDGE, VERDICT_AREA, VERDICT_UNDECIDED = "edge", "area", "undecided"

#: Metrics columns the fit reads.
REQUIRED: tuple[str, ...] = (
    "experiment",
    "model",
    "pipeline",
    "image",
    "seed",
    "strength",
    "mask_kind",
    "mask_id",
    "area_frac",
    "perimeter_px",
    "n_outside",
    "n_outside_footprint",
    RESPONSE,
)

#: A family's x values count as one when their spread is below this share of their size
#: (floating-point noise in a ratio that is constant by construction).
X_SPREAD_REL = 1e-9

#: Column -> dtype of the fit table, in column order (mirrors
#: workflow/schemas/mask_shape.columns.yaml).
DTYPES: dict[str, str] = {
    "model": "str",
    "pipeline": "str",
    "strength": "float64",
    "predictor": "str",
    "family": "str",
    "n_rows": "int64",
    "n_points": "int64",
    "n_masks": "int64",
    "n_images": "int64",
    "n_seeds": "int64",
    "x_min": "float64",
    "x_max": "float64",
    "intercept": "float64",
    "intercept_low": "float64",
    "intercept_high": "float64",
    "slope": "float64",
    "slope_low": "float64",
    "slope_high": "float64",
    "r2": "float64",
    "r2_low": "float64",
    "r2_high": "float64",
    "r2_minus_area": "float64",
    "r2_minus_area_low": "float64",
    "r2_minus_area_high": "float64",
    "verdict": "str",
    "finding": "str",
    "reason": "str",
    "resampled": "str",
}
COLUMNS: tuple[str, ...] = tuple(DTYPES)


def with_predictors(rows: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``rows`` with ``edge_per_kept_px`` and ``footprint_share`` added (NaN
    where ``n_outside`` is 0: no kept pixel, no mean)."""
    out = rows.copy()
    kept = out["n_outside"].to_numpy(dtype=np.float64)
    kept = np.where(kept > 0, kept, np.nan)
    out[EDGE] = out["perimeter_px"].to_numpy(dtype=np.float64) / kept
    out[FOOTPRINT] = out["n_outside_footprint"].to_numpy(dtype=np.float64) / kept
    return out


def shape_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The rows a fit uses: the mask-shape sweep's (pipeline as it ships, pass 1), with
    the predictors added and rows lacking the response (no VAE round trip) or a
    predictor left out."""
    require_columns(metrics, REQUIRED, "metrics")
    rows = with_predictors(metrics.loc[experiment_rows(metrics, EXPERIMENT)])
    finite = np.isfinite(rows[[RESPONSE, *PREDICTORS]].to_numpy(dtype=np.float64)).all(axis=1)
    return rows.loc[finite].reset_index(drop=True)


def families(kinds: Sequence[str] | pd.Series) -> list[str]:
    """The distinct mask families of ``kinds`` in :data:`FAMILY_ORDER`, others after it
    by name."""
    present = {str(k) for k in pd.unique(pd.Series(kinds))}
    known = [f for f in FAMILY_ORDER if f in present]
    return known + sorted(present - set(FAMILY_ORDER))


def points(rows: pd.DataFrame) -> pd.DataFrame:
    """One point per (image, mask_id) of ``rows`` (one model, pipeline and strength; from
    :func:`shape_rows`): the seed means of the response, the predictors and, where the
    rows have it, ``mse_outside_vae`` (the floor the response is measured from, drawn
    nowhere but recorded by the figure); with ``mask_kind`` and ``n_seeds``."""
    values = [RESPONSE, *PREDICTORS]
    if "mse_outside_vae" in rows.columns:
        values.append("mse_outside_vae")
    grouped = rows.groupby(["image", "mask_id"], sort=True)
    out = grouped[values].mean()
    out["mask_kind"] = grouped["mask_kind"].first()
    out["n_seeds"] = grouped["seed"].nunique()
    return out.reset_index()


def lines(
    x: np.ndarray, y: np.ndarray, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line y = intercept + slope · x through the points of each group
    (``codes`` (n,) in 0..n_groups-1): (intercept, slope, r2), each (n_groups,). NaN for
    a group with fewer than 2 distinct x values; r2 NaN where y does not vary."""
    counts = np.bincount(codes, minlength=n_groups).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_mean = np.bincount(codes, weights=x, minlength=n_groups) / counts
        y_mean = np.bincount(codes, weights=y, minlength=n_groups) / counts
    dx, dy = x - x_mean[codes], y - y_mean[codes]
    sxx = np.bincount(codes, weights=dx * dx, minlength=n_groups)
    sxy = np.bincount(codes, weights=dx * dy, minlength=n_groups)
    syy = np.bincount(codes, weights=dy * dy, minlength=n_groups)
    x_max = np.full(n_groups, -np.inf)
    x_min = np.full(n_groups, np.inf)
    np.maximum.at(x_max, codes, x)
    np.minimum.at(x_min, codes, x)
    scale = np.maximum(np.abs(x_max), np.abs(x_min))
    # A ratio that is constant by construction can differ in its last bits: one x.
    varies = (counts >= 2) & (x_max - x_min > X_SPREAD_REL * scale) & (sxx > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(varies, sxy / sxx, np.nan)
        intercept = np.where(varies, y_mean - slope * x_mean, np.nan)
        r2 = np.where(varies & (syy > 0), sxy * sxy / (sxx * syy), np.nan)
    return intercept, slope, np.minimum(r2, 1.0)


class _Layout:
    """Where each statistic sits in the bootstrap's value vector: per predictor,
    intercept, slope and r2 of each family and then of all (F + 1 each); then the R²
    differences of :data:`EDGE_PREDICTORS` against area."""

    def __init__(self, n_families: int) -> None:
        self.n_groups = n_families + 1  # the families, then all

    def at(self, predictor: str, quantity: int, group: int) -> int:
        """Index of ``quantity`` (0 intercept, 1 slope, 2 r2) of ``group``."""
        return (PREDICTORS.index(predictor) * 3 + quantity) * self.n_groups + group

    def gain(self, predictor: str) -> int:
        return len(PREDICTORS) * 3 * self.n_groups + EDGE_PREDICTORS.index(predictor)

    @property
    def size(self) -> int:
        return len(PREDICTORS) * 3 * self.n_groups + len(EDGE_PREDICTORS)


def _statistic(n_families: int):
    """The bootstrap statistic: on a frame with ``image`` (codes or draw numbers),
    ``seed``, ``mask`` and ``family`` (int codes), the response and the predictors, the
    seed means per (image, mask) and every line of :class:`_Layout`."""
    layout = _Layout(n_families)

    def statistic(frame: pd.DataFrame) -> np.ndarray:
        keys = [frame["image"].to_numpy(), frame["mask"].to_numpy()]
        _, y = means_by(keys, frame[RESPONSE].to_numpy(np.float64))
        _, family = means_by(keys, frame["family"].to_numpy(np.float64))
        family = family.astype(np.int64)
        values = np.full(layout.size, np.nan)
        r2_all = {}
        for predictor in PREDICTORS:
            _, x = means_by(keys, frame[predictor].to_numpy(np.float64))
            by_family = lines(x, y, family, n_families)
            pooled = lines(x, y, np.zeros(x.size, dtype=np.int64), 1)
            for quantity in range(3):
                start = layout.at(predictor, quantity, 0)
                values[start : start + n_families] = by_family[quantity]
                values[start + n_families] = pooled[quantity][0]
            r2_all[predictor] = pooled[2][0]
        for predictor in EDGE_PREDICTORS:
            values[layout.gain(predictor)] = r2_all[predictor] - r2_all[AREA]
        return values

    return statistic


def _r2_text(r2: float, low: float, high: float) -> str:
    """``0.93 (0.90–0.96)``; ``0.93`` without an interval; ``n/a`` for no fit."""
    if not math.isfinite(r2):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{r2:.2f}"
    return f"{r2:.2f} ({low:.2f}–{high:.2f})"


def verdict(
    r2: dict[str, tuple[float, float, float]],
    gains: dict[str, tuple[float, float, float]],
    n_images: int,
    resampled: str,
) -> tuple[str, str]:
    """(verdict, finding) from the pooled R² (value, low, high) of each predictor and
    the R² differences against area of each edge predictor (see the module docstring)."""

    def r2_of(predictor: str) -> str:
        return _r2_text(*r2[predictor])

    def gain_of(predictor: str) -> str:
        value, low, high = gains[predictor]
        return f"R² gain over area {value:.2f} ({low:.2f}–{high:.2f})"

    defined = [p for p in EDGE_PREDICTORS if all(math.isfinite(v) for v in gains[p])]
    scope = f"{100 * LEVEL:g} % intervals over {n_images} image{'s' if n_images != 1 else ''}"
    if resampled == RESAMPLED_NOTHING:
        listed = "; ".join(f"R² {r2_of(p)} for {PREDICTOR_NAMES[p]}" for p in PREDICTORS)
        return VERDICT_UNDECIDED, (
            f"area and edge cannot be told apart: no interval, one image and one seed ({listed})"
        )
    above = [p for p in defined if gains[p][1] > 0]
    below = [p for p in defined if gains[p][2] < 0]
    if above:
        best = max(above, key=lambda p: (r2[p][0], -EDGE_PREDICTORS.index(p)))
        return VERDICT_EDGE, (
            f"excess over the VAE floor follows {PREDICTOR_NAMES[best]}, not area: R² {r2_of(best)}"
            f" against {r2_of(AREA)} for area; {gain_of(best)}, {scope}"
        )
    if defined and len(below) == len(defined):
        best = max(defined, key=lambda p: (r2[p][0], -EDGE_PREDICTORS.index(p)))
        return VERDICT_AREA, (
            f"excess over the VAE floor follows area, not edge: R² {r2_of(AREA)}"
            f" against {r2_of(best)} for {PREDICTOR_NAMES[best]}, the better edge predictor;"
            f" {gain_of(best)}, {scope}"
        )
    listed = ", ".join(f"{r2_of(p)} for {PREDICTOR_NAMES[p]}" for p in PREDICTORS)
    why = (
        "no edge predictor's R² is defined"
        if not defined
        else "every R² difference's interval contains 0"
    )
    return VERDICT_UNDECIDED, f"area and edge cannot be told apart: R² {listed}; {why}, {scope}"


def _no_line_reason(x: np.ndarray, y: np.ndarray) -> str:
    """Why the points (x, y) of one family give no line or no R² (empty if they do)."""
    _, slope, r2 = lines(x, y, np.zeros(x.size, dtype=np.int64), 1)
    if not math.isfinite(slope[0]):
        if x.size == 0:
            return "no points"
        return f"fewer than 2 distinct x values (every point at x = {float(x[0]):.6g})"
    if not math.isfinite(r2[0]):
        return f"{RESPONSE} is the same at every point: R² undefined"
    return ""


def _one_strength(rows: pd.DataFrame, n_resamples: int, seed: int) -> list[dict[str, Any]]:
    """The fit table's rows for one model, pipeline and strength's ``rows``."""
    if rows.duplicated(["image", "seed", "mask_id"]).any():
        raise InputError(
            "metrics table has repeated (image, seed, mask_id) in the mask_shape_sweep rows"
            f" of model {rows['model'].iloc[0]!r} at strength {rows['strength'].iloc[0]:g}"
        )
    kinds = families(rows["mask_kind"])
    frame = rows.copy()
    frame["mask"] = pd.factorize(frame["mask_id"], sort=True)[0]
    frame["family"] = frame["mask_kind"].map({k: i for i, k in enumerate(kinds)}).astype(int)
    layout = _Layout(len(kinds))
    est: Estimate = estimate(
        frame,
        ["mask", "family", RESPONSE, *PREDICTORS],
        _statistic(len(kinds)),
        n_resamples,
        seed,
    )
    value, low, high = est.value, est.low, est.high
    if est.resampled == RESAMPLED_NOTHING:
        # Nothing to resample: a zero-width interval would claim a certainty it lacks.
        low, high = np.full_like(low, np.nan), np.full_like(high, np.nan)

    def triple(index: int) -> tuple[float, float, float]:
        return float(value[index]), float(low[index]), float(high[index])

    pooled = len(kinds)
    r2 = {p: triple(layout.at(p, 2, pooled)) for p in PREDICTORS}
    gains = {p: triple(layout.gain(p)) for p in EDGE_PREDICTORS}
    judged, finding = verdict(r2, gains, est.n_images, est.resampled)

    cells = points(rows)
    out = []
    for predictor in PREDICTORS:
        for group, family in enumerate([*kinds, ALL]):
            mine = rows if family == ALL else rows.loc[rows["mask_kind"] == family]
            at = cells if family == ALL else cells.loc[cells["mask_kind"] == family]
            x = at[predictor].to_numpy(np.float64)
            gain = gains.get(predictor, (np.nan,) * 3) if family == ALL else (np.nan,) * 3
            fit = [triple(layout.at(predictor, q, group)) for q in range(3)]
            out.append(
                {
                    "model": str(rows["model"].iloc[0]),
                    "pipeline": str(rows["pipeline"].iloc[0]),
                    "strength": float(rows["strength"].iloc[0]),
                    "predictor": predictor,
                    "family": family,
                    "n_rows": len(mine),
                    "n_points": len(at),
                    "n_masks": int(mine["mask_id"].nunique()),
                    "n_images": int(mine["image"].nunique()),
                    "n_seeds": int(mine["seed"].nunique()),
                    "x_min": float(x.min()) if x.size else np.nan,
                    "x_max": float(x.max()) if x.size else np.nan,
                    **{
                        f"{name}{suffix}": fit[q][k]
                        for q, name in enumerate(("intercept", "slope", "r2"))
                        for k, suffix in enumerate(("", "_low", "_high"))
                    },
                    "r2_minus_area": gain[0],
                    "r2_minus_area_low": gain[1],
                    "r2_minus_area_high": gain[2],
                    "verdict": judged,
                    "finding": finding,
                    "reason": _no_line_reason(x, at[RESPONSE].to_numpy(np.float64)),
                    "resampled": est.resampled,
                }
            )
    return out


def fit_table(metrics: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """The fit table (columns :data:`COLUMNS`) of ``metrics``' mask-shape sweep: per
    model, pipeline and strength, per predictor, one row per mask family and one for
    all families pooled. InputError if the sweep has no usable rows."""
    rows = shape_rows(metrics)
    if rows.empty:
        raise InputError(
            f"metrics table has no {EXPERIMENT} rows with {RESPONSE} (needs a VAE round"
            " trip) and n_outside > 0"
        )
    out: list[dict[str, Any]] = []
    for (_, _, _), at in rows.groupby(["model", "pipeline", "strength"], sort=True):
        out.extend(_one_strength(at, n_resamples, seed))
    table = pd.DataFrame(out, columns=list(COLUMNS))
    return table.astype(DTYPES)


def write_fits(
    metrics_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> None:
    """Read the metrics Parquet, compute :func:`fit_table` and write it atomically with
    its provenance (the metrics path, resamples, bootstrap seed, level)."""
    extra = {"experiment": EXPERIMENT}
    write_analysis(metrics_path, out_path, fit_table, "mask_shape", n_resamples, seed, extra)
