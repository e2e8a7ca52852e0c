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

from maskleak.errors import InputError
from maskleak.figures.layout import fit_canvas
from maskleak.provenance import META_KEY, atomic_path, canonical_json, versions
from maskleak.trends import per_image_mean

DPI = 150
STRENGTH_SWEEP = "strength_sweep"
MASK_SIZE_SWEEP = "mask_size_sweep"

#: Metrics columns every sweep figure reads.
SWEEP_COLUMNS = ("image", "strength", "seed", "steps")

# Axis labels (with units) shared by the figures.
STRENGTH_LABEL = "strength (fraction of schedule)"
AREA_LABEL = "disc area / image area"
MSE_LABEL = "outside-mask MSE ((8-bit level)²)"
THESIS_MSE_LABEL = "thesis uint8 MSE ((8-bit level)², wraps mod 256)"


def read_table(path: str | os.PathLike[str], name: str) -> pd.DataFrame:
    """The Parquet table at ``path``; InputError naming it (``name``: metrics, trends)
    when it is missing or unreadable."""
    where = os.fspath(path)
    try:
        return pd.read_parquet(where)
    except FileNotFoundError:
        raise InputError(f"{name} table {where} not found; rerun the {name} rule") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{name} table {where} is not readable Parquet: {exc}") from exc


def require_columns(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{name} table lacks column(s) {missing}")


def select(
    metrics: pd.DataFrame,
    experiment: str,
    model: str | None,
    columns: Sequence[str],
    image: str | None = None,
) -> pd.DataFrame:
    """Rows of ``metrics`` for one experiment (and model, image); InputError if none."""
    require_columns(metrics, ["experiment", "model", *columns], "metrics")
    keep = metrics["experiment"] == experiment
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


def across_images(sel: pd.DataFrame, x: str, column: str) -> pd.DataFrame:
    """Mean over seeds per image, then mean, std (ddof 1; 0 for one image) and count
    across images, indexed by ``x``."""
    per_image = per_image_mean(sel, column, x)
    grouped = per_image.groupby(x, sort=True)[column]
    out = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.count()})
    out["std"] = out["std"].fillna(0.0)
    return out


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
