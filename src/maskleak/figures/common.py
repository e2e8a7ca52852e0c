"""What every figure shares: reading the tables, picking rows, describing them in
titles, and writing the PNG with its record."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.special import stdtrit

from maskleak.as_shipped import experiment_rows
from maskleak.bootstrap import LEVEL
from maskleak.errors import InputError
from maskleak.figures.layout import fit_canvas
from maskleak.provenance import META_KEY, atomic_path, canonical_json, require_columns, versions
from maskleak.trends import per_image_mean

DPI = 150
STRENGTH_SWEEP = "strength_sweep"
MASK_SIZE_SWEEP = "mask_size_sweep"

#: Metrics columns every sweep figure reads.
SWEEP_COLUMNS = ("image", "strength", "seed", "steps")

# Axis labels (with units) shared by the figures.
STRENGTH_LABEL = "strength (fraction of schedule)"
AREA_LABEL = "mask area / image area"
#: The study's x for its white-disc number: the analytic disc share (r floored).
AREA_THESIS_LABEL = "π r² / (w·h)"
MSE_LABEL = "outside-mask MSE ((8-bit level)²)"
THESIS_MSE_LABEL = "thesis uint8 MSE ((8-bit level)², wraps mod 256)"


def select(
    metrics: pd.DataFrame,
    experiment: str,
    model: str | None,
    columns: Sequence[str],
    image: str | None = None,
) -> pd.DataFrame:
    """Rows of ``metrics`` for one experiment (and model, image); InputError if none."""
    require_columns(metrics, ["experiment", "model", *columns], "metrics")
    keep = experiment_rows(metrics, experiment)
    what = f"experiment {experiment!r}"
    if model is not None:
        keep &= metrics["model"] == model
        what += f", model {model!r}"
    if image is not None:
        require_columns(metrics, ["image"], "metrics")
        keep &= metrics["image"].astype(str) == str(image)
        what += f", image {image!r}"
    sel = metrics.loc[keep]
    if sel.empty:
        raise InputError(f"metrics has no rows for {what}")
    return sel.reset_index(drop=True)


def _natural_key(name: str) -> list[Any]:
    """Sort key that puts ``Landscape_2`` before ``Landscape_10``."""
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", str(name))]


def sorted_names(values: Any) -> list[str]:
    return sorted((str(v) for v in pd.unique(values)), key=_natural_key)


def sorted_ints(values: Any) -> list[int]:
    return sorted(int(v) for v in pd.unique(values))


def count(n: int, noun: str, plural: str = "") -> str:
    """``1 seed``, ``2 seeds``; ``2 radii`` with ``plural="radii"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def number(value: float) -> str:
    """A value as a person writes it: 0.5, 80, 31.9592."""
    return f"{float(value):g}"


def numbers(values: Sequence[float], unit: str = "") -> str:
    """``20, 40, 60 %``."""
    text = ", ".join(number(v) for v in values)
    return f"{text} {unit}" if unit else text


def steps_text(sel: pd.DataFrame) -> str:
    return "/".join(str(s) for s in sorted_ints(sel["steps"])) + " steps"


def seeds_text(seeds: Sequence[int], multi: str = "mean over") -> str:
    """``seed 0`` or ``mean over 3 seeds``."""
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"{multi} {count(len(seeds), 'seed')}"


def mean_band(values: pd.DataFrame, x: str, column: str, level: float = LEVEL) -> pd.DataFrame:
    """Per ``x``: the mean of ``column`` over the rows of ``values`` (one row per unit, e.g.
    per image or per seed), with a two-sided Student-t confidence interval of that mean,
    mean ± t(level, n − 1) · sd / √n (sd with ddof 1), and n. Indexed by ``x``, columns
    ``mean``, ``low``, ``high``, ``n``; ``low``/``high`` NaN where n < 2 (no band)."""
    grouped = values.groupby(x, sort=True)[column]
    out = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1), "n": grouped.count()})
    n = out["n"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        # stdtrit is scipy.stats.t.ppf's own kernel, without importing scipy.stats
        # (half a second in each of the default run's ~50 figure jobs).
        t = stdtrit(n - 1, 0.5 + level / 2)  # NaN for n < 2
        half = t * out["sd"].to_numpy(dtype=np.float64) / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    out["low"] = out["mean"] - half
    out["high"] = out["mean"] + half
    return out[["mean", "low", "high", "n"]]


def across_images(sel: pd.DataFrame, x: str, column: str) -> pd.DataFrame:
    """The mean over images of each image's mean over seeds, indexed by ``x``, with the
    95 % t-interval over the images' seed means (:func:`mean_band`; no band for one
    image): columns ``mean``, ``low``, ``high``, ``n`` (images)."""
    return mean_band(per_image_mean(sel, column, x), x, column)


def across_seeds(rows: pd.DataFrame, x: str, column: str) -> pd.DataFrame:
    """For one image's ``rows``: the mean over seeds at each ``x`` with the 95 % t-interval
    over the seeds (:func:`mean_band`; no band for one seed). Repeats of a seed at one x
    (e.g. two step counts) are averaged first, so that n counts seeds."""
    valid = rows.loc[rows[column].notna() & rows[x].notna()]
    per_seed = valid.groupby([x, "seed"], sort=True)[column].mean().reset_index()
    return mean_band(per_seed, x, column)


def band_label(n: int, unit: str, plural: str = "") -> str:
    """Legend text of a confidence band over ``n`` units: ``95 % CI (t) over 3 seeds``,
    or what replaces it with one unit: ``no band: only 1 seed``."""
    if n < 2:
        return f"no band: only {count(n, unit, plural)}"
    return f"{LEVEL * 100:g} % CI (t) over {count(n, unit, plural)}"


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def jsonable(obj: Any) -> Any:
    """Plain-Python copy of ``obj`` for canonical_json (numpy scalars, NaN -> None)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def save(fig: Figure, path: str | os.PathLike[str], record: Mapping[str, Any]) -> Figure:
    """Grow ``fig`` until every text lies on its canvas, then write it atomically as a
    deterministic PNG with ``record`` + versions. Returns ``fig`` (for inspection)."""
    fit_canvas(fig)
    text = canonical_json(jsonable({**record, "versions": versions()}))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None, META_KEY: text})
    return fig
