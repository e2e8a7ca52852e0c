"""Why it leaks: the outside error split into the VAE floor, the latent footprint and the
rest beyond it, against strength, one panel per variant."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from maskleak import mechanisms
from maskleak.figures import common, layout
from maskleak.figures import mechanism_common as mc
from maskleak.figures.common import MSE_LABEL, STRENGTH_LABEL
from maskleak.why.columns import EXPERIMENT, PART_NAMES, PARTS

PART_COLOURS = {"vae_floor": "0.6", "latent_footprint": "C1", "beyond_footprint": "C0"}
BAR_WIDTH = 0.6


def _error_bar(ax: Axes, x: float, band: pd.Series, colour: str = "black") -> None:
    """The t-interval of one bar end (nothing where there is none)."""
    if band["n"] >= 2:
        err = [[band["mean"] - band["low"]], [band["high"] - band["mean"]]]
        ax.errorbar([x], [band["mean"]], yerr=err, fmt="none", ecolor=colour, lw=0.8, capsize=2)


def _stack(ax: Axes, x: float, at: pd.DataFrame) -> dict[str, Any]:
    """The bar at ``x`` for the rows ``at`` (one strength): each part's mean stacked on
    the parts before it of the same sign (positive parts up from 0, negative ones down:
    a part is negative where the inpainting is nearer the original than the VAE round
    trip, e.g. after paste-back), an error bar at each segment's end (the t-interval of
    that cumulative level over the images), and the whole (mse_outside) as a black
    diamond with its own interval."""
    record: dict[str, Any] = {}
    means = {p: float(mc.image_band(at, "strength", c)["mean"].iloc[0]) for p, c in PARTS.items()}
    level = {True: np.zeros(len(at)), False: np.zeros(len(at))}
    end = {True: 0.0, False: 0.0}
    for part, column in PARTS.items():
        up = means[part] >= 0
        level[up] = level[up] + at[column].to_numpy(dtype=np.float64)
        band = mc.image_band(at.assign(level=level[up]), "strength", "level").iloc[0]
        ax.bar(x, band["mean"] - end[up], BAR_WIDTH, bottom=end[up], color=PART_COLOURS[part])
        _error_bar(ax, x, band)
        end[up] = float(band["mean"])
        record[part] = {"mean": means[part], "level": band.to_dict()}
    total = mc.image_band(at, "strength", "mse_outside").iloc[0]
    ax.plot([x], [total["mean"]], "D", color="black", ms=4)
    _error_bar(ax, x, total, "0.2")
    record["mse_outside"] = total.to_dict()
    return record


def attribution(metrics: pd.DataFrame, model: str, path: str | os.PathLike[str]) -> Figure:
    """One panel per variant (pass 1): at each strength the mean of each part of the
    outside error (``mse_outside_part_vae``, ``_part_footprint``, ``_part_beyond``, which
    sum to ``mse_outside``) as a stacked bar (see :func:`_stack`), the whole as a black
    diamond. Means: each image's seeds first, then the images; error bars: 95 %
    t-intervals over the images."""
    parts = list(PARTS.values())
    rows = mc.rows_of(metrics, model, [*mechanisms.NAMES, "mse_outside", *parts], "metrics")
    rows = mc.first_pass(rows)
    rows = rows.loc[rows[["mse_outside", *parts]].notna().all(axis=1)]
    labels = mc.variant_labels(rows)
    strengths = mc.strengths(rows)
    fig, axes, ncols = mc.panels(len(labels), 3, 3.6, 2.9, sharey=True)
    summary: dict[str, Any] = {}
    for ax, (variant, label) in zip(axes, labels.items(), strict=True):
        mine = rows.loc[rows["variant"] == variant]
        summary[variant] = {"label": label}
        for x, strength in enumerate(strengths):
            at = mine.loc[mine["strength"] == strength]
            if not at.empty:
                summary[variant][common.number(strength)] = _stack(ax, float(x), at)
        ax.axhline(0.0, color="black", lw=0.5)
        ax.set_xticks(range(len(strengths)), [common.number(s) for s in strengths])
        ax.set_title(label, fontsize=8)
        ax.grid(True, axis="y", linewidth=0.3, alpha=0.5)
    layout.label_outer(axes, ncols, STRENGTH_LABEL, MSE_LABEL)
    handles: list[Any] = [
        Patch(color=PART_COLOURS[p], label=f"{PART_NAMES[p]} ({PARTS[p]})") for p in PARTS
    ]
    handles.append(
        Line2D([], [], ls="none", marker="D", color="black", ms=4, label="the whole: mse_outside")
    )
    handles.append(Line2D([], [], color="black", lw=0.8, label=f"error bars: {mc.band_note(rows)}"))
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8)
    layout.suptitle(
        fig,
        f"{model}: outside-mask MSE taken apart, per variant (pass 1)",
        f"{common.count(int(rows['image'].nunique()), 'image')},"
        f" {common.seeds_text(common.sorted_ints(rows['seed']))}",
    )
    return common.save(
        fig,
        path,
        {
            "figure": "attribution",
            "experiment": EXPERIMENT,
            "model": model,
            "strengths": strengths,
            "variants": summary,
            "n_rows": len(rows),
        },
    )
