"""Why it leaks: outside error by texture decile of the original, every image, with each
image's rank correlation between texture and error (claim 4 on every photograph)."""

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

TEXTURE = "texture"
COLUMNS = ("kind", "bin", "mse", "mse_vae")


def _spearman(metrics: pd.DataFrame, model: str) -> pd.DataFrame:
    """Each image's ``texture_spearman`` (baseline, pass 1), mean over seeds, per
    strength: columns image, strength, texture_spearman."""
    rows = mc.first_pass(mc.rows_of(metrics, model, ["texture_spearman"], "metrics"), BASELINE)
    return rows.groupby(["image", "strength"], sort=True)["texture_spearman"].mean().reset_index()


def texture_deciles(
    profile: pd.DataFrame, metrics: pd.DataFrame, model: str, path: str | os.PathLike[str]
) -> Figure:
    """One panel per strength (baseline, pass 1): each image's mean ``mse`` per texture
    decile (the profile's bin + 1) over its seeds (thin lines), the mean over images
    (bold, with its 95 % t-band) and the VAE floor (``mse_vae``, dotted grey). The
    legend gives each image's Spearman ρ between texture and error
    (``texture_spearman`` of the metrics table, mean over seeds) at each strength."""
    rows = mc.rows_of(profile, model, COLUMNS, "profile")
    rows = mc.first_pass(rows.loc[rows["kind"] == TEXTURE], BASELINE)
    if rows.empty:
        raise InputError(f"profile table has no {TEXTURE} rows of {BASELINE} for model {model!r}")
    # Deciles as people count them: the profile's bins 0-9 are deciles 1-10.
    rows = rows.assign(decile=rows["bin"].astype(int) + 1)
    rho = _spearman(metrics, model)
    strengths = mc.strengths(rows)
    images = common.sorted_names(rows["image"])
    colours = {image: f"C{i % 10}" for i, image in enumerate(images)}
    fig, axes, ncols = mc.panels(len(strengths), 3, 3.8, 3.0, sharey=True)
    summary: dict[str, Any] = {}
    for i, (ax, strength) in enumerate(zip(axes, strengths, strict=True)):
        at = rows.loc[rows["strength"] == strength]
        rho_at = rho.loc[rho["strength"] == strength].set_index("image")["texture_spearman"]
        per_image = {}
        for image in images:
            mine = at.loc[at["image"].astype(str) == image]
            curve = mine.groupby("decile", sort=True)["mse"].mean()
            value = rho_at.get(image, float("nan"))
            label = f"{image}: ρ = {common.number(round(float(value), 2))}"
            ax.plot(curve.index, curve.to_numpy(), "-", color=colours[image], lw=0.7, label=label)
            per_image[image] = {"mse": curve.to_numpy(), "texture_spearman": value}
        band = mc.image_band(at, "decile", "mse")
        mc.plot_band(ax, band, band.index.to_numpy(), "black", "-o", "mean over images", 2.2)
        floor = mc.image_band(at, "decile", "mse_vae")
        ax.plot(floor.index, floor["mean"], ":", color=mc.FLOOR_COLOUR, lw=1.4)
        summary[common.number(strength)] = {
            "images": per_image,
            "mean": mc.record_band(band),
            "vae_floor": mc.record_band(floor),
        }
        ax.set_xticks(sorted(int(d) for d in pd.unique(at["decile"])))
        ax.set_title(mc.strength_title(strength), fontsize=9)
        ax.set_xlabel(mc.TEXTURE_LABEL, fontsize=7)
        if i % ncols == 0:
            ax.set_ylabel(MSE_LABEL, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(True, linewidth=0.3, alpha=0.5)
        ax.legend(
            fontsize=6, loc="upper left", title="Spearman ρ (texture, error)", title_fontsize=6
        )
    handles: list[Any] = [
        Line2D([], [], color="0.3", lw=0.7, label="one image (mean over seeds)"),
        Line2D([], [], color="black", lw=2.2, marker="o", ms=3, label="mean over images"),
        Patch(color="black", alpha=0.15, label=mc.band_note(rows)),
        Line2D([], [], color=mc.FLOOR_COLOUR, ls=":", lw=1.4, label="VAE floor (mse_vae)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8)
    layout.suptitle(
        fig,
        f"{model}: outside-mask MSE by texture decile (baseline, pass 1)",
        f"{common.count(len(images), 'image')},"
        f" {common.seeds_text(common.sorted_ints(rows['seed']))}",
    )
    return common.save(
        fig,
        path,
        {
            "figure": "texture_deciles",
            "experiment": EXPERIMENT,
            "model": model,
            "images": images,
            "per_strength": summary,
            "n_rows": len(rows),
        },
    )
