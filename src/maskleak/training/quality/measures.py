"""The arithmetic of the quality report: exact masked MSEs in 8-bit levels^2, PSNR per
element and as BrushBench computes it, and the mean-colour fill baseline.

Units (as in ``workflow/schemas/metrics.columns.yaml``): images are uint8 (H, W, 3) in
0..255; masks are bool (H, W); every MSE is per ELEMENT (squared 8-bit differences summed
over the selected pixels and their 3 channels, divided by pixels x 3), in 8-bit levels^2."""

from __future__ import annotations

import math

import numpy as np

from maskleak.errors import InputError

#: BrushBench's background PSNR of SD 1.5 inpainting (BrushNet, Ju et al. 2024,
#: arXiv:2403.06976; the benchmark's evaluate script: images in [0, 1], squared error
#: SUMMED over RGB per pixel, averaged over the unmasked pixels, PSNR with peak 1, the
#: per-image PSNRs averaged). The project's notes quote two of the paper's numbers:
#: 18.04 dB (/work/shared/NOTES-diffusers.md) and about 21.5 dB (STUDY.md); issue 12
#: states the range as 18-22 dB, which covers both.
BRUSHBENCH_SD15_INPAINTING_BB_PSNR_DB = (18.04, 21.5)
BRUSHBENCH_BB_PSNR_RANGE_DB = (18.0, 22.0)
BRUSHBENCH_SOURCE = (
    "BrushNet (Ju et al. 2024, arXiv:2403.06976), BrushBench background PSNR of SD 1.5 "
    "inpainting: 18.04 dB (NOTES-diffusers.md) and ~21.5 dB (STUDY.md); range as issue 12 "
    "states it"
)

#: BrushBench's PSNR for an MSE below 1e-10 (its calculate_psnr), as in
#: maskleak.metrics.decompose.
BB_PSNR_IDENTICAL = 1000.0
_BB_MIN_MSE = 1.0e-10


def _squared_error_sum(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> int:
    """Exact integer sum of squared differences over the (H, W) pixels ``where`` selects
    and all 3 channels (int64: no wrap-around, no float rounding)."""
    diff = a[where].astype(np.int64) - b[where].astype(np.int64)
    return int(np.sum(diff * diff))


def masked_mse(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """Per-element MSE of two uint8 (H, W, 3) images over the pixels ``where`` (bool
    (H, W)) selects, in 8-bit levels^2; NaN when it selects none."""
    n = int(where.sum())
    return math.nan if n == 0 else _squared_error_sum(a, b, where) / (3 * n)


def psnr_db(mse: float) -> float:
    """Per-element PSNR in dB: 10 log10(255^2 / mse); inf for 0, NaN for NaN."""
    if math.isnan(mse):
        return math.nan
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def bb_psnr_db(mse: float) -> float:
    """BrushBench's PSNR of a per-element MSE in 8-bit levels^2: its MSE sums the 3
    channels in [0, 1] units (3 mse / 255^2), its peak is 1; 1000 dB below 1e-10."""
    if math.isnan(mse):
        return math.nan
    bb_mse = 3 * mse / 255.0**2
    return BB_PSNR_IDENTICAL if bb_mse < _BB_MIN_MSE else 20 * math.log10(1 / math.sqrt(bb_mse))


def bb_psnr_to_mse(bb_psnr: float) -> float:
    """The per-element MSE (8-bit levels^2) at which BrushBench's PSNR is ``bb_psnr`` dB:
    255^2 / 3 * 10^(-bb_psnr / 10) (18 dB -> 343, 22 dB -> 137)."""
    return 255.0**2 / 3 * 10 ** (-bb_psnr / 10)


def mean_fill(image: np.ndarray, inpaint: np.ndarray) -> np.ndarray:
    """``image`` (uint8 (H, W, 3)) with every pixel ``inpaint`` selects replaced by the
    mean colour of the others, per channel, rounded half to even to uint8 (the sum is an
    exact integer; one float64 division)."""
    keep = ~inpaint
    n_keep = int(keep.sum())
    if n_keep == 0:
        raise InputError("mean fill: the mask keeps no pixel, so there is no mean colour")
    sums = image[keep].astype(np.int64).sum(axis=0)
    colour = np.rint(sums / n_keep).astype(np.uint8)
    filled = image.copy()
    filled[inpaint] = colour
    return filled


def ratio(num: float, den: float) -> float:
    """num / den, NaN when den is 0 or NaN (a bar's ratio is undefined there)."""
    return math.nan if den == 0 or math.isnan(den) else num / den
