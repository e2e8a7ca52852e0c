"""Claims 4 and 5, tested on parts of the outside region in the strength sweep: flat vs
textured ground-truth regions, and the band at the mask's edge vs the far field.

Only the true MSE is split into these parts (``mse_outside_flat`` / ``_textured`` /
``_band`` / ``_far``); the study's wrapped metric has no per-part version, so it cannot
test either claim. ``rows`` is one model's strength-sweep rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from maskleak.claims.estimate import estimate, finding, image_mean
from maskleak.claims.verdicts import PRACTICAL_REL, Finding, not_testable, number


def _ratio_of_means(numerator: str, denominator: str):
    """Statistic: [mean_i num_i / mean_i den_i, mean_i num_i, mean_i den_i], each image's
    value its mean over seeds and strengths."""

    def statistic(frame: pd.DataFrame) -> list[float]:
        top, bottom = image_mean(frame, numerator), image_mean(frame, denominator)
        ratio = top / bottom if bottom > 0 else (np.inf if top > 0 else np.nan)
        return [ratio, top, bottom]

    return statistic


def _no_part_of_wrapped(metric: str, part: str) -> Finding:
    return not_testable(
        f"{metric}: no {part} version",
        "",
        f"Not testable: the metrics table has no {part} version of the study's wrapped"
        " metric (only the true MSE is split into parts of the outside region).",
    )


def flat_vs_textured(rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    """Claim 4, flat regions (sky, water) change little and textured ones (ridges, grass)
    more: over the inpaintings with strength > 0 of the images with a ground-truth region
    map, mean ``mse_outside_textured`` / mean ``mse_outside_flat`` must exceed 1
    (margin :data:`PRACTICAL_REL`). Only procedural landscapes have region maps."""
    if metric != "mse_outside":
        return _no_part_of_wrapped(metric, "per-region")
    statistic = "mse_outside_textured / mse_outside_flat"
    used = rows[
        (rows["strength"] > 0)
        & rows["mse_outside_flat"].notna()
        & rows["mse_outside_textured"].notna()
    ]
    if used.empty:
        return not_testable(
            statistic,
            "ratio",
            "Not testable: no image of the strength sweep has outside pixels of both kinds"
            " in a ground-truth region map (only procedural landscapes have one), at a"
            " strength > 0.",
        )
    parts = ["mse_outside_textured", "mse_outside_flat"]
    est = estimate(used, parts, _ratio_of_means(*parts), n_resamples, seed)
    n = est.n_images
    evidence = (
        f"On the {n} image{'s' if n != 1 else ''} with ground-truth regions, textured outside"
        f" pixels have an MSE of {number(est.value[1])} and flat ones {number(est.value[2])},"
        f" a ratio of {number(est.value[0])}"
    )
    return finding(
        est,
        statistic=statistic,
        unit="ratio",
        reference=1.0,
        direction="greater",
        margin=PRACTICAL_REL,
        evidence=evidence,
    )


def edge_band_most(rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    """Claim 5, the band at the mask's edge changes most: over the inpaintings with
    strength > 0, mean ``mse_outside_band`` (outside pixels within ``band_px`` of the
    mask) / mean ``mse_outside_far`` (the rest) must exceed 1 (margin
    :data:`PRACTICAL_REL`)."""
    if metric != "mse_outside":
        return _no_part_of_wrapped(metric, "edge-band")
    statistic = "mse_outside_band / mse_outside_far"
    used = rows[
        (rows["strength"] > 0) & rows["mse_outside_band"].notna() & rows["mse_outside_far"].notna()
    ]
    if used.empty:
        return not_testable(
            statistic,
            "ratio",
            "Not testable: no strength-sweep inpainting at a strength > 0 has outside pixels"
            " both near the mask's edge and far from it.",
        )
    parts = ["mse_outside_band", "mse_outside_far"]
    est = estimate(used, parts, _ratio_of_means(*parts), n_resamples, seed)
    band_px = int(used["band_px"].iloc[0])
    evidence = (
        f"At strength > 0, outside pixels within {band_px} px of the mask have an MSE of"
        f" {number(est.value[1])} and those farther away {number(est.value[2])}, a ratio of"
        f" {number(est.value[0])}"
    )
    return finding(
        est,
        statistic=statistic,
        unit="ratio",
        reference=1.0,
        direction="greater",
        margin=PRACTICAL_REL,
        evidence=evidence,
    )
