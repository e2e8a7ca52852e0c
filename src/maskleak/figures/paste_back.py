"""Why it leaks: the exact-preservation fix (pasting the original's pixels back) — the
outside error it removes beside what it costs at the mask edge: the seam, measured as how
much sharper the step across the edge is than the original's own there
(``seam_step_excess``; :mod:`maskleak.metrics.seam`)."""

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
from maskleak.figures.common import STRENGTH_LABEL
from maskleak.mechanisms import BASELINE, PASTE_NONE
from maskleak.why.columns import EXPERIMENT, PAIR_KEYS
from maskleak.why.labels import value_label

COLUMNS = ("mask_id", "paste_back", "paste_blur_px", "mse_outside", "seam_step_excess")
#: Panel -> (column of the paired table, y label).
PANELS: dict[str, tuple[str, str]] = {
    "outside error removed (gain)": (
        "gain",
        "baseline − variant mse_outside ((8-bit level)²)",
    ),
    "seam cost: step across the mask edge": (
        "seam_cost",
        "variant − baseline seam_step_excess (8-bit level)",
    ),
}


def _setting(rows: pd.DataFrame) -> str:
    """``hard`` or ``soft, blur 4 px``, from one variant's rows."""
    mode = str(rows["paste_back"].iloc[0])
    if mode == "soft":
        return f"soft, blur {value_label(rows['paste_blur_px'].iloc[0])} px"
    return mode


def _pairs(rows: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The variant's pass-1 rows matched with the baseline's on image, mask, strength
    and seed: ``gain`` (baseline − variant mse_outside) and ``seam_cost`` (variant −
    baseline seam_step_excess: how much sharper than the baseline's the step across the
    mask edge is, beyond the original's own step there)."""
    keys = list(PAIR_KEYS)
    wanted = [*keys, "mse_outside", "seam_step_excess"]
    base = mc.first_pass(rows, BASELINE)[wanted]
    mine = mc.first_pass(rows, variant)[wanted]
    pairs = mine.merge(base, on=keys, suffixes=("", "_base"))
    pairs["gain"] = pairs["mse_outside_base"] - pairs["mse_outside"]
    pairs["seam_cost"] = pairs["seam_step_excess"] - pairs["seam_step_excess_base"]
    return pairs


def paste_back(metrics: pd.DataFrame, model: str, path: str | os.PathLike[str]) -> Figure:
    """Left: the mean outside error each paste-back variant removes (baseline minus
    variant ``mse_outside``); right: the seam it costs, the mean increase of
    ``seam_step_excess`` (the step across the mask edge beyond the original's own);
    both per strength, paired with the baseline on image, mask, strength and seed (pass
    1), bars per setting with the 95 % t-interval over the images of the paired
    difference (each image's seeds averaged first). InputError if no variant pastes."""
    rows = mc.rows_of(metrics, model, COLUMNS, "metrics")
    first = mc.first_pass(rows)
    variants = [
        str(v)
        for v in pd.unique(first["variant"])
        if str(first.loc[first["variant"] == v, "paste_back"].iloc[0]) != PASTE_NONE
    ]
    if not variants:
        raise InputError(f"metrics table has no paste-back variant of model {model!r}")
    strengths = mc.strengths(first)
    xs = np.arange(len(strengths), dtype=np.float64)
    width = 0.8 / len(variants)
    fig = common.new_figure(2.0 + 1.2 * len(strengths) * len(variants) + 2.0, 3.9)
    axes = fig.subplots(1, 2)
    summary: dict[str, Any] = {}
    for k, variant in enumerate(variants):
        pairs = _pairs(rows, variant)
        label = f"{variant}: {_setting(first.loc[first['variant'] == variant])}"
        summary[variant] = {"label": label, "n_pairs": len(pairs)}
        for ax, (title, (column, ylabel)) in zip(axes, PANELS.items(), strict=True):
            band = mc.image_band(pairs, "strength", column).reindex(strengths)
            mean = band["mean"].to_numpy(dtype=np.float64)
            offset = xs - 0.4 + width * (k + 0.5)
            ax.bar(offset, mean, width * 0.9, color=f"C{k % 10}", label=label)
            if (band["n"] >= 2).any():
                err = np.vstack([mean - band["low"], band["high"] - mean])
                ax.errorbar(offset, mean, yerr=err, fmt="none", ecolor="black", lw=0.8, capsize=2)
            ax.set_title(title, fontsize=9)
            ax.set_ylabel(ylabel, fontsize=7)
            summary[variant][column] = mc.record_band(band)
    for ax in axes:
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_xticks(xs, [common.number(s) for s in strengths])
        ax.set_xlabel(STRENGTH_LABEL, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(True, axis="y", linewidth=0.3, alpha=0.5)
    handles: list[Any] = [
        Patch(color=f"C{k % 10}", label=summary[v]["label"]) for k, v in enumerate(variants)
    ]
    handles.append(
        Line2D([], [], color="black", lw=0.8, label=f"error bars: {mc.band_note(first)}")
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8)
    layout.suptitle(
        fig,
        f"{model}: paste-back, gain vs seam cost (pass 1, paired with {BASELINE})",
        f"{common.count(int(first['image'].nunique()), 'image')},"
        f" {common.seeds_text(common.sorted_ints(first['seed']))}",
    )
    return common.save(
        fig,
        path,
        {
            "figure": "paste_back",
            "experiment": EXPERIMENT,
            "model": model,
            "strengths": strengths,
            "variants": summary,
        },
    )
