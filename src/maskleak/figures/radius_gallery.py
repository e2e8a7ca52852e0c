"""Thesis Fig 4.11: one image inpainted at several mask radii."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from maskleak.errors import InputError
from maskleak.figures import common, heatmaps, layout
from maskleak.figures.common import MASK_SIZE_SWEEP
from maskleak.figures.heatmaps import HEATMAP_PERCENTILE, SQERR_LABEL


def nearest(available: Sequence[float], wanted: float) -> float:
    """The available value nearest to ``wanted``; ties go to the lower one."""
    values = np.sort(np.asarray(available, dtype=np.float64))
    return float(values[int(np.argmin(np.abs(values - float(wanted))))])


def same(a: float, b: float) -> bool:
    """Equal up to the precision of a config value (file labels keep 4 decimals)."""
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9)


def all_available(chosen: Sequence[float], wanted: Sequence[float]) -> bool:
    """Whether every wanted value was drawn as itself, not as its nearest neighbour."""
    return all(any(same(w, c) for c in chosen) for w in wanted)


def _title_detail(
    strength: float, wanted_strength: float, radii: list[float], wanted_radii: Sequence[float]
) -> str:
    """What was drawn, and what was asked for where that was not available."""
    text = f"strength {common.number(strength)}"
    if not same(strength, wanted_strength):
        text += f" (nearest available to {common.number(wanted_strength)})"
    text += f", radii {common.numbers(radii, '%')}"
    if not all_available(radii, wanted_radii):
        text += f" (nearest available to {common.numbers(wanted_radii, '%')})"
    return text


def radius_gallery(
    metrics: pd.DataFrame,
    model: str,
    image: str,
    strength: float,
    radii: Sequence[float],
    path: str | os.PathLike[str],
) -> Figure:
    """Thesis Fig 4.11: ``image`` inpainted at several mask radii, one row per radius:
    the inpainted image and its squared-error heatmap (one colour scale for all rows).

    Uses the mask-size-sweep strength nearest to ``strength`` and, for each requested
    radius percentage, the nearest available ``radius_pct`` (duplicates dropped, request
    order kept), at the lowest seed; discs only (rows of other mask families are left
    out). The title names the strength and radii drawn, and
    the requested ones where they differ."""
    if len(radii) == 0:
        raise InputError("radius_gallery needs at least one radius percentage in radii")
    cols = [*common.SWEEP_COLUMNS, "radius_pct", "radius_px", "area_frac", "mse_outside"]
    cols += heatmaps.PATH_COLUMNS
    sel = common.select(metrics, MASK_SIZE_SWEEP, model, cols, image=image)
    # A gallery of the study's discs: other mask families and dilated discs (radius_px
    # NaN) are not shown.
    sel = sel.loc[sel["radius_px"].notna()]
    if sel.empty:
        raise InputError(f"the mask-size sweep of model {model!r} has no disc masks to show")
    chosen_strength = nearest(pd.unique(sel["strength"]), strength)
    at = sel.loc[sel["strength"] == chosen_strength]
    chosen_radii: list[float] = []
    for r in radii:
        near = nearest(pd.unique(at["radius_pct"]), r)
        if near not in chosen_radii:
            chosen_radii.append(near)
    rows = []
    for r in chosen_radii:
        cands = at.loc[at["radius_pct"] == r].sort_values("seed", kind="mergesort")
        rows.append(cands.iloc[0])
    loaded = [heatmaps.load_triplet(row) for row in rows]
    errors = [heatmaps.squared_error_map(o, i) for o, i, _ in loaded]
    regions = [reg for _, _, reg in loaded]
    vmax = heatmaps.heat_vmax(errors, regions)
    h, w = regions[0].shape
    panel_h = 2.6
    panel_w = panel_h * w / max(h, 1)
    fig = common.new_figure(2 * panel_w + 2.4, (panel_h + 0.35) * len(rows) + 1.0)
    axes = fig.subplots(len(rows), 2, squeeze=False)
    im: Any = None
    for k, (row, (_, inpainted, region), error) in enumerate(
        zip(rows, loaded, errors, strict=True)
    ):
        ax_img, ax_err = axes[k]
        # Row label as the titles of both panels (a y-label would be clipped by the
        # fixed-aspect image axes under constrained layout).
        label = (
            f"inpainted, radius {common.number(float(row['radius_pct']))} %"
            f" (area {float(row['area_frac']):.3f})\nmse_outside {float(row['mse_outside']):.2f}"
        )
        heatmaps.show_image(ax_img, inpainted, label)
        im = heatmaps.draw_heatmap(ax_err, error, region, vmax)
        ax_err.set_title("squared error outside mask\n(inside: grey)", fontsize=9)
    cbar = fig.colorbar(im, ax=axes[:, 1].tolist(), shrink=0.9, extend="max")
    cbar.set_label(SQERR_LABEL, fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    seeds = [int(row["seed"]) for row in rows]
    layout.suptitle(
        fig,
        f"{model} · {image}: mask-size sweep",
        f"{_title_detail(chosen_strength, strength, chosen_radii, radii)};"
        f" {common.steps_text(sel)}, seed {'/'.join(str(s) for s in sorted(set(seeds)))}",
    )
    return common.save(
        fig,
        path,
        {
            "figure": "radius_gallery",
            "thesis_figure": "4.11",
            "experiment": MASK_SIZE_SWEEP,
            "model": model,
            "image": image,
            "strength_requested": float(strength),
            "strength": chosen_strength,
            "radii_requested": [float(r) for r in radii],
            "radii": chosen_radii,
            "nearest_available": not (
                same(chosen_strength, strength) and all_available(chosen_radii, radii)
            ),
            "seeds": seeds,
            "steps": common.sorted_ints(sel["steps"]),
            "mse_outside": [float(row["mse_outside"]) for row in rows],
            "inpainted_paths": [str(row["inpainted_path"]) for row in rows],
            "heatmap_vmax": vmax,
            "heatmap_percentile": HEATMAP_PERCENTILE,
        },
    )
