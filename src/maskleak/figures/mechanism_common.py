"""What the "Why it leaks" figures share: their rows of the mechanism sweep, the mean over
images with its t-band, variant labels and styles, and distance-bin positions.

Every curve is the mean over images of each image's mean over its seeds (and any other
repeats at that x), with the 95 % Student-t band over the images' means
(:func:`maskleak.figures.common.mean_band`); with one image there is no band and the
legend says so."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from maskleak.figures import common, layout
from maskleak.mechanisms import BASELINE
from maskleak.why.columns import EXPERIMENT
from maskleak.why.labels import variant_label
from maskleak.why.variants import changes, sweep_rows, variant_order

#: Keys of a row of either table (metrics, profile) that every mechanism figure reads.
KEYS: tuple[str, ...] = ("image", "seed", "strength", "variant", "pass")

FLOOR_COLOUR = "0.45"
DISTANCE_LABEL = "distance from the mask edge (px, log scale; bin centres)"
TEXTURE_LABEL = "texture decile of the original\n(1 smoothest, 10 most textured; profile bin + 1)"


def rows_of(
    table: pd.DataFrame,
    model: str,
    columns: Sequence[str],
    name: str,
    experiment: str = EXPERIMENT,
) -> pd.DataFrame:
    """``model``'s rows of ``experiment`` in the ``name`` table (metrics, profile), with
    :data:`KEYS` and ``columns``; InputError naming a missing column or saying there are
    no rows."""
    return sweep_rows(table, [*KEYS, *columns], name, model, experiment)


def first_pass(rows: pd.DataFrame, variant: str | None = None) -> pd.DataFrame:
    """Pass-1 rows (of ``variant``, if given)."""
    keep = rows["pass"] == 1
    if variant is not None:
        keep &= rows["variant"] == variant
    return rows.loc[keep]


def image_band(rows: pd.DataFrame, x: str, column: str) -> pd.DataFrame:
    """Mean over images of each image's mean of ``column`` at each ``x``, with the
    t-band over the images (columns ``mean``, ``low``, ``high``, ``n``); NaN values of
    ``column`` are left out."""
    valid = rows.loc[rows[column].notna() & rows[x].notna()]
    per_image = valid.groupby(["image", x], sort=True)[column].mean().reset_index()
    return common.mean_band(per_image, x, column)


def plot_band(
    ax: Axes,
    stats: pd.DataFrame,
    xs: np.ndarray,
    colour: str,
    style: str,
    label: str,
    width: float = 1.3,
) -> None:
    """A mean curve and, where it has one, its band."""
    ax.plot(xs, stats["mean"], style, color=colour, lw=width, ms=3, label=label)
    if (stats["n"] >= 2).any():
        ax.fill_between(xs, stats["low"], stats["high"], color=colour, alpha=0.15, lw=0)


def panels(
    n: int, max_cols: int, width: float, height: float, **kwargs: Any
) -> tuple[Figure, list[Axes], int]:
    """A figure of ``n`` panels on a grid of at most ``max_cols`` columns, each panel
    ``width`` x ``height`` inches (plus room for the title and legend): (figure, the
    visible panels, columns). Unused cells are hidden."""
    nrows, ncols = layout.grid_shape(n, max_cols)
    fig = common.new_figure(width * ncols + 0.4, height * nrows + 1.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, **kwargs)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n]), ncols


def variant_styles(variants: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Variant -> (colour, line style): the baseline solid black, the others dashed in
    the colour cycle."""
    styles = {}
    others = [v for v in variants if v != BASELINE]
    for variant in variants:
        if variant == BASELINE:
            styles[variant] = ("black", "-o")
        else:
            styles[variant] = (f"C{others.index(variant) % 10}", "--o")
    return styles


def variant_labels(rows: pd.DataFrame) -> dict[str, str]:
    """Variant -> legend label with what it changes (needs the mechanism columns)."""
    return {v: variant_label(v, changes(rows, v)) for v in variant_order(rows)}


def strengths(rows: pd.DataFrame) -> list[float]:
    return sorted(float(s) for s in pd.unique(rows["strength"]))


def strength_title(strength: float) -> str:
    return f"strength {common.number(strength)}"


def strength_colours(values: Sequence[float]) -> dict[float, str]:
    """Strength -> colour: the colour cycle, in strength order."""
    return {s: f"C{i % 10}" for i, s in enumerate(values)}


def bin_centre(lo: float, hi: float) -> float:
    """Where a distance bin (lo, hi] px sits on a log axis: its geometric centre; hi / 2
    for the first bin (lo = 0), 2·lo for the open last one (hi = ∞)."""
    if lo <= 0:
        return hi / 2
    if math.isinf(hi):
        return 2 * lo
    return math.sqrt(lo * hi)


def bin_label(lo: float, hi: float) -> str:
    """``0–4``, ``> 128``."""
    if math.isinf(hi):
        return f"> {common.number(lo)}"
    return f"{common.number(lo)}–{common.number(hi)}"


def band_note(rows: pd.DataFrame) -> str:
    """The legend's note on the bands: what they are over, or why there are none."""
    return common.band_label(int(rows["image"].nunique()), "image")


def record_band(stats: pd.DataFrame) -> dict[str, Any]:
    """A band as the PNG record keeps it."""
    return {
        "x": stats.index.to_numpy(dtype=np.float64),
        **{k: stats[k].to_numpy() for k in ("mean", "low", "high", "n")},
    }
