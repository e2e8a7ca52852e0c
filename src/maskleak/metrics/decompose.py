"""The outside error taken apart, per inpainting: by the latent footprint of the mask, by
distance from the mask and by local texture, with the VAE floor beside each part; the
error just inside the mask edge, the step across the edge beside the original's own
(:mod:`maskleak.metrics.seam`: the seam a paste-back leaves), the colour drift, the
structure (SSIM) and BrushBench's background numbers.

Everything that depends only on a mask, an image or a round trip is prepared once and
shared by every inpainting made with it: :class:`MaskGeometry` (per mask),
:class:`OriginalFeatures` (per image), :class:`Split` (per image and mask),
:class:`Partition` (per image, mask and latent footprint) and :func:`label_sums` of a round
trip (per round trip and partition). Per inpainting, :func:`decompose` then sums the
per-pixel squared error (the exact integers :func:`maskleak.metrics.pairs.measure` leaves)
once by partition label, from which every error split below is an exact integer sum.

Each pixel has one label: 0 inside the mask, 1 inside within ``band_px`` of an outside
pixel (the seam), and outside ``2 + 2 (10 d + t) + f`` for its distance bin ``d``
(:data:`DISTANCE_EDGES_PX`), texture decile ``t`` and ``f`` = 1 in the latent footprint."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from maskleak import latent_mask
from maskleak.metrics import colour, seam
from maskleak.metrics.bands import band_pixels
from maskleak.metrics.structure import SsimReference, ssim_reference, ssim_sum
from maskleak.metrics.texture import CellTexture, cell_texture

#: Distance bins of the outside pixels, px from the nearest inpaint pixel (exact Euclidean,
#: ``scipy.ndimage.distance_transform_edt``): (0, 4], (4, 8], ..., (128, inf).
DISTANCE_EDGES_PX = (0.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, math.inf)
N_DISTANCE = len(DISTANCE_EDGES_PX) - 1
#: Texture bins: deciles of the outside pixels' texture.
N_TEXTURE = 10
_OUTSIDE0 = 2
N_LABELS = _OUTSIDE0 + 2 * N_DISTANCE * N_TEXTURE

#: The footprint of a 9-channel UNet: it regenerates every latent, so the whole image.
WHOLE = "whole"

#: BrushBench's PSNR for an MSE below 1e-10 (its ``calculate_psnr``).
BB_PSNR_IDENTICAL = 1000.0
_BB_MIN_MSE = 1.0e-10


def footprint_key(unet_in_channels: int | None, rule: str) -> str | None:
    """What decides an inpainting's latent footprint: its latent mask ``rule`` for a
    4-channel UNet, :data:`WHOLE` for a 9-channel one, None when unknown."""
    if unet_in_channels is None:
        return None
    return rule if unet_in_channels == 4 else WHOLE


@dataclass(frozen=True)
class MaskGeometry:
    """A mask's pixels as the decomposition groups them (flat row-major indices)."""

    inpaint: np.ndarray  # bool (H, W), True = inpaint
    outside: np.ndarray  # intp (n_outside,): the outside pixels
    keep: np.ndarray  # float32 (H, W): 1 outside, 0 inside
    distance_bin: np.ndarray  # intp (n_outside,): each one's distance bin
    seam: np.ndarray  # intp: inside pixels within band_px of an outside pixel
    edge_pairs: np.ndarray  # intp (2, n_pairs): 4-neighbours (inside, outside), seam.edge_pairs


def mask_geometry(inpaint: np.ndarray, band_px: int) -> MaskGeometry:
    """The :class:`MaskGeometry` of bool (H, W) ``inpaint``. Outside pixels of a mask
    with no inpaint pixel are all in the last distance bin (> 128 px), as they are all
    "far" in the metrics table."""
    from scipy import ndimage

    outside_mask = ~inpaint
    outside = np.flatnonzero(outside_mask)
    if inpaint.any():
        distance = ndimage.distance_transform_edt(outside_mask).reshape(-1)[outside]
        # sqrt is correctly rounded, so d <= e holds exactly when d² <= e² for the
        # integer edges.
        bins = np.searchsorted(np.array(DISTANCE_EDGES_PX[1:-1]), distance, side="left")
    else:
        bins = np.full(outside.size, N_DISTANCE - 1)
    seam_pixels = np.flatnonzero(band_pixels(outside_mask, band_px))
    return MaskGeometry(
        inpaint,
        outside,
        outside_mask.astype(np.float32),
        bins.astype(np.intp),
        seam_pixels,
        seam.edge_pairs(inpaint),
    )


@dataclass(frozen=True)
class OriginalFeatures:
    """An original's parts of the arithmetic, once per image."""

    texture: CellTexture
    colours: colour.Reference  # all pixels, row-major
    ssim: SsimReference | None  # None below the 7x7 window
    planar: np.ndarray  # uint8 (3, H*W)


def original_features(pixels: np.ndarray) -> OriginalFeatures:
    planar = np.ascontiguousarray(np.moveaxis(pixels, 2, 0)).reshape(3, -1)
    return OriginalFeatures(
        texture=cell_texture(pixels),
        colours=colour.reference(planar),
        ssim=ssim_reference(pixels),
        planar=planar,
    )


@dataclass(frozen=True)
class Split:
    """What one image and mask share: the outside pixels by texture (decile bins and
    ranks), the original's outside colours and its step across the mask edge."""

    texture_bin: np.ndarray  # intp (n_outside,)
    edges: np.ndarray  # float64 (11,): texture at the decile edges (NaN without pixels)
    centred_rank: np.ndarray  # float64 (n_outside,): texture rank (ties averaged) - mean
    rank_square_sum: float  # sum of centred_rank²
    colour_sums: np.ndarray  # int64 (3,): the original's R, G, B summed outside
    colours: colour.Reference  # the original's colours at the outside pixels
    step_sum: int  # the original's seam.step_sum over the mask's edge pairs


def split(features: OriginalFeatures, geometry: MaskGeometry) -> Split:
    """The :class:`Split` of an image (``features``) under a mask (``geometry``).

    Deciles: ``np.quantile`` (linear) of the outside pixels' texture at 0, 0.1, ..., 1;
    decile k holds the pixels with texture in (edge k, edge k+1], the first also its
    lower edge. With ties (every pixel of a cell shares its texture) a decile can hold
    more or fewer than a tenth of the pixels, or none."""
    outside = geometry.outside
    texture = features.texture
    n_cells = texture.values.size
    cells = texture.cell_of_pixel[outside]
    values = texture.values.reshape(-1)
    if outside.size:
        edges = np.quantile(values[cells], np.arange(N_TEXTURE + 1) / N_TEXTURE)
    else:
        edges = np.full(N_TEXTURE + 1, math.nan)
    # Ranks of the pixels' textures with ties averaged, computed per distinct cell value
    # weighted by its outside pixels (a few thousand cells, not 10^5 pixels to sort).
    weight = np.bincount(cells, minlength=n_cells)
    order = np.argsort(values, kind="stable")
    order = order[weight[order] > 0]
    sorted_values = values[order]
    new = np.ones(sorted_values.size, dtype=bool)
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new[1:])
    group = np.cumsum(new) - 1
    group_weight = np.bincount(group, weights=weight[order])
    before = np.cumsum(group_weight) - group_weight
    mean_rank = (outside.size + 1) / 2
    group_rank = before + (group_weight + 1) / 2 - mean_rank
    rank_of_cell = np.zeros(n_cells)
    rank_of_cell[order] = group_rank[group]
    return Split(
        texture_bin=np.searchsorted(edges[1:-1], values[cells], side="left").astype(np.intp),
        edges=edges,
        centred_rank=rank_of_cell[cells],
        rank_square_sum=float(group_weight @ (group_rank * group_rank)),
        colour_sums=_channel_sums(np.take(features.planar, outside, axis=1)),
        colours=features.colours.take(outside),
        step_sum=seam.step_sum(features.planar, geometry.edge_pairs),
    )


@dataclass(frozen=True)
class Partition:
    """Every pixel's label (module docstring) for one image, mask and footprint."""

    labels: np.ndarray  # intp (H*W,)
    counts: np.ndarray  # float64 (N_LABELS,): pixels per label
    footprint: str | None  # footprint_key; None: unknown (its columns NaN)


def partition(geometry: MaskGeometry, texture_split: Split, footprint: str | None) -> Partition:
    """The :class:`Partition` for ``footprint`` (:func:`footprint_key`). A latent mask
    rule needs H and W to be multiples of 8 (InputError otherwise, from
    :mod:`maskleak.latent_mask`)."""
    inpaint = geometry.inpaint
    labels = np.zeros(inpaint.size, dtype=np.intp)
    labels[geometry.seam] = 1
    outside_labels = _OUTSIDE0 + 2 * (N_TEXTURE * geometry.distance_bin + texture_split.texture_bin)
    if footprint == WHOLE:
        outside_labels += 1
    elif footprint is not None:
        repainted = latent_mask.footprint(inpaint, footprint).reshape(-1)
        outside_labels += repainted[geometry.outside]
    labels[geometry.outside] = outside_labels
    counts = np.bincount(labels, minlength=N_LABELS).astype(np.float64)
    return Partition(labels, counts, footprint)


def pixel_squared_error(
    original: np.ndarray, other: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """uint32 (H*W,): each pixel's squared error summed over R, G, B (exact; at most
    3 x 255²), between uint8 (H, W, 3) images of one shape."""
    a = original.reshape(-1, 3).astype(np.int32)
    a -= other.reshape(-1, 3)
    a *= a
    if out is None:
        out = np.empty(a.shape[0], dtype=np.uint32)
    np.add(a[:, 0], a[:, 1], out=out, casting="unsafe")
    np.add(out, a[:, 2], out=out, casting="unsafe")
    return out


def label_sums(part: Partition, pixel_error: np.ndarray) -> np.ndarray:
    """float64 (N_LABELS,): ``pixel_error`` (per pixel, integers) summed per label;
    exact below 2^53."""
    return np.bincount(part.labels, weights=pixel_error, minlength=N_LABELS)


def _outside_grid(values: np.ndarray) -> np.ndarray:
    """(distance, texture, footprint) view of a per-label array's outside labels."""
    return values[_OUTSIDE0:].reshape(N_DISTANCE, N_TEXTURE, 2)


def _mean(total: float, n: float) -> float:
    """Per-element mean of an exact sum over ``n`` pixels x 3 channels; NaN for none."""
    return math.nan if n == 0 else total / (3 * n)


@dataclass(frozen=True)
class Profile:
    """One inpainting's outside error by distance bin and by texture decile: pixels,
    the inpainting's per-element MSE and the mode round trip's (NaN without one)."""

    distance_n: np.ndarray
    distance_mse: np.ndarray
    distance_mse_vae: np.ndarray
    texture_n: np.ndarray
    texture_mse: np.ndarray
    texture_mse_vae: np.ndarray
    texture_edges: np.ndarray


#: The keys :func:`decompose` returns, in table order.
KEYS = (
    "excess_over_floor",
    "n_outside_footprint",
    "n_outside_beyond",
    "mse_outside_footprint",
    "mse_outside_beyond",
    "mse_outside_part_vae",
    "mse_outside_part_footprint",
    "mse_outside_part_beyond",
    "n_seam_inside",
    "mse_seam_inside",
    "seam_step",
    "seam_step_original",
    "seam_step_excess",
    "shift_r_outside",
    "shift_g_outside",
    "shift_b_outside",
    "delta_e_outside",
    "ssim_outside",
    "texture_spearman",
    "bb_mse_outside",
    "bb_psnr_outside",
)


def decompose(
    features: OriginalFeatures,
    geometry: MaskGeometry,
    texture_split: Split,
    part: Partition,
    inpainted: np.ndarray,
    pixel_error: np.ndarray,
    floor: np.ndarray | None,
) -> tuple[dict[str, Any], Profile]:
    """The columns :data:`KEYS` and the :class:`Profile` of one inpainting (uint8
    (H, W, 3), its shape checked), from its per-pixel squared error (uint32 (H*W,),
    :func:`pixel_squared_error`) and the mode round trip's :func:`label_sums` over the
    same partition (``floor``; None without a round trip)."""
    sums = label_sums(part, pixel_error)
    counts = part.counts
    grid, grid_n = _outside_grid(sums), _outside_grid(counts)
    n_outside = geometry.outside.size
    outside_total = float(grid.sum())
    floor_grid = None if floor is None else _outside_grid(floor)

    values: dict[str, Any] = dict.fromkeys(KEYS, math.nan)
    values["n_seam_inside"] = int(counts[1])
    values["mse_seam_inside"] = _mean(sums[1], counts[1])
    if floor_grid is not None and n_outside:
        floor_total = float(floor_grid.sum())
        values["excess_over_floor"] = (outside_total - floor_total) / (3 * n_outside)
        values["mse_outside_part_vae"] = floor_total / (3 * n_outside)
    if part.footprint is not None:
        # Index 1 of the last axis: in the footprint; 0: beyond it.
        by_footprint = grid.sum(axis=(0, 1))
        n_by_footprint = grid_n.sum(axis=(0, 1))
        values["n_outside_footprint"] = float(n_by_footprint[1])
        values["n_outside_beyond"] = float(n_by_footprint[0])
        values["mse_outside_footprint"] = _mean(by_footprint[1], n_by_footprint[1])
        values["mse_outside_beyond"] = _mean(by_footprint[0], n_by_footprint[0])
        if floor_grid is not None and n_outside:
            floor_by_footprint = floor_grid.sum(axis=(0, 1))
            excess = by_footprint - floor_by_footprint
            values["mse_outside_part_footprint"] = excess[1] / (3 * n_outside)
            values["mse_outside_part_beyond"] = excess[0] / (3 * n_outside)

    nan_bins = np.full(N_TEXTURE, math.nan)
    profile = Profile(
        distance_n=grid_n.sum(axis=(1, 2)),
        distance_mse=_means(grid.sum(axis=(1, 2)), grid_n.sum(axis=(1, 2))),
        distance_mse_vae=(
            np.full(N_DISTANCE, math.nan)
            if floor_grid is None
            else _means(floor_grid.sum(axis=(1, 2)), grid_n.sum(axis=(1, 2)))
        ),
        texture_n=grid_n.sum(axis=(0, 2)),
        texture_mse=_means(grid.sum(axis=(0, 2)), grid_n.sum(axis=(0, 2))),
        texture_mse_vae=(
            nan_bins
            if floor_grid is None
            else _means(floor_grid.sum(axis=(0, 2)), grid_n.sum(axis=(0, 2)))
        ),
        texture_edges=texture_split.edges,
    )
    if n_outside == 0:
        return values, profile

    bb_mse = outside_total / (255.0**2 * n_outside)
    values["bb_mse_outside"] = bb_mse
    values["bb_psnr_outside"] = (
        BB_PSNR_IDENTICAL if bb_mse < _BB_MIN_MSE else 20 * math.log10(1.0 / math.sqrt(bb_mse))
    )

    outside_error = pixel_error[geometry.outside]
    values["texture_spearman"] = _spearman(texture_split, outside_error)

    planar = np.ascontiguousarray(np.moveaxis(inpainted, 2, 0)).reshape(3, -1)
    # The step across the mask edge (no pair without an outside pixel: NaN above).
    n_pairs = geometry.edge_pairs.shape[1]
    step_sum = seam.step_sum(planar, geometry.edge_pairs)
    values["seam_step"] = seam.mean_step(step_sum, n_pairs)
    values["seam_step_original"] = seam.mean_step(texture_split.step_sum, n_pairs)
    values["seam_step_excess"] = seam.mean_step(step_sum - texture_split.step_sum, n_pairs)

    outside_colours = np.take(planar, geometry.outside, axis=1)
    shift = _channel_sums(outside_colours) - texture_split.colour_sums
    values["shift_r_outside"], values["shift_g_outside"], values["shift_b_outside"] = (
        shift / n_outside
    ).tolist()

    # ΔE is 0 exactly for an unchanged pixel: when few changed, only those are computed.
    reference = texture_split.colours
    if np.count_nonzero(outside_error) < n_outside // 2:
        changed = np.flatnonzero(outside_error)
        reference = reference.take(changed)
        outside_colours = np.take(outside_colours, changed, axis=1)
    values["delta_e_outside"] = colour.delta_e_sum(reference, outside_colours) / n_outside

    if features.ssim is not None:
        # The inside set to the original's: windows that straddle the edge then compare
        # outside pixels only, and an untouched outside scores exactly 1.
        original = np.moveaxis(features.planar.reshape(3, *inpainted.shape[:2]), 0, 2)
        outside_only = np.where(geometry.keep[..., None] > 0, inpainted, original)
        total = ssim_sum(features.ssim, outside_only, geometry.keep)
        values["ssim_outside"] = total / (3 * n_outside)
    return values, profile


def _channel_sums(planar: np.ndarray) -> np.ndarray:
    """int64 (3,): exact sums of the rows of uint8 (3, N) (uint64 accumulators)."""
    return np.array([int(np.add.reduce(row, dtype=np.uint64)) for row in planar], dtype=np.int64)


def _means(totals: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-element means of exact sums per bin; NaN for an empty bin."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / (3 * counts), math.nan)


def _spearman(texture_split: Split, outside_error: np.ndarray) -> float:
    """Spearman's rank correlation (ties averaged, as ``scipy.stats.spearmanr``) between
    the outside pixels' texture and their squared error; NaN if either is constant."""
    n = outside_error.size
    if n < 2 or texture_split.rank_square_sum == 0:
        return math.nan
    # Ranks of the integer errors by counting: a value's rank is the count below it
    # plus the mean position among its ties.
    count = np.bincount(outside_error)
    present = np.flatnonzero(count)
    count = count[present].astype(np.float64)
    rank = np.cumsum(count) - count + (count + 1) / 2 - (n + 1) / 2
    error_square_sum = float(count @ (rank * rank))
    if error_square_sum == 0:
        return math.nan
    # sum over pixels of texture rank x error rank, by error value.
    by_value = np.bincount(outside_error, weights=texture_split.centred_rank)[present]
    return float(by_value @ rank) / math.sqrt(texture_split.rank_square_sum * error_square_sum)
