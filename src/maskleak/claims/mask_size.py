"""Claims 6 and 7, tested on the mask-size sweep (the study's experiment 2).

The true metric is ``mse_outside`` against ``area_frac`` (the disc's share of the image,
counted on the mask). The study's own pairing is its experiment-2 number
``mse_whitedisc_thesis`` against ``area_frac_thesis`` (π r² / (w h), its analytic x
axis); both claims test that pairing for the wrapped metric. ``rows`` is one model's
mask-size-sweep rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from maskleak.claims.estimate import (
    by_image,
    cell_means,
    estimate,
    finding,
    finite_rows,
    lines_by,
    means_by,
    ratio_finding,
    sample_sizes,
)
from maskleak.claims.verdicts import (
    PRACTICAL_REL,
    Finding,
    counted,
    not_testable,
    number,
    percent,
    plain,
)

#: Strengths listed one by one in claim 6's evidence; more are summarised.
MAX_LISTED_STRENGTHS = 4


def columns(metric: str) -> tuple[str, str]:
    """(y, x) of the mask-size claims for ``metric``: the true MSE against the counted
    area fraction, or the study's experiment-2 number against its analytic one."""
    if metric == "mse_outside":
        return "mse_outside", "area_frac"
    return "mse_whitedisc_thesis", "area_frac_thesis"


def little_effect(rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    """Claim 6, mask size has little effect: at each strength, the relative change of the
    error across the swept disc areas, mean_i(slope_i · range_i) / mean_i(level_i) (a
    least-squares line per image through its seed means against the area fraction), and
    the statistic is the largest |relative change| over strengths. Holds if its interval
    lies below :data:`PRACTICAL_REL`, does not hold if above. The evidence lists each
    strength's signed change; the lowest strength is the one nearest the VAE floor, the
    change that the disc's size causes without much inpainting."""
    y, x = columns(metric)
    statistic = f"largest |relative change| of {y} across {x}, over strengths"
    used = finite_rows(rows, y, x)
    n_masks = int(used["mask_id"].nunique())
    if n_masks < 2:
        return not_testable(
            statistic,
            "fraction of the mean level",
            f"Not testable: the mask-size sweep has {n_masks} mask with a finite {y};"
            " a slope needs 2.",
            *sample_sizes(used),
        )
    strengths = np.unique(used["strength"].to_numpy(float))

    def changes_per_strength(frame: pd.DataFrame) -> list[float]:
        (images, strength_of, area), mean = cell_means(frame, ["strength", x], y)
        (line_strength, _), slope, x_range, level = lines_by([strength_of, images], area, mean)
        (at,), change = means_by([line_strength], slope * x_range)
        (_,), mean_level = means_by([line_strength], level)
        relative = np.full(strengths.size, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            relative[np.searchsorted(strengths, at)] = change / mean_level
        return list(relative)

    def with_parts(frame: pd.DataFrame) -> list[float]:
        relative = changes_per_strength(frame)
        finite = [abs(r) for r in relative if np.isfinite(r)]
        return [max(finite) if finite else np.nan, *relative]

    est = estimate(used, ["strength", x, y], with_parts, n_resamples, seed)
    listed = [
        f"{percent(float(change))} at strength {plain(float(s))}"
        for s, change in zip(strengths, est.value[1:], strict=True)
    ]
    if len(listed) > MAX_LISTED_STRENGTHS:
        listed = [listed[0], "…", listed[-1]]
    listed[0] += " (nearest the VAE floor)"
    evidence = (
        f"Across mask areas of {number(float(used[x].min()))}–{number(float(used[x].max()))}"
        f" of the image, the mean {y} changes by {', '.join(listed)}; the largest change is"
        f" {number(100 * est.value[0])} % against the {plain(100 * PRACTICAL_REL)} % counted"
        " as little"
    )
    return finding(
        est,
        statistic=statistic,
        unit="fraction of the mean level",
        reference=PRACTICAL_REL,
        direction="less",
        margin=0.0,
        evidence=evidence,
    )


def small_masks_less(rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    """Claim 7, for small masks strength matters less: the spread between the highest and
    the lowest strength (per image, seed means, then averaged over images) at the
    smallest radius divided by that at the largest radius must be below 1 (margin
    :data:`PRACTICAL_REL`). Needs 2 strengths and 2 radii."""
    y, _ = columns(metric)
    statistic = f"spread of {y} over strengths, smallest / largest disc"
    used = finite_rows(rows, y)
    strengths = np.unique(used["strength"].to_numpy(float))
    # Masks by size: the study's discs by radius; any mask family by its mean area.
    by_area = used.groupby("mask_id", sort=True)["area_frac"].mean().sort_values(kind="stable")
    if strengths.size < 2 or by_area.size < 2:
        return not_testable(
            statistic,
            "ratio",
            f"Not testable: the mask-size sweep has {counted(strengths.size, 'strength')}"
            f" and {counted(by_area.size, 'mask')} with a finite {y}; the spread"
            " ratio needs 2 of each.",
            *sample_sizes(used),
        )
    s_low, s_high = float(strengths[0]), float(strengths[-1])
    used = used.assign(
        mask_rank=used["mask_id"].map({m: float(i) for i, m in enumerate(by_area.index)})
    )
    r_small, r_large = 0.0, float(by_area.size - 1)

    def ratio_and_spreads(frame: pd.DataFrame) -> list[float]:
        (images, radius, strength_of), mean = cell_means(frame, ["mask_rank", "strength"], y)
        n_images = int(images.max()) + 1

        def at(r: float, s: float) -> np.ndarray:
            cell = (radius == r) & (strength_of == s)
            return by_image(images[cell], mean[cell], n_images)

        small = float(np.nanmean(at(r_small, s_high) - at(r_small, s_low)))
        large = float(np.nanmean(at(r_large, s_high) - at(r_large, s_low)))
        return [small / large if large else np.nan, small, large]

    est = estimate(used, ["mask_rank", "strength", y], ratio_and_spreads, n_resamples, seed)
    small, large = (_mask_name(used, str(by_area.index[i])) for i in (0, -1))
    evidence = (
        f"From strength {plain(s_low)} to {plain(s_high)}, the mean {y} changes by"
        f" {number(est.value[1])} at the smallest {small} and by"
        f" {number(est.value[2])} at the largest ({large.split(' (', 1)[-1].rstrip(')')}),"
        f" a ratio of {number(est.value[0])}"
    )
    return ratio_finding(est, statistic=statistic, direction="less", evidence=evidence)


def _mask_name(rows: pd.DataFrame, mask_id: str) -> str:
    """``disc (radius 30 %)`` for a study disc, else ``mask (strokes-thin-s0)``."""
    radius = rows.loc[rows["mask_id"] == mask_id, "radius_pct"].iloc[0]
    if np.isfinite(radius) and mask_id == f"r{plain(float(radius))}":
        return f"disc (radius {plain(float(radius))} %)"
    return f"mask ({mask_id})"
