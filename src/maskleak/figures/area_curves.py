"""Thesis Fig 4.10: outside-mask MSE against the disc's share of the image."""

from __future__ import annotations

import os
import textwrap
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from maskleak.figures import common, fits, layout
from maskleak.figures.common import (
    AREA_LABEL,
    AREA_THESIS_LABEL,
    MASK_SIZE_SWEEP,
    MSE_LABEL,
)

#: y of the study's number: a uint8 (wrapping) mean over the whole image divided by an
#: outside pixel count, so neither an MSE nor in squared levels.
WHITEDISC_LABEL = "study's white-disc number"

#: (metric, x, y label, x label, panel-row title): the true MSE against the counted disc
#: share, and the study's white-disc number against the axis it used, π r² / (w·h).
PANELS = (
    (
        "mse_outside",
        "area_frac",
        MSE_LABEL,
        AREA_LABEL,
        "true MSE outside the mask, against the counted mask share",
    ),
    (
        "mse_whitedisc_thesis",
        "area_frac_thesis",
        WHITEDISC_LABEL,
        AREA_THESIS_LABEL,
        "the study's Fig 4.10 number (mse_whitedisc_thesis): disc white in both images,\n"
        "wrapped uint8 MSE of the whole image / (w·h − π r²), against π r² / (w·h)",
    ),
)


def _panel_row(
    sub: SubFigure,
    sel: pd.DataFrame,
    trends: pd.DataFrame,
    model: str,
    images: list[str],
    strengths: list[float],
    colours: dict[float, str],
    panel: tuple[str, str, str, str, str],
    drawn: list[dict[str, Any]],
    missing: list[dict[str, Any]],
    bands: list[dict[str, Any]],
) -> int:
    """One grid of per-image panels for one metric against its x; returns its columns."""
    metric, x, ylabel, xlabel, title = panel
    n = len(images)
    nrows, ncols = layout.grid_shape(n)
    grid = np.atleast_1d(sub.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True))
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    axes = axes[:n]
    multi_seed = len(pd.unique(sel["seed"])) > 1
    for ax, image in zip(axes, images, strict=True):
        rows = sel.loc[sel["image"].astype(str) == image]
        for s in strengths:
            at = rows.loc[rows["strength"] == s]
            if at.empty:
                continue
            # Mean over seeds per mask; x is the same for every seed of a mask.
            band = common.across_seeds(at, "mask_id", metric)
            band["x"] = at.groupby("mask_id", sort=True)[x].mean()
            band = band.sort_values("x", kind="mergesort")
            style: dict[str, Any] = {"color": colours[s], "lw": 1.1, "ms": 2.5}
            ax.plot(band["x"], band["mean"], "-o", **style)
            if multi_seed:
                ax.fill_between(
                    band["x"], band["low"], band["high"], color=colours[s], alpha=0.15, lw=0
                )
                bands.append(
                    {
                        "metric": metric,
                        "image": image,
                        "strength": s,
                        "x": band["x"].to_numpy(),
                        "low": band["low"].to_numpy(),
                        "high": band["high"].to_numpy(),
                    }
                )
            fit = fits.find(
                trends,
                experiment=MASK_SIZE_SWEEP,
                model=model,
                scope="image",
                x=x,
                metric=metric,
                degree=1,
                image=image,
                strength=s,
            )
            reason = fits.missing_reason(fit)
            if fit is None or reason:
                missing.append({"metric": metric, "image": image, "strength": s, "reason": reason})
                continue
            xs, ys = fits.curve(fit, n=2)
            ax.plot(xs, ys, "--", color=colours[s], lw=0.7)
            drawn.append({"metric": metric, "image": image, "strength": s, **fits.record(fit)})
        ax.set_title(image, fontsize=8)
        ax.grid(True, linewidth=0.3, alpha=0.5)
    layout.label_outer(axes, ncols, xlabel, ylabel)
    sub.suptitle(title, fontsize=9)
    return ncols


def area_curves(
    metrics: pd.DataFrame, trends: pd.DataFrame, model: str, path: str | os.PathLike[str]
) -> Figure:
    """Thesis Fig 4.10: per image, outside-mask MSE against the disc's share of the image,
    one curve per strength (mean over seeds, each radius marked, with the 95 % confidence
    band of that mean over the seeds shaded: Student t, none with one seed), and the
    per-image linear fit from ``trends`` as a thin dashed line. Two grids of panels: the
    true MSE (``mse_outside``) against the counted share ``area_frac``, and the study's own
    number (``mse_whitedisc_thesis``) against the axis the study plotted it on, its
    analytic share ``area_frac_thesis`` = π r² / (w·h). A fit that cannot be drawn (one
    radius, or no trends row) is left out and listed with its reason in the record; the
    legend says how many are missing."""
    cols = [*common.SWEEP_COLUMNS, "mask_kind", "mask_id", "radius_pct", "area_frac"]
    cols += ["area_frac_thesis"]
    cols += [panel[0] for panel in PANELS]
    sel = common.select(metrics, MASK_SIZE_SWEEP, model, cols)
    images = common.sorted_names(sel["image"])
    strengths = sorted(float(s) for s in pd.unique(sel["strength"]))
    seeds = common.sorted_ints(sel["seed"])
    colours = {s: f"C{i % 10}" for i, s in enumerate(strengths)}
    nrows, ncols = layout.grid_shape(len(images))
    fig = common.new_figure(2.7 * ncols + 0.4, 2 * (2.1 * nrows + 0.4) + 1.2)
    subs = np.asarray(fig.subfigures(2, 1)).ravel()
    drawn: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    bands: list[dict[str, Any]] = []
    for sub, panel in zip(subs, PANELS, strict=True):
        args = (sel, trends, model, images, strengths, colours, panel, drawn, missing, bands)
        _panel_row(sub, *args)
    handles: list[Any] = [
        Line2D([], [], color=colours[s], lw=1.1, marker="o", ms=2.5, label=f"strength {s:g}")
        for s in strengths
    ]
    band_text = common.band_label(len(seeds), "seed")
    if len(seeds) > 1:
        handles.append(Patch(color="0.5", alpha=0.3, label=band_text))
    else:
        handles.append(Line2D([], [], ls="none", label=band_text))
    if drawn:
        handles.append(Line2D([], [], color="0.3", lw=0.7, ls="--", label="linear fit"))
    if missing:
        what = "no linear fit" if not drawn else f"{len(missing)} linear fit(s) missing"
        label = textwrap.fill(f"{what}: {missing[0]['reason']}", width=60)
        handles.append(Line2D([], [], ls="none", label=label))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=layout.legend_cols(handles, ncols),
        fontsize=8,
    )
    n_masks = len(pd.unique(sel["mask_id"]))
    discs = bool((sel["mask_kind"] == "circle").all())
    masks_text = (
        common.count(n_masks, "radius", "radii") if discs else common.count(n_masks, "mask")
    )
    layout.suptitle(
        fig,
        f"{model}: outside-mask MSE vs {'disc' if discs else 'mask'} area per image",
        f"{common.steps_text(sel)}, {masks_text}, {common.seeds_text(seeds)}",
    )
    return common.save(
        fig,
        path,
        {
            "figure": "area_curves",
            "thesis_figure": "4.10",
            "experiment": MASK_SIZE_SWEEP,
            "model": model,
            "images": images,
            "strengths": strengths,
            "radii": sorted(float(r) for r in pd.unique(sel["radius_pct"].dropna())),
            "masks": sorted(str(m) for m in pd.unique(sel["mask_id"])),
            "seeds": seeds,
            "steps": common.sorted_ints(sel["steps"]),
            "band": band_text,
            "bands": bands,
            "fits": drawn,
            "fits_missing": missing,
        },
    )
