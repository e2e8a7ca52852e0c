"""Claims 4 and 5, tested on parts of the outside region in the strength sweep: error
against local texture (every image; the procedural landscapes' flat vs textured
ground-truth regions as the check), and the band at the mask's edge vs the far field.

Only the true MSE is split into these parts (``texture_spearman``,
``mse_outside_flat`` / ``_textured`` / ``_band`` / ``_far``); the study's wrapped metric
has no per-part version, so it cannot test either claim. ``rows`` is one model's
strength-sweep rows.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from maskleak.claims.estimate import (
    Estimate,
    estimate,
    finding_above_zero,
    finite_rows,
    image_mean,
    interval_text,
    ratio,
    ratio_finding,
)
from maskleak.claims.verdicts import (
    NOT_TESTABLE,
    PRACTICAL_RHO,
    Finding,
    counted,
    not_testable,
    number,
)


def _part_exceeds(
    rows: pd.DataFrame,
    metric: str,
    n_resamples: int,
    seed: int,
    *,
    numerator: str,
    denominator: str,
    part: str,
    none_why: str,
    evidence: Callable[[Estimate, pd.DataFrame], str],
) -> Finding:
    """The test both claims share: over the inpaintings with strength > 0 that have a
    value of both parts, mean ``numerator`` / mean ``denominator`` (each image's value its
    mean over seeds and strengths, then the mean over images) must exceed 1 (margin
    :data:`~maskleak.claims.verdicts.PRACTICAL_REL`). ``part`` names the split in the
    wrapped metric's not-testable finding; ``none_why`` says (after "Not testable: ") why
    no inpainting has both parts; ``evidence`` writes the sentence from the estimate
    ([ratio, mean numerator, mean denominator]) and the rows it used."""
    if metric != "mse_outside":
        return not_testable(
            f"{metric}: no {part} version",
            "",
            f"Not testable: the metrics table has no {part} version of the study's wrapped"
            " metric (only the true MSE is split into parts of the outside region).",
        )
    statistic = f"{numerator} / {denominator}"
    used = finite_rows(rows[rows["strength"] > 0], numerator, denominator)
    if used.empty:
        return not_testable(statistic, "ratio", f"Not testable: {none_why}")

    def ratio_of_means(frame: pd.DataFrame) -> list[float]:
        top, bottom = image_mean(frame, numerator), image_mean(frame, denominator)
        return [ratio(top, bottom), top, bottom]

    est = estimate(used, [numerator, denominator], ratio_of_means, n_resamples, seed)
    return ratio_finding(
        est, statistic=statistic, direction="greater", evidence=evidence(est, used)
    )


def flat_vs_textured(rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    """Claim 4, flat regions change little and textured ones more, on EVERY image: over
    the inpaintings with strength > 0, the mean of ``texture_spearman`` (each inpainting's
    Spearman correlation between an outside pixel's local texture on the original and its
    squared error; per image over seeds and strengths, then over images) must exceed 0 by
    :data:`PRACTICAL_RHO`. The procedural landscapes' ground truth
    (:func:`ground_truth_regions`) is the check that the texture measure agrees with
    it, stated in the evidence. A table without ``texture_spearman`` values falls back to
    the ground-truth test alone."""
    truth = ground_truth_regions(rows, metric, n_resamples, seed)
    if metric != "mse_outside" or "texture_spearman" not in rows.columns:
        return truth
    used = finite_rows(rows[rows["strength"] > 0], "texture_spearman")
    if used.empty:
        return truth
    est = estimate(
        used,
        ["texture_spearman"],
        lambda frame: [image_mean(frame, "texture_spearman")],
        n_resamples,
        seed,
    )
    evidence = (
        f"On all {counted(est.n_images, 'image')} at strength > 0, an outside pixel's"
        f" squared error rises with the texture of its 8x8 latent cell on the original:"
        f" mean Spearman rho {number(float(est.value[0]))}"
    )
    if truth.verdict == NOT_TESTABLE:
        check = "no image has ground-truth regions to check the texture measure against"
    else:
        check = (
            f"check on the {counted(truth.n_images, 'image')} with ground-truth regions:"
            f" textured/flat MSE ratio {number(truth.value)}"
            f" ({interval_text(truth.ci_low, truth.ci_high)}), {truth.verdict}"
        )
    return finding_above_zero(
        est,
        statistic="mean texture_spearman at strength > 0",
        unit="rho",
        margin=PRACTICAL_RHO,
        evidence=evidence,
        note=check,
    )


def ground_truth_regions(rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    """Claim 4 on the ground truth: over the inpaintings with strength > 0 of the images
    with a region map, mean ``mse_outside_textured`` / mean ``mse_outside_flat`` must
    exceed 1 (margin :data:`PRACTICAL_REL`). Only procedural landscapes have region
    maps."""

    def evidence(est: Estimate, used: pd.DataFrame) -> str:
        return (
            f"On the {counted(est.n_images, 'image')} with ground-truth regions, textured"
            f" outside pixels have an MSE of {number(est.value[1])} and flat ones"
            f" {number(est.value[2])}, a ratio of {number(est.value[0])}"
        )

    return _part_exceeds(
        rows,
        metric,
        n_resamples,
        seed,
        numerator="mse_outside_textured",
        denominator="mse_outside_flat",
        part="per-region",
        none_why="no image of the strength sweep has outside pixels of both kinds in a"
        " ground-truth region map (only procedural landscapes have one), at a strength > 0.",
        evidence=evidence,
    )


def edge_band_most(rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    """Claim 5, the band at the mask's edge changes most: over the inpaintings with
    strength > 0, mean ``mse_outside_band`` (outside pixels within ``band_px`` of the
    mask) / mean ``mse_outside_far`` (the rest) must exceed 1 (margin
    :data:`PRACTICAL_REL`)."""

    def evidence(est: Estimate, used: pd.DataFrame) -> str:
        band_px = int(used["band_px"].iloc[0])
        return (
            f"At strength > 0, outside pixels within {band_px} px of the mask have an MSE of"
            f" {number(est.value[1])} and those farther away {number(est.value[2])}, a ratio"
            f" of {number(est.value[0])}"
        )

    return _part_exceeds(
        rows,
        metric,
        n_resamples,
        seed,
        numerator="mse_outside_band",
        denominator="mse_outside_far",
        part="edge-band",
        none_why="no strength-sweep inpainting at a strength > 0 has outside pixels both"
        " near the mask's edge and far from it.",
        evidence=evidence,
    )
