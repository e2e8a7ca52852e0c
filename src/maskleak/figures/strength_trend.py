"""Thesis Fig 4.3: the mean over images against strength, with its degree-2 fit and, on
the study's wrapped metric, the fit the study published."""

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
from maskleak.trends import STUDY_PUBLISHED_FIT, equation

#: What the published fit was measured on (the study's setting, not this run's).
STUDY_SETTING = "SD 1.5, 640×416, 200 steps"

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


def _published_fit(ax: Any, xs: np.ndarray) -> dict[str, Any]:
    """The study's published trend over the plotted strengths, dashed; its record."""
    c2, c1, c0 = STUDY_PUBLISHED_FIT
    grid = np.linspace(float(xs.min()), float(xs.max()), 200)
    text = equation(list(STUDY_PUBLISHED_FIT))
    label = f"study's published fit ({STUDY_SETTING}): {text}"
    ax.plot(grid, (c2 * grid + c1) * grid + c0, "--", color="0.35", linewidth=1.2, label=label)
    return {"c2": c2, "c1": c1, "c0": c0, "equation": text, "setting": STUDY_SETTING}


def strength_trend(
    metrics: pd.DataFrame, trends: pd.DataFrame, model: str, path: str | os.PathLike[str]
) -> Figure:
    """Thesis Fig 4.3: mean over images (of each image's mean over seeds) against strength,
    with the 95 % confidence band of that mean over the images (Student t over the images'
    seed means, :func:`common.across_images`; none with one image), and the degree-2 fit
    ``np.polyfit(strength, mean, 2)`` from ``trends`` (scope "mean") with the 95 %
    bootstrap interval of each coefficient in the legend; true MSE and the study's
    wrapped uint8 MSE. The wrapped panel also draws the study's published fit
    (:data:`maskleak.trends.STUDY_PUBLISHED_FIT`) dashed, for comparison.

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
    published: dict[str, Any] = {}
    band_text = common.band_label(len(images), "image")
    for panel, (metric, ylabel, name) in zip(panels, PANELS, strict=True):
        ax = panel.subplots()
        stats = common.across_images(sel, "strength", metric)
        xs = stats.index.to_numpy(dtype=np.float64)
        mean_label = f"mean over {common.count(len(images), 'image')}"
        if len(images) > 1:
            ax.fill_between(
                xs,
                stats["low"],
                stats["high"],
                color="C0",
                alpha=0.2,
                linewidth=0,
                label=band_text,
            )
        else:
            mean_label += f" ({band_text})"
        ax.plot(xs, stats["mean"], "o", ms=3, color="C0", label=mean_label)
        points[metric] = {k: stats[k].to_numpy() for k in ("mean", "low", "high", "n")}
        points[metric]["strength"] = xs
        fit = rows[metric]
        reason = fits.missing_reason(fit)
        extra: list[tuple[Any, str]] = []
        if reason:
            missing[metric] = reason
            no_fit = textwrap.fill(f"no degree-2 fit: {reason}", width=60)
            extra.append((Line2D([], [], ls="none"), no_fit))
        else:
            fx, fy = fits.curve(fit)
            r2 = float(fit["r2"])
            r2_text = f"{r2:.3f}" if np.isfinite(r2) else "undefined"
            label = f"fit: {fit['equation']}  (R² = {r2_text})"
            ax.plot(fx, fy, "-", color="C3", linewidth=1.5, label=label)
            drawn[metric] = fits.record(fit)
            ci = textwrap.fill(fits.interval_text(fit), width=70)
            extra.append((Line2D([], [], ls="none"), ci))
        handles, labels = ax.get_legend_handles_labels()
        for handle, text in extra:  # the fit's intervals (or why there is none) follow it
            handles.append(handle)
            labels.append(text)
        if metric == "mse_outside_thesis" and xs.size:
            published = _published_fit(ax, xs)
            handles.append(ax.get_lines()[-1])
            labels.append(str(ax.get_lines()[-1].get_label()))
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
            "band": band_text,
            "points": points,
            "fits": drawn,
            "fits_missing": missing,
            "published_fit": published,
        },
    )
