"""Claims 1, 2, 3 and 8, tested on the strength sweep (the study's experiment 1).

``rows`` is always one model's strength-sweep rows of the metrics table; ``metric`` the
column tested (``mse_outside`` or the study's wrapped ``mse_outside_thesis``). Claims 1
and 8 also read the VAE floor (``mse_outside_vae``, ``mse_outside_far_vae``: the error of
the image's VAE round trip over the same pixels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from maskleak.claims.estimate import (
    cell_means,
    estimate,
    finding_above_zero,
    finite_rows,
    image_mean,
    lines_by,
    ratio,
    ratio_finding,
    sample_sizes,
    variances_by,
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

#: Claim 3's split: the study saw the variance across images spike at strengths >= 0.6.
SPIKE_STRENGTH: float = 0.6
#: Claim 3 needs a variance across images at each strength on both sides of the split;
#: with 2 images a resample often draws one image twice (variance 0), so ask for 3.
MIN_IMAGES_VARIANCE: int = 3

_NO_SWEEP = "the run has no strength-sweep inpainting of this model"

#: Unit of the true MSE (and of its floor and parts).
_MSE_UNIT = "(0-255 pixel value)^2"


def _unit(metric: str) -> str:
    """Unit of ``metric``: the true MSE's squared pixel values, or the study's wrapped
    uint8 number's own units."""
    return _MSE_UNIT if metric == "mse_outside" else "wrapped uint8 units"


def _strengths_text(strengths: np.ndarray) -> str:
    return ", ".join(plain(float(s)) for s in strengths)


def changes_outside(rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    """Claim 1, inpainting changes pixels outside the mask: the mean of ``metric`` over
    the inpaintings with strength > 0 (per image, then over images) must exceed 0. The
    evidence adds the mean share of outside pixels that changed (frac_changed_outside)
    and, for the true MSE, how much of it the VAE floor (``mse_outside_vae``, the VAE
    round trip's error over the same pixels) already is: the part no latent-diffusion
    pipeline avoids, whatever it does inside the mask."""
    statistic = f"mean {metric} at strength > 0"
    unit = _unit(metric)
    used = finite_rows(rows[rows["strength"] > 0], metric)
    if used.empty:
        return not_testable(statistic, unit, f"Not testable: {_NO_SWEEP} at a strength > 0.")

    def mean_and_share(frame: pd.DataFrame) -> list[float]:
        # The floor's share over the rows that have one (all of them, from current
        # manifests), so that both means cover the same inpaintings.
        with_floor = frame[frame["mse_outside_vae"].notna()]
        return [
            image_mean(frame, metric),
            image_mean(frame, "frac_changed_outside"),
            image_mean(with_floor, "mse_outside_vae"),
            image_mean(with_floor, metric),
        ]

    columns = [metric, "frac_changed_outside", "mse_outside_vae"]
    est = estimate(used, columns, mean_and_share, n_resamples, seed)
    evidence = (
        f"Over {len(used)} inpaintings at strength > 0, {metric} averages"
        f" {number(est.value[0])}, and {number(100 * est.value[1])} % of the outside pixels"
        " differ from the original in at least one channel"
    )
    floor, level = float(est.value[2]), float(est.value[3])
    if metric == "mse_outside" and np.isfinite(floor) and level > 0:
        evidence += (
            f"; the VAE round trip alone (the floor) accounts for {number(floor)} of it,"
            f" {number(100 * floor / level)} %"
        )
    return finding_above_zero(est, statistic=statistic, unit=unit, margin=0.0, evidence=evidence)


def grows_with_strength(rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    """Claim 2, outside-mask error grows with strength: the slope of a least-squares line
    through each image's seed-mean ``metric`` against strength, averaged over images,
    must exceed 0. Practical margin: a change across the swept strengths below
    :data:`PRACTICAL_REL` of the mean level. Needs 2 distinct strengths."""
    statistic = f"slope of {metric} vs strength"
    unit = _unit(metric) + " per unit strength"
    used = finite_rows(rows, metric)
    strengths = np.unique(used["strength"].to_numpy(float))
    if strengths.size < 2:
        listed = f" ({_strengths_text(strengths)})" if strengths.size else ""
        return not_testable(
            statistic,
            unit,
            f"Not testable: the strength sweep has {strengths.size} strength{listed}"
            " with a finite value; a slope needs 2.",
            *sample_sizes(used),
        )

    def slope_and_level(frame: pd.DataFrame) -> list[float]:
        (images, x), y = cell_means(frame, ["strength"], metric)
        _, slope, _, level = lines_by([images], x, y)
        return [float(np.nanmean(slope)), float(level.mean())]

    est = estimate(used, ["strength", metric], slope_and_level, n_resamples, seed)
    span = float(strengths[-1] - strengths[0])
    slope, level = float(est.value[0]), float(est.value[1])
    margin = PRACTICAL_REL * abs(level) / span
    relative = slope * span / level if level else float("nan")
    evidence = (
        f"Mean {metric} changes by {number(slope)} per unit strength, {percent(relative)} of"
        f" its mean level {number(level)} across strengths {plain(float(strengths[0]))}–"
        f"{plain(float(strengths[-1]))} ({strengths.size} strengths)"
    )
    return finding_above_zero(est, statistic=statistic, unit=unit, margin=margin, evidence=evidence)


def variance_grows(rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    """Claim 3, the variance across images grows with strength, with spikes at >= 0.6:
    the across-image variance (ddof 1) of the per-image seed-mean ``metric`` at each
    strength, averaged over strengths >= :data:`SPIKE_STRENGTH`, divided by the same at
    strengths below it, must exceed 1 (margin :data:`PRACTICAL_REL`). Needs
    :data:`MIN_IMAGES_VARIANCE` images and strengths on both sides."""
    statistic = f"variance ratio of {metric} across images, strength >= 0.6 / < 0.6"
    used = finite_rows(rows, metric)
    n_images, n_seeds = sample_sizes(used)
    high = used["strength"] >= SPIKE_STRENGTH
    missing = []
    if n_images < MIN_IMAGES_VARIANCE:
        missing.append(counted(n_images, "image"))
    if not high.any() or high.all():
        side = "at or above" if not high.any() else "below"
        missing.append(f"no strength {side} {plain(SPIKE_STRENGTH)}")
    if missing:
        return not_testable(
            statistic,
            "ratio",
            f"Not testable: {' and '.join(missing)} in the strength sweep; the ratio needs"
            f" {MIN_IMAGES_VARIANCE} images and strengths on both sides of"
            f" {plain(SPIKE_STRENGTH)}.",
            n_images,
            n_seeds,
        )

    def ratio_and_parts(frame: pd.DataFrame) -> list[float]:
        (_, strength_of), y = cell_means(frame, ["strength"], metric)
        (at,), variance = variances_by([strength_of], y)
        above = float(np.mean(variance[at >= SPIKE_STRENGTH]))
        below = float(np.mean(variance[at < SPIKE_STRENGTH]))
        return [ratio(above, below), above, below]

    est = estimate(used, ["strength", metric], ratio_and_parts, n_resamples, seed)
    evidence = (
        f"The variance of {metric} across images averages {number(est.value[1])} at"
        f" strengths >= {plain(SPIKE_STRENGTH)} and {number(est.value[2])} below, a ratio"
        f" of {number(est.value[0])}"
    )
    return ratio_finding(est, statistic=statistic, direction="greater", evidence=evidence)


_PIPELINE_NOTE = {
    "diffusers": (
        "today's pipeline with a 4-channel UNet blends the clean image latents back at"
        " its last step, so its far field should end on the floor (an excess near 0: what"
        " remains is the posterior sample and the decoder's reach past the mask); a"
        " 9-channel inpainting UNet gets no blending and regenerates every latent"
    ),
    "study": (
        "the study's Legacy pipeline leaves the kept latents noised to its last step's t"
        " and never pastes the clean ones back, so the excess is there at every strength,"
        " strength 0 (one UNet step) included"
    ),
}

#: The far-field error the inpainting adds to the VAE round trip's, per row.
_FAR_EXCESS = "far_excess"


def noise_everywhere(rows: pd.DataFrame, metric: str, n_resamples: int, seed: int) -> Finding:
    """Claim 8, the study's hypothesis that noise is added to the whole image: the
    far-field excess over the VAE floor, ``mse_outside_far - mse_outside_far_vae``
    (outside pixels farther than ``band_px`` from the mask, against the image's VAE round
    trip over the same pixels), averaged over the inpaintings at strength > 0 (per image,
    then over images), must exceed 0. The VAE's lossy encode/decode is in both terms and
    cancels: what remains is what denoising leaves far from the mask (residual noise on
    the kept latents, regenerated latents). Practical margin: :data:`PRACTICAL_REL` of the
    far-field floor (verdict rules: :mod:`maskleak.claims.verdicts`). The evidence adds the
    excess at the lowest strength alone and names the model's pipeline (``pipeline``
    column), which decides what the kept latents end as. The wrapped metric has no
    far-field version and no floor, so it cannot test the claim; nor can a metrics table
    without the floor (manifests written before the inpaint job saved its round trip)."""
    statistic = "mse_outside_far − mse_outside_far_vae at strength > 0"
    unit = _MSE_UNIT
    if metric != "mse_outside":
        return not_testable(
            f"{metric}: no far-field version",
            "",
            "Not testable: the metrics table has no far-field version of the study's wrapped"
            " metric and no VAE floor of it (only the true MSE is split into edge band and"
            " far field and measured against the VAE round trip).",
        )
    far = finite_rows(rows, "mse_outside_far")
    used = finite_rows(far, "mse_outside_far_vae")
    n_images, n_seeds = sample_sizes(far)
    if used.empty and not far.empty:
        return not_testable(
            statistic,
            unit,
            "Not testable: the metrics table has no VAE floor for this model"
            " (mse_outside_far_vae is NaN: its inpaint manifests name no vae_roundtrip.png,"
            " written before the inpaint job saved it); rerun the inpaint and metrics rules.",
            n_images,
            n_seeds,
        )
    if not (used["strength"] > 0).any():
        return not_testable(
            statistic,
            unit,
            f"Not testable: {_NO_SWEEP} at a strength > 0 with a far-field value (outside"
            " pixels farther than band_px from the mask) and its VAE floor.",
            n_images,
            n_seeds,
        )
    used = used.assign(**{_FAR_EXCESS: used["mse_outside_far"] - used["mse_outside_far_vae"]})
    lowest = float(used["strength"].min())
    pipeline = str(rows["pipeline"].iloc[0])

    def excess_and_floor(frame: pd.DataFrame) -> list[float]:
        above = frame[frame["strength"] > 0]
        return [
            image_mean(above, _FAR_EXCESS),
            image_mean(frame[frame["strength"] == lowest], _FAR_EXCESS),
            image_mean(above, "mse_outside_far_vae"),
        ]

    columns = ["strength", _FAR_EXCESS, "mse_outside_far_vae"]
    est = estimate(used, columns, excess_and_floor, n_resamples, seed)
    band_px = int(used["band_px"].iloc[0])
    excess, at_lowest, floor = (float(v) for v in est.value)
    evidence = (
        f"With the {pipeline} pipeline, the MSE more than {band_px} px from the mask exceeds"
        f" its VAE floor ({number(floor)}, the image's VAE round trip) by {number(at_lowest)}"
        f" at the lowest strength, {plain(lowest)}, and by {number(excess)} at strength > 0,"
        f" {percent(excess / floor) if floor else 'NaN %'} of the floor"
    )
    return finding_above_zero(
        est,
        statistic=statistic,
        unit=unit,
        margin=PRACTICAL_REL * abs(floor),
        evidence=evidence,
        note=_PIPELINE_NOTE.get(pipeline, ""),
    )
