"""Why it leaks: outside error against distance from the mask edge, per strength and
variant, with the VAE floor; from the profile table's distance bins."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from maskleak.errors import InputError
from maskleak.figures import common, layout
from maskleak.figures import mechanism_common as mc
from maskleak.figures.common import MSE_LABEL
from maskleak.mechanisms import BASELINE
from maskleak.why.columns import EXPERIMENT
from maskleak.why.variants import variant_order

DISTANCE = "distance"
COLUMNS = ("kind", "bin", "lo", "hi", "mse", "mse_vae")


def distance_profile(profile: pd.DataFrame, model: str, path: str | os.PathLike[str]) -> Figure:
    """One panel per strength: the mean ``mse`` in each distance bin (x: the bin's centre,
    :func:`mechanism_common.bin_centre`, log scale) for every variant (pass 1; baseline
    solid black, the others dashed), with 95 % t-bands over the images, and the VAE
    floor (``mse_vae`` of the baseline rows) dashed grey. Bins without pixels (NaN
    ``mse``) are left out."""
    rows = mc.rows_of(profile, model, COLUMNS, "profile")
    rows = mc.first_pass(rows.loc[rows["kind"] == DISTANCE]).copy()
    if rows.empty:
        raise InputError(f"profile table has no {DISTANCE} rows for model {model!r}")
    bins = rows.groupby("bin", sort=True)[["lo", "hi"]].first()
    centres = {int(b): mc.bin_centre(float(r.lo), float(r.hi)) for b, r in bins.iterrows()}
    rows["x"] = rows["bin"].map(centres)
    variants = variant_order(rows)
    styles = mc.variant_styles(variants)
    strengths = mc.strengths(rows)
    fig, axes, ncols = mc.panels(len(strengths), 3, 3.8, 3.0, sharey=True)
    summary: dict[str, Any] = {}
    for i, (ax, strength) in enumerate(zip(axes, strengths, strict=True)):
        at = rows.loc[rows["strength"] == strength]
        per_strength: dict[str, Any] = {}
        for variant in variants:
            colour, style = styles[variant]
            band = mc.image_band(at.loc[at["variant"] == variant], "x", "mse")
            mc.plot_band(ax, band, band.index.to_numpy(), colour, style, variant)
            per_strength[variant] = mc.record_band(band)
        floor = mc.image_band(at.loc[at["variant"] == BASELINE], "x", "mse_vae")
        ax.plot(floor.index, floor["mean"], ":", color=mc.FLOOR_COLOUR, lw=1.4)
        per_strength["vae_floor"] = mc.record_band(floor)
        summary[common.number(strength)] = per_strength
        ax.set_xscale("log")
        ax.set_xticks(list(centres.values()), [mc.bin_label(r.lo, r.hi) for r in bins.itertuples()])
        ax.minorticks_off()
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.set_title(mc.strength_title(strength), fontsize=9)
        ax.set_xlabel(mc.DISTANCE_LABEL, fontsize=7)
        if i % ncols == 0:
            ax.set_ylabel(MSE_LABEL, fontsize=7)
        ax.grid(True, linewidth=0.3, alpha=0.5)
    handles: list[Any] = [
        Line2D([], [], color=styles[v][0], ls=styles[v][1][:-1], marker="o", ms=3, label=v)
        for v in variants
    ]
    handles.append(
        Line2D([], [], color=mc.FLOOR_COLOUR, ls=":", lw=1.4, label="VAE floor (mse_vae)")
    )
    handles.append(Patch(color="black", alpha=0.15, label=mc.band_note(rows)))
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    layout.suptitle(
        fig,
        f"{model}: outside-mask MSE by distance from the mask edge (pass 1)",
        f"{common.count(int(rows['image'].nunique()), 'image')},"
        f" {common.seeds_text(common.sorted_ints(rows['seed']))}",
    )
    return common.save(
        fig,
        path,
        {
            "figure": "distance_profile",
            "experiment": EXPERIMENT,
            "model": model,
            "bins": {
                str(b): [float(r.lo), float(r.hi), centres[int(b)]] for b, r in bins.iterrows()
            },
            "variants": variants,
            "per_strength": summary,
            "n_rows": len(rows),
        },
    )
