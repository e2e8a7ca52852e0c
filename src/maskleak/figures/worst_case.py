"""Thesis Figs 4.4-4.9: one image at the strengths where its (wrapped) outside-mask MSE is
highest, each with the true squared-error heatmap and the study's own heatmap."""

from __future__ import annotations

import math
import os
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from maskleak.figures import common, heatmaps
from maskleak.figures.common import STRENGTH_SWEEP
from maskleak.figures.heatmaps import HEATMAP_PERCENTILE, SQERR_LABEL, STUDY_LABEL

#: How many strengths the study showed per image.
N_WORST = 3
#: The study ranked the strengths by its own number, the wrapped uint8 MSE.
RANK_COLUMN = "mse_outside_thesis"


def worst_rows(sel: pd.DataFrame, n: int = N_WORST) -> list[pd.Series]:
    """The ``n`` (or fewer, if the sweep has fewer strengths) strengths of one image's
    strength-sweep rows ``sel`` with the highest :data:`RANK_COLUMN`, highest first.

    Each strength is taken at its lowest seed (the study ran one inpainting per
    strength); ties go to the lower strength, NaN ranks last."""
    lowest_seed = sel.sort_values(["strength", "seed"], kind="mergesort").drop_duplicates(
        "strength", keep="first"
    )
    ranked = lowest_seed.sort_values(
        [RANK_COLUMN, "strength"], ascending=[False, True], na_position="last", kind="mergesort"
    )
    return [row for _, row in ranked.head(n).iterrows()]


def _half_inches(size: float) -> float:
    """``size`` (inches) rounded up to a multiple of 0.5, exact in binary floating point."""
    return math.ceil(size * 2) / 2


def worst_case(
    metrics: pd.DataFrame, model: str, image: str, path: str | os.PathLike[str]
) -> Figure:
    """Thesis Figs 4.4-4.9: the strength-sweep inpaintings of ``image`` at the 3
    strengths with the highest ``mse_outside_thesis`` (:func:`worst_rows`), one row each:
    original | inpainted | true squared error outside the mask (one colour scale for all
    rows, ending at a high percentile) | the study's heatmap (min-max normalised
    luminance difference per map, :func:`heatmaps.study_heatmap`, over the inpainting
    with a white disc). Fewer rows when the sweep has fewer strengths."""
    cols = [
        *common.SWEEP_COLUMNS,
        "steps_run",
        "mode",
        "mse_outside",
        RANK_COLUMN,
        *heatmaps.PATH_COLUMNS,
    ]
    sel = common.select(metrics, STRENGTH_SWEEP, model, cols, image=image)
    rows = worst_rows(sel)
    loaded = [heatmaps.load_triplet(row) for row in rows]
    errors = [heatmaps.squared_error_map(original, inpainted) for original, inpainted, _ in loaded]
    regions = [region for _, _, region in loaded]
    vmax = heatmaps.heat_vmax(errors, regions)
    studies = [heatmaps.study_heatmap(*triplet) for triplet in loaded]

    h, w = regions[0].shape
    panel_h = 2.4
    panel_w = panel_h * w / max(h, 1)
    # Sizes in whole half inches, so that the canvas is a whole number of pixels at 150
    # dpi (10.8 in measured 1619.99... px but was saved 1620 px wide).
    fig = common.new_figure(
        _half_inches(4 * panel_w + 1.2), _half_inches((panel_h + 0.5) * len(rows) + 1.9)
    )
    axes = fig.subplots(len(rows), 4, squeeze=False)
    im_error: Any = None
    im_study: Any = None
    for k, (row, (original, inpainted, region), error, study) in enumerate(
        zip(rows, loaded, errors, studies, strict=True)
    ):
        ax_orig, ax_inp, ax_err, ax_study = axes[k]
        strength = common.number(float(row["strength"]))
        heatmaps.show_image(ax_orig, original, f"original ({w}×{h} px)")
        heatmaps.show_image(
            ax_inp,
            inpainted,
            f"#{k + 1}: strength {strength}, seed {int(row['seed'])}\n"
            f"thesis MSE {float(row[RANK_COLUMN]):.2f}, true MSE {float(row['mse_outside']):.2f}",
        )
        im_error = heatmaps.draw_heatmap(ax_err, error, region, vmax)
        ax_err.set_title("true squared error outside mask\n(inside grey)", fontsize=9)
        im_study = heatmaps.draw_study_heatmap(ax_study, inpainted, region, study)
        ax_study.set_title(
            "study's heatmap: |Δ luminance|, min–max\nper map, 'hot' at 50 % over white disc",
            fontsize=9,
        )
    # Colour bars as insets under the last row's heatmaps: attached to the columns they
    # describe without shrinking those panels below the size of the photographs.
    for ax, im, label, extend in (
        (axes[-1, 2], im_error, f"{SQERR_LABEL}\n(one scale for all rows)", "max"),
        (axes[-1, 3], im_study, f"{STUDY_LABEL}\n(1 = that map's largest change)", "neither"),
    ):
        cax = ax.inset_axes((0.05, -0.16, 0.9, 0.06))
        cbar = fig.colorbar(im, cax=cax, orientation="horizontal", extend=extend)
        cbar.set_label(label, fontsize=8)
        cbar.ax.tick_params(labelsize=7)
    seeds = "/".join(str(s) for s in sorted({int(row["seed"]) for row in rows}))
    fig.suptitle(
        f"{model} · {image}: the {common.count(len(rows), 'strength')} with the highest thesis"
        " (wrapped uint8) outside-mask MSE\n"
        f"seed {seeds}, {common.steps_text(sel)}; true squared error: one colour scale for all"
        f" rows, ending at the {HEATMAP_PERCENTILE:g}th percentile outside the mask\n"
        "study's heatmap: luminance difference, not squared error, min–max normalised per"
        " map, so its colours are not comparable across rows or images",
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
            "ranked_by": RANK_COLUMN,
            "strengths": [float(row["strength"]) for row in rows],
            "seeds": [int(row["seed"]) for row in rows],
            "steps": common.sorted_ints(sel["steps"]),
            "steps_run": [int(row["steps_run"]) for row in rows],
            "modes": [str(row["mode"]) for row in rows],
            RANK_COLUMN: [float(row[RANK_COLUMN]) for row in rows],
            "mse_outside": [float(row["mse_outside"]) for row in rows],
            "image_path": str(rows[0]["image_path"]),
            "mask_paths": [str(row["mask_path"]) for row in rows],
            "inpainted_paths": [str(row["inpainted_path"]) for row in rows],
            "heatmap_vmax": vmax,
            "heatmap_percentile": HEATMAP_PERCENTILE,
            "study_heatmap": {
                "map": "abs(rgb2gray(a) - rgb2gray(b)), disc white in both",
                "gray_weights": list(heatmaps.STUDY_GRAY_WEIGHTS),
                "normalisation": "min-max per map",
                "cmap": heatmaps.STUDY_CMAP,
                "alpha": heatmaps.STUDY_ALPHA,
            },
        },
    )
