"""Beyond the thesis: the strength sweep of every model side by side, and where outside
the mask the error lies (next to the mask edge or farther out; flat or textured)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from maskleak.bootstrap import LEVEL
from maskleak.figures import common, layout
from maskleak.figures.common import MSE_LABEL, STRENGTH_LABEL, STRENGTH_SWEEP


def _plot_mean(ax: Axes, stats: pd.DataFrame, style: str, colour: str, label: str) -> None:
    xs = stats.index.to_numpy(dtype=np.float64)
    ax.plot(xs, stats["mean"], style, color=colour, lw=1.3, ms=2.5, label=label)


def _plot_content_split(
    ax: Axes, rows: pd.DataFrame, colour: str, model: str, summary: dict[str, Any]
) -> None:
    """Outside error on flat vs textured ground truth, for images that have a region map:
    tests the thesis' observation that flat regions barely change."""
    known = rows.loc[rows["mse_outside_flat"].notna() | rows["mse_outside_textured"].notna()]
    for column, style, label in (
        ("mse_outside_flat", "-o", "flat"),
        ("mse_outside_textured", "--o", "textured"),
    ):
        stats = common.across_images(known.loc[known[column].notna()], "strength", column)
        _plot_mean(ax, stats, style, colour, f"{model}: {label}")
    summary[model] = {
        "content_images": sorted(str(i) for i in pd.unique(known["image"])),
        "mean_mse_outside_flat": float(known["mse_outside_flat"].mean()),
        "mean_mse_outside_textured": float(known["mse_outside_textured"].mean()),
    }


def model_comparison(metrics: pd.DataFrame, path: str | os.PathLike[str]) -> Figure:
    """Beyond the thesis: mean outside-mask MSE against strength for every model; and
    the MSE in the band next to the mask edge (solid) against the rest of the outside
    (dashed), testing the thesis' hypothesis that the edge band changes most; and, where
    procedural landscapes give ground-truth regions, flat against textured.

    The first panel shades, per model, the 95 % confidence band of the mean over images:
    Student t over the images' seed means (:func:`common.across_images`); a model with one
    image gets no band, and its legend entry says so."""
    cols = [*common.SWEEP_COLUMNS, "band_px", "mse_outside", "mse_outside_band", "mse_outside_far"]
    sel = common.select(metrics, STRENGTH_SWEEP, None, cols)
    models = sorted(str(m) for m in pd.unique(sel["model"]))
    band_px = common.sorted_ints(sel["band_px"])
    band_text = "/".join(str(b) for b in band_px)
    # Third panel only where ground-truth region maps exist (procedural landscapes).
    has_content = "mse_outside_flat" in sel and bool(sel["mse_outside_flat"].notna().any())
    fig = common.new_figure(17.0 if has_content else 11.5, 4.8)
    axes = fig.subplots(1, 3 if has_content else 2)
    ax_all, ax_band = axes[0], axes[1]
    summary: dict[str, Any] = {}
    for i, model in enumerate(models):
        colour = f"C{i % 10}"
        rows = sel.loc[sel["model"] == model]
        stats = common.across_images(rows, "strength", "mse_outside")
        n_img = len(pd.unique(rows["image"]))
        label = f"{model} ({common.count(n_img, 'image')}, {common.steps_text(rows)})"
        if n_img < 2:
            label += f"; {common.band_label(n_img, 'image')}"
        _plot_mean(ax_all, stats, "-o", colour, label)
        xs = stats.index.to_numpy(dtype=np.float64)
        if n_img > 1:
            ax_all.fill_between(
                xs, stats["low"], stats["high"], color=colour, alpha=0.12, linewidth=0
            )
        band = common.across_images(rows, "strength", "mse_outside_band")
        far = common.across_images(rows, "strength", "mse_outside_far")
        _plot_mean(ax_band, band, "-o", colour, f"{model}: band ≤ {band_text} px")
        _plot_mean(ax_band, far, "--o", colour, f"{model}: farther out")
        if has_content:
            _plot_content_split(axes[2], rows, colour, model, summary)
        summary[model] = {
            **summary.get(model, {}),
            "images": n_img,
            "band": common.band_label(n_img, "image"),
            "mean_over_images": {
                "strength": xs,
                **{k: stats[k].to_numpy() for k in ("mean", "low", "high", "n")},
            },
            "steps": common.sorted_ints(rows["steps"]),
            "mean_mse_outside": float(rows["mse_outside"].mean()),
            "mean_mse_outside_band": float(rows["mse_outside_band"].mean()),
            "mean_mse_outside_far": float(rows["mse_outside_far"].mean()),
        }
    ax_all.set_title(
        f"mean over images of the seed means (band: {LEVEL * 100:g} % CI over images, t)",
        fontsize=9,
    )
    ax_band.set_title(f"edge band (≤ {band_text} px from the mask) vs farther out", fontsize=9)
    if has_content:
        axes[2].set_title(
            "flat (sky, water) vs textured (ridges, grass), procedural images", fontsize=9
        )
    for ax in axes:
        ax.set_xlabel(STRENGTH_LABEL)
        ax.set_ylabel(MSE_LABEL)
        ax.grid(True, linewidth=0.3, alpha=0.5)
        ax.legend(fontsize=7, loc="best")
    layout.suptitle(
        fig,
        "Outside-mask MSE by model, strength sweep",
        f"{', '.join(models)}; {common.steps_text(sel)}",
    )
    return common.save(
        fig,
        path,
        {
            "figure": "model_comparison",
            "experiment": STRENGTH_SWEEP,
            "models": models,
            "band_px": band_px,
            "per_model": summary,
        },
    )
