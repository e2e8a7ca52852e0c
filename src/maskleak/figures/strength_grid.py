"""Thesis Fig 4.2: outside-mask MSE against strength, one panel per image."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from maskleak.figures import common, layout
from maskleak.figures.common import MSE_LABEL, STRENGTH_LABEL, STRENGTH_SWEEP


def strength_grid(metrics: pd.DataFrame, model: str, path: str | os.PathLike[str]) -> Figure:
    """Thesis Fig 4.2: one panel per image, outside-mask MSE against strength.

    Solid: true MSE (``mse_outside``); dashed: the thesis' uint8 MSE
    (``mse_outside_thesis``); both the mean over seeds, each strength marked, with the
    95 % confidence band of that mean over the seeds shaded (Student t,
    :func:`common.across_seeds`) when there is more than one seed; with one seed no band
    is drawn and the legend says so. Strengths run as a plain VAE round trip (0 denoising
    steps) are marked with a diamond."""
    cols = [*common.SWEEP_COLUMNS, "mode", "mse_outside", "mse_outside_thesis"]
    sel = common.select(metrics, STRENGTH_SWEEP, model, cols)
    images = common.sorted_names(sel["image"])
    seeds = common.sorted_ints(sel["seed"])
    multi_seed = len(seeds) > 1
    nrows, ncols = layout.grid_shape(len(images))
    fig = common.new_figure(2.7 * ncols + 0.4, 2.1 * nrows + 1.2)
    axes, nrows, ncols = layout.grid_axes(fig, len(images), sharex=True, sharey=True)
    vae_strengths: dict[str, list[float]] = {}
    bands: dict[str, dict[str, Any]] = {}
    for ax, image in zip(axes, images, strict=True):
        rows = sel.loc[sel["image"].astype(str) == image]
        by = rows.groupby("strength", sort=True)
        mean = by[["mse_outside", "mse_outside_thesis"]].mean()
        xs = mean.index.to_numpy(dtype=np.float64)
        for column, colour, alpha in (
            ("mse_outside", "C0", 0.2),
            ("mse_outside_thesis", "C1", 0.15),
        ):
            band = common.across_seeds(rows, "strength", column).reindex(mean.index)
            mean[column] = band["mean"]
            if multi_seed:
                low, high = band["low"].to_numpy(), band["high"].to_numpy()
                ax.fill_between(xs, low, high, color=colour, alpha=alpha, linewidth=0)
                bands.setdefault(image, {})[column] = {"low": low, "high": high}
        ax.plot(xs, mean["mse_outside"], "-o", color="C0", linewidth=1.2, ms=2.5)
        ax.plot(xs, mean["mse_outside_thesis"], "--o", color="C1", linewidth=1.0, ms=2.5)
        vae = by["mode"].agg(lambda m: bool((m == "vae_roundtrip").any()))
        vae_x = vae.index[vae.to_numpy(dtype=bool)]
        if len(vae_x):
            vm = mean.loc[vae_x]
            for column in ("mse_outside", "mse_outside_thesis"):
                ax.plot(vae_x, vm[column], "D", mfc="none", mec="black", ms=4, mew=0.9)
        vae_strengths[image] = [float(s) for s in vae_x]
        ax.set_title(image, fontsize=8)
        ax.grid(True, linewidth=0.3, alpha=0.5)
    layout.label_outer(axes, ncols, STRENGTH_LABEL, MSE_LABEL)
    handles: list[Any] = [
        Line2D([], [], color="C0", linestyle="-", label="true MSE (mse_outside)"),
        Line2D([], [], color="C1", linestyle="--", label="thesis uint8 MSE (mse_outside_thesis)"),
    ]
    band_text = common.band_label(len(seeds), "seed")
    if multi_seed:
        handles.append(Patch(color="C0", alpha=0.2, label=band_text))
    else:
        handles.append(Line2D([], [], ls="none", label=band_text))
    if any(vae_strengths.values()):
        vae_label = "0 denoising steps: VAE round trip"
        handles.append(
            Line2D([], [], ls="none", marker="D", mfc="none", mec="black", label=vae_label)
        )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=layout.legend_cols(handles, ncols),
        fontsize=8,
    )
    layout.suptitle(
        fig,
        f"{model}: outside-mask MSE vs strength per image",
        f"{common.steps_text(sel)}, {common.seeds_text(seeds)}",
    )
    return common.save(
        fig,
        path,
        {
            "figure": "strength_grid",
            "thesis_figure": "4.2",
            "experiment": STRENGTH_SWEEP,
            "model": model,
            "images": images,
            "seeds": seeds,
            "steps": common.sorted_ints(sel["steps"]),
            "strengths": sorted(float(s) for s in pd.unique(sel["strength"])),
            "n_rows": len(sel),
            "vae_roundtrip_strengths": vae_strengths,
            "band": band_text,
            "bands": bands,
        },
    )
