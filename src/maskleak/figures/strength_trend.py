"""Thesis Fig 4.3: the mean over images against strength, with its degree-2 fit."""

from __future__ import annotations

import os
import textwrap
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from maskleak.errors import InputError
from maskleak.figures import common, fits, layout
from maskleak.figures.common import MSE_LABEL, STRENGTH_LABEL, STRENGTH_SWEEP, THESIS_MSE_LABEL

PANELS = (
    ("mse_outside", MSE_LABEL, "true MSE"),
    ("mse_outside_thesis", THESIS_MSE_LABEL, "thesis uint8 MSE"),
)


def _fit_row(trends: pd.DataFrame, model: str, metric: str) -> pd.Series:
    fit = fits.find(
        trends,
        experiment=STRENGTH_SWEEP,
        model=model,
        scope="mean",
        x="strength",
        metric=metric,
        degree=2,
    )
    if fit is None:
        raise InputError(
            f"trends has no degree-2 row for experiment {STRENGTH_SWEEP!r}, model {model!r},"
            f" scope 'mean', x 'strength', metric {metric!r}; rerun the trends rule"
        )
    return fit


def strength_trend(
    metrics: pd.DataFrame, trends: pd.DataFrame, model: str, path: str | os.PathLike[str]
) -> Figure:
    """Thesis Fig 4.3: mean over images (and seeds) against strength, ±1 std across
    images, with the degree-2 fit from ``trends``; true MSE and thesis uint8 MSE.

    Where trends has a row without a fit (fewer than 3 strengths), the points are drawn
    alone and the legend and title say that there is no fit, and why. Each panel's legend
    sits below it, never over the points."""
    cols = [*common.SWEEP_COLUMNS, *(p[0] for p in PANELS)]
    sel = common.select(metrics, STRENGTH_SWEEP, model, cols)
    rows = {metric: _fit_row(trends, model, metric) for metric, _, _ in PANELS}
    images = common.sorted_names(sel["image"])
    seeds = common.sorted_ints(sel["seed"])
    fig = common.new_figure(11.0, 5.0)
    panels = np.asarray(fig.subfigures(1, 2)).ravel()
    drawn: dict[str, Any] = {}
    missing: dict[str, str] = {}
    points: dict[str, Any] = {}
    for panel, (metric, ylabel, name) in zip(panels, PANELS, strict=True):
        ax = panel.subplots()
        stats = common.across_images(sel, "strength", metric)
        xs = stats.index.to_numpy(dtype=np.float64)
        ax.errorbar(
            xs,
            stats["mean"],
            yerr=stats["std"],
            fmt="o",
            ms=3,
            color="C0",
            ecolor="0.6",
            elinewidth=0.8,
            capsize=1.5,
            label=f"mean over {common.count(len(images), 'image')}, ±1 std across images",
        )
        points[metric] = {k: stats[k].to_numpy() for k in ("mean", "std")} | {"strength": xs}
        fit = rows[metric]
        reason = fits.missing_reason(fit)
        if reason:
            missing[metric] = reason
            no_fit = textwrap.fill(f"no degree-2 fit: {reason}", width=60)
            handles = [*ax.get_legend_handles_labels()[0], Line2D([], [], ls="none")]
            labels = [*ax.get_legend_handles_labels()[1], no_fit]
        else:
            fx, fy = fits.curve(fit)
            r2 = float(fit["r2"])
            r2_text = f"{r2:.3f}" if np.isfinite(r2) else "undefined"
            label = f"fit: {fit['equation']}  (R² = {r2_text})"
            ax.plot(fx, fy, "-", color="C3", linewidth=1.5, label=label)
            drawn[metric] = fits.record(fit)
            handles, labels = ax.get_legend_handles_labels()
        ax.set_xlabel(STRENGTH_LABEL)
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=10)
        ax.grid(True, linewidth=0.3, alpha=0.5)
        panel.legend(handles, labels, loc="outside lower center", fontsize=8)
    detail = (
        f"{common.steps_text(sel)}, {common.count(len(images), 'image')},"
        f" {common.count(len(seeds), 'seed')}"
    )
    n_strengths = len(pd.unique(sel["strength"]))
    if missing and n_strengths < 3:
        detail += f"; no fit: only {common.count(n_strengths, 'strength')}, a degree-2 fit needs 3"
    elif missing:
        detail += f"; no fit for {', '.join(missing)} (see legend)"
    layout.suptitle(fig, f"{model}: mean outside-mask MSE vs strength", detail, fontsize=11)
    return common.save(
        fig,
        path,
        {
            "figure": "strength_trend",
            "thesis_figure": "4.3",
            "experiment": STRENGTH_SWEEP,
            "model": model,
            "images": images,
            "seeds": seeds,
            "steps": common.sorted_ints(sel["steps"]),
            "points": points,
            "fits": drawn,
            "fits_missing": missing,
        },
    )
