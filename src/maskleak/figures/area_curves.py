"""Thesis Fig 4.10: outside-mask MSE against the disc's share of the image."""

from __future__ import annotations

import os
import textwrap
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from maskleak.figures import common, fits, layout
from maskleak.figures.common import AREA_LABEL, MASK_SIZE_SWEEP, MSE_LABEL


def area_curves(
    metrics: pd.DataFrame, trends: pd.DataFrame, model: str, path: str | os.PathLike[str]
) -> Figure:
    """Thesis Fig 4.10: per image, outside-mask MSE against disc area / image area, one
    curve per strength (mean over seeds, each radius marked), with the per-image linear
    fit from ``trends`` as a thin dashed line. A fit that cannot be drawn (one radius, or
    no trends row) is left out and listed with its reason in the record; the legend says
    how many are missing."""
    cols = [*common.SWEEP_COLUMNS, "radius_pct", "area_frac", "mse_outside"]
    sel = common.select(metrics, MASK_SIZE_SWEEP, model, cols)
    images = common.sorted_names(sel["image"])
    strengths = sorted(float(s) for s in pd.unique(sel["strength"]))
    colours = {s: f"C{i % 10}" for i, s in enumerate(strengths)}
    nrows, ncols = layout.grid_shape(len(images))
    fig = common.new_figure(2.7 * ncols + 0.4, 2.1 * nrows + 1.2)
    axes, nrows, ncols = layout.grid_axes(fig, len(images), sharex=True, sharey=True)
    drawn: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for ax, image in zip(axes, images, strict=True):
        rows = sel.loc[sel["image"].astype(str) == image]
        for s in strengths:
            at = rows.loc[rows["strength"] == s]
            if at.empty:
                continue
            curve = at.groupby("radius_pct", sort=True)[["area_frac", "mse_outside"]].mean()
            curve = curve.sort_values("area_frac", kind="mergesort")
            style: dict[str, Any] = {"color": colours[s], "lw": 1.1, "ms": 2.5}
            ax.plot(curve["area_frac"], curve["mse_outside"], "-o", **style)
            fit = fits.find(
                trends,
                experiment=MASK_SIZE_SWEEP,
                model=model,
                scope="image",
                x="area_frac",
                metric="mse_outside",
                degree=1,
                image=image,
                strength=s,
            )
            reason = fits.missing_reason(fit)
            if fit is None or reason:
                missing.append({"image": image, "strength": s, "reason": reason})
                continue
            xs, ys = fits.curve(fit, n=2)
            ax.plot(xs, ys, "--", color=colours[s], lw=0.7)
            drawn.append({"image": image, "strength": s, **fits.record(fit)})
        ax.set_title(image, fontsize=8)
        ax.grid(True, linewidth=0.3, alpha=0.5)
    layout.label_outer(axes, ncols, AREA_LABEL, MSE_LABEL)
    handles: list[Any] = [
        Line2D([], [], color=colours[s], lw=1.1, marker="o", ms=2.5, label=f"strength {s:g}")
        for s in strengths
    ]
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
    seeds = common.sorted_ints(sel["seed"])
    n_radii = len(pd.unique(sel["radius_pct"]))
    layout.suptitle(
        fig,
        f"{model}: outside-mask MSE vs disc area per image",
        f"{common.steps_text(sel)}, {common.count(n_radii, 'radius', 'radii')},"
        f" {common.seeds_text(seeds)}",
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
            "radii": sorted(float(r) for r in pd.unique(sel["radius_pct"])),
            "seeds": seeds,
            "steps": common.sorted_ints(sel["steps"]),
            "fits": drawn,
            "fits_missing": missing,
        },
    )
