"""Per-pixel maps of how an inpainting differs from its original, and how the figures show
them: the true squared error outside the mask as a heatmap, the inside grey, the mask's
outline on top; and the study's own "heatmap" (Figs 4.4-4.9), a min-max normalised
luminance difference drawn over the inpainting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes

from maskleak.errors import InputError
from maskleak.images import read_pixels
from maskleak.masks import inpaint_region

SQERR_LABEL = "squared error, mean over RGB ((8-bit level)²)"
STUDY_LABEL = "|Δ luminance| (rgb2gray), min–max normalised per map"

#: How the study drew its heatmap: matplotlib's 'hot' colormap at half opacity over the
#: inpainted image with its disc painted white.
STUDY_CMAP = "hot"
STUDY_ALPHA = 0.5
#: skimage.color.rgb2gray's luminance weights for R, G, B (what study_heatmap applies).
STUDY_GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)
_WHITE = 255

#: Percentile of the outside-mask squared errors at which heatmap colour scales end
#: (a few extreme pixels would otherwise wash out the rest).
HEATMAP_PERCENTILE = 99.5

_HEATMAP_CMAP = colormaps["magma"].with_extremes(bad="0.82")
_OUTLINE_COLOUR = "cyan"

#: Columns of a metrics row that name its PNGs.
PATH_COLUMNS = ("image_path", "mask_path", "inpainted_path")


def squared_error_map(original: np.ndarray, inpainted: np.ndarray) -> np.ndarray:
    """Per-pixel squared error, float64 (H, W): the mean over channels of ``(a - b)²``.

    Computed in float64, so a difference of 16 counts as 256 (the thesis' uint8
    arithmetic wrapped it to 0). Accepts (H, W) or (H, W, C) arrays of equal shape."""
    a = np.asarray(original)
    b = np.asarray(inpainted)
    if a.shape != b.shape:
        raise InputError(f"image shapes differ: original {a.shape} vs inpainted {b.shape}")
    if a.ndim not in (2, 3):
        raise InputError(f"expected an (H, W) or (H, W, C) image, got shape {a.shape}")
    diff = a.astype(np.float64) - b.astype(np.float64)
    sq = diff * diff
    return sq.mean(axis=2) if sq.ndim == 3 else sq


def _check_rgb_pair(original: np.ndarray, inpainted: np.ndarray, mask: np.ndarray) -> None:
    for name, arr in (("original", original), ("inpainted", inpainted)):
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise InputError(f"{name} must be a uint8 (H, W, 3) array, got {arr.dtype} {arr.shape}")
    if original.shape != inpainted.shape:
        raise InputError(
            f"image shapes differ: original {original.shape} vs inpainted {inpainted.shape}"
        )
    if mask.dtype != np.bool_ or mask.shape != original.shape[:2]:
        raise InputError(
            f"mask must be a bool {original.shape[:2]} array, got {mask.dtype} {mask.shape}"
        )


def white_disc(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of uint8 (H, W, 3) ``pixels`` with the bool (H, W) ``mask`` (True =
    inpaint) painted white (255), as the study's add_white_mask_to_image did."""
    out = np.array(pixels, dtype=np.uint8, copy=True)
    out[mask] = _WHITE
    return out


def study_heatmap(original: np.ndarray, inpainted: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The study's "heatmap" (thesis Figs 4.4-4.9), float64 (H, W) in [0, 1].

    ``original``, ``inpainted``: uint8 (H, W, 3); ``mask``: bool (H, W), True = inpaint.
    Both images get the disc painted white, so they are equal there (0 difference);
    then ``|gray(a) - gray(b)|`` with skimage's ``rgb2gray`` (luminance weights 0.2125,
    0.7154, 0.0721 on values scaled to [0, 1]), min-max normalised over the whole map:
    ``(d - d.min()) / (d.max() - d.min())``, all zeros when the map is constant (the
    study would have divided by zero). It is NOT squared error: opposite changes of the
    channels can cancel, and the normalisation makes every image's largest change 1,
    so its colours cannot be compared across images."""
    from skimage.color import rgb2gray

    _check_rgb_pair(original, inpainted, mask)
    diff = np.abs(rgb2gray(white_disc(original, mask)) - rgb2gray(white_disc(inpainted, mask)))
    low, high = float(diff.min()), float(diff.max())
    if high == low:
        return np.zeros_like(diff)
    return (diff - low) / (high - low)


def draw_study_heatmap(ax: Axes, inpainted: np.ndarray, mask: np.ndarray, heat: np.ndarray) -> Any:
    """The study's heatmap ``heat`` (:func:`study_heatmap`) as it drew it: 'hot' at
    alpha 0.5 over the inpainted image with its disc painted white."""
    ax.imshow(white_disc(inpainted, mask), interpolation="nearest")
    im = ax.imshow(
        heat, cmap=STUDY_CMAP, alpha=STUDY_ALPHA, vmin=0.0, vmax=1.0, interpolation="nearest"
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def load_triplet(row: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(original RGB, inpainted RGB, inpaint-region bool) for one metrics row."""
    original = read_pixels(str(row["image_path"]), "RGB")
    inpainted = read_pixels(str(row["inpainted_path"]), "RGB")
    region = inpaint_region(read_pixels(str(row["mask_path"]), "L", "mask"))
    if original.shape != inpainted.shape:
        raise InputError(
            f"size mismatch: {row['image_path']!r} is {original.shape[1]}x{original.shape[0]}"
            f" but {row['inpainted_path']!r} is {inpainted.shape[1]}x{inpainted.shape[0]}"
        )
    if region.shape != original.shape[:2]:
        raise InputError(
            f"size mismatch: mask {row['mask_path']!r} is {region.shape[1]}x{region.shape[0]}"
            f" but {row['image_path']!r} is {original.shape[1]}x{original.shape[0]}"
        )
    return original, inpainted, region


def heat_vmax(errors: Sequence[np.ndarray], regions: Sequence[np.ndarray]) -> float:
    """Top of a heatmap colour scale: a high percentile of the outside-mask errors."""
    outside = np.concatenate([e[~r] for e, r in zip(errors, regions, strict=True)])
    if outside.size == 0:
        return 1.0
    vmax = float(np.percentile(outside, HEATMAP_PERCENTILE))
    if vmax <= 0:
        vmax = float(outside.max())
    return vmax if vmax > 0 else 1.0


def draw_heatmap(ax: Axes, error: np.ndarray, region: np.ndarray, vmax: float) -> Any:
    """Squared-error heatmap outside the mask (inside shown grey), mask outline on top."""
    shown = np.ma.masked_array(error, mask=region)
    im = ax.imshow(shown, cmap=_HEATMAP_CMAP, vmin=0.0, vmax=vmax, interpolation="nearest")
    if region.any() and not region.all():
        ax.contour(region.astype(np.float64), levels=[0.5], colors=_OUTLINE_COLOUR, linewidths=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def show_image(ax: Axes, pixels: np.ndarray, title: str) -> None:
    ax.imshow(pixels, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
