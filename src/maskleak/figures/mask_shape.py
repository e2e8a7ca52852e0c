"""Leak against mask shape (issue 11): the excess of the outside-mask MSE over the
image's VAE floor against the mask's area share, its edge per kept pixel and its
latent-footprint share, one colour per mask family, with each family's fitted line and
the verdict (area or edge) in the title."""

from __future__ import annotations

import math
import os
import textwrap
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from maskleak.errors import InputError
from maskleak.figures import common, mechanism_common
from maskleak.provenance import require_columns
from maskleak.shape import fit as shape_fit

#: Each predictor's x-axis label: its column and what it measures.
X_LABELS: dict[str, str] = {
    shape_fit.AREA: "area_frac\n(inpainted share of the image)",
    shape_fit.EDGE: "edge_per_kept_px\n(mask crack length / kept pixels)",
    shape_fit.FOOTPRINT: "footprint_share\n(kept pixels in repainted latent cells)",
}
#: The y axis: the fit's response (maskleak.shape.fit.RESPONSE) and its unit.
Y_LABEL = "excess over the VAE floor\n(mse_outside − mse_outside_vae, (0–255)²)"
POOLED_COLOUR = "black"
#: Characters per title line before the verdict sentences wrap.
TITLE_WIDTH = 150


def _family_colours(kinds: list[str]) -> dict[str, str]:
    """Family -> colour: the colour cycle in :data:`maskleak.shape.fit.FAMILY_ORDER`."""
    return {kind: f"C{i % 10}" for i, kind in enumerate(kinds)}


def _line(ax: Any, fit: pd.Series, colour: str, style: str, width: float) -> dict[str, Any]:
    """Draw the fitted line of one fit-table row over its x range; its record."""
    xs = np.array([fit["x_min"], fit["x_max"]], dtype=np.float64)
    if math.isfinite(fit["slope"]):
        ax.plot(xs, fit["intercept"] + fit["slope"] * xs, style, color=colour, lw=width)
    return {k: fit[k] for k in ("intercept", "slope", "slope_low", "slope_high", "r2", "reason")}


def _r2_title(fit: pd.Series) -> str:
    """``R² all families 0.93 (0.90–0.96)``, or, briefly, why there is none."""
    if not math.isfinite(fit["slope"]):
        return "no line: one x value"  # the table's reason says which
    if not math.isfinite(fit["r2"]):
        return "no R²: excess constant"
    interval = (
        f" ({fit['r2_low']:.2f}–{fit['r2_high']:.2f})"
        if math.isfinite(fit["r2_low"]) and math.isfinite(fit["r2_high"])
        else ""
    )
    return f"R² all families {fit['r2']:.2f}{interval}"


def mask_shape(
    metrics: pd.DataFrame, fits: pd.DataFrame, model: str, out_png: str | os.PathLike[str]
) -> Figure:
    """One row of three panels per strength (x: area_frac, edge_per_kept_px,
    footprint_share; y: excess_over_floor, (8-bit level)²): one point per image and mask
    (its seeds averaged, as the fits use them) coloured by mask family, each family's
    least-squares line from ``fits`` (:func:`maskleak.shape.fit.fit_table`) over its x
    range, the line pooled over all families (black, dash-dot), the VAE floor as y = 0
    (grey dashed: the response is measured from each image's own floor); the verdict
    sentence of each strength in the title. The record keeps, per strength,
    ``floor_mse_outside_vae``: the mean ``mse_outside_vae`` over the points (NaN where
    the metrics lack the column), the floor the excess is measured from.
    InputError if ``model`` has no mask-shape rows in ``metrics`` or none in ``fits``."""
    require_columns(fits, list(shape_fit.COLUMNS), "mask_shape")
    rows = shape_fit.shape_rows(metrics)
    rows = rows.loc[rows["model"] == model]
    if rows.empty:
        raise InputError(f"metrics has no {shape_fit.EXPERIMENT} rows for model {model!r}")
    mine = fits.loc[fits["model"] == model]
    if mine.empty:
        raise InputError(f"mask_shape table has no rows for model {model!r}")
    strengths = mechanism_common.strengths(rows)
    kinds = shape_fit.families(rows["mask_kind"])
    colours = _family_colours(kinds)
    ncols = len(shape_fit.PREDICTORS)
    fig = common.new_figure(3.8 * ncols + 0.4, 3.0 * len(strengths) + 1.8)
    axes = np.atleast_2d(fig.subplots(len(strengths), ncols, squeeze=False, sharey="row"))
    summary: dict[str, Any] = {}
    findings = []
    for r, strength in enumerate(strengths):
        at = rows.loc[rows["strength"] == strength]
        cells = shape_fit.points(at)
        fit_at = mine.loc[np.isclose(mine["strength"], strength)]
        if fit_at.empty:
            raise InputError(
                f"mask_shape table has no rows for model {model!r} at strength {strength:g}"
            )
        verdict, finding = str(fit_at["verdict"].iloc[0]), str(fit_at["finding"].iloc[0])
        findings.append(f"strength {common.number(strength)}: {verdict} ({finding})")
        # Not drawn (each point is measured from its own image's floor); recorded so
        # the excess can be read against the size of the floor it sits on.
        floor = (
            float(cells["mse_outside_vae"].mean())
            if "mse_outside_vae" in cells.columns
            else math.nan
        )
        record: dict[str, Any] = {
            "verdict": verdict,
            "floor_mse_outside_vae": floor,
            "lines": {},
        }
        for c, predictor in enumerate(shape_fit.PREDICTORS):
            ax = axes[r, c]
            by_family = fit_at.loc[fit_at["predictor"] == predictor].set_index("family")
            record["lines"][predictor] = {}
            for kind in kinds:
                pts = cells.loc[cells["mask_kind"] == kind]
                ax.scatter(pts[predictor], pts[shape_fit.RESPONSE], s=9, c=colours[kind], lw=0)
                if kind in by_family.index:
                    record["lines"][predictor][kind] = _line(
                        ax, by_family.loc[kind], colours[kind], "-", 1.3
                    )
            pooled = by_family.loc[shape_fit.ALL]
            record["lines"][predictor][shape_fit.ALL] = _line(ax, pooled, POOLED_COLOUR, "-.", 1.0)
            ax.axhline(0.0, color=mechanism_common.FLOOR_COLOUR, ls="--", lw=0.9)
            ax.set_title(f"strength {common.number(strength)} · {_r2_title(pooled)}", fontsize=8)
            ax.set_xlabel(X_LABELS[predictor], fontsize=7)
            if c == 0:
                ax.set_ylabel(Y_LABEL, fontsize=7)
            ax.tick_params(labelsize=7)
            ax.grid(True, linewidth=0.3, alpha=0.5)
        record["n_points"] = {k: int((cells["mask_kind"] == k).sum()) for k in kinds}
        summary[common.number(strength)] = record
    handles: list[Any] = [
        Line2D([], [], color=colours[k], marker="o", ms=4, label=f"{k} (points, fit)")
        for k in kinds
    ]
    handles.append(Line2D([], [], color=POOLED_COLOUR, ls="-.", label="fit, all families"))
    handles.append(
        Line2D([], [], color=mechanism_common.FLOOR_COLOUR, ls="--", label="VAE floor (excess 0)")
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    n_images = int(rows["image"].nunique())
    head = (
        f"{model} ({rows['pipeline'].iloc[0]}): excess of outside-mask MSE over the VAE floor"
        " against mask shape,"
        f" {common.count(n_images, 'image')},"
        f" {common.seeds_text(common.sorted_ints(rows['seed']))} per point"
    )
    lines = [head] + [textwrap.fill(f, TITLE_WIDTH) for f in findings]
    fig.suptitle("\n".join(lines), fontsize=8.5)
    return common.save(
        fig,
        out_png,
        {
            "figure": "mask_shape",
            "experiment": shape_fit.EXPERIMENT,
            "model": model,
            "strengths": summary,
            "n_rows": len(rows),
        },
    )
