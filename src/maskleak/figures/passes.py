"""Why it leaks: how the outside error compounds when the output is inpainted again."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from maskleak.errors import InputError
from maskleak.figures import common, layout
from maskleak.figures import mechanism_common as mc
from maskleak.figures.common import MSE_LABEL
from maskleak.why.columns import EXPERIMENT


def passes(metrics: pd.DataFrame, model: str, path: str | os.PathLike[str]) -> Figure:
    """One panel per variant with several passes: mean ``mse_outside`` against the pass
    number (1..N), one line per strength with its 95 % t-band over the images, and the
    VAE floor (``mse_outside_vae``, mean over the images, dotted) in the same colour.
    InputError if no variant ran more than one pass."""
    rows = mc.rows_of(metrics, model, ["mse_outside", "mse_outside_vae"], "metrics")
    last = rows.groupby("variant", sort=False)["pass"].max()
    variants = [str(v) for v, n in last.items() if int(n) > 1]
    if not variants:
        raise InputError(f"metrics table has no variant of model {model!r} with several passes")
    strengths = mc.strengths(rows)
    colours = mc.strength_colours(strengths)
    fig, axes, ncols = mc.panels(len(variants), 3, 3.8, 3.0, sharey=True)
    summary: dict[str, Any] = {}
    for i, (ax, variant) in enumerate(zip(axes, variants, strict=True)):
        mine = rows.loc[rows["variant"] == variant]
        summary[variant] = {}
        for strength in strengths:
            at = mine.loc[mine["strength"] == strength]
            band = mc.image_band(at, "pass", "mse_outside")
            xs = band.index.to_numpy(dtype=np.float64)
            mc.plot_band(ax, band, xs, colours[strength], "-o", mc.strength_title(strength))
            floor = mc.image_band(at, "pass", "mse_outside_vae")
            ax.plot(xs, floor["mean"], ":", color=colours[strength], lw=1.0)
            summary[variant][common.number(strength)] = mc.record_band(band)
        ax.set_xticks(common.sorted_ints(mine["pass"]))
        ax.set_title(f"variant {variant}", fontsize=9)
        ax.set_xlabel("pass (the output inpainted again)", fontsize=7)
        if i % ncols == 0:
            ax.set_ylabel(MSE_LABEL, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(True, linewidth=0.3, alpha=0.5)
    handles: list[Any] = [
        Line2D([], [], color=colours[s], marker="o", ms=3, label=mc.strength_title(s))
        for s in strengths
    ]
    handles.append(Line2D([], [], color="0.3", ls=":", label="VAE floor (mse_outside_vae)"))
    handles.append(Patch(color="0.3", alpha=0.15, label=mc.band_note(rows)))
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    layout.suptitle(
        fig,
        f"{model}: outside-mask MSE over repeated passes",
        f"{common.count(int(rows['image'].nunique()), 'image')},"
        f" {common.seeds_text(common.sorted_ints(rows['seed']))}",
    )
    return common.save(
        fig,
        path,
        {
            "figure": "passes",
            "experiment": EXPERIMENT,
            "model": model,
            "variants": summary,
            "n_rows": len(rows),
        },
    )
