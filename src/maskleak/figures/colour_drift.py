"""Why it leaks: colour drift outside the mask (mean CIEDE2000 ΔE and per-channel mean
shifts) against the mask's share of the image."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from maskleak.figures import common, layout
from maskleak.figures import mechanism_common as mc
from maskleak.figures.common import AREA_LABEL, MASK_SIZE_SWEEP
from maskleak.mechanisms import BASELINE
from maskleak.why.columns import EXPERIMENT

#: Column -> panel title and y label.
PANELS: dict[str, tuple[str, str]] = {
    "delta_e_outside": ("CIEDE2000 ΔE outside", "mean ΔE (CIEDE2000)"),
    "shift_r_outside": ("red shift outside", "mean shift (8-bit levels)"),
    "shift_g_outside": ("green shift outside", "mean shift (8-bit levels)"),
    "shift_b_outside": ("blue shift outside", "mean shift (8-bit levels)"),
}
COLUMNS = ("mask_id", "area_frac", *PANELS)
#: Experiment -> (line style, legend name): the mask-size sweep's curves, the mechanism
#: sweep's points (it has few radii).
EXPERIMENTS: dict[str, tuple[str, str]] = {
    MASK_SIZE_SWEEP: ("-o", "mask-size sweep"),
    EXPERIMENT: ("s", "mechanism sweep"),
}


def _rows(metrics: pd.DataFrame, model: str) -> pd.DataFrame:
    """The model's baseline pass-1 rows of the mechanism sweep and, when the run has
    them, of the mask-size sweep."""
    rows = [mc.first_pass(mc.rows_of(metrics, model, COLUMNS, "metrics"), BASELINE)]
    in_sweep = (metrics["experiment"] == MASK_SIZE_SWEEP) & (metrics["model"] == model)
    if in_sweep.any():
        found = mc.rows_of(metrics, model, COLUMNS, "metrics", MASK_SIZE_SWEEP)
        rows.append(mc.first_pass(found, BASELINE))
    return pd.concat(rows, ignore_index=True)


def colour_drift(metrics: pd.DataFrame, model: str, path: str | os.PathLike[str]) -> Figure:
    """Four panels: mean ``delta_e_outside`` and ``shift_{r,g,b}_outside`` against the
    mask's share of the image (``area_frac``, mean over the images for each mask), one
    colour per strength, for the baseline's first pass: the mask-size sweep's rows as
    curves (when the run has them for this model) and the mechanism sweep's as squares;
    95 % t-bands (error bars for the squares) over the images."""
    rows = _rows(metrics, model)
    experiments = [e for e in EXPERIMENTS if (rows["experiment"] == e).any()]
    strengths = mc.strengths(rows)
    colours = mc.strength_colours(strengths)
    fig, axes, ncols = mc.panels(len(PANELS), 4, 3.2, 3.0)
    summary: dict[str, Any] = {}
    for ax, (column, (title, ylabel)) in zip(axes, PANELS.items(), strict=True):
        for experiment in experiments:
            style = EXPERIMENTS[experiment][0]
            mine = rows.loc[rows["experiment"] == experiment]
            area = mine.groupby("mask_id", sort=True)["area_frac"].mean()
            for strength in strengths:
                at = mine.loc[mine["strength"] == strength]
                if at.empty:
                    continue
                band = mc.image_band(at, "mask_id", column)
                xs = area.reindex(band.index).to_numpy(dtype=np.float64)
                # Any mask family: the curve runs along the masks' areas.
                order = np.argsort(xs, kind="stable")
                band, xs = band.iloc[order], xs[order]
                colour = colours[strength]
                if style == "s":
                    mean = band["mean"].to_numpy(dtype=np.float64)
                    err = np.vstack([mean - band["low"], band["high"] - mean])
                    ax.errorbar(xs, mean, yerr=err, fmt="s", color=colour, ms=5, capsize=2)
                else:
                    mc.plot_band(ax, band, xs, colour, style, mc.strength_title(strength))
                key = f"{experiment}/{common.number(strength)}/{column}"
                summary[key] = {
                    "mask_id": [str(m) for m in band.index],
                    "area_frac": xs,
                    **{k: band[k].to_numpy() for k in ("mean", "low", "high", "n")},
                }
        ax.axhline(0.0, color="black", lw=0.5)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(AREA_LABEL, fontsize=7)
        ax.set_ylabel(ylabel, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(True, linewidth=0.3, alpha=0.5)
    handles: list[Any] = [Patch(color=colours[s], label=mc.strength_title(s)) for s in strengths]
    for experiment in experiments:
        style, name = EXPERIMENTS[experiment]
        marker, line = ("s", "none") if style == "s" else ("o", "-")
        handles.append(Line2D([], [], color="0.3", marker=marker, ls=line, label=name))
    handles.append(Patch(color="0.3", alpha=0.15, label=mc.band_note(rows)))
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8)
    layout.suptitle(
        fig,
        f"{model}: colour drift outside the mask vs mask area ({BASELINE}, pass 1)",
        f"{common.count(int(rows['image'].nunique()), 'image')}; rows of "
        + " and ".join(EXPERIMENTS[e][1] for e in experiments),
    )
    return common.save(
        fig,
        path,
        {
            "figure": "colour_drift",
            "model": model,
            "experiments": experiments,
            "strengths": strengths,
            "curves": summary,
            "n_rows": len(rows),
        },
    )
