"""Thesis Figs 4.4-4.9: one image at the strength where its outside-mask MSE is highest."""

from __future__ import annotations

import os

import pandas as pd
from matplotlib.figure import Figure

from maskleak.figures import common, heatmaps
from maskleak.figures.common import STRENGTH_SWEEP
from maskleak.figures.heatmaps import HEATMAP_PERCENTILE, SQERR_LABEL


def worst_case(
    metrics: pd.DataFrame, model: str, image: str, path: str | os.PathLike[str]
) -> Figure:
    """Thesis Figs 4.4-4.9: the strength-sweep inpainting of ``image`` with the highest
    ``mse_outside`` (ties: lowest strength, then lowest seed): original, inpainted, and
    the per-pixel squared-error heatmap with the mask outline."""
    cols = [
        *common.SWEEP_COLUMNS,
        "steps_run",
        "mode",
        "mse_outside",
        "mse_outside_thesis",
        *heatmaps.PATH_COLUMNS,
    ]
    sel = common.select(metrics, STRENGTH_SWEEP, model, cols, image=image)
    ranked = sel.sort_values(
        ["mse_outside", "strength", "seed"],
        ascending=[False, True, True],
        na_position="last",
        kind="mergesort",
    )
    row = ranked.iloc[0]
    original, inpainted, region = heatmaps.load_triplet(row)
    error = heatmaps.squared_error_map(original, inpainted)
    vmax = heatmaps.heat_vmax([error], [region])
    strength = float(row["strength"])
    h, w = region.shape
    fig = common.new_figure(max(10.0, 3 * 3.6 * w / max(h, 1) * 0.9), 4.6)
    axes = fig.subplots(1, 3)
    heatmaps.show_image(axes[0], original, f"original ({w}×{h} px)")
    heatmaps.show_image(axes[1], inpainted, f"inpainted (strength {common.number(strength)})")
    im = heatmaps.draw_heatmap(axes[2], error, region, vmax)
    axes[2].set_title("squared error outside mask\n(inside: grey)", fontsize=9)
    cbar = fig.colorbar(im, ax=axes[2], shrink=0.85, extend="max")
    cbar.set_label(SQERR_LABEL, fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    fig.suptitle(
        f"{model} · {image}: highest outside-mask MSE at strength {common.number(strength)},"
        f" seed {int(row['seed'])}, {int(row['steps_run'])}/{int(row['steps'])} steps\n"
        f"mse_outside = {float(row['mse_outside']):.3f}, mse_outside_thesis ="
        f" {float(row['mse_outside_thesis']):.3f}  ((8-bit level)²);"
        f" colour scale ends at the {HEATMAP_PERCENTILE:g}th percentile outside",
        fontsize=10,
    )
    return common.save(
        fig,
        path,
        {
            "figure": "worst_case",
            "thesis_figure": "4.4-4.9",
            "experiment": STRENGTH_SWEEP,
            "model": model,
            "image": image,
            "strength": strength,
            "seed": int(row["seed"]),
            "steps": int(row["steps"]),
            "steps_run": int(row["steps_run"]),
            "mode": str(row["mode"]),
            "mse_outside": float(row["mse_outside"]),
            "mse_outside_thesis": float(row["mse_outside_thesis"]),
            "image_path": str(row["image_path"]),
            "mask_path": str(row["mask_path"]),
            "inpainted_path": str(row["inpainted_path"]),
            "heatmap_vmax": vmax,
            "heatmap_percentile": HEATMAP_PERCENTILE,
        },
    )
