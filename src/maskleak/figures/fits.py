"""Trend rows (maskleak.trends) as the figures use them: find a fit, draw its curve,
record it, or say why there is none."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from maskleak.errors import InputError
from maskleak.figures.common import require_columns

_KEY_COLUMNS = ("experiment", "model", "scope", "image", "strength", "metric", "x", "degree")
_RECORD_KEYS = ("degree", "c2", "c1", "c0", "r2", "n_points", "x_min", "x_max", "equation")


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


def record(fit: pd.Series) -> dict[str, Any]:
    """The fit's numbers, for a figure's record."""
    return {k: fit[k] for k in _RECORD_KEYS if k in fit.index}
