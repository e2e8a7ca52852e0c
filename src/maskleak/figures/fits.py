"""Trend rows (maskleak.trends) as the figures use them: find a fit, draw its curve,
record it, or say why there is none."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from maskleak.bootstrap import LEVEL
from maskleak.errors import InputError
from maskleak.figures.common import count
from maskleak.provenance import require_columns
from maskleak.trends import COLUMNS

_KEY_COLUMNS = ("experiment", "model", "scope", "image", "strength", "metric", "x", "degree")
#: A fit's values the figures record: the trends columns from degree to equation.
_RECORD_KEYS = COLUMNS[COLUMNS.index("degree") : COLUMNS.index("reason")]
_MINUS = "\u2212"


def find(
    trends: pd.DataFrame,
    *,
    experiment: str,
    model: str,
    scope: str,
    x: str,
    metric: str,
    degree: int,
    image: str = "",
    strength: float | None = None,
) -> pd.Series | None:
    """The one trends row matching the key, or None; InputError if several match."""
    require_columns(trends, _KEY_COLUMNS, "trends")
    keep = (
        (trends["experiment"] == experiment)
        & (trends["model"] == model)
        & (trends["scope"] == scope)
        & (trends["x"] == x)
        & (trends["metric"] == metric)
        & (trends["degree"] == degree)
        & (trends["image"].fillna("").astype(str) == str(image))
    )
    if strength is not None:
        keep &= np.isclose(trends["strength"].astype(float), strength, rtol=0.0, atol=1e-9)
    found = trends.loc[keep]
    if len(found) > 1:
        raise InputError(
            f"trends has {len(found)} rows for experiment {experiment!r}, model {model!r},"
            f" scope {scope!r}, image {image!r}, strength {strength!r}, metric {metric!r},"
            f" x {x!r}, degree {degree}; expected one"
        )
    return None if found.empty else found.iloc[0]


def missing_reason(fit: pd.Series | None) -> str:
    """Why ``fit`` (a trends row, or None where trends has none) cannot be drawn; empty
    when it can."""
    if fit is None:
        return "not in the trends table"
    reason = fit.get("reason", "")
    if isinstance(reason, str) and reason:
        return reason
    if not all(pd.notna(fit[k]) for k in ("c1", "c0", "x_min", "x_max")):
        return "the trends row has no coefficients"
    return ""


def curve(fit: pd.Series, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of the fitted polynomial over the fitted x range."""
    xs = np.linspace(float(fit["x_min"]), float(fit["x_max"]), n)
    c2 = float(fit["c2"]) if pd.notna(fit["c2"]) else 0.0
    return xs, (c2 * xs + float(fit["c1"])) * xs + float(fit["c0"])


def _value(value: float) -> str:
    return f"{value:.4g}".replace("-", _MINUS)


def interval_text(fit: pd.Series) -> str:
    """The fit's 95 % bootstrap intervals as one line, e.g. ``95 % CI: c2 [8.1, 11.2],
    c1 [−5.03, −3.1], c0 [39.2, 40.8] (1000 bootstrap resamples of 4 images × 3 seeds)``;
    where trends has none, why: ``no CI: 1 image, 1 seed``."""
    n_images = int(fit.get("n_images", 0))
    n_seeds = int(fit.get("n_seeds", 0))
    units = f"{count(n_images, 'image')} × {count(n_seeds, 'seed')}"
    if int(fit.get("n_resamples", 0)) < 1:
        return f"no CI: {units}"
    parts = [
        f"{c} [{_value(float(fit[c + '_lo']))}, {_value(float(fit[c + '_hi']))}]"
        for c in ("c2", "c1", "c0")
        if pd.notna(fit[c + "_lo"])
    ]
    resamples = f"{int(fit['n_resamples'])} bootstrap resamples of {units}"
    return f"{LEVEL * 100:g} % CI: {', '.join(parts)} ({resamples})"


def record(fit: pd.Series) -> dict[str, Any]:
    """The fit's numbers, for a figure's record."""
    return {k: fit[k] for k in _RECORD_KEYS if k in fit.index}
